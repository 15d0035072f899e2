/**
 * `npm start`: the banking demo. Runs on the in-memory store, or on PostgreSQL when
 * DATABASE_URL is set.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Random } from "effect"
import { CommandExecutor } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import * as Demo from "./Demo.ts"

const settings: Demo.Settings = { accounts: 100, initialBalance: 10_000, transfers: 20_000, fibers: 64 }

const program = Effect.gen(function*() {
  const report = yield* Demo.run(settings)
  yield* Demo.print(report, "in-memory")
  if (report.totalBefore !== report.totalAfter || report.totalAfter !== report.readModelTotal) {
    return yield* Effect.die(new Error("money was not conserved"))
  }
})

program.pipe(
  Random.withSeed("eventcore-banking-demo"),
  Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(MemoryEventStore.layer))),
  NodeRuntime.runMain
)
