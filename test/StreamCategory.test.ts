/**
 * Stream categories: one definition of `<category>-<id>` that commands (input schemas),
 * subscriptions (filters) and tests (`Scenario.given`) share.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema, Stream } from "effect"
import { Command, CommandExecutor, Event, EventStore, StreamCategory, StreamId } from "eventcore"
import { Scenario, TestLayers } from "eventcore/testing"

const Account = StreamCategory.make("account")
const Order = StreamCategory.make("order")

const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
const Placed = Schema.TaggedStruct("Placed", { account: Schema.String })
const Events = Event.catalog(Opened, Placed)

const Open = Command.make("Open", {
  input: Schema.Struct({ account: Account.Id, owner: Schema.String }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: false,
  apply: () => true,
  handle: ({ input, state, streams }) =>
    Effect.gen(function*() {
      yield* Command.require(!state, "already-open", `${input.account} is already open`)
      return [streams.account.append(Opened.make({ owner: input.owner }))]
    })
})

const Place = Command.make("Place", {
  input: Schema.Struct({ order: Order.Id, account: Account.Id }),
  events: Events,
  streams: ({ account, order }) => ({ account, order }),
  initial: { open: false },
  apply: (state, event, role) => role === "account" && event._tag === "Opened" ? { open: true } : state,
  decide: ({ input, state, streams, refusal }) =>
    state.open
      ? [streams.order.append(Placed.make({ account: input.account }))]
      : refusal("account-open", `${input.account} is not open`)
})

describe("StreamCategory", () => {
  it("builds, recognises and takes apart its stream ids", () => {
    assert.strictEqual(Account.makeUnsafe(42), "account-42")
    assert.strictEqual(Account.makeUnsafe("a-b"), "account-a-b")
    assert.strictEqual(Account.prefix, "account-")
    assert.strictEqual(Account.idOf("account-42"), "42")
    assert.strictEqual(Account.idOf("account-a-b"), "a-b")
    assert.isUndefined(Account.idOf("account-"))
    assert.isUndefined(Account.idOf("order-1"))
    assert.isTrue(Account.is("account-1"))
    assert.isFalse(Account.is("accounts-1"))
    assert.deepStrictEqual(Account.filter, { streamPrefix: "account-" })
    assert.strictEqual(StreamCategory.of("account-42"), "account")
    assert.isUndefined(StreamCategory.of("singleton"))
    assert.strictEqual(StreamCategory.make("ledger", { separator: ":" }).makeUnsafe(7), "ledger:7")
    assert.throws(() => Account.makeUnsafe("bad\u0000id"), /control characters/)
  })

  it("refuses names whose prefix would match another category's streams", () => {
    assert.throws(() => StreamCategory.make("order-line"), /contains the separator/)
    assert.throws(() => StreamCategory.make(""), /must not be empty/)
    assert.throws(() => StreamCategory.make(" padded"), /whitespace/)
  })

  it.effect("make fails with InvalidInput on an id that makes no valid stream id", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Account.make(1), "account-1")
      const exit = yield* Effect.exit(Account.make("x".repeat(StreamId.maxLength)))
      assert.isTrue(Exit.isFailure(exit))
    }))

  it("the Id schema decodes a bare id to the stream id and encodes it back; StreamId checks the category", () => {
    assert.strictEqual(Schema.decodeUnknownSync(Account.Id)("42"), "account-42")
    assert.strictEqual(Schema.encodeSync(Account.Id)(Account.makeUnsafe("42")), "42")
    assert.throws(() => Schema.decodeUnknownSync(Account.Id)(""), /must not be empty/)
    assert.strictEqual(Schema.decodeUnknownSync(Account.StreamId)("account-9"), "account-9")
    assert.throws(() => Schema.decodeUnknownSync(Account.StreamId)("order-9"), /must start with "account-"/)
  })

  it.effect("commands take bare ids; a bad one is InvalidInput naming the field, and nothing is written", () =>
    Effect.gen(function*() {
      const opened = yield* CommandExecutor.execute(Open, { account: "7", owner: "ann" })
      assert.deepStrictEqual(opened.events.map((e) => e.streamId), ["account-7"])
      const error = yield* Effect.flip(CommandExecutor.execute(Open, { account: "", owner: "bob" }))
      assert.strictEqual(error._tag, "InvalidInput")
      if (error._tag === "InvalidInput") assert.deepStrictEqual(error.path, ["account"])
      const placed = yield* CommandExecutor.execute(Place, { order: "1", account: "7" })
      assert.deepStrictEqual(placed.events.map((e) => e.streamId), ["order-1"])
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a subscription filtered by category sees that category's streams only", () =>
    Effect.gen(function*() {
      yield* CommandExecutor.execute(Open, { account: "1", owner: "ann" })
      yield* CommandExecutor.execute(Place, { order: "1", account: "1" })
      yield* CommandExecutor.execute(Open, { account: "2", owner: "bob" })
      const accounts = yield* Stream.runCollect(EventStore.readAll({ filter: Account.filter }))
      assert.deepStrictEqual(accounts.map((e) => e.streamId), ["account-1", "account-2"])
      const orders = yield* Stream.runCollect(
        EventStore.readAll({ filter: { ...Order.filter, eventTypes: ["Placed"] } })
      )
      assert.deepStrictEqual(orders.map((e) => e.streamId), ["order-1"])
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("scenarios name their streams through the category", () =>
    Scenario.make(Place)
      .given({ [Account.makeUnsafe(3)]: [Opened.make({ owner: "cy" })] })
      .when({ order: "9", account: "3" })
      .thenEvents({ [Order.makeUnsafe(9)]: [Placed.make({ account: "account-3" })] })
      .pipe(Effect.provide(TestLayers.memory())))
})
