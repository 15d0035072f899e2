/**
 * A projection process for the SIGKILL test: runs one read model against PostgreSQL until
 * killed. Usage: node --import ./scripts/source.mjs test/postgres/projection-child.ts <tx|idem> <schema>
 * with DATABASE_URL set.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as ProjectionRunner from "../../src/ProjectionRunner.ts"
import { idempotentHistory, transactionalBalances } from "./projectionFixtures.ts"

const [mode, schema] = process.argv.slice(2)
const url = process.env["DATABASE_URL"]
if (schema === undefined || url === undefined || (mode !== "tx" && mode !== "idem")) {
  console.error("usage: projection-child.ts <tx|idem> <schema> (DATABASE_URL set)")
  process.exit(2)
}

const Live = Layer.mergeAll(
  PostgresEventStore.layer({ schema, migrate: false }),
  PostgresProjection.layer({ schema, lock: { pollInterval: "100 millis" } })
).pipe(Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })))

const program = Effect.scoped(Effect.gen(function*() {
  const projection = mode === "tx"
    ? yield* transactionalBalances(schema, { pauseMillis: 1 })
    : yield* idempotentHistory(schema, { pauseMillis: 1 })
  const runner = yield* ProjectionRunner.start(projection, { pageSize: 50 })
  console.log("started")
  yield* runner.awaitStatus("Live")
  console.log("live")
  const faulted = yield* runner.awaitStatus("Faulted")
  console.error(`faulted: ${faulted.message}`)
  process.exit(1)
}))

Effect.runFork(program.pipe(Effect.provide(Live), Effect.orDie))
