/**
 * Read models in memory: typed queries over a fold, and read-your-writes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Command, CommandExecutor, Event, ReadModel, StreamCategory } from "eventcore"
import { MemoryProjections } from "eventcore/memory"
import { TestLayers } from "eventcore/testing"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Events = Event.catalog(Deposited)

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

const balances = ReadModel.memory({
  name: "balances",
  events: Events,
  filter: Account.filter,
  initial: new Map<string, number>(),
  apply: (state, event, stored) => {
    const id = Account.idOf(stored.streamId) ?? stored.streamId
    return new Map(state).set(id, (state.get(id) ?? 0) + event.amount)
  },
  queries: {
    balance: (state, account: string) => state.get(account) ?? 0,
    richest: (state, limit: number) =>
      [...state.entries()].toSorted(([, a], [, b]) => b - a).slice(0, limit).map(([account]) => account)
  }
})

describe("ReadModel.memory", () => {
  it.effect("answers typed queries; after(result) reads the command's own writes", () =>
    Effect.scoped(Effect.gen(function*() {
      const model = yield* balances
      const first = yield* CommandExecutor.execute(Deposit, { account: "1", amount: 5 })
      const balance: number = yield* model.after(first).balance("1")
      assert.strictEqual(balance, 5)
      yield* CommandExecutor.execute(Deposit, { account: "2", amount: 9 })
      const last = yield* CommandExecutor.execute(Deposit, { account: "1", amount: 1 })
      const richest: ReadonlyArray<string> = yield* model.after(last).richest(1)
      assert.deepStrictEqual(richest, ["2"])
      yield* model.awaitPosition(last.position)
      assert.strictEqual(yield* model.query.balance("1"), 6)
      // nothing to wait for
      assert.strictEqual(yield* model.after(undefined).balance("3"), 0)
      assert.strictEqual(model.name, "balances")
    })).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))

  it("positionOf takes a result, a position or nothing", () => {
    assert.isUndefined(ReadModel.positionOf(undefined))
    assert.isUndefined(ReadModel.positionOf({ position: undefined }))
  })
})
