/**
 * `npm start`: the banking demo. Runs on the in-memory store, or on PostgreSQL when
 * DATABASE_URL is set (the store migrates its schema at start).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Clock, Effect, Layer, Random } from "effect"
import { CommandExecutor, type EventStore } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { PostgresEventStore } from "eventcore/postgres"
import * as Demo from "./Demo.ts"

const databaseUrl = process.env["DATABASE_URL"]

const store: Layer.Layer<EventStore.EventStore, unknown> = databaseUrl === undefined
  ? MemoryEventStore.layer
  : PostgresEventStore.layerFromUrl(databaseUrl, { maxConnections: 32 })

const program = Effect.gen(function*() {
  // Accounts of one run share a prefix, so runs against a persistent store do not meet.
  const prefix = databaseUrl === undefined ? "" : `demo-${(yield* Clock.currentTimeMillis).toString(36)}/`
  const settings: Demo.Settings = databaseUrl === undefined
    ? { prefix, accounts: 100, initialBalance: 10_000, transfers: 20_000, fibers: 64 }
    : { prefix, accounts: 1_000, initialBalance: 10_000, transfers: 5_000, fibers: 32 }
  const report = yield* Demo.run(settings)
  yield* Demo.print(report, databaseUrl === undefined ? "in-memory" : "PostgreSQL")
  if (report.totalBefore !== report.totalAfter || report.totalAfter !== report.readModelTotal) {
    return yield* Effect.die(new Error("money was not conserved"))
  }
})

program.pipe(
  Random.withSeed("eventcore-banking-demo"),
  Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(store))),
  NodeRuntime.runMain
)
