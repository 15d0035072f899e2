/**
 * A retry that would sleep on a TestClock nobody advances fails the test saying what to do,
 * instead of hanging until the runner's timeout; one whose clock is advanced, or that runs on
 * the live clock, is unaffected.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Layer, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { CommandExecutor } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { ChaosStore, Scenario, TestLayers } from "eventcore/testing"
import { AccountEvents, AccountOpened, Deposit } from "../examples/banking/Account.ts"

const alwaysConflicting = TestLayers.chaos({ chaos: { operations: { append: { conflict: 1 } } } })
const openAccount = ChaosStore.calm(Scenario.given(AccountEvents, { "acc-1": [AccountOpened.make({ owner: "ann" })] }))
/** The same store, on the live clock (TestLayers always bring a TestClock). */
const liveConflicting = CommandExecutor.layer().pipe(
  Layer.provideMerge(ChaosStore.layer({ operations: { append: { conflict: 1 } } })),
  Layer.provide(MemoryEventStore.layer)
)
const sleepingRetry = Schedule.max([Schedule.spaced("1 second"), Schedule.recurs(2)])

describe("retries on a TestClock", () => {
  it.effect("a per-call retry that sleeps on a clock nobody advances fails, naming the way out", () =>
    Effect.gen(function*() {
      yield* openAccount
      const exit = yield* Effect.exit(
        CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }, { retry: sleepingRetry })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (!Exit.isFailure(exit)) return
      const message = Cause.pretty(exit.cause)
      assert.include(message, "the conflict retry of command Deposit waited 1s on a TestClock that nobody advanced")
      assert.include(message, "it.live")
      assert.include(message, "excludeTestServices")
      assert.include(message, "Schedule.recurs")
      // one attempt, then the stuck wait: nothing more was tried
      assert.strictEqual((yield* ChaosStore.stats).append.calls, 1)
    }).pipe(Effect.provide(alwaysConflicting)))

  it.effect("a test that advances the clock gets its retries, and the conflict once they run out", () =>
    Effect.gen(function*() {
      yield* openAccount
      const fiber = yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }, { retry: sleepingRetry })
        .pipe(Effect.flip, Effect.forkChild)
      // advance until it is done (no Schedule here: it would run on the test clock too)
      const advance: Effect.Effect<void> = Effect.suspend(() =>
        fiber.pollUnsafe() === undefined
          ? Effect.andThen(TestClock.adjust("100 millis"), Effect.andThen(Effect.yieldNow, advance))
          : Effect.void
      )
      yield* advance
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.attempts, 3)
    }).pipe(Effect.provide(alwaysConflicting)))

  it.live("on the live clock a sleeping retry just sleeps", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }, {
        retry: Schedule.max([Schedule.spaced("5 millis"), Schedule.recurs(2)])
      }))
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.attempts, 3)
    }).pipe(Effect.provide(liveConflicting)))

  it.effect("the test layers' own retry never sleeps, so it needs no clock", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.attempts, 101)
    }).pipe(Effect.provide(alwaysConflicting)))
})
