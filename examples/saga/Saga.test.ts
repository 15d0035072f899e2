import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import { CheckpointStore, CommandExecutor, EventStore, ProjectionRunner } from "eventcore"
import { Fulfilment } from "./Fulfilment.ts"
import { AddStock, orderStream, PlaceOrder } from "./Inventory.ts"
import * as Main from "./main.ts"
import * as Report from "./Report.ts"

const head = EventStore.EventStore.use((s) => s.head)

describe("saga: order fulfilment", () => {
  it.effect("confirms orders with stock; compensates and rejects an order when one product lacks stock", () =>
    Effect.gen(function*() {
      const report = yield* Main.program
      assert.deepStrictEqual(report.orders.get("o-1"), { status: "confirmed" })
      assert.strictEqual(report.orders.get("o-2")?.status, "rejected")
      assert.include(report.orders.get("o-2")?.reason ?? "", "plum")
      assert.deepStrictEqual(report.orders.get("o-3"), { status: "confirmed" })
      // o-2 reserved 4 apples, then plum failed: the apples were released
      assert.deepStrictEqual(report.products.get("apple"), { available: 7, reserved: 3, events: 4 })
      assert.deepStrictEqual(report.products.get("pear"), { available: 0, reserved: 5, events: 3 })
      assert.deepStrictEqual(report.products.get("plum"), { available: 0, reserved: 1, events: 2 })
    }).pipe(Effect.provide(Main.layer)))

  it.effect("what the saga writes names the order event that caused it and carries its correlation id", () =>
    Effect.gen(function*() {
      yield* CommandExecutor.execute(AddStock, { product: "apple", quantity: 5 })
      yield* CommandExecutor.execute(PlaceOrder, { order: "c", lines: [{ product: "apple", quantity: 2 }] }, {
        metadata: { correlationId: "checkout-42" }
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Fulfilment)
        yield* runner.awaitPosition(yield* head)
      }))
      const placed = (yield* EventStore.readStream(orderStream("c"))).events[0]
      assert.strictEqual(placed?.type, "OrderPlaced")
      const caused = (yield* Stream.runCollect(EventStore.readAll())).filter((e) =>
        e.position > (placed?.position ?? "")
      )
      assert.deepStrictEqual(caused.map((e) => e.type), ["StockReserved", "OrderConfirmed"])
      for (const event of caused) {
        assert.strictEqual(event.metadata.causationId, placed?.eventId)
        assert.strictEqual(event.metadata.correlationId, "checkout-42")
      }
    }).pipe(Effect.provide(Main.layer)))

  it.effect("redelivery (the process manager replays every order) changes nothing: its commands are idempotent", () =>
    Effect.gen(function*() {
      yield* CommandExecutor.execute(AddStock, { product: "apple", quantity: 2 })
      yield* CommandExecutor.execute(AddStock, { product: "pear", quantity: 1 })
      yield* CommandExecutor.execute(PlaceOrder, { order: "a", lines: [{ product: "apple", quantity: 2 }] })
      yield* CommandExecutor.execute(PlaceOrder, {
        order: "b",
        lines: [{ product: "pear", quantity: 1 }, { product: "apple", quantity: 1 }]
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Fulfilment)
        yield* runner.awaitPosition(yield* head)
      }))
      const first = yield* Report.read(["a", "b"], ["apple", "pear"])
      const eventsBefore = yield* head
      // as after a crash before the checkpoint: every OrderPlaced is delivered again
      yield* CheckpointStore.reset(Fulfilment.name)
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Fulfilment)
        yield* runner.awaitPosition(yield* head)
      }))
      assert.deepStrictEqual(yield* Report.read(["a", "b"], ["apple", "pear"]), first)
      assert.strictEqual(yield* head, eventsBefore)
      assert.strictEqual(first.orders.get("a")?.status, "confirmed")
      assert.strictEqual(first.orders.get("b")?.status, "rejected")
      assert.deepStrictEqual(first.products.get("pear"), { available: 1, reserved: 0, events: 3 })
    }).pipe(Effect.provide(Main.layer)))
})
