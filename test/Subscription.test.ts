import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref, Stream } from "effect"
import { CommandExecutor, EventStore, type StoredEvent, StreamId, Subscription } from "eventcore"
import { ChaosStore, Scenario, TestLayers } from "eventcore/testing"
import {
  AccountEvents,
  AccountOpened,
  Deposit,
  MoneyDeposited,
  OpenAccount,
  Transfer
} from "../examples/banking/Account.ts"

const run = <A, E>(effect: Effect.Effect<A, E, TestLayers.Services>) => effect.pipe(Effect.provide(TestLayers.memory()))

/** Forks a consumer collecting everything the stream delivers into a Ref. */
const collect = <E, R>(stream: Stream.Stream<StoredEvent.StoredEvent, E, R>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<StoredEvent.StoredEvent>>([])
    const fiber = yield* Effect.forkChild(Stream.runForEach(stream, (e) => Ref.update(seen, (all) => [...all, e])))
    return { seen, fiber }
  })

/** Lets the consumer run until it has `n` events (bounded: no clock, no sleeps), then a bit more. */
const settle = (seen: Ref.Ref<ReadonlyArray<StoredEvent.StoredEvent>>, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000 && (yield* Ref.get(seen)).length < n; i++) yield* Effect.yieldNow
    // extra turns, so a duplicate delivery would show up
    for (let i = 0; i < 20; i++) yield* Effect.yieldNow
    return yield* Ref.get(seen)
  })

const all = Stream.runCollect(EventStore.readAll())

const open = (account: string) => CommandExecutor.execute(OpenAccount, { account, owner: account })
const deposit = (account: string, amount: number) => CommandExecutor.execute(Deposit, { account, amount })

describe("Subscription.stream", () => {
  it.effect("catches up, then follows live appends, in order, exactly once", () =>
    run(Effect.gen(function*() {
      yield* open("acc-1")
      yield* deposit("acc-1", 1)
      const { fiber, seen } = yield* collect(Subscription.stream({ from: "start" }))
      const caughtUp = yield* settle(seen, 2)
      assert.strictEqual(caughtUp.length, 2)
      yield* open("acc-2")
      yield* deposit("acc-2", 2)
      yield* CommandExecutor.execute(Transfer, { from: "acc-2", to: "acc-1", amount: 2 })
      const delivered = yield* settle(seen, 6)
      yield* Fiber.interrupt(fiber)
      const expected = yield* all
      assert.strictEqual(expected.length, 6)
      assert.deepStrictEqual(delivered.map((e) => e.eventId), expected.map((e) => e.eventId))
      // strictly increasing positions: in order, no duplicates
      for (let i = 1; i < delivered.length; i++) {
        assert.isTrue((delivered[i]?.position ?? "") > (delivered[i - 1]?.position ?? ""))
      }
    })))

  it.effect("follows appends made while it waits, from many concurrent writers", () =>
    run(Effect.gen(function*() {
      const { fiber, seen } = yield* collect(Subscription.stream({ from: "start" }))
      yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => `acc-${i}`), (id) =>
        Effect.andThen(Effect.yieldNow, open(id)), { concurrency: "unbounded" })
      const delivered = yield* settle(seen, 20)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(
        delivered.map((e) =>
          e.eventId
        ),
        (yield* all).map((e) => e.eventId)
      )
    })))

  it.effect("from: \"end\" delivers only what is appended after it starts", () =>
    run(Effect.gen(function*() {
      yield* open("acc-1")
      const { fiber, seen } = yield* collect(Subscription.stream({ from: "end" }))
      yield* settle(seen, 0)
      yield* deposit("acc-1", 7)
      const delivered = yield* settle(seen, 1)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(delivered.map((e) => e.type), ["MoneyDeposited"])
    })))

  it.effect("from a position (a checkpoint) continues strictly after it", () =>
    run(Effect.gen(function*() {
      yield* open("acc-1")
      const checkpoint = (yield* deposit("acc-1", 1)).position
      assert.isDefined(checkpoint)
      if (checkpoint === undefined) return
      yield* deposit("acc-1", 2)
      const events = yield* Subscription.stream({ from: checkpoint }).pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(events.map((e) => e.payload), [{ _tag: "MoneyDeposited", amount: 2 }])
    })))

  it.effect("filters by stream ids, prefix and event types, live too", () =>
    run(Effect.gen(function*() {
      yield* Scenario.given(AccountEvents, {
        "account-1": [AccountOpened.make({ owner: "a" }), MoneyDeposited.make({ amount: 1 })],
        "account-2": [AccountOpened.make({ owner: "b" })],
        "savings-1": [AccountOpened.make({ owner: "c" }), MoneyDeposited.make({ amount: 3 })]
      })
      const byIds = yield* collect(Subscription.stream({
        from: "start",
        filter: { streamIds: [StreamId.makeUnsafe("account-2"), StreamId.makeUnsafe("savings-1")] }
      }))
      const byPrefix = yield* collect(Subscription.stream({ from: "start", filter: { streamPrefix: "account-" } }))
      const byType = yield* collect(Subscription.stream({ from: "start", filter: { eventTypes: ["MoneyDeposited"] } }))
      const combined = yield* collect(Subscription.stream({
        from: "start",
        filter: { streamPrefix: "savings-", eventTypes: ["MoneyDeposited"] }
      }))
      yield* deposit("account-2", 5)
      yield* deposit("savings-1", 6)
      yield* deposit("account-1", 7)
      const summary = (events: ReadonlyArray<StoredEvent.StoredEvent>) => events.map((e) => `${e.streamId}:${e.type}`)
      assert.deepStrictEqual(summary(yield* settle(byIds.seen, 5)), [
        "account-2:AccountOpened",
        "savings-1:AccountOpened",
        "savings-1:MoneyDeposited",
        "account-2:MoneyDeposited",
        "savings-1:MoneyDeposited"
      ])
      assert.deepStrictEqual(summary(yield* settle(byPrefix.seen, 5)), [
        "account-1:AccountOpened",
        "account-1:MoneyDeposited",
        "account-2:AccountOpened",
        "account-2:MoneyDeposited",
        "account-1:MoneyDeposited"
      ])
      assert.deepStrictEqual(summary(yield* settle(byType.seen, 5)), [
        "account-1:MoneyDeposited",
        "savings-1:MoneyDeposited",
        "account-2:MoneyDeposited",
        "savings-1:MoneyDeposited",
        "account-1:MoneyDeposited"
      ])
      assert.deepStrictEqual(summary(yield* settle(combined.seen, 2)), [
        "savings-1:MoneyDeposited",
        "savings-1:MoneyDeposited"
      ])
      for (const { fiber } of [byIds, byPrefix, byType, combined]) yield* Fiber.interrupt(fiber)
    })))

  it.effect("pages: a small page size still delivers everything once, in order", () =>
    run(Effect.gen(function*() {
      for (let i = 0; i < 7; i++) yield* open(`acc-${i}`)
      const { fiber, seen } = yield* collect(Subscription.stream({ from: "start", pageSize: 2 }))
      yield* settle(seen, 7)
      for (let i = 7; i < 12; i++) yield* open(`acc-${i}`)
      const delivered = yield* settle(seen, 12)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(delivered.map((e) => e.eventId), (yield* all).map((e) => e.eventId))
    })))

  it.effect("Subscription.events decodes with the catalog and keeps to its types", () =>
    run(Effect.gen(function*() {
      yield* open("acc-1")
      yield* deposit("acc-1", 4)
      const events = yield* Subscription.events(AccountEvents, { from: "start" }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      assert.deepStrictEqual(events.map((e) => e.event), [
        AccountOpened.make({ owner: "acc-1" }),
        MoneyDeposited.make({ amount: 4 })
      ])
    })))

  it.effect("under a chaotic store (yields, latency-free) the subscriber still sees every event once, in order", () =>
    Effect.gen(function*() {
      const { fiber, seen } = yield* collect(Subscription.stream({ from: "start", pageSize: 3 }))
      yield* Effect.forEach(
        Array.from({ length: 30 }, (_, i) => i),
        (i) => Effect.andThen(Effect.yieldNow, open(`acc-${i % 10}`).pipe(Effect.ignore)),
        { concurrency: "unbounded" }
      )
      const delivered = yield* settle(seen, 10)
      yield* Fiber.interrupt(fiber)
      const expected = yield* ChaosStore.calm(all)
      assert.strictEqual(expected.length, 10)
      assert.deepStrictEqual(delivered.map((e) => e.eventId), expected.map((e) => e.eventId))
    }).pipe(Effect.provide(TestLayers.chaos({ seed: 5, chaos: { faults: { yield: 0.6 } } }))))
})
