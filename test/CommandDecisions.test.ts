/**
 * Writing decisions: refusals under named rules (`refuse`, `require`, `refusal`) whose names
 * reach the caller's type as a literal union, a pure `decide` beside the effectful `handle`,
 * and `make<State, Rules>()` for a state type `initial` alone cannot say. The type-level
 * claims are checked by the type check (`@ts-expect-error` fails it if an error goes away).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { Command, CommandExecutor, Event, StreamId } from "eventcore"
import { Scenario, TestLayers } from "eventcore/testing"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
const AccountEvents = Event.catalog(Deposited, Withdrawn)

const Transfer = Command.make("Transfer", {
  input: Schema.Struct({ from: StreamId.StreamId, to: StreamId.StreamId, amount: Schema.Number }),
  events: AccountEvents,
  streams: ({ from, to }) => ({ from, to }),
  initial: { from: 0, to: 0 },
  apply: (state, event, role) =>
    role === "discovered"
      ? state
      : { ...state, [role]: state[role] + (event._tag === "Deposited" ? event.amount : -event.amount) },
  handle: ({ input, state, streams }) =>
    Effect.gen(function*() {
      yield* Command.require(input.from !== input.to, "distinct-accounts", "cannot transfer to the same account")
      yield* Command.require(
        state.from >= input.amount,
        "insufficient-funds",
        () => `${input.from} holds ${state.from}, cannot send ${input.amount}`,
        { balance: state.from }
      )
      return [
        streams.from.append(Withdrawn.make({ amount: input.amount })),
        streams.to.append(Deposited.make({ amount: input.amount }))
      ]
    })
})

/** A caller's exhaustive switch over the rules: adding a rule to Transfer breaks this. */
const explain = (error: Command.Refusal<"distinct-accounts"> | Command.Refusal<"insufficient-funds">): string => {
  switch (error.rule) {
    case "distinct-accounts":
      return "pick another account"
    case "insufficient-funds":
      return "top up first"
    default: {
      const unreachable: never = error
      return unreachable
    }
  }
}

interface Ledger {
  readonly balances: Map<StreamId.StreamId, number>
}

/** The state type stated, rule names stated, a pure decision. */
const Withdraw = Command.make<Ledger, "insufficient-funds" | "positive-amount">()("Withdraw", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number }),
  events: AccountEvents,
  streams: ({ account }) => ({ account }),
  initial: { balances: new Map() },
  apply: (state, event, _role, streamId) => {
    const balances = new Map(state.balances)
    balances.set(streamId, (balances.get(streamId) ?? 0) + (event._tag === "Deposited" ? event.amount : -event.amount))
    return { balances }
  },
  decide: ({ input, state, streams, refusal }) => {
    if (input.amount <= 0) return refusal("positive-amount", `amount must be positive, got ${input.amount}`)
    const balance = state.balances.get(input.account) ?? 0
    return balance < input.amount
      ? refusal("insufficient-funds", `holds ${balance}`, { balance })
      : [streams.account.append(Withdrawn.make({ amount: input.amount }))]
  }
})

describe("command decisions", () => {
  it.effect("require refuses under its rule, with details, and nothing is written", () =>
    Effect.gen(function*() {
      const error = yield* Scenario.make(Transfer)
        .given({ "acc-1": [Deposited.make({ amount: 10 })] })
        .when({ from: "acc-1", to: "acc-2", amount: 50 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "insufficient-funds")
      assert.strictEqual(error.message, "acc-1 holds 10, cannot send 50")
      assert.deepStrictEqual(error.details, { balance: 10 })
      assert.strictEqual(explain(error), "top up first")
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("the first failing require refuses; a passing one costs nothing", () =>
    Effect.gen(function*() {
      const error = yield* Scenario.make(Transfer)
        .when({ from: "acc-1", to: "acc-1", amount: 5 })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(error.rule, "distinct-accounts")
      assert.isUndefined(error.details)
      yield* Scenario.make(Transfer)
        .given({ "acc-3": [Deposited.make({ amount: 10 })] })
        .when({ from: "acc-3", to: "acc-4", amount: 10 })
        .thenEvents({ "acc-3": [Withdrawn.make({ amount: 10 })], "acc-4": [Deposited.make({ amount: 10 })] })
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a pure decide appends what it returns, or refuses with what it returns", () =>
    Effect.gen(function*() {
      yield* Scenario.make(Withdraw)
        .given({ "acc-1": [Deposited.make({ amount: 10 })] })
        .when({ account: "acc-1", amount: 4 })
        .thenEvents({ "acc-1": [Withdrawn.make({ amount: 4 })] })
      const refused = yield* Scenario.make(Withdraw)
        .given({ "acc-2": [Deposited.make({ amount: 10 })] })
        .when({ account: "acc-2", amount: 11 })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(refused.rule, "insufficient-funds")
      assert.deepStrictEqual(refused.details, { balance: 10 })
      const nonPositive = yield* Scenario.make(Withdraw)
        .when({ account: "acc-3", amount: 0 })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(nonPositive.rule, "positive-amount")
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a refusal from execute is typed by its rules, and is a BusinessRuleViolation", () =>
    Effect.gen(function*() {
      const outcome = yield* CommandExecutor.execute(Withdraw, { account: "acc-9", amount: 1 }).pipe(
        Effect.map(() => "written"),
        Effect.catchTag("BusinessRuleViolation", (error) => {
          const rule: "insufficient-funds" | "positive-amount" = error.rule
          return Effect.succeed(rule)
        })
      )
      assert.strictEqual(outcome, "insufficient-funds")
      const refusal = Command.refusal("some-rule", "message")
      assert.strictEqual(refusal._tag, "BusinessRuleViolation")
      assert.strictEqual(refusal.rule, "some-rule")
    }).pipe(Effect.provide(TestLayers.memory())))

  it("types: stated rule names are checked, stated state needs no cast, roles are still checked", () => {
    Command.make<Ledger, "insufficient-funds">()("Typed", {
      input: Schema.Struct({ account: StreamId.StreamId }),
      events: AccountEvents,
      streams: ({ account }) => ({ account }),
      initial: { balances: new Map() },
      apply: (state) => state,
      handle: ({ refuse, state }) => {
        // the state is the stated type, not Map<any, any>
        const balance: number | undefined = state.balances.get(StreamId.makeUnsafe("acc-1"))
        // @ts-expect-error a rule the command did not state
        const other = refuse("no-such-rule", "refused")
        return balance === undefined ? Effect.andThen(other, refuse("insufficient-funds", "none")) : Effect.succeed([])
      }
    })
    Command.make("Roles", {
      input: Schema.Struct({ account: StreamId.StreamId }),
      events: AccountEvents,
      streams: ({ account }) => ({ account }),
      initial: 0,
      apply: (state) => state,
      // @ts-expect-error a role the command did not declare
      decide: ({ streams }) => [streams.elsewhere.append(Deposited.make({ amount: 1 }))]
    })
    assert.isTrue(true)
  })
})
