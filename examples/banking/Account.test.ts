import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Scenario, TestLayers } from "eventcore/testing"
import {
  AccountOpened,
  Deposit,
  MoneyDeposited,
  MoneyWithdrawn,
  OpenAccount,
  Transfer,
  TransferReceived,
  TransferSent,
  Withdraw
} from "./Account.ts"

const opened = (owner: string) => AccountOpened.make({ owner })
const deposited = (amount: number) => MoneyDeposited.make({ amount })

const run = <A, E>(effect: Effect.Effect<A, E, TestLayers.Services>) =>
  effect.pipe(Effect.provide(TestLayers.memory({ seed: "banking" })))

describe("OpenAccount", () => {
  it.effect("opens a new account", () =>
    run(
      Scenario.make(OpenAccount)
        .when({ account: "acc-1", owner: "ann" })
        .thenEvents({ "acc-1": [opened("ann")] })
    ))

  it.effect("trims the account id", () =>
    run(
      Scenario.make(OpenAccount)
        .when({ account: "  acc-1  ", owner: "ann" })
        .thenEvents({ "acc-1": [opened("ann")] })
    ))

  it.effect("refuses to open an account twice (account-already-open)", () =>
    run(Effect.gen(function*() {
      const error = yield* Scenario.make(OpenAccount)
        .given({ "acc-1": [opened("ann")] })
        .when({ account: "acc-1", owner: "bob" })
        .thenFails("BusinessRuleViolation")
      assert.strictEqual(error.rule, "account-already-open")
      assert.deepStrictEqual(error.details, { account: "acc-1" })
    })))

  it.effect("refuses an empty owner (InvalidInput at owner)", () =>
    run(
      Scenario.make(OpenAccount)
        .when({ account: "acc-1", owner: "" })
        .thenFails("InvalidInput", (e) => e.path.length === 1 && e.path[0] === "owner")
    ))
})

describe("Deposit", () => {
  it.effect("deposits into an open account", () =>
    run(Effect.gen(function*() {
      const result = yield* Scenario.make(Deposit)
        .given({ "acc-1": [opened("ann"), deposited(10)] })
        .when({ account: "acc-1", amount: 25 })
        .thenEvents({ "acc-1": [deposited(25)] })
      assert.strictEqual(result.attempts, 1)
      assert.deepStrictEqual(result.versions.map((v) => [v.streamId, v.version]), [["acc-1", 3]])
      assert.strictEqual(result.events[0]?.streamVersion, 3)
    })))

  it.effect("refuses a deposit into an account that is not open (account-not-open)", () =>
    run(
      Scenario.make(Deposit)
        .when({ account: "acc-1", amount: 25 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "account-not-open")
    ))

  it.effect("refuses a non-positive amount (InvalidInput at amount)", () =>
    run(
      Scenario.make(Deposit)
        .given({ "acc-1": [opened("ann")] })
        .when({ account: "acc-1", amount: 0 })
        .thenFails("InvalidInput", (e) => e.path[0] === "amount")
    ))

  it.effect("refuses a fractional amount", () =>
    run(
      Scenario.make(Deposit)
        .given({ "acc-1": [opened("ann")] })
        .when({ account: "acc-1", amount: 1.5 })
        .thenFails("InvalidInput", (e) => e.path[0] === "amount")
    ))
})

describe("Withdraw", () => {
  it.effect("withdraws what the account holds", () =>
    run(
      Scenario.make(Withdraw)
        .given({ "acc-1": [opened("ann"), deposited(100)] })
        .when({ account: "acc-1", amount: 100 })
        .thenEvents({ "acc-1": [MoneyWithdrawn.make({ amount: 100 })] })
    ))

  it.effect("refuses to overdraw (insufficient-funds)", () =>
    run(Effect.gen(function*() {
      const error = yield* Scenario.make(Withdraw)
        .given({ "acc-1": [opened("ann"), deposited(100), MoneyWithdrawn.make({ amount: 30 })] })
        .when({ account: "acc-1", amount: 71 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "insufficient-funds")
      assert.deepStrictEqual(error.details, { account: "acc-1", balance: 70, amount: 71 })
    })))

  it.effect("refuses a withdrawal from an account that is not open (account-not-open)", () =>
    run(
      Scenario.make(Withdraw)
        .when({ account: "acc-1", amount: 1 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "account-not-open")
    ))
})

describe("Transfer", () => {
  const both = {
    "acc-1": [opened("ann"), deposited(100)],
    "acc-2": [opened("bob")]
  }

  it.effect("moves money between two accounts atomically", () =>
    run(Effect.gen(function*() {
      const result = yield* Scenario.make(Transfer)
        .given(both)
        .when({ from: "acc-1", to: "acc-2", amount: 40 })
        .thenEvents({
          "acc-1": [TransferSent.make({ to: "acc-2", amount: 40 })],
          "acc-2": [TransferReceived.make({ from: "acc-1", amount: 40 })]
        })
      assert.strictEqual(result.events.length, 2)
      // both events of one command share one commit
      const [first, second] = result.events
      assert.isDefined(first)
      assert.isDefined(second)
      assert.isTrue(first.position < second.position)
    })))

  it.effect("can transfer the whole balance", () =>
    run(
      Scenario.make(Transfer)
        .given(both)
        .given({ "acc-2": [deposited(5)] })
        .when({ from: "acc-1", to: "acc-2", amount: 100 })
        .thenEvents({
          "acc-1": [TransferSent.make({ to: "acc-2", amount: 100 })],
          "acc-2": [TransferReceived.make({ from: "acc-1", amount: 100 })]
        })
    ))

  it.effect("refuses to overdraw the source (insufficient-funds)", () =>
    run(
      Scenario.make(Transfer)
        .given(both)
        .when({ from: "acc-1", to: "acc-2", amount: 101 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "insufficient-funds")
    ))

  it.effect("refuses a transfer from an account that is not open (account-not-open)", () =>
    run(
      Scenario.make(Transfer)
        .given({ "acc-2": [opened("bob")] })
        .when({ from: "acc-1", to: "acc-2", amount: 1 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "account-not-open" && e.details?.["account"] === "acc-1")
    ))

  it.effect("refuses a transfer to an account that is not open (account-not-open)", () =>
    run(
      Scenario.make(Transfer)
        .given({ "acc-1": [opened("ann"), deposited(100)] })
        .when({ from: "acc-1", to: "acc-2", amount: 1 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "account-not-open" && e.details?.["account"] === "acc-2")
    ))

  it.effect("refuses a transfer to the same account (same-account)", () =>
    run(
      Scenario.make(Transfer)
        .given(both)
        .when({ from: "acc-1", to: "acc-1", amount: 1 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "same-account")
    ))

  it.effect("refuses a transfer to the same account written differently (ids are trimmed)", () =>
    run(
      Scenario.make(Transfer)
        .given(both)
        .when({ from: "acc-1", to: " acc-1 ", amount: 1 })
        .thenFails("BusinessRuleViolation", (e) => e.rule === "same-account")
    ))

  it.effect("refuses a malformed source account id (InvalidInput at from)", () =>
    run(
      Scenario.make(Transfer)
        .given(both)
        .when({ from: "", to: "acc-2", amount: 1 })
        .thenFails("InvalidInput", (e) => e.path[0] === "from")
    ))
})

describe("Scenario itself", () => {
  it.effect("fails when the expected events differ", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        Scenario.make(Deposit)
          .given({ "acc-1": [opened("ann")] })
          .when({ account: "acc-1", amount: 25 })
          .thenEvents({ "acc-1": [deposited(26)] })
      )
      assert.strictEqual(error._tag, "ScenarioFailed")
    })))

  it.effect("fails when a stream was written that was not expected", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        Scenario.make(Transfer)
          .given({ "acc-1": [opened("ann"), deposited(100)], "acc-2": [opened("bob")] })
          .when({ from: "acc-1", to: "acc-2", amount: 1 })
          .thenEvents({ "acc-1": [TransferSent.make({ to: "acc-2", amount: 1 })] })
      )
      assert.strictEqual(error._tag, "ScenarioFailed")
      assert.include(error.message, "acc-2")
    })))

  it.effect("fails when the command fails with another error than expected", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        Scenario.make(Deposit)
          .when({ account: "acc-1", amount: 25 })
          .thenFails("InvalidInput")
      )
      assert.strictEqual(error._tag, "ScenarioFailed")
      assert.include(error.message, "BusinessRuleViolation")
    })))

  it.effect("fails when the command succeeds but a failure was expected", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        Scenario.make(OpenAccount)
          .when({ account: "acc-1", owner: "ann" })
          .thenFails("BusinessRuleViolation")
      )
      assert.strictEqual(error._tag, "ScenarioFailed")
    })))
})
