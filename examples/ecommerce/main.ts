/**
 * `npm run ecommerce`: the shop demo on the in-memory store, or on PostgreSQL when
 * DATABASE_URL is set (the store migrates its schema at start; everything goes into the schema
 * `eventcore`, or the one EVENTCORE_DEMO_SCHEMA names). Exits non-zero if an invariant fails.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Clock, Effect, Layer, Redacted } from "effect"
import { CommandExecutor } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { PostgresEventStore, PostgresProjection } from "eventcore/postgres"
import * as Demo from "./Demo.ts"

const inMemory = Effect.gen(function*() {
  const report = yield* Demo.run("")
  yield* Demo.print(report, "in-memory")
  yield* Demo.check(report)
}).pipe(
  Effect.scoped,
  Effect.provide(
    Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(Layer.provideMerge(MemoryEventStore.layer))
  )
)

const onPostgres = (url: string, schema: string) =>
  Effect.gen(function*() {
    // Ids of one run share a prefix, so runs against a persistent store do not meet.
    const prefix = `run${(yield* Clock.currentTimeMillis).toString(36)}-`
    const report = yield* Demo.run(prefix)
    yield* Demo.print(report, "PostgreSQL")
    yield* Demo.check(report)
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema })),
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 16 }))
      )
    )
  )

const databaseUrl = process.env["DATABASE_URL"]
const program: Effect.Effect<unknown, unknown> = databaseUrl === undefined
  ? inMemory
  : onPostgres(databaseUrl, process.env["EVENTCORE_DEMO_SCHEMA"] ?? "eventcore")

program.pipe(NodeRuntime.runMain)
