/**
 * The health check on the in-memory store: what each check reports, and what liveness,
 * readiness and the status mean together (ADR 17).
 */
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Deferred, type Duration, Effect, Exit, Fiber, Layer, Schema, Scope, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import {
  DeadLetterStore,
  Event,
  EventId,
  EventStore,
  EventStoreError,
  Health,
  Position,
  Projection,
  ProjectionRunner,
  StreamId
} from "eventcore"
import { MemoryDeadLetterStore, MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { ChaosStore } from "eventcore/testing"

const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
const Notes = Event.catalog(Noted)

const Live = Layer.mergeAll(MemoryProjections.layer).pipe(Layer.provideMerge(MemoryEventStore.layer))

/** Appends notes to a stream (any version); yields the last position. */
const note = (stream: string, ...texts: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const streamId = StreamId.makeUnsafe(stream)
    const events = yield* Effect.forEach(texts, (text) =>
      Effect.map(EventId.make, (eventId): EventStore.EventToAppend => ({
        streamId,
        eventId,
        type: "Noted",
        schemaVersion: 1,
        payload: { _tag: "Noted", text },
        metadata: { correlationId: "c", causationId: "c", custom: {} }
      })))
    const result = yield* EventStore.append({ streams: [{ streamId, expected: "any" }], events })
    return result.events.at(-1)?.position ?? Position.initial
  })

const named = (report: Health.Report, name: string): Health.Check => {
  const found = report.checks.find((check) => check.name === name)
  assert.isDefined(found, `no check ${name} in ${report.checks.map((c) => c.name).join(", ")}`)
  return found ?? { name, status: "unhealthy", message: "missing", millis: 0 }
}

const check = (status: Health.Status, gate?: Health.Gate): Health.Check => ({
  name: `${status}-${gate ?? "none"}`,
  status,
  message: "",
  millis: 0,
  gate
})

/** A projection whose handler fails on the note "poison". */
const picky = (name: string, onFailure = Projection.failFast) =>
  Projection.make({
    name,
    events: Notes,
    onFailure,
    handle: (event) => event.text === "poison" ? Effect.fail(new Error(`cannot take ${event.text}`)) : Effect.void
  })

describe("Health", () => {
  it("combine: the worst status wins; gates take liveness and readiness away only when unhealthy", () => {
    const at = DateTime.makeUnsafe("2026-01-01T00:00:00Z")
    assert.deepInclude(Health.combine([], at), { status: "healthy", live: true, ready: true })
    assert.deepInclude(Health.combine([check("healthy"), check("degraded", "readiness")], at), {
      status: "degraded",
      live: true,
      ready: true
    })
    assert.deepInclude(Health.combine([check("unhealthy"), check("degraded", "liveness")], at), {
      status: "unhealthy",
      live: true,
      ready: true
    })
    assert.deepInclude(Health.combine([check("healthy"), check("unhealthy", "readiness")], at), {
      status: "unhealthy",
      live: true,
      ready: false
    })
    assert.deepInclude(Health.combine([check("unhealthy", "liveness")], at), {
      status: "unhealthy",
      live: false,
      ready: false
    })
    assert.strictEqual(Health.combine([], at).checkedAt, "2026-01-01T00:00:00.000Z")
  })

  it.effect("a store that answers, a live projection, no dead letters: healthy, live and ready", () =>
    Effect.gen(function*() {
      yield* note("n-1", "a", "b")
      const runner = yield* ProjectionRunner.start(picky("notes"))
      yield* runner.awaitStatus("Live")
      const report = yield* Health.check({ projections: [runner] })
      assert.deepInclude(report, { status: "healthy", live: true, ready: true })
      assert.deepStrictEqual(report.checks.map((c) => c.name), [
        "store",
        "read-horizon",
        "projection:notes",
        "dead-letters"
      ])
      assert.strictEqual(named(report, "store").gate, "readiness")
      assert.include(named(report, "projection:notes").message, "live; caught up")
      assert.deepInclude(named(report, "dead-letters").details, { total: 0 })
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("a faulted projection: unhealthy, yet live and ready (commands are still served)", () =>
    Effect.gen(function*() {
      yield* note("n-1", "a", "poison", "c")
      const runner = yield* ProjectionRunner.start(picky("notes"))
      yield* runner.awaitStatus("Faulted")
      const report = yield* Health.check({ projections: [runner] })
      assert.deepInclude(report, { status: "unhealthy", live: true, ready: true })
      const projection = named(report, "projection:notes")
      assert.strictEqual(projection.status, "unhealthy")
      assert.include(projection.message, "faulted")
      assert.include(projection.message, "cannot take poison")
      assert.isUndefined(projection.gate)
      // The three events came in one batch, which the poison failed as a whole.
      assert.include(projection.message, "3 events behind")
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("a projection behind by more events than the threshold: degraded, live, ready; healthy once caught up", () =>
    Effect.gen(function*() {
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "slow",
        events: Notes,
        handle: () => Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(release))
      }))
      const last = yield* note("n-1", "a", "b", "c", "d", "e")
      yield* Deferred.await(entered)
      const thresholds = { lagEvents: 3 }
      const behind = yield* Health.check({ projections: [runner], thresholds })
      assert.deepInclude(behind, { status: "degraded", live: true, ready: true })
      const projection = named(behind, "projection:slow")
      assert.strictEqual(projection.status, "degraded")
      assert.include(projection.message, "5 events behind")
      assert.include(projection.message, "thresholds: 3 events")
      assert.deepInclude(projection.details?.["lag"], { events: 5, pending: 0 })

      yield* Deferred.succeed(release, undefined)
      yield* runner.awaitPosition(last)
      const after = yield* Health.check({ projections: [runner], thresholds })
      assert.strictEqual(after.status, "healthy")
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("a projection whose oldest unprocessed event is older than lagAge: degraded", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const entered = yield* Deferred.make<void>()
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "stuck",
        events: Notes,
        handle: () => Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(release))
      }))
      yield* note("n-1", "a")
      yield* Deferred.await(entered)
      assert.strictEqual((yield* Health.check({ projections: [runner] })).status, "healthy")
      yield* TestClock.adjust("2 minutes")
      const report = yield* Health.check({ projections: [runner] })
      assert.strictEqual(report.status, "degraded")
      assert.include(named(report, "projection:stuck").message, "1 event behind, the oldest 2m old")
      yield* Deferred.succeed(release, undefined)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("dead letters are counted per projection; more than the threshold degrade", () =>
    Effect.gen(function*() {
      const last = yield* note("n-1", "poison", "b", "poison")
      const runner = yield* ProjectionRunner.start(picky("skipper", Projection.skip))
      yield* runner.awaitPosition(last)
      const report = yield* Health.check({ projections: [runner] })
      assert.deepInclude(report, { status: "degraded", live: true, ready: true })
      const letters = named(report, "dead-letters")
      assert.strictEqual(letters.status, "degraded")
      assert.deepStrictEqual(letters.details, { total: 2, byProjection: { skipper: 2 } })
      assert.include(letters.message, "skipper: 2")
      const tolerated = yield* Health.check({ projections: [runner], thresholds: { deadLetters: 2 } })
      assert.strictEqual(named(tolerated, "dead-letters").status, "healthy")
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("the dead-letter check reads the store's counts, never the letters themselves", () =>
    Effect.gen(function*() {
      const report = yield* Health.check()
      const letters = named(report, "dead-letters")
      assert.strictEqual(letters.status, "degraded")
      assert.deepStrictEqual(letters.details, { total: 5, byProjection: { a: 3, b: 2 } })
    }).pipe(
      Effect.provide(MemoryEventStore.layer),
      Effect.provide(Layer.effect(
        DeadLetterStore.DeadLetterStore,
        Effect.map(MemoryDeadLetterStore.make, (store) =>
          DeadLetterStore.DeadLetterStore.of({
            ...store,
            list: () => Effect.die(new Error("a health check must not load every dead letter")),
            counts: Effect.succeed({ a: 3, b: 2 })
          }))
      ))
    ))

  it.effect("MemoryDeadLetterStore.counts: per projection; a projection without any is absent", () =>
    Effect.gen(function*() {
      yield* note("n-1", "poison", "b", "poison")
      const last = yield* note("n-2", "poison")
      const first = yield* ProjectionRunner.start(picky("first", Projection.skip))
      const second = yield* ProjectionRunner.start(picky("second", Projection.skip))
      yield* Effect.all([first.awaitPosition(last), second.awaitPosition(last)])
      assert.deepStrictEqual(yield* DeadLetterStore.counts, { first: 3, second: 3 })
      yield* DeadLetterStore.discard("second", (yield* DeadLetterStore.list("second"))[0]?.eventId ?? "")
      assert.deepStrictEqual(yield* DeadLetterStore.counts, { first: 3, second: 2 })
      yield* DeadLetterStore.DeadLetterStore.use((store) => store.clear("first"))
      assert.deepStrictEqual(yield* DeadLetterStore.counts, { second: 2 })
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.effect("without a DeadLetterStore in context there is no dead-letter check", () =>
    Effect.gen(function*() {
      const report = yield* Health.check()
      assert.deepStrictEqual(report.checks.map((c) => c.name), ["store", "read-horizon"])
    }).pipe(Effect.provide(MemoryEventStore.layer)))

  it.effect("a store that fails: unhealthy and not ready, but live (a restart would not help)", () =>
    Effect.gen(function*() {
      const report = yield* Health.check()
      assert.deepInclude(report, { status: "unhealthy", live: true, ready: false })
      const store = named(report, "store")
      assert.strictEqual(store.status, "unhealthy")
      assert.include(store.message, "failed: EventStoreError")
    }).pipe(
      Effect.provide(
        ChaosStore.layer({ operations: { head: { failure: 1 } } }).pipe(Layer.provide(MemoryEventStore.layer))
      )
    ))

  it.live("a store that never answers: unhealthy and not ready once the timeout passes", () =>
    Effect.gen(function*() {
      const report = yield* Health.check({ thresholds: { timeout: "50 millis" } })
      assert.deepInclude(report, { live: true, ready: false })
      assert.include(named(report, "store").message, "no answer within 50ms")
    }).pipe(Effect.provide(silentStore)))

  it.effect("a store slower than storeLatency: degraded, still ready", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Health.check())
      yield* TestClock.adjust("1500 millis")
      const report = yield* Fiber.join(fiber)
      assert.deepInclude(report, { status: "degraded", live: true, ready: true })
      assert.include(named(report, "store").message, "slower than 1s")
    }).pipe(Effect.provide(slowStore("1500 millis"))))

  it.effect("a runner whose lag cannot be read: degraded, saying why", () =>
    Effect.gen(function*() {
      const runner: Health.Watched = {
        name: "blind",
        status: yield* SubscriptionRef.make<ProjectionRunner.Status>({ _tag: "Live" }),
        lag: Effect.fail(new EventStoreError({ operation: "readPage", transient: true, cause: "connection lost" }))
      }
      const report = yield* Health.check({ projections: [runner] })
      assert.deepInclude(report, { status: "degraded", live: true, ready: true })
      assert.include(named(report, "projection:blind").message, "live; lag unknown: EventStoreError")
    }).pipe(Effect.provide(MemoryEventStore.layer)))

  it.effect("a lag read that never answers: the check ends after one timeout, degraded, its status known", () =>
    Effect.gen(function*() {
      const runner: Health.Watched = {
        name: "stuck",
        status: yield* SubscriptionRef.make<ProjectionRunner.Status>({ _tag: "Live" }),
        lag: Effect.never
      }
      const fiber = yield* Effect.forkChild(
        Health.check({ projections: [runner], mode: "liveness", thresholds: { timeout: "2 seconds" } })
      )
      // liveness does not read the lag: answered at once
      assert.strictEqual(named(yield* Fiber.join(fiber), "projection:stuck").status, "healthy")
      const full = yield* Effect.forkChild(
        Health.check({ projections: [runner], thresholds: { timeout: "2 seconds" } })
      )
      yield* TestClock.adjust("2 seconds")
      const report = yield* Fiber.join(full)
      const stuck = named(report, "projection:stuck")
      assert.strictEqual(stuck.status, "degraded")
      assert.strictEqual(stuck.millis, 2000)
      assert.strictEqual(stuck.message, "live; lag unknown: no answer within 2s")
    }).pipe(Effect.provide(MemoryEventStore.layer)))

  it.effect("a runner still catching up with nothing left behind says so, without contradicting itself", () =>
    Effect.gen(function*() {
      const status = yield* SubscriptionRef.make<ProjectionRunner.Status>({ _tag: "CatchingUp" })
      const behind = yield* SubscriptionRef.make(0)
      const runner: Health.Watched = {
        name: "p",
        status,
        lag: Effect.map(
          SubscriptionRef.get(behind),
          (events): ProjectionRunner.Lag => ({ events, capped: false, millis: 0, pending: 0, heldBy: undefined })
        )
      }
      const message = Effect.map(Health.check({ projections: [runner] }), (report) => named(report, "projection:p"))
      const idle = yield* message
      assert.strictEqual(idle.status, "healthy")
      assert.strictEqual(idle.message, "no event behind (status: catching up, not yet live)")
      assert.notInclude(idle.message, "caught up")
      yield* SubscriptionRef.set(behind, 3)
      assert.strictEqual((yield* message).message, "catching up; 3 events behind, the oldest 0ms old")
      yield* SubscriptionRef.set(behind, 0)
      yield* SubscriptionRef.set(status, { _tag: "Live" })
      assert.strictEqual((yield* message).message, "live; caught up")
    }).pipe(Effect.provide(MemoryEventStore.layer)))

  it.effect("a stopped runner takes liveness away: only a restart of the process brings it back", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const runner = yield* ProjectionRunner.start(picky("gone")).pipe(Scope.provide(scope))
      yield* runner.awaitStatus("Live")
      yield* Scope.close(scope, Exit.void)
      yield* runner.awaitStatus("Stopped")
      const report = yield* Health.check({ projections: [runner] })
      assert.deepInclude(report, { status: "unhealthy", live: false, ready: false })
      assert.strictEqual(named(report, "projection:gone").gate, "liveness")
    }).pipe(Effect.provide(Live)))

  it.effect("modes: liveness reads nothing from the store; readiness adds the store only", () =>
    Effect.gen(function*() {
      const runner = yield* ProjectionRunner.start(picky("notes"))
      yield* runner.awaitStatus("Live")
      const reads = Effect.map(ChaosStore.stats, (stats) => [stats.head.calls, stats.readPage.calls])
      const before = yield* reads
      const liveness = yield* Health.check({ projections: [runner], mode: "liveness" })
      assert.deepStrictEqual(yield* reads, before)
      assert.deepStrictEqual(liveness.checks.map((c) => c.name), ["projection:notes"])
      assert.deepInclude(liveness, { live: true, ready: true })
      assert.isUndefined(named(liveness, "projection:notes").details?.["lag"])
      const readiness = yield* Health.check({ projections: [runner], mode: "readiness" })
      assert.deepStrictEqual(readiness.checks.map((c) => c.name), ["store", "projection:notes"])
      assert.isUndefined(named(readiness, "projection:notes").details?.["lag"])
    }).pipe(
      Effect.scoped,
      Effect.provide(
        Layer.mergeAll(MemoryProjections.layer).pipe(
          Layer.provideMerge(ChaosStore.layer()),
          Layer.provide(MemoryEventStore.layer)
        )
      )
    ))

  it.effect("the service: check(mode) over the layer's store and runners", () =>
    Effect.gen(function*() {
      const health = yield* Health.Health
      assert.deepStrictEqual((yield* health.check("readiness")).checks.map((c) => c.name), ["store"])
      assert.deepStrictEqual((yield* health.check()).checks.map((c) => c.name), [
        "store",
        "read-horizon",
        "dead-letters"
      ])
    }).pipe(Effect.provide(Health.layer().pipe(Layer.provide(Live)))))
})

/** The memory store, with a head that never answers. */
const silentStore = Layer.effect(
  EventStore.EventStore,
  Effect.map(MemoryEventStore.make, (store) => EventStore.EventStore.of({ ...store, head: Effect.never }))
)

/** The memory store, with a head that takes `delay` (on the fiber's clock). */
const slowStore = (delay: Duration.Input) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(
      MemoryEventStore.make,
      (store) => EventStore.EventStore.of({ ...store, head: Effect.andThen(Effect.sleep(delay), store.head) })
    )
  )
