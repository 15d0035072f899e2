import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Layer, Queue, Ref, Schedule, Scope, Stream, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import {
  CheckpointStore,
  CommandExecutor,
  DeadLetterStore,
  EventId,
  EventStore,
  EventStoreError,
  Projection,
  ProjectionLock,
  ProjectionRunner,
  type StoredEvent,
  StreamId
} from "eventcore"
import { MemoryCheckpointStore, MemoryDeadLetterStore, MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { AccountEvents, Deposit, OpenAccount, Transfer } from "../../examples/banking/Account.ts"
import * as Balances from "../../examples/banking/Balances.ts"

const layer = () =>
  Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(Layer.provideMerge(MemoryEventStore.layer))
const run = <A, E>(
  effect: Effect.Effect<
    A,
    E,
    | EventStore.EventStore
    | CommandExecutor.CommandExecutor
    | CheckpointStore.CheckpointStore
    | DeadLetterStore.DeadLetterStore
    | ProjectionLock.ProjectionLock
    | Scope.Scope
  >
) => Effect.scoped(effect).pipe(Effect.provide(layer()))

const open = (account: string) => CommandExecutor.execute(OpenAccount, { account, owner: account })
const deposit = (account: string, amount: number) => CommandExecutor.execute(Deposit, { account, amount })

/** Some history: 3 accounts, deposits, transfers. */
const history = Effect.gen(function*() {
  for (const a of ["acc-1", "acc-2", "acc-3"]) yield* open(a)
  for (let i = 1; i <= 10; i++) yield* deposit(`acc-${(i % 3) + 1}`, i * 10)
  yield* CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 5 })
})

const head = EventStore.EventStore.use((store) => store.head)

/** A scope closed when the test's scope closes, whether the test passes or not. */
const childScope = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
  return scope
})

/** The memory store, with `readPage` failing with the given errors first (one per call). */
const failingReads = (errors: Array<EventStoreError>) =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(MemoryEventStore.make, (store) =>
      EventStore.EventStore.of({
        ...store,
        readPage: (request) =>
          Effect.suspend(() => {
            const error = errors.shift()
            return error === undefined ? store.readPage(request) : Effect.fail(error)
          })
      }))
  )

/** Checkpoints that report each save (advance) on a queue, so tests can wait for one. */
const reportingCheckpoints = (saves: Queue.Queue<string>) =>
  Layer.effect(
    CheckpointStore.CheckpointStore,
    Effect.map(MemoryCheckpointStore.make, (store) =>
      CheckpointStore.CheckpointStore.of({
        ...store,
        advance: (name, from, to) => Effect.andThen(store.advance(name, from, to), Queue.offer(saves, to))
      }))
  )

/** The balances a full replay computes. */
const replay = Effect.map(
  Stream.runCollect(EventStore.readAll({ filter: { eventTypes: AccountEvents.types } })),
  (events) => {
    let model: Balances.Balances = { ...Balances.empty, balances: new Map<string, number>() }
    for (const stored of events) {
      const decoded = AccountEvents.decode(stored)
      if (decoded._tag === "Success") model = Balances.apply(model, stored.streamId, decoded.success, stored.position)
    }
    return model.balances
  }
)

const BalancesFold = Projection.fold({
  name: "balances",
  events: AccountEvents,
  initial: new Map<string, number>() as ReadonlyMap<string, number>,
  apply: (balances, event, stored) => {
    const model = Balances.apply(
      { balances: new Map(balances), position: stored.position },
      stored.streamId,
      event,
      stored.position
    )
    return model.balances
  }
})

/** A durable projection writing into a Map, idempotently (keyed by event id). */
const tableProjection = (
  table: Map<string, { readonly stream: string; readonly type: string }>,
  options?: {
    readonly name?: string
    readonly onFailure?: Projection.FailurePolicy
    readonly poison?: (stored: StoredEvent.StoredEvent) => boolean
    readonly everyEvents?: number
  }
) =>
  Projection.make({
    name: options?.name ?? "table",
    events: AccountEvents,
    handle: (_event, stored) =>
      options?.poison?.(stored) === true
        ? Effect.fail(new Error(`poison at ${stored.streamId}@${stored.streamVersion}`))
        : Effect.sync(() => void table.set(stored.eventId, { stream: stored.streamId, type: stored.type })),
    reset: Effect.sync(() => table.clear()),
    onFailure: options?.onFailure,
    checkpoint: { everyEvents: options?.everyEvents ?? 1_000 }
  })

/** Memory services whose checkpoint saves are reported on `saves`. */
const reportingLayer = (saves: Queue.Queue<string>) =>
  Layer.mergeAll(
    CommandExecutor.layer(),
    MemoryDeadLetterStore.layer,
    ProjectionLock.layerMemory,
    reportingCheckpoints(saves)
  ).pipe(Layer.provideMerge(MemoryEventStore.layer))
const transient = () => new EventStoreError({ operation: "readPage", transient: true, cause: "connection lost" })

describe("ProjectionRunner", () => {
  it.effect("a fold catches up, goes live, and equals a full replay; status CatchingUp -> Live", () =>
    run(Effect.gen(function*() {
      yield* history
      const runner = yield* ProjectionRunner.start(BalancesFold)
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      yield* SubscriptionRef.changes(runner.status).pipe(
        Stream.runForEach((s) => Ref.update(seen, (all) => [...all, s._tag])),
        Effect.forkScoped
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.deepStrictEqual(yield* SubscriptionRef.get(runner.state), yield* replay)
      // live: new commits arrive
      yield* deposit("acc-3", 1_000)
      yield* runner.awaitPosition(yield* head)
      assert.deepStrictEqual(yield* SubscriptionRef.get(runner.state), yield* replay)
      const tags = yield* Ref.get(seen)
      assert.isTrue(tags.includes("Live"))
      assert.isTrue(!tags.includes("Faulted"))
      const metrics = yield* runner.metrics
      assert.strictEqual(metrics.processed, 16)
      assert.deepStrictEqual(yield* runner.lag, { events: 0, capped: false, millis: 0, pending: 0, heldBy: undefined })
    })))

  it.effect("reports lag while behind, and status CatchingUp before Live", () =>
    run(Effect.gen(function*() {
      yield* history
      const gate = yield* Deferred.make<void>()
      const table = new Map<string, unknown>()
      const slow = Projection.make({
        name: "slow",
        events: AccountEvents,
        handle: (_e, stored) =>
          Effect.andThen(Deferred.await(gate), Effect.sync(() => void table.set(stored.eventId, 1)))
      })
      const runner = yield* ProjectionRunner.start(slow, { pageSize: 4 })
      const catching = yield* runner.awaitStatus("CatchingUp")
      assert.strictEqual(catching._tag, "CatchingUp")
      const lag = yield* runner.lag
      assert.strictEqual(lag.events, 15)
      assert.isFalse(lag.capped)
      yield* Deferred.succeed(gate, undefined)
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual((yield* runner.lag).events, 0)
      assert.strictEqual(table.size, 15)
    })))

  it.effect("saves its checkpoint; a restarted runner resumes after it (at-least-once, idempotent)", () =>
    Effect.gen(function*() {
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      const handled = yield* Ref.make(0)
      const counting = Projection.make({
        name: "counting",
        events: AccountEvents,
        handle: (_e, stored) =>
          Effect.andThen(
            Ref.update(handled, (n) => n + 1),
            Effect.sync(() => void table.set(stored.eventId, { stream: stored.streamId, type: stored.type }))
          ),
        checkpoint: { everyEvents: 5 }
      })
      yield* history
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(counting)
        yield* runner.awaitStatus("Live")
        yield* runner.awaitPosition(yield* head)
      }))
      // stopped: the shutdown save recorded the head
      assert.strictEqual(yield* CheckpointStore.load("counting"), yield* head)
      yield* deposit("acc-1", 1)
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(counting)
        yield* runner.awaitPosition(yield* head)
        assert.strictEqual((yield* runner.metrics).processed, 1)
      }))
      assert.strictEqual(yield* Ref.get(handled), 16)
      assert.strictEqual(table.size, 16)
    }).pipe(Effect.provide(layer())))

  it.effect("skip: a poison event goes to the dead-letter store with its error; the projection goes on", () =>
    run(Effect.gen(function*() {
      yield* history
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      const runner = yield* ProjectionRunner.start(
        tableProjection(table, {
          onFailure: Projection.skip,
          poison: (e) => e.streamId === "acc-2" && e.streamVersion === 2
        })
      )
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(table.size, 14)
      const letters = yield* DeadLetterStore.list("table")
      assert.strictEqual(letters.length, 1)
      assert.strictEqual(letters[0]?.streamId, "acc-2")
      assert.strictEqual(letters[0]?.streamVersion, 2)
      assert.include(letters[0]?.error ?? "", "poison at acc-2@2")
      assert.strictEqual((yield* runner.metrics).skipped, 1)
      assert.strictEqual((yield* SubscriptionRef.get(runner.status))._tag, "Live")
    })))

  it.effect("fail: the runner stops as Faulted with the error and the event visible", () =>
    run(Effect.gen(function*() {
      yield* history
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      const runner = yield* ProjectionRunner.start(
        tableProjection(table, { poison: (e) => e.streamId === "acc-2" && e.streamVersion === 2, everyEvents: 1 })
      )
      const faulted = yield* runner.awaitStatus("Faulted")
      assert.include(faulted.message, "poison at acc-2@2")
      assert.strictEqual(faulted.event?.streamId, "acc-2")
      assert.strictEqual(faulted.event?.streamVersion, 2)
      assert.instanceOf(faulted.error, Error)
      // the checkpoint stops before the poison event
      const checkpoint = yield* CheckpointStore.load("table")
      assert.isTrue(checkpoint !== undefined && checkpoint < (faulted.event?.position ?? ""))
      assert.lengthOf(yield* DeadLetterStore.list("table"), 0)
    })))

  it.effect("retry: retries under the schedule, then succeeds", () =>
    run(Effect.gen(function*() {
      yield* history
      let failuresLeft = 2
      const table = new Map<string, unknown>()
      const flaky = Projection.make({
        name: "flaky",
        events: AccountEvents,
        handle: (_e, stored) =>
          Effect.suspend(() =>
            stored.streamId === "acc-3" && stored.streamVersion === 1 && failuresLeft-- > 0
              ? Effect.fail(new Error("transient"))
              : Effect.sync(() => void table.set(stored.eventId, 1))
          ),
        onFailure: Projection.retry(Schedule.recurs(3))
      })
      const runner = yield* ProjectionRunner.start(flaky)
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(table.size, 15)
      assert.strictEqual((yield* runner.metrics).retries, 2)
    })))

  it.effect("retry: gives up after the schedule and faults (or skips with exhausted: skip)", () =>
    run(Effect.gen(function*() {
      yield* history
      const attempts = yield* Ref.make(0)
      const broken = (name: string, exhausted: "fail" | "skip") =>
        Projection.make({
          name,
          events: AccountEvents,
          handle: (_e, stored) =>
            stored.streamId === "acc-3" && stored.streamVersion === 1
              ? Effect.andThen(Ref.update(attempts, (n) => n + 1), Effect.fail(new Error("still broken")))
              : Effect.void,
          onFailure: Projection.retry(Schedule.recurs(2), { exhausted })
        })
      const failing = yield* ProjectionRunner.start(broken("broken-fail", "fail"))
      const faulted = yield* failing.awaitStatus("Faulted")
      assert.include(faulted.message, "still broken")
      assert.strictEqual(yield* Ref.get(attempts), 3)
      const skipping = yield* ProjectionRunner.start(broken("broken-skip", "skip"))
      yield* skipping.awaitStatus("Live")
      const letters = yield* DeadLetterStore.list("broken-skip")
      assert.strictEqual(letters.length, 1)
      assert.strictEqual(letters[0]?.attempts, 3)
    })))

  it.effect("a decode error follows the policy (skip -> dead letter)", () =>
    run(Effect.gen(function*() {
      yield* open("acc-1")
      yield* deposit("acc-1", 7)
      // an event of a known type with a payload the schema rejects
      const store = yield* EventStore.EventStore
      const acc1 = StreamId.makeUnsafe("acc-1")
      const [read] = yield* store.readStreams([acc1])
      const eventId = yield* EventId.make
      yield* store.append({
        streams: [{ streamId: acc1, expected: read?.version ?? 0 }],
        events: [{
          streamId: acc1,
          eventId,
          type: "MoneyDeposited",
          schemaVersion: 1,
          payload: { _tag: "MoneyDeposited", amount: -5 },
          metadata: { correlationId: "c", causationId: "c", custom: {} }
        }]
      })
      const runner = yield* ProjectionRunner.start(Projection.fold({
        name: "decode",
        events: AccountEvents,
        initial: 0,
        apply: (n) => n + 1,
        onFailure: Projection.skip
      }))
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(yield* SubscriptionRef.get(runner.state), 2)
      const letters = yield* DeadLetterStore.list("decode")
      assert.strictEqual(letters.length, 1)
      assert.include(letters[0]?.error ?? "", "Cannot decode")
      assert.strictEqual(letters[0]?.streamVersion, 3)
    })))

  it.effect("rebuild resets the checkpoint, clears the read model and replays to the same result", () =>
    run(Effect.gen(function*() {
      yield* history
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      const runner = yield* ProjectionRunner.start(tableProjection(table))
      yield* runner.awaitPosition(yield* head)
      const first = new Map(table)
      // corrupt the read model, then rebuild
      table.set("garbage", { stream: "x", type: "y" })
      yield* runner.rebuild
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.deepStrictEqual(table, first)
      assert.strictEqual((yield* runner.metrics).processed, 15)
    })))

  it.effect("two runners with one name: only one processes; the other takes over when it stops", () =>
    run(Effect.gen(function*() {
      yield* history
      const byRunner = { a: 0, b: 0 }
      const counted = (who: "a" | "b") =>
        Projection.make({
          name: "shared",
          events: AccountEvents,
          handle: () => Effect.sync(() => void byRunner[who]++),
          checkpoint: { everyEvents: 1 }
        })
      const scopeA = yield* childScope
      const a = yield* ProjectionRunner.start(counted("a")).pipe(Scope.provide(scopeA))
      yield* a.awaitPosition(yield* head)
      const b = yield* ProjectionRunner.start(counted("b"))
      yield* deposit("acc-1", 1)
      yield* a.awaitPosition(yield* head)
      assert.strictEqual((yield* SubscriptionRef.get(b.status))._tag, "Standby")
      assert.deepStrictEqual(byRunner, { a: 16, b: 0 })
      // the waiting runner reports the projection's lag (from the checkpoint), not its own
      assert.deepStrictEqual(yield* b.lag, yield* a.lag)
      assert.strictEqual((yield* b.lag).events, 0)
      // stop a: b takes over from a's checkpoint
      yield* Scope.close(scopeA, Exit.void)
      yield* b.awaitStatus("Live")
      yield* deposit("acc-1", 2)
      yield* b.awaitPosition(yield* head)
      assert.deepStrictEqual(byRunner, { a: 16, b: 1 })
      assert.strictEqual((yield* SubscriptionRef.get(a.status))._tag, "Stopped")
    })))

  it.effect("stopping: the last checkpoint is saved before the lock is released", () => {
    // The lock records the checkpoint at the moment it is released: the next holder loads it.
    let atRelease: string | undefined = "not released"
    const RecordingLock = Layer.effect(
      ProjectionLock.ProjectionLock,
      Effect.gen(function*() {
        const inner = yield* ProjectionLock.makeMemory
        const checkpoints = yield* CheckpointStore.CheckpointStore
        return ProjectionLock.ProjectionLock.of({
          acquire: (name) =>
            Effect.tap(inner.acquire(name), () =>
              Effect.addFinalizer(() =>
                checkpoints.load(name).pipe(
                  Effect.map((checkpoint) => {
                    atRelease = checkpoint
                  }),
                  Effect.orDie
                )
              ))
        })
      })
    )
    const services = Layer.mergeAll(CommandExecutor.layer(), MemoryDeadLetterStore.layer, RecordingLock).pipe(
      Layer.provideMerge(Layer.mergeAll(MemoryEventStore.layer, MemoryCheckpointStore.layer))
    )
    return Effect.gen(function*() {
      yield* history
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(tableProjection(table))
        yield* runner.awaitStatus("Live")
        // one live event: too few for a save under the policy, so only the shutdown save records it
        yield* deposit("acc-1", 1)
        yield* runner.awaitPosition(yield* head)
      }))
      assert.strictEqual(atRelease, yield* head)
    }).pipe(Effect.provide(services))
  })

  it.effect("restart resumes a faulted runner once the cause is fixed", () =>
    run(Effect.gen(function*() {
      yield* history
      let broken = true
      const table = new Map<string, unknown>()
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "fixable",
        events: AccountEvents,
        handle: (_e, stored) =>
          broken && stored.streamVersion === 3
            ? Effect.fail(new Error("bug"))
            : Effect.sync(() => void table.set(stored.eventId, 1))
      }))
      yield* runner.awaitStatus("Faulted")
      broken = false
      yield* runner.restart
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(table.size, 15)
    })))

  it.effect("restart on a running runner has no effect: nothing is processed again", () =>
    run(Effect.gen(function*() {
      yield* history
      const handled = yield* Ref.make(0)
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "healthy",
        events: AccountEvents,
        handle: () => Ref.update(handled, (n) => n + 1)
      }))
      yield* runner.awaitStatus("Live")
      // one live event: too few for a save, so restarting from the checkpoint would repeat it
      yield* deposit("acc-1", 1)
      yield* runner.awaitPosition(yield* head)
      yield* runner.restart
      yield* deposit("acc-1", 2)
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(yield* Ref.get(handled), 17)
      assert.strictEqual((yield* SubscriptionRef.get(runner.status))._tag, "Live")
    })))

  it.effect("a rebuild asked while the runner faults is not lost", () =>
    run(Effect.gen(function*() {
      yield* history
      let broken = true
      const table = new Map<string, unknown>()
      let runner: ProjectionRunner.Runner<void> | undefined
      const rebuilt = yield* Deferred.make<void, unknown>()
      runner = yield* ProjectionRunner.start(Projection.make({
        name: "racing",
        events: AccountEvents,
        handle: (_e, stored) =>
          Effect.gen(function*() {
            if (broken && stored.streamVersion === 3 && runner !== undefined) {
              broken = false
              // the request lands as processing fails: both wake the runner at once
              yield* Effect.forkDetach(
                Effect.exit(runner.rebuild).pipe(Effect.flatMap((exit) => Deferred.done(rebuilt, exit))),
                {
                  startImmediately: true
                }
              )
              yield* Effect.yieldNow
              return yield* Effect.fail(new Error("bug"))
            }
            table.set(stored.eventId, 1)
          })
      }))
      yield* Deferred.await(rebuilt)
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(table.size, 15)
    })))

  it.effect("an idle runner saves its last position on the time interval", () => {
    return Effect.gen(function*() {
      const saves = yield* Queue.unbounded<string>()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* history
        const table = new Map<string, { readonly stream: string; readonly type: string }>()
        const runner = yield* ProjectionRunner.start(Projection.make({
          name: "idle",
          events: AccountEvents,
          handle: (_e, stored) => Effect.sync(() => void table.set(stored.eventId, { stream: "", type: "" })),
          checkpoint: { everyEvents: 1_000, every: Duration.seconds(1) }
        }))
        yield* runner.awaitStatus("Live")
        assert.strictEqual(yield* Queue.take(saves), yield* head) // on going live
        yield* deposit("acc-1", 1)
        yield* runner.awaitPosition(yield* head)
        assert.strictEqual(yield* CheckpointStore.load("idle"), (yield* runner.metrics).checkpoint)
        assert.notStrictEqual(yield* CheckpointStore.load("idle"), yield* head)
        // nothing else happens; time passes
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual(yield* Queue.take(saves), yield* head)
        assert.strictEqual(yield* CheckpointStore.load("idle"), yield* head)
      })).pipe(Effect.provide(reportingLayer(saves)))
    })
  })

  it.effect("transient store errors: Retrying with backoff, then it goes on; other store errors fault", () => {
    const errors = [transient(), transient()]
    const services = Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(
      Layer.provideMerge(failingReads(errors))
    )
    return Effect.scoped(Effect.gen(function*() {
      yield* history
      const table = new Map<string, { readonly stream: string; readonly type: string }>()
      const runner = yield* ProjectionRunner.start(tableProjection(table))
      const retrying = (attempt: number) =>
        SubscriptionRef.changes(runner.status).pipe(
          Stream.filter((s) => s._tag === "Retrying" && s.attempt === attempt),
          Stream.runHead,
          Effect.map((found) => found._tag === "Some" && found.value._tag === "Retrying" ? found.value : undefined)
        )
      const first = yield* retrying(1)
      assert.include(first?.message ?? "", "connection lost")
      assert.strictEqual(Duration.toMillis(first?.delay ?? Duration.zero), 100)
      yield* TestClock.adjust("100 millis")
      const second = yield* retrying(2)
      assert.strictEqual(Duration.toMillis(second?.delay ?? Duration.zero), 200)
      yield* TestClock.adjust("200 millis")
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(table.size, 15)
      // not transient: no retry
      errors.push(new EventStoreError({ operation: "readPage", transient: false, cause: "corrupt page" }))
      const other = yield* ProjectionRunner.start(tableProjection(new Map(), { name: "other" }))
      const faulted = yield* other.awaitStatus("Faulted")
      assert.include(faulted.message, "corrupt page")
      // a schedule that gives up faults the runner with the store error
      errors.push(transient())
      const impatient = yield* ProjectionRunner.start(tableProjection(new Map(), { name: "impatient" }), {
        retry: Schedule.recurs(0)
      })
      assert.include((yield* impatient.awaitStatus("Faulted")).message, "connection lost")
    })).pipe(Effect.provide(services))
  })

  it.effect("a transactional batch that fails to commit counts nothing, and is retried", () => {
    let failNextAdvance = true
    const failingOnce = Layer.effect(
      CheckpointStore.CheckpointStore,
      Effect.map(MemoryCheckpointStore.make, (store) =>
        CheckpointStore.CheckpointStore.of({
          ...store,
          advance: (name, from, to) =>
            Effect.suspend(() => {
              if (!failNextAdvance) return store.advance(name, from, to)
              failNextAdvance = false
              return Effect.fail(
                new EventStoreError({ operation: "commit", transient: true, cause: "connection lost" })
              )
            })
        }))
    )
    const services = Layer.mergeAll(CommandExecutor.layer(), MemoryDeadLetterStore.layer, ProjectionLock.layerMemory)
      .pipe(Layer.provideMerge(Layer.mergeAll(MemoryEventStore.layer, failingOnce)))
    return Effect.scoped(Effect.gen(function*() {
      yield* history
      const table = new Map<string, unknown>()
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "tx",
        events: AccountEvents,
        handle: (_e, stored) =>
          stored.streamId === "acc-2" && stored.streamVersion === 2
            ? Effect.fail(new Error("poison"))
            : Effect.sync(() => void table.set(stored.eventId, 1)),
        onFailure: Projection.skip,
        // stands in for a database transaction: the checkpoint advance fails as a commit would
        transaction: (self) => self
      }))
      yield* runner.awaitStatus("Retrying")
      assert.deepInclude(yield* runner.metrics, { processed: 0, skipped: 0 })
      yield* TestClock.adjust("100 millis")
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.deepInclude(yield* runner.metrics, { processed: 15, skipped: 1, checkpoint: yield* head })
    })).pipe(Effect.provide(services))
  })

  it.effect("rebuild resets a projection that starts at the end to the end: history is not replayed", () =>
    run(Effect.gen(function*() {
      yield* history
      const handled: Array<number> = []
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "from-end",
        events: AccountEvents,
        startFrom: "end",
        handle: (event) => Effect.sync(() => void handled.push(event._tag === "MoneyDeposited" ? event.amount : 0))
      }))
      yield* runner.awaitStatus("Live")
      yield* deposit("acc-1", 1)
      yield* runner.awaitPosition(yield* head)
      yield* runner.rebuild
      yield* runner.awaitStatus("Live")
      yield* deposit("acc-1", 2)
      yield* runner.awaitPosition(yield* head)
      assert.deepStrictEqual(handled, [1, 2])
    })))
})
