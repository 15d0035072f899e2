/**
 * Rebuilds asked from outside a running runner (`CheckpointStore.beginRebuild` from another
 * process, e.g. the CLI's `projections rebuild`): the runner notices — idle, on its periodic
 * check; busy, on its next save — and rebuilds as its own `rebuild` does. A checkpoint reset
 * from outside does not wedge it either. A runner that has lost its lock meanwhile leaves the
 * rebuild to the runner that holds it now, and so does one whose lock is no longer held though
 * its lease is not yet known lost (`Lease.held`); the periodic check makes no spans.
 */
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Queue, Ref, Scope, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import { CheckpointStore, CommandExecutor, EventStore, Projection, ProjectionLock, ProjectionRunner } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { AccountEvents, Deposit, OpenAccount } from "../examples/banking/Account.ts"
import { recordingTracer } from "./spans.ts"

const Live = Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(
  Layer.provideMerge(MemoryEventStore.layer)
)

const seed = (accounts: number, deposits: number) =>
  Effect.gen(function*() {
    for (let a = 0; a < accounts; a++) yield* CommandExecutor.execute(OpenAccount, { account: `acc-${a}`, owner: "o" })
    for (let d = 0; d < deposits; d++) {
      yield* CommandExecutor.execute(Deposit, { account: `acc-${d % accounts}`, amount: 1 + d })
    }
  })

const head = EventStore.EventStore.use((store) => store.head)
const checkpoints = CheckpointStore.CheckpointStore

/** Counts how often each event was applied (a count above 1 is a double apply) and each reset. */
const counting = (applied: Map<string, number>, resets: Ref.Ref<number>, failing?: Ref.Ref<boolean>) =>
  Projection.make({
    name: "counting",
    events: AccountEvents,
    handle: (_event, stored) =>
      Effect.gen(function*() {
        if (failing !== undefined && (yield* Ref.get(failing))) return yield* Effect.fail(new Error("handler broke"))
        applied.set(stored.eventId, (applied.get(stored.eventId) ?? 0) + 1)
      }),
    reset: Effect.andThen(Ref.update(resets, (n) => n + 1), Effect.sync(() => applied.clear())),
    checkpoint: { everyEvents: 1 }
  })

/** Completes once `resets` has reached `n`, moving the TestClock on meanwhile (the periodic check). */
const awaitResets = (resets: Ref.Ref<number>, n: number) =>
  Effect.gen(function*() {
    while ((yield* Ref.get(resets)) < n) {
      yield* TestClock.adjust("1 second")
      yield* Effect.yieldNow
    }
  })

const appliedOnce = (applied: Map<string, number>) => [...applied.values()].every((n) => n === 1)

it.effect("an idle live runner notices a rebuild asked from outside within its check interval, and rebuilds", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(2, 6)
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets))
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 8)

      // another process (the CLI) marks the rebuild; nothing is appended, so no save tells the runner
      yield* (yield* checkpoints).beginRebuild("counting")
      yield* awaitResets(resets, 1)
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 8)
      assert.isTrue(appliedOnce(applied), "an event was applied twice")
      assert.isFalse(yield* (yield* checkpoints).rebuildPending("counting"))
      assert.strictEqual(yield* (yield* checkpoints).load("counting"), yield* head)
      assert.strictEqual((yield* runner.metrics).processed, 8) // counted again from the start
    }).pipe(Effect.provide(Live))
  ))

it.effect("a busy runner notices on its next save (CheckpointMoved), without waiting for the check", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(2, 4)
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets), { rebuildCheck: "1 hour" })
      yield* runner.awaitPosition(yield* head)
      yield* (yield* checkpoints).beginRebuild("counting")
      // the clock does not move: the save of the next batch is what tells the runner
      yield* CommandExecutor.execute(Deposit, { account: "acc-0", amount: 50 })
      while ((yield* Ref.get(resets)) < 1) yield* Effect.yieldNow
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 7)
      assert.isTrue(appliedOnce(applied))
      assert.isFalse(yield* (yield* checkpoints).rebuildPending("counting"))
    }).pipe(Effect.provide(Live))
  ))

it.effect("a checkpoint reset from outside does not wedge the runner: it goes on from the start", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 3)
      const seen = new Set<string>()
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "idempotent",
        events: AccountEvents,
        handle: (_event, stored) => Effect.sync(() => void seen.add(stored.eventId)),
        checkpoint: { everyEvents: 1 }
      }))
      yield* runner.awaitPosition(yield* head)
      yield* (yield* checkpoints).reset("idempotent")
      yield* CommandExecutor.execute(Deposit, { account: "acc-0", amount: 7 })
      const last = yield* head
      // its save fails (CheckpointMoved), it reloads (no checkpoint) and processes from the start
      while ((yield* (yield* checkpoints).load("idempotent")) !== last) yield* Effect.yieldNow
      yield* runner.awaitPosition(last)
      assert.strictEqual(seen.size, 5)
      assert.strictEqual((yield* SubscriptionRef.get(runner.status))._tag, "Live")
    }).pipe(Effect.provide(Live))
  ))

it.effect("a faulted runner is started again by a rebuild asked from outside", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const failing = yield* Ref.make(true)
      const runner = yield* ProjectionRunner.start(counting(applied, resets, failing))
      yield* runner.awaitStatus("Faulted")
      yield* Ref.set(failing, false) // the fix is deployed
      yield* (yield* checkpoints).beginRebuild("counting")
      yield* awaitResets(resets, 1)
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 3)
      assert.isTrue(appliedOnce(applied))
    }).pipe(Effect.provide(Live))
  ))

/**
 * A lock whose first lease the test takes away (`lose`); after that another process holds it:
 * the next `acquire` waits for good (the runner stays in Standby).
 */
const losableLock = Effect.gen(function*() {
  const lost = yield* Deferred.make<void>()
  let taken = false
  const service = ProjectionLock.ProjectionLock.of({
    acquire: () =>
      taken ? Effect.never : Effect.sync(() => {
        taken = true
        return { lost: Deferred.await(lost) }
      })
  })
  return { service, lose: Deferred.succeed(lost, undefined) }
})

/**
 * The memory checkpoints, whose `rebuildPending` or `beginRebuild`, once armed, waits at its
 * next call until the test releases it: each waiting call offers its release to `reached`.
 */
const gatedCheckpoints = Effect.gen(function*() {
  const inner = yield* checkpoints
  const armed = { rebuildPending: false, beginRebuild: false }
  const reached = yield* Queue.unbounded<Deferred.Deferred<void>>()
  const hold = (which: keyof typeof armed) =>
    Effect.gen(function*() {
      if (!armed[which]) return
      armed[which] = false
      const release = yield* Deferred.make<void>()
      yield* Queue.offer(reached, release)
      yield* Deferred.await(release)
    })
  const service = CheckpointStore.CheckpointStore.of({
    ...inner,
    rebuildPending: (name) => Effect.andThen(hold("rebuildPending"), inner.rebuildPending(name)),
    beginRebuild: (name) => Effect.andThen(hold("beginRebuild"), inner.beginRebuild(name))
  })
  return { service, armed, reached }
})

it.effect("a runner that lost its lock while deciding on a rebuild asked from outside does not reset", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const lock = yield* losableLock
      const gated = yield* gatedCheckpoints
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets), { rebuildCheck: "1 hour" }).pipe(
        Effect.provideService(ProjectionLock.ProjectionLock, lock.service),
        Effect.provideService(CheckpointStore.CheckpointStore, gated.service)
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      // the CLI marks a rebuild; the next save fails (CheckpointMoved) and the runner asks
      // whether a rebuild is pending ...
      yield* (yield* checkpoints).beginRebuild("counting")
      gated.armed.rebuildPending = true
      yield* CommandExecutor.execute(Deposit, { account: "acc-0", amount: 50 })
      const asking = yield* Queue.take(gated.reached)
      // ... and loses its lock before the answer: the runner holding it now does the rebuild
      yield* lock.lose
      yield* Deferred.succeed(asking, undefined)
      yield* runner.awaitStatus("Standby")
      assert.strictEqual(yield* Ref.get(resets), 0)
      assert.isTrue(yield* (yield* checkpoints).rebuildPending("counting"))
    }).pipe(Effect.provide(Live))
  ))

it.effect("a runner that lost its lock as it starts a rebuild asked from outside does not reset", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const lock = yield* losableLock
      const gated = yield* gatedCheckpoints
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets)).pipe(
        Effect.provideService(ProjectionLock.ProjectionLock, lock.service),
        Effect.provideService(CheckpointStore.CheckpointStore, gated.service)
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      yield* (yield* checkpoints).beginRebuild("counting")
      // the idle runner's check sees it and starts the rebuild; the lock is lost as it does
      gated.armed.beginRebuild = true
      const starting = yield* Effect.raceFirst(
        Queue.take(gated.reached),
        Effect.forever(Effect.andThen(TestClock.adjust("1 second"), Effect.yieldNow))
      )
      yield* lock.lose
      yield* Deferred.succeed(starting, undefined)
      yield* runner.awaitStatus("Standby")
      assert.strictEqual(yield* Ref.get(resets), 0)
      assert.strictEqual(applied.size, 3) // the read model is as it was
    }).pipe(Effect.provide(Live))
  ))

it.effect("an idle runner's checks for a rebuild asked from outside make no spans", () => {
  const { spans, tracer } = recordingTracer()
  return Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const inner = yield* checkpoints
      const checks = yield* Ref.make(0)
      // traced, as PostgreSQL's checkpoint store is
      const traced = CheckpointStore.CheckpointStore.of({
        ...inner,
        rebuildPending: (name) =>
          Effect.andThen(Ref.update(checks, (n) => n + 1), inner.rebuildPending(name)).pipe(
            Effect.withSpan("CheckpointStore.rebuildPending")
          )
      })
      const runner = yield* ProjectionRunner.start(counting(new Map(), yield* Ref.make(0))).pipe(
        Effect.provideService(CheckpointStore.CheckpointStore, traced)
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      const before = spans.length
      const from = yield* Ref.get(checks)
      while ((yield* Ref.get(checks)) < from + 3) {
        yield* TestClock.adjust("1 second")
        yield* Effect.yieldNow
      }
      assert.deepStrictEqual(spans.slice(before).map((span) => span.name), [])
    }).pipe(Effect.withTracer(tracer), Effect.provide(Live))
  )
})

it.effect("a rebuild asked of a runner that loses its lock as it resets waits for its next session; a stop ends the wait", () =>
  Effect.gen(function*() {
    yield* seed(1, 2)
    const lock = yield* losableLock
    const gated = yield* gatedCheckpoints
    const resets = yield* Ref.make(0)
    const scope = yield* Scope.make()
    const runner = yield* ProjectionRunner.start(counting(new Map(), resets)).pipe(
      Effect.provideService(ProjectionLock.ProjectionLock, lock.service),
      Effect.provideService(CheckpointStore.CheckpointStore, gated.service),
      Scope.provide(scope)
    )
    yield* runner.awaitStatus("Live")
    gated.armed.beginRebuild = true
    const rebuilding = yield* Effect.forkChild(runner.rebuild)
    const starting = yield* Queue.take(gated.reached)
    yield* lock.lose
    yield* Deferred.succeed(starting, undefined)
    yield* runner.awaitStatus("Standby") // the lock is elsewhere now: the rebuild waits for it
    assert.strictEqual(yield* Ref.get(resets), 0)
    yield* Scope.close(scope, Exit.void)
    const exit = yield* Fiber.await(rebuilding)
    assert.isTrue(Exit.hasInterrupts(exit), "the caller of rebuild was not told that the runner stopped")
  }).pipe(Effect.provide(Live)))

/**
 * A lock whose `held` the test sets, and whose lease is never signalled lost (as a PostgreSQL
 * lease is not until its heartbeat notices). Every `acquire` after the first waits for a
 * permit from the test; `acquired` counts the acquires begun.
 */
const checkableLock = Effect.gen(function*() {
  const held = yield* Ref.make(true)
  const permits = yield* Queue.unbounded<void>()
  const acquired = yield* Ref.make(0)
  const service = ProjectionLock.ProjectionLock.of({
    acquire: () =>
      Effect.gen(function*() {
        if ((yield* Ref.updateAndGet(acquired, (n) => n + 1)) > 1) yield* Queue.take(permits)
        return { lost: Effect.never, held: Ref.get(held) }
      })
  })
  return { service, held, permits, acquired }
})

/** Yields (moving the TestClock on if `tick`) until `acquired` reaches `n` or a reset happened. */
const awaitAcquiresOrReset = (acquired: Ref.Ref<number>, n: number, resets: Ref.Ref<number>, tick: boolean) =>
  Effect.gen(function*() {
    while ((yield* Ref.get(acquired)) < n && (yield* Ref.get(resets)) === 0) {
      if (tick) yield* TestClock.adjust("1 second")
      yield* Effect.yieldNow
    }
  })

it.effect("a runner whose lock is gone, though not yet known lost, leaves a rebuild asked from outside to the holder", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const lock = yield* checkableLock
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets)).pipe(
        Effect.provideService(ProjectionLock.ProjectionLock, lock.service)
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)

      // the lock connection broke; its lease does not know yet. The CLI marks a rebuild, the
      // idle runner's check finds it, and the runner confirms the lock before resetting ...
      yield* Ref.set(lock.held, false)
      yield* (yield* checkpoints).beginRebuild("counting")
      yield* awaitAcquiresOrReset(lock.acquired, 2, resets, true)
      // ... finds it gone: no reset, it waits for the lock again, the rebuild still pending
      assert.strictEqual(yield* Ref.get(resets), 0)
      assert.strictEqual(applied.size, 3)
      assert.isTrue(yield* (yield* checkpoints).rebuildPending("counting"))

      // it takes the lock while it is still not held (the check disagrees): the unfinished
      // rebuild found at the session's start is not done either
      yield* Queue.offer(lock.permits, undefined)
      yield* awaitAcquiresOrReset(lock.acquired, 3, resets, false)
      assert.strictEqual(yield* Ref.get(resets), 0)

      // and once it holds the lock, it rebuilds, once
      yield* Ref.set(lock.held, true)
      yield* Queue.offer(lock.permits, undefined)
      while ((yield* Ref.get(resets)) < 1) yield* Effect.yieldNow
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(yield* Ref.get(resets), 1)
      assert.strictEqual(applied.size, 3)
      assert.isTrue(appliedOnce(applied))
      assert.isFalse(yield* (yield* checkpoints).rebuildPending("counting"))
    }).pipe(Effect.provide(Live))
  ))

it.effect("a rebuild asked of a runner whose lock is gone, though not yet known lost, waits until it holds the lock", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(1, 2)
      const lock = yield* checkableLock
      const applied = new Map<string, number>()
      const resets = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(counting(applied, resets)).pipe(
        Effect.provideService(ProjectionLock.ProjectionLock, lock.service)
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      yield* Ref.set(lock.held, false)
      const rebuilding = yield* Effect.forkChild(runner.rebuild)
      yield* awaitAcquiresOrReset(lock.acquired, 2, resets, false)
      assert.strictEqual(yield* Ref.get(resets), 0)
      assert.isFalse(yield* (yield* checkpoints).rebuildPending("counting"), "the rebuild was begun without the lock")
      assert.isUndefined(rebuilding.pollUnsafe(), "the rebuild returned without being done")

      yield* Ref.set(lock.held, true)
      yield* Queue.offer(lock.permits, undefined)
      yield* Fiber.join(rebuilding)
      assert.strictEqual(yield* Ref.get(resets), 1)
      yield* runner.awaitPosition(yield* head)
      assert.isTrue(appliedOnce(applied))
      assert.strictEqual(applied.size, 3)
    }).pipe(Effect.provide(Live))
  ))
