/**
 * `npm start`: the banking demo. Runs on the in-memory store, or on PostgreSQL when
 * DATABASE_URL is set: the store migrates its schema at start, and the balance and history
 * read models live in PostgreSQL tables, written exactly once per event. Everything goes into the
 * schema `eventcore`, or the one EVENTCORE_DEMO_SCHEMA names.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Clock, Console, Effect, Layer, Random, Redacted } from "effect"
import { CommandExecutor } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { PostgresEventStore, PostgresProjection } from "eventcore/postgres"
import * as BalancesPostgres from "./BalancesPostgres.ts"
import * as Demo from "./Demo.ts"

const check = (report: Demo.Report) =>
  report.totalBefore === report.totalAfter && report.totalAfter === report.readModelTotal
    ? Effect.void
    : Effect.die(new Error("money was not conserved"))

const inMemory = Effect.gen(function*() {
  const report = yield* Demo.run({ prefix: "", accounts: 100, initialBalance: 10_000, transfers: 20_000, fibers: 64 })
  yield* Demo.print(report, "in-memory")
  yield* check(report)
}).pipe(Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(MemoryEventStore.layer))))

const onPostgres = (url: string) =>
  Effect.gen(function*() {
    // Accounts of one run share a prefix, so runs against a persistent store do not meet.
    const prefix = `demo-${(yield* Clock.currentTimeMillis).toString(36)}/`
    const settings = { prefix, accounts: 1_000, initialBalance: 10_000, transfers: 5_000, fibers: 32 }
    const models = yield* BalancesPostgres.start(schema)
    const report = yield* Demo.run(settings, Effect.succeed(models))
    yield* Demo.print(report, "PostgreSQL")
    const first = `${prefix}account-0000`
    const history = yield* models.history(first, 5)
    yield* Console.log(`  last entries of ${first} (table ${schema}.banking_history):`)
    for (const entry of history) yield* Console.log(`    ${entry.type.padEnd(16)} ${entry.amount.padStart(8)}`)
    yield* check(report)
  }).pipe(
    Effect.scoped,
    Effect.provide(
      Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema })),
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 16 }))
      )
    )
  )

const schema = process.env["EVENTCORE_DEMO_SCHEMA"] ?? "eventcore"
const databaseUrl = process.env["DATABASE_URL"]

const program: Effect.Effect<void, unknown> = databaseUrl === undefined ? inMemory : onPostgres(databaseUrl)

program.pipe(
  Random.withSeed("eventcore-banking-demo"),
  NodeRuntime.runMain
)
