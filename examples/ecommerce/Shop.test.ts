/**
 * The shop's rules as scenarios: given the streams' histories, when an order is placed, then
 * exactly these events — or this refusal, and nothing written. Plus the read-only participant
 * (a credit limit changed between read and append makes the order decide again) and the read
 * model.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { CommandExecutor, EventId, EventStore } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { Scenario, TestLayers } from "eventcore/testing"
import * as Sales from "./Sales.ts"
import {
  AddToCart,
  Cart,
  CartCheckedOut,
  CreditLimitChanged,
  Customer,
  CustomerRegistered,
  ItemAddedToCart,
  maxCartLines,
  Order,
  OrderPlaced,
  PlaceOrder,
  Product,
  ProductListed,
  StockAdded,
  StockReserved
} from "./Shop.ts"

const shop = {
  [Product.makeUnsafe("apple")]: [ProductListed.make({ name: "apple", price: 120 }), StockAdded.make({ quantity: 5 })],
  [Product.makeUnsafe("pear")]: [ProductListed.make({ name: "pear", price: 90 }), StockAdded.make({ quantity: 1 })],
  [Customer.makeUnsafe("ann")]: [CustomerRegistered.make({ name: "Ann", creditLimit: 1_000 })],
  [Customer.makeUnsafe("bob")]: [CustomerRegistered.make({ name: "Bob", creditLimit: 500 })]
}
const cartOf = (id: string, ...items: ReadonlyArray<readonly [string, number]>) => ({
  [Cart.makeUnsafe(id)]: items.map(([product, quantity]) => ItemAddedToCart.make({ product, quantity }))
})
const cart = (...items: ReadonlyArray<readonly [string, number]>) => cartOf("1", ...items)
const placing = { order: "1", cart: "1", customer: "ann" }

const test = <A, E>(effect: Effect.Effect<A, E, CommandExecutor.CommandExecutor | EventStore.EventStore>) =>
  effect.pipe(Effect.provide(TestLayers.memory()))

describe("PlaceOrder", () => {
  it.effect("places the order, checks the cart out and reserves every product, in one append", () =>
    test(
      Scenario.make(PlaceOrder)
        .given(shop)
        .given(cart(["apple", 2], ["pear", 1]))
        .when(placing)
        .thenEvents({
          [Order.makeUnsafe("1")]: [
            OrderPlaced.make({
              customer: "ann",
              lines: [{ product: "apple", quantity: 2, price: 120 }, { product: "pear", quantity: 1, price: 90 }],
              total: 330
            })
          ],
          [Cart.makeUnsafe("1")]: [CartCheckedOut.make({ order: "1" })],
          [Product.makeUnsafe("apple")]: [StockReserved.make({ order: "1", quantity: 2 })],
          [Product.makeUnsafe("pear")]: [StockReserved.make({ order: "1", quantity: 1 })]
        })
    ))

  it.effect("refuses what stock cannot cover, naming the product", () =>
    test(Effect.gen(function*() {
      const error = yield* Scenario.make(PlaceOrder).given(shop).given(cart(["pear", 2])).when(placing)
        .thenFails("BusinessRuleViolation", (e) => e.rule === "out-of-stock")
      assert.deepStrictEqual(error.details, { product: "pear", available: 1 })
    })))

  it.effect("refuses an order over the customer's credit limit", () =>
    test(Effect.gen(function*() {
      const error = yield* Scenario.make(PlaceOrder).given(shop).given(cart(["apple", 5], ["pear", 1]))
        .when({ ...placing, customer: "bob" })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "credit-limit")
      assert.deepStrictEqual(error.details, { total: 690, creditLimit: 500 })
    })))

  it.effect("refuses carts it cannot read whole: too many lines, an unknown product or customer, an empty cart", () =>
    test(Effect.gen(function*() {
      const lines = Array.from({ length: maxCartLines + 1 }, (_, i) => [`item-${i}`, 1] as const)
      const tooLarge = yield* Scenario.make(PlaceOrder).given(shop).given(cart(...lines)).when(placing)
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(tooLarge.rule, "cart-too-large")
      const unknownProduct = yield* Scenario.make(PlaceOrder).given(cartOf("2", ["plum", 1]))
        .when({ order: "2", cart: "2", customer: "ann" }).thenFails("BusinessRuleViolation")
      assert.strictEqual(unknownProduct.rule, "unknown-product")
      const unknownCustomer = yield* Scenario.make(PlaceOrder).given(cartOf("3", ["apple", 1]))
        .when({ order: "3", cart: "3", customer: "nobody" }).thenFails("BusinessRuleViolation")
      assert.strictEqual(unknownCustomer.rule, "unknown-customer")
      const empty = yield* Scenario.make(PlaceOrder).when({ order: "4", cart: "4", customer: "ann" })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(empty.rule, "cart-empty")
    })))

  it.effect("a credit limit lowered between read and append makes the order decide again, and refuse", () =>
    Effect.gen(function*() {
      yield* Scenario.given(PlaceOrder.events, shop)
      yield* Scenario.given(PlaceOrder.events, cart(["apple", 5]))
      const error = yield* Effect.flip(CommandExecutor.execute(PlaceOrder, placing))
      assert.strictEqual(error._tag, "BusinessRuleViolation")
      if (error._tag === "BusinessRuleViolation") assert.strictEqual(error.rule, "credit-limit")
      // the order conflicted on the customer stream it only read, and was decided again
      const order = yield* EventStore.readStream(Order.makeUnsafe("1"))
      assert.strictEqual(order.version, 0)
    }).pipe(Effect.provide(TestLayers.make(lowersLimitOnFirstRead))))
})

/**
 * A store that, right after PlaceOrder's first read, lowers Ann's credit limit to 100 — as
 * another request would between this order's read and its append.
 */
const lowersLimitOnFirstRead = Layer.effect(
  EventStore.EventStore,
  Effect.gen(function*() {
    const store = yield* MemoryEventStore.make
    const done = yield* Ref.make(false)
    const ann = Customer.makeUnsafe("ann")
    return EventStore.EventStore.of({
      ...store,
      readStreams: (ids) =>
        Effect.tap(store.readStreams(ids), () =>
          Effect.gen(function*() {
            if (!ids.includes(ann) || ids.length < 3 || (yield* Ref.getAndSet(done, true))) return
            const read = yield* store.readStreams([ann])
            yield* store.append({
              streams: [{ streamId: ann, expected: read[0]?.version ?? 0 }],
              events: [{
                streamId: ann,
                eventId: yield* EventId.make,
                type: "CreditLimitChanged",
                schemaVersion: 1,
                payload: CreditLimitChanged.make({ creditLimit: 100 }),
                metadata: { correlationId: "other", causationId: "other", custom: {} }
              }]
            })
          }).pipe(Effect.orDie))
    })
  })
)

describe("the sales read model", () => {
  it.effect("answers after an order: what the customer ordered, units sold, stock left, revenue", () =>
    Effect.scoped(Effect.gen(function*() {
      const sales = yield* Sales.sales
      yield* Scenario.given(PlaceOrder.events, shop)
      yield* CommandExecutor.execute(AddToCart, { cart: "1", product: "apple", quantity: 3 })
      const placed = yield* CommandExecutor.execute(PlaceOrder, placing)
      const after = sales.after(placed)
      assert.deepStrictEqual(yield* after.ordersOf("ann"), [{ order: "1", total: 360 }])
      assert.strictEqual(yield* after.unitsSold("apple"), 3)
      assert.strictEqual(yield* after.available("apple"), 2)
      assert.strictEqual(yield* after.revenue(), 360)
    })).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))
})
