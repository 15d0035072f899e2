/**
 * The part of the backend contract about applying a command exactly once: idempotency keys
 * (the same key returns the first result and writes nothing) and lost acknowledgements (a
 * transient retry after an append that committed returns that append's result).
 *
 * @internal
 */
import { assert, type Vitest } from "@effect/vitest"
import { Deferred, Effect, Random, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as Command from "../../Command.ts"
import * as CommandExecutor from "../../CommandExecutor.ts"
import { BusinessRuleViolation, EventStoreError } from "../../Errors.ts"
import * as Event from "../../Event.ts"
import * as EventStore from "../../EventStore.ts"
import * as StreamId from "../../StreamId.ts"

const Credited = Schema.TaggedStruct("Credited", { amount: Schema.Number })
const Credits = Event.catalog(Credited)

/** Credits an account; refuses when asked to, or when the balance would pass a ceiling. */
const Credit = Command.make("Credit", {
  input: Schema.Struct({
    account: StreamId.StreamId,
    amount: Schema.Number,
    ceiling: Schema.optionalKey(Schema.Number)
  }),
  events: Credits,
  streams: ({ account }) => ({ account }),
  initial: 0,
  apply: (balance, event) => balance + event.amount,
  handle: ({ input, state, streams }) =>
    input.ceiling !== undefined && state + input.amount > input.ceiling
      ? Effect.fail(new BusinessRuleViolation({ rule: "ceiling", message: `balance ${state} is near the ceiling` }))
      : input.amount === 0
      ? Effect.succeed([])
      : Effect.succeed([streams.account.append(Credited.make({ amount: input.amount }))])
})

const namespace = Effect.map(Random.nextIntBetween(0, 2 ** 30), (n) => `i${n.toString(36)}-`)

const account = (ns: string, name: string) => StreamId.makeUnsafe(`${ns}${name}`)

const versionOf = (streamId: StreamId.StreamId) => Effect.map(EventStore.readStream(streamId), (read) => read.version)

const readVersion = (store: EventStore.EventStore["Service"], streamId: StreamId.StreamId) =>
  Effect.map(store.readStreams([streamId]), (reads) => reads[0]?.version ?? 0)

const executor = (config?: CommandExecutor.Config) => Effect.provide(CommandExecutor.layer(config))

const transientRetry = Schedule.recurs(5)

/**
 * A store whose first append commits, then reports a transient failure, as when the
 * connection drops while the commit's acknowledgement is on its way. With `late`, the first
 * append fails at once and commits only when `late` is run: the request was still in flight.
 */
const losingFirstAck = (
  store: EventStore.EventStore["Service"],
  options?: { readonly late?: Deferred.Deferred<void> }
) => {
  let appends = 0
  return EventStore.EventStore.of({
    ...store,
    append: (request) =>
      Effect.suspend(() => {
        if (++appends > 1) return store.append(request)
        const lost = new EventStoreError({ operation: "append", transient: true, cause: "connection reset" })
        const late = options?.late
        if (late === undefined) return Effect.andThen(store.append(request), Effect.fail(lost))
        return Effect.andThen(
          Effect.forkDetach(Effect.andThen(Deferred.await(late), Effect.exit(store.append(request)))),
          Effect.fail(lost)
        )
      })
  })
}

/** Registers the tests on a suite's `it`. */
export const register = (it: Vitest.MethodsNonLive<EventStore.EventStore>): void => {
  it.effect("an idempotency key replays the first result: nothing is written, and the result is the same", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const first = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k1` })
      const again = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k1` })
      assert.isFalse(first.replayed)
      assert.isTrue(again.replayed)
      assert.strictEqual(again.attempts, 0)
      assert.deepStrictEqual(again.events, first.events)
      assert.deepStrictEqual(again.versions, first.versions)
      assert.strictEqual(again.position, first.position)
      assert.strictEqual(yield* versionOf(a), 1)
    }).pipe(executor()))

  it.effect("a replay wins even where running the command again would be refused", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const input = { account: a, amount: 8, ceiling: 10 }
      const first = yield* CommandExecutor.execute(Credit, input, { idempotencyKey: `${ns}k` })
      const again = yield* CommandExecutor.execute(Credit, input, { idempotencyKey: `${ns}k` })
      assert.deepStrictEqual(again.events, first.events)
      const refused = yield* CommandExecutor.execute(Credit, input, { idempotencyKey: `${ns}other` }).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "BusinessRuleViolation")
    }).pipe(executor()))

  it.effect("a key reused with another input or another command is InvalidInput, and nothing is written", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })
      const reused = yield* CommandExecutor.execute(Credit, { account: a, amount: 6 }, { idempotencyKey: `${ns}k` })
        .pipe(Effect.flip)
      assert.strictEqual(reused._tag, "InvalidInput")
      assert.strictEqual(yield* versionOf(a), 1)
      // the store refuses it too, when a request reaches it with another fingerprint
      const direct = yield* EventStore.append({
        streams: [{ streamId: a, expected: 1 }],
        events: [],
        idempotency: { key: `${ns}k`, fingerprint: "something else", notBefore: 0 }
      }).pipe(Effect.flip)
      assert.strictEqual(direct._tag, "InvalidInput")
    }).pipe(executor()))

  it.effect("a refused command records nothing under its key: the same key may succeed later", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const input = { account: a, amount: 5, ceiling: 4 }
      const refused = yield* CommandExecutor.execute(Credit, input, { idempotencyKey: `${ns}k` }).pipe(Effect.flip)
      assert.strictEqual(refused._tag, "BusinessRuleViolation")
      assert.isUndefined(yield* EventStore.EventStore.use((s) => s.readIdempotencyKey(`${ns}k`, 0)))
    }).pipe(executor()))

  it.effect("a command that decides to write nothing records its key too", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const noop = yield* CommandExecutor.execute(Credit, { account: a, amount: 0 }, { idempotencyKey: `${ns}k` })
      assert.deepStrictEqual(noop.events, [])
      const again = yield* CommandExecutor.execute(Credit, { account: a, amount: 0 }, { idempotencyKey: `${ns}k` })
      assert.isTrue(again.replayed)
      assert.deepStrictEqual(again.versions, noop.versions)
    }).pipe(executor()))

  it.effect("of concurrent executions with one key, one writes and every one returns its result", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const results = yield* Effect.forEach(
        Array.from({ length: 8 }),
        () => CommandExecutor.execute(Credit, { account: a, amount: 3 }, { idempotencyKey: `${ns}k` }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(yield* versionOf(a), 1)
      assert.strictEqual(results.filter((r) => !r.replayed).length, 1)
      for (const result of results) assert.deepStrictEqual(result.events, results[0]?.events)
    }).pipe(executor({ retry: Schedule.recurs(50) })))

  it.effect("a key is remembered for the retention, then forgotten", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      yield* TestClock.setTime(Date.UTC(2026, 0, 1))
      const first = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })
      yield* TestClock.adjust("59 minutes")
      assert.isTrue(
        (yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })).replayed
      )
      yield* TestClock.adjust("2 minutes")
      const later = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })
      assert.isFalse(later.replayed)
      assert.notDeepEqual(later.events, first.events)
      assert.strictEqual(yield* versionOf(a), 2)
    }).pipe(executor({ idempotencyRetention: "1 hour" }), Effect.provide(TestClock.layer())))

  it.effect("a lost acknowledgement: the transient retry finds the committed events and returns them", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const store = yield* EventStore.EventStore
      const result = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }).pipe(
        executor({ transientRetry }),
        Effect.provideService(EventStore.EventStore, losingFirstAck(store))
      )
      const read = yield* EventStore.readStream(a)
      assert.strictEqual(read.version, 1, "the command was applied twice")
      assert.strictEqual(result.attempts, 2)
      assert.deepStrictEqual(result.events.map((e) => e.eventId), read.events.map((e) => e.eventId))
      assert.deepStrictEqual(result.versions, [{ streamId: a, version: 1 }])
    }))

  it.effect("a request still in flight after its failure commits late: the command still applies once", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const store = yield* EventStore.EventStore
      const late = yield* Deferred.make<void>()
      // The stale request lands while the retry decides: right after the retry has read.
      let reads = 0
      const racing = EventStore.EventStore.of({
        ...losingFirstAck(store, { late }),
        readStreams: (ids) =>
          Effect.tap(store.readStreams(ids), () =>
            ++reads === 2
              ? Effect.andThen(
                Deferred.succeed(late, undefined),
                Effect.repeat(readVersion(store, a), { until: (v) => v > 0 })
              )
              : Effect.void)
      })
      const result = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }).pipe(
        executor({ transientRetry, retry: Schedule.recurs(5) }),
        Effect.provideService(EventStore.EventStore, racing)
      )
      const read = yield* EventStore.readStream(a)
      assert.strictEqual(read.version, 1, "the command was applied twice")
      assert.deepStrictEqual(result.events.map((e) => e.eventId), read.events.map((e) => e.eventId))
    }))

  it.effect("a lost acknowledgement with a key: the retry returns the first result, once", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const a = account(ns, "a")
      const store = yield* EventStore.EventStore
      const result = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })
        .pipe(
          executor({ transientRetry }),
          Effect.provideService(EventStore.EventStore, losingFirstAck(store))
        )
      assert.strictEqual(yield* versionOf(a), 1)
      const again = yield* CommandExecutor.execute(Credit, { account: a, amount: 5 }, { idempotencyKey: `${ns}k` })
        .pipe(executor())
      assert.deepStrictEqual(again.events, result.events)
    }))

  it.effect("an unsettled request is settled even when the retry would not read its streams", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const router = account(ns, "router")
      const store = yield* EventStore.EventStore
      // Discovery that changes its mind between attempts (a pure one never would unless a
      // stream the unsettled request read had changed, which would fail that request).
      let target = 0
      const Routed = Command.make("Routed", {
        input: Schema.Struct({ router: StreamId.StreamId }),
        events: Credits,
        streams: ({ router }) => ({ router }),
        initial: 0,
        apply: (n) => n,
        discover: () => [account(ns, `target-${target}`)],
        handle: ({ stream }) =>
          Effect.sync(() => [stream(account(ns, `target-${target++}`)).append(Credited.make({ amount: 1 }))])
      })
      // committed, acknowledgement lost: the retry reads target-0 to settle it
      const lost = yield* CommandExecutor.execute(Routed, { router }).pipe(
        executor({ transientRetry }),
        Effect.provideService(EventStore.EventStore, losingFirstAck(store))
      )
      assert.strictEqual(yield* versionOf(account(ns, "target-0")), 1)
      assert.strictEqual(yield* versionOf(account(ns, "target-1")), 0)
      assert.strictEqual(lost.events[0]?.streamId, account(ns, "target-0"))
      // in flight: it commits after the retry read target-0; the retry expected that version too
      target = 10
      const late = yield* Deferred.make<void>()
      let reads = 0
      const racing = EventStore.EventStore.of({
        ...losingFirstAck(store, { late }),
        readStreams: (ids) =>
          Effect.tap(store.readStreams(ids), () =>
            ++reads === 5
              ? Effect.andThen(
                Deferred.succeed(late, undefined),
                Effect.repeat(readVersion(store, account(ns, "target-10")), { until: (v) => v > 0 })
              )
              : Effect.void)
      })
      const settled = yield* CommandExecutor.execute(Routed, { router }).pipe(
        executor({ transientRetry, retry: Schedule.recurs(5) }),
        Effect.provideService(EventStore.EventStore, racing)
      )
      assert.strictEqual(yield* versionOf(account(ns, "target-10")), 1)
      assert.strictEqual(yield* versionOf(account(ns, "target-11")), 0, "the command was applied twice")
      assert.strictEqual(settled.events[0]?.streamId, account(ns, "target-10"))
    }))
}
