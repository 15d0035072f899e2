/**
 * The saga example: `node --import ./scripts/source.mjs examples/saga/main.ts`. Stocks three products,
 * places orders, and lets the fulfilment process manager reserve stock, confirm, or
 * compensate and reject.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { CommandExecutor, EventStore, ProjectionRunner } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { Fulfilment } from "./Fulfilment.ts"
import { AddStock, PlaceOrder } from "./Inventory.ts"
import * as Report from "./Report.ts"

export const program = Effect.scoped(Effect.gen(function*() {
  yield* CommandExecutor.execute(AddStock, { product: "apple", quantity: 10 })
  yield* CommandExecutor.execute(AddStock, { product: "pear", quantity: 5 })
  yield* CommandExecutor.execute(AddStock, { product: "plum", quantity: 1 })
  const runner = yield* ProjectionRunner.start(Fulfilment)

  yield* CommandExecutor.execute(PlaceOrder, {
    order: "o-1",
    lines: [{ product: "apple", quantity: 3 }, { product: "pear", quantity: 2 }]
  })
  yield* CommandExecutor.execute(PlaceOrder, {
    order: "o-2",
    lines: [{ product: "apple", quantity: 4 }, { product: "plum", quantity: 2 }]
  })
  yield* CommandExecutor.execute(PlaceOrder, {
    order: "o-3",
    lines: [{ product: "pear", quantity: 3 }, { product: "plum", quantity: 1 }]
  })

  yield* runner.awaitPosition(yield* EventStore.EventStore.use((s) => s.head))
  const report = yield* Report.read(["o-1", "o-2", "o-3"], ["apple", "pear", "plum"])
  yield* Console.log(Report.format(report))
  return report
}))

export const layer = Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(
  Layer.provideMerge(MemoryEventStore.layer)
)

if (import.meta.main) program.pipe(Effect.provide(layer), NodeRuntime.runMain)
