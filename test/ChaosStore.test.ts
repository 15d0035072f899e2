import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CommandExecutor, EventStore, EventStoreError, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { ChaosStore, Scenario, TestLayers } from "eventcore/testing"
import { AccountEvents, AccountOpened, Deposit } from "../examples/banking/Account.ts"

const openAccount = ChaosStore.calm(Scenario.given(AccountEvents, { "acc-1": [AccountOpened.make({ owner: "ann" })] }))

const deposits = (n: number) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i + 1),
    (amount) => Effect.result(CommandExecutor.execute(Deposit, { account: "acc-1", amount }))
  )

describe("ChaosStore", () => {
  it.effect("injected failures surface as typed EventStoreErrors and write nothing", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      assert.instanceOf(error, EventStoreError)
      if (!(error instanceof EventStoreError)) return
      assert.strictEqual(error.operation, "append")
      assert.isFalse(error.transient)
      assert.include(error.message, "chaos")
      const stats = yield* ChaosStore.stats
      assert.strictEqual(stats.append.failures, 1)
      assert.strictEqual(stats.append.calls, 1)
      assert.strictEqual((yield* ChaosStore.calm(EventStore.readStream(StreamId.makeUnsafe("acc-1")))).version, 1)
    }).pipe(Effect.provide(TestLayers.chaos({ chaos: { operations: { append: { failure: 1 } } } }))))

  it.effect("failures of reads surface too", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      assert.instanceOf(error, EventStoreError)
      if (error instanceof EventStoreError) assert.strictEqual(error.operation, "readStreams")
    }).pipe(Effect.provide(TestLayers.chaos({ chaos: { operations: { readStreams: { failure: 1 } } } }))))

  it.effect("injected conflicts are retried until the command succeeds", () =>
    Effect.gen(function*() {
      yield* openAccount
      const results = yield* deposits(40)
      const attempts = results.map((r) => {
        assert.strictEqual(r._tag, "Success")
        return r._tag === "Success" ? r.success.attempts : 0
      })
      const stats = yield* ChaosStore.stats
      assert.isAbove(stats.append.conflicts, 0)
      assert.isTrue(attempts.some((a) => a > 1), "some deposits took more than one attempt")
      // every injected conflict cost exactly one extra attempt
      assert.strictEqual(attempts.reduce((a, b) => a + b, 0), 40 + stats.append.conflicts)
      const balance = (yield* Stream.runCollect(EventStore.readAll({ filter: { eventTypes: ["MoneyDeposited"] } })))
        .reduce((sum, e) => sum + (e.payload as { amount: number }).amount, 0)
      assert.strictEqual(balance, (40 * 41) / 2)
    }).pipe(
      Effect.provide(TestLayers.chaos({ seed: "conflicts", chaos: { operations: { append: { conflict: 0.5 } } } }))
    ))

  it.effect("injected conflicts surface as ConcurrencyConflict once retries run out", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      assert.strictEqual((yield* ChaosStore.stats).append.conflicts, 3)
      if (error._tag !== "ConcurrencyConflict") return
      // the error says who gave up, after how many attempts, and what to tune
      assert.strictEqual(error.command, "Deposit")
      assert.strictEqual(error.attempts, 3)
      assert.match(error.message, /^Command Deposit gave up after 3 attempts: stream "acc-1" expected version 1/)
      assert.include(error.message, "CommandExecutor.layer({ retry })")
      assert.include(error.message, "execute(command, input, { retry })")
    }).pipe(Effect.provide(
      TestLayers.chaos({ retry: Schedule.recurs(2), chaos: { operations: { append: { conflict: 1 } } } })
    )))

  it.effect("a per-execution retry overrides the executor's", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(
        CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }, { retry: Schedule.recurs(1) })
      )
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      assert.strictEqual((yield* ChaosStore.stats).append.calls, 2)
      if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.attempts, 2)
    }).pipe(Effect.provide(TestLayers.chaos({ chaos: { operations: { append: { conflict: 1 } } } }))))

  it.effect("transient failures are not retried by default", () =>
    Effect.gen(function*() {
      yield* openAccount
      const results = yield* deposits(20)
      const failures = results.flatMap((r) => r._tag === "Failure" ? [r.failure] : [])
      assert.isAbove(failures.length, 0)
      for (const f of failures) {
        assert.instanceOf(f, EventStoreError)
        if (f instanceof EventStoreError) assert.isTrue(f.transient)
      }
      assert.strictEqual(failures.length, (yield* ChaosStore.stats).append.transientFailures)
    }).pipe(
      Effect.provide(TestLayers.chaos({ seed: "transient", chaos: { operations: { append: { transient: 0.4 } } } }))
    ))

  it.effect("transient failures are retried when the executor's transientRetry is set", () =>
    Effect.gen(function*() {
      yield* openAccount
      const results = yield* deposits(20)
      for (const r of results) assert.strictEqual(r._tag, "Success")
      const stats = yield* ChaosStore.stats
      assert.isAbove(stats.append.transientFailures, 0)
      assert.strictEqual(stats.append.calls, 20 + stats.append.transientFailures)
    }).pipe(Effect.provide(TestLayers.chaos({
      seed: "transient",
      transientRetry: Schedule.recurs(50),
      chaos: { operations: { append: { transient: 0.4 } } }
    }))))

  it.effect("non-transient failures are not retried even with transientRetry", () =>
    Effect.gen(function*() {
      yield* openAccount
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      assert.instanceOf(error, EventStoreError)
      assert.strictEqual((yield* ChaosStore.stats).append.calls, 1)
    }).pipe(Effect.provide(TestLayers.chaos({
      transientRetry: Schedule.recurs(50),
      chaos: { operations: { append: { failure: 1 } } }
    }))))

  it.effect("latency waits on the clock: the command completes only when the TestClock moves", () =>
    Effect.gen(function*() {
      yield* openAccount
      const fiber = yield* Effect.forkChild(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 }))
      yield* Effect.yieldNow
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result.attempts, 1)
      assert.isAbove((yield* ChaosStore.stats).readStreams.latencies, 0)
    }).pipe(Effect.provide(TestLayers.chaos({ chaos: { faults: { latency: 1 }, latency: "100 millis" } }))))

  it.effect("the same seed injects the same faults", () =>
    Effect.gen(function*() {
      const once = (seed: string) =>
        Effect.gen(function*() {
          yield* openAccount
          const results = yield* deposits(30)
          return { outcomes: results.map((r) => r._tag), stats: yield* ChaosStore.stats }
        }).pipe(Effect.provide(TestLayers.chaos({
          seed,
          chaos: { faults: { yield: 0.5, transient: 0.2 }, operations: { append: { conflict: 0.3 } } }
        })))
      const a = yield* once("same")
      const b = yield* once("same")
      const c = yield* once("other")
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a, c)
    }))

  it.effect("calm runs straight through", () =>
    Effect.gen(function*() {
      yield* ChaosStore.calm(deposits(3))
      assert.strictEqual(ChaosStore.total(yield* ChaosStore.stats, "calls"), 0)
    }).pipe(Effect.provide(TestLayers.chaos({ chaos: { faults: { failure: 1 } } }))))

  it.effect("wraps any store layer", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(EventStore.EventStore.use((store) => store.head))
      assert.strictEqual(error.operation, "head")
      yield* ChaosStore.reset
      assert.strictEqual((yield* ChaosStore.stats).head.calls, 0)
    }).pipe(Effect.provide(ChaosStore.layer({ faults: { failure: 1 } }).pipe(Layer.provide(MemoryEventStore.layer)))))

  it("rejects probabilities outside 0..1", () => {
    assert.throws(() => ChaosStore.make(Effect.runSync(MemoryEventStore.make), { faults: { failure: 2 } }))
  })
})
