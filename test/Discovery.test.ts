import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import {
  BusinessRuleViolation,
  Command,
  CommandExecutor,
  DiscoveryLimitExceeded,
  Event,
  EventStore,
  StreamId,
  UndeclaredStream
} from "eventcore"
import { Scenario, TestLayers } from "eventcore/testing"

// An order names the products it contains; reserving the order discovers the product streams
// from the order's state, reads their stock, and writes a reservation to each product.
const OrderPlaced = Schema.TaggedStruct("OrderPlaced", {
  lines: Schema.Array(Schema.Struct({ product: Schema.String, quantity: Schema.Number }))
})
const Stocked = Schema.TaggedStruct("Stocked", { quantity: Schema.Number })
const Reserved = Schema.TaggedStruct("Reserved", { order: Schema.String, quantity: Schema.Number })
const ShopEvents = Event.catalog(OrderPlaced, Stocked, Reserved)
type ShopEvent = Event.Type<typeof ShopEvents>

interface OrderState {
  readonly lines: ReadonlyArray<{ readonly product: string; readonly quantity: number }>
  readonly stock: ReadonlyMap<string, number>
}

const fold = (
  state: OrderState,
  event: ShopEvent,
  role: "order" | "discovered",
  streamId: StreamId.StreamId
): OrderState => {
  switch (event._tag) {
    case "OrderPlaced":
      return { ...state, lines: event.lines }
    case "Stocked":
      return { ...state, stock: new Map(state.stock).set(streamId, (state.stock.get(streamId) ?? 0) + event.quantity) }
    case "Reserved":
      return role === "order" ? state : {
        ...state,
        stock: new Map(state.stock).set(streamId, (state.stock.get(streamId) ?? 0) - event.quantity)
      }
  }
}

const makeReserveOrder = (hook: Effect.Effect<void, never, EventStore.EventStore> = Effect.void) =>
  Command.make("ReserveOrder", {
    input: Schema.Struct({ order: StreamId.StreamId }),
    events: ShopEvents,
    streams: ({ order }) => ({ order }),
    initial: { lines: [], stock: new Map() } as OrderState,
    apply: fold,
    discover: (state) => state.lines.map((line) => StreamId.makeUnsafe(line.product)),
    handle: ({ input, state, stream }) =>
      Effect.gen(function*() {
        yield* hook
        for (const line of state.lines) {
          const available = state.stock.get(line.product) ?? 0
          if (available < line.quantity) {
            return yield* new BusinessRuleViolation({
              rule: "out-of-stock",
              message: `${line.product} has ${available}, order needs ${line.quantity}`
            })
          }
        }
        return state.lines.map((line) =>
          stream(StreamId.makeUnsafe(line.product)).append(
            Reserved.make({ order: input.order, quantity: line.quantity })
          )
        )
      })
  })

const run = <A, E>(effect: Effect.Effect<A, E, TestLayers.Services>) => effect.pipe(Effect.provide(TestLayers.memory()))

describe("dynamic discovery", () => {
  const history = {
    "order-1": [
      OrderPlaced.make({ lines: [{ product: "product-a", quantity: 2 }, { product: "product-b", quantity: 1 }] })
    ],
    "product-a": [Stocked.make({ quantity: 5 })],
    "product-b": [Stocked.make({ quantity: 1 })]
  }

  it.effect("reads the streams named by the state and writes to them through stream(id)", () =>
    run(Effect.gen(function*() {
      const result = yield* Scenario.make(makeReserveOrder())
        .given(history)
        .when({ order: "order-1" })
        .thenEvents({
          "product-a": [Reserved.make({ order: "order-1", quantity: 2 })],
          "product-b": [Reserved.make({ order: "order-1", quantity: 1 })]
        })
      // the discovered streams are part of the boundary
      assert.deepStrictEqual(
        result.versions.map((v) => [v.streamId, v.version]),
        [["order-1", 1], ["product-a", 2], ["product-b", 2]]
      )
    })))

  it.effect("folds the discovered streams into the decision", () =>
    run(
      Scenario.make(makeReserveOrder())
        .given(history)
        .given({ "product-b": [Reserved.make({ order: "order-0", quantity: 1 })] })
        .when({ order: "order-1" })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "out-of-stock" && e.message.includes("product-b"))
    ))

  it.effect("a discovered stream that changes between read and append is a conflict, retried", () =>
    run(Effect.gen(function*() {
      yield* Scenario.given(ShopEvents, history)
      let first = true
      // on the first attempt only, another writer restocks product-b after the command read it
      const interfere = Effect.suspend(() => {
        if (!first) return Effect.void
        first = false
        return Effect.orDie(Scenario.given(ShopEvents, { "product-b": [Stocked.make({ quantity: 3 })] }))
      })
      const result = yield* CommandExecutor.execute(makeReserveOrder(interfere), { order: "order-1" })
      assert.strictEqual(result.attempts, 2)
      assert.deepStrictEqual(
        result.versions.map((v) => [v.streamId, v.version]),
        [["order-1", 1], ["product-a", 2], ["product-b", 3]]
      )
    })))

  // A chain of streams, each naming the next: discovery keeps going one round per link.
  const Link = Schema.TaggedStruct("Link", { next: Schema.String })
  const Chain = Event.catalog(Link)
  const makeFollow = (discoveryLimit?: number) =>
    Command.make("Follow", {
      input: Schema.Struct({ start: StreamId.StreamId }),
      events: Chain,
      streams: ({ start }) => ({ start }),
      initial: [] as ReadonlyArray<string>,
      apply: (state, event) => [...state, event.next],
      discover: (state) => state.map((next) => StreamId.makeUnsafe(next)),
      ...(discoveryLimit === undefined ? {} : { discoveryLimit }),
      handle: () => Effect.succeed([])
    })
  const chainOf = (n: number) =>
    Object.fromEntries(Array.from({ length: n }, (_, i) => [`link-${i}`, [Link.make({ next: `link-${i + 1}` })]]))

  it.effect("a command that keeps discovering fails with DiscoveryLimitExceeded", () =>
    run(Effect.gen(function*() {
      yield* Scenario.given(Chain, chainOf(30))
      const error = yield* Effect.flip(CommandExecutor.execute(makeFollow(), { start: "link-0" }))
      assert.instanceOf(error, DiscoveryLimitExceeded)
      if (!(error instanceof DiscoveryLimitExceeded)) return
      assert.strictEqual(error.command, "Follow")
      assert.strictEqual(error.limit, 10)
      assert.include(error.streams, "link-0")
      assert.include(error.streams, "link-10")
      assert.include(error.message, "Follow")
      assert.include(error.message, "`discoveryLimit`")
    })))

  it.effect("the discovery limit is the command's to set", () =>
    run(Effect.gen(function*() {
      yield* Scenario.given(Chain, chainOf(30))
      const small = yield* Effect.flip(CommandExecutor.execute(makeFollow(3), { start: "link-0" }))
      assert.strictEqual(small._tag, "DiscoveryLimitExceeded")
      const result = yield* CommandExecutor.execute(makeFollow(40), { start: "link-0" })
      // 30 links and the empty stream the last one names
      assert.strictEqual(result.versions.length, 31)
    })))

  it.effect("a finite chain within the limit is read whole, each stream once", () =>
    run(Effect.gen(function*() {
      yield* Scenario.given(Chain, chainOf(5))
      const result = yield* CommandExecutor.execute(makeFollow(), { start: "link-0" })
      assert.deepStrictEqual(result.versions.map((v) => v.streamId), [
        "link-0",
        "link-1",
        "link-2",
        "link-3",
        "link-4",
        "link-5"
      ])
    })))
})

describe("undeclared streams", () => {
  const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
  const Notes = Event.catalog(Noted)
  const Sneaky = Command.make("Sneaky", {
    input: Schema.Struct({ own: StreamId.StreamId, elsewhere: StreamId.StreamId }),
    events: Notes,
    streams: ({ own }) => ({ own }),
    initial: null,
    apply: (state) => state,
    handle: ({ input, stream, streams }) =>
      Effect.succeed([
        streams.own.append(Noted.make({ text: "mine" })),
        stream(input.elsewhere).append(Noted.make({ text: "not mine" }))
      ])
  })

  it.effect("writing to a stream outside the boundary is UndeclaredStream, and nothing is written", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(Sneaky, { own: "note-1", elsewhere: "note-2" }))
      assert.instanceOf(error, UndeclaredStream)
      if (!(error instanceof UndeclaredStream)) return
      assert.strictEqual(error.command, "Sneaky")
      assert.strictEqual(error.streamId, "note-2")
      assert.deepStrictEqual(error.boundary, ["note-1"])
      // the message says how to bring the stream into the boundary
      assert.include(error.message, "name the stream in `streams`")
      assert.include(error.message, "`discover`")
      assert.strictEqual(yield* Stream.runCount(EventStore.readAll()), 0)
    })))

  it.effect("stream(id) of a declared stream is fine", () =>
    run(
      Scenario.make(Sneaky)
        .when({ own: "note-1", elsewhere: "note-1" })
        .thenEvents({ "note-1": [Noted.make({ text: "mine" }), Noted.make({ text: "not mine" })] })
    ))
})
