import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import {
  Command,
  CommandExecutor,
  Event,
  EventDecodeError,
  EventId,
  EventStore,
  StreamId,
  Subscription
} from "eventcore"
import { TestLayers } from "eventcore/testing"

// Version 2 (current): amounts with a currency. Version 1 stored cents only.
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, currency: Schema.String })
const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })

const Events = Event.catalog(
  Opened,
  Event.versioned(Deposited, [
    Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents, currency: "EUR" }))
  ])
)

const account = StreamId.makeUnsafe("account-1")

const History = Command.make("History", {
  input: Schema.Struct({ account: StreamId.StreamId }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: [] as ReadonlyArray<Event.Type<typeof Events>>,
  apply: (state, event) => [...state, event],
  handle: () => Effect.succeed([])
})

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: null,
  apply: (state) => state,
  handle: ({ input, streams }) =>
    Effect.succeed([streams.account.append(Deposited.make({ amount: input.amount, currency: "USD" }))])
})

/** Appends raw stored events, as an older writer (or another application) would have. */
const appendRaw = (events: ReadonlyArray<{ type: string; schemaVersion: number; payload: unknown }>) =>
  Effect.gen(function*() {
    const current = yield* EventStore.readStream(account)
    const toAppend: Array<EventStore.EventToAppend> = []
    for (const e of events) {
      toAppend.push({
        streamId: account,
        eventId: yield* EventId.make,
        ...e,
        metadata: { correlationId: "old", causationId: "old", custom: {} }
      })
    }
    yield* EventStore.append({ streams: [{ streamId: account, expected: current.version }], events: toAppend })
  })

const run = <A, E>(effect: Effect.Effect<A, E, TestLayers.Services>) => effect.pipe(Effect.provide(TestLayers.memory()))

describe("schema evolution", () => {
  it.effect("an event stored as v1 reads back as the current version, in commands and subscriptions", () =>
    run(Effect.gen(function*() {
      yield* appendRaw([
        { type: "Opened", schemaVersion: 1, payload: { _tag: "Opened", owner: "ann" } },
        { type: "Deposited", schemaVersion: 1, payload: { _tag: "Deposited", cents: 250 } },
        { type: "Deposited", schemaVersion: 2, payload: { _tag: "Deposited", amount: 7, currency: "CHF" } }
      ])
      const expected = [
        Opened.make({ owner: "ann" }),
        Deposited.make({ amount: 250, currency: "EUR" }),
        Deposited.make({ amount: 7, currency: "CHF" })
      ]
      // through a command's fold
      const seen: Array<unknown> = []
      const Spy = Command.make("Spy", {
        ...History,
        handle: ({ state }) => Effect.sync(() => (seen.push(...state), []))
      })
      yield* CommandExecutor.execute(Spy, { account })
      assert.deepStrictEqual(seen, expected)
      // through a subscription
      const decoded = yield* Subscription.events(Events, { from: "start" }).pipe(Stream.take(3), Stream.runCollect)
      assert.deepStrictEqual(decoded.map((d) => d.event), expected)
      assert.deepStrictEqual(decoded.map((d) => d.stored.schemaVersion), [1, 1, 2])
    })))

  it.effect("writing always writes the current version", () =>
    run(Effect.gen(function*() {
      yield* CommandExecutor.execute(Deposit, { account, amount: 3 })
      const read = yield* EventStore.readStream(account)
      assert.strictEqual(read.events.length, 1)
      assert.strictEqual(read.events[0]?.type, "Deposited")
      assert.strictEqual(read.events[0]?.schemaVersion, 2)
      assert.deepStrictEqual(read.events[0]?.payload, { _tag: "Deposited", amount: 3, currency: "USD" })
    })))

  it.effect("an unknown event type is an EventDecodeError naming stream, version and type", () =>
    run(Effect.gen(function*() {
      yield* appendRaw([
        { type: "Opened", schemaVersion: 1, payload: { _tag: "Opened", owner: "ann" } },
        { type: "Renamed", schemaVersion: 1, payload: { _tag: "Renamed", owner: "bob" } }
      ])
      const error = yield* Effect.flip(CommandExecutor.execute(History, { account }))
      assert.instanceOf(error, EventDecodeError)
      if (!(error instanceof EventDecodeError)) return
      assert.strictEqual(error.streamId, "account-1")
      assert.strictEqual(error.streamVersion, 2)
      assert.strictEqual(error.type, "Renamed")
      assert.include(error.reason, "unknown event type")
      assert.include(error.message, "account-1")
      assert.include(error.message, "Renamed")
      assert.include(error.message, "Add the type to the reader's catalog, or an upcaster")
      // a write command over that stream fails the same way and writes nothing
      const failed = yield* Effect.flip(CommandExecutor.execute(Deposit, { account, amount: 1 }))
      assert.strictEqual(failed._tag, "EventDecodeError")
      assert.strictEqual((yield* EventStore.readStream(account)).version, 2)
    })))

  it.effect("an unknown schema version is an EventDecodeError", () =>
    run(Effect.gen(function*() {
      yield* appendRaw([
        { type: "Deposited", schemaVersion: 3, payload: { _tag: "Deposited", amount: 1, currency: "EUR", memo: "x" } }
      ])
      const error = yield* Effect.flip(CommandExecutor.execute(History, { account }))
      assert.instanceOf(error, EventDecodeError)
      if (!(error instanceof EventDecodeError)) return
      assert.strictEqual(error.streamId, "account-1")
      assert.strictEqual(error.streamVersion, 1)
      assert.strictEqual(error.type, "Deposited")
      assert.strictEqual(error.schemaVersion, 3)
      assert.include(error.reason, "unknown schema version")
    })))

  it.effect("a v1 payload that does not match the v1 schema is an EventDecodeError, not a crash", () =>
    run(Effect.gen(function*() {
      yield* appendRaw([{ type: "Deposited", schemaVersion: 1, payload: { _tag: "Deposited", cents: "lots" } }])
      const error = yield* Effect.flip(CommandExecutor.execute(History, { account }))
      assert.instanceOf(error, EventDecodeError)
      if (error instanceof EventDecodeError) assert.strictEqual(error.schemaVersion, 1)
    })))

  it.effect("a subscription fails with EventDecodeError on an event it cannot decode", () =>
    run(Effect.gen(function*() {
      yield* appendRaw([{ type: "Deposited", schemaVersion: 9, payload: {} }])
      const error = yield* Effect.flip(
        Subscription.events(Events, { from: "start" }).pipe(Stream.take(1), Stream.runCollect)
      )
      assert.instanceOf(error, EventDecodeError)
    })))
})
