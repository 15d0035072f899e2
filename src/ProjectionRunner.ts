/**
 * Runs a projection as a scoped fiber: takes the projection's lock, catches up from its
 * checkpoint, goes live, saves checkpoints, applies the failure policy, retries after transient
 * store errors, and exposes status, lag and throughput. `rebuild` resets the projection to its
 * starting point; `restart` resumes a faulted runner.
 *
 * One runner per projection name is active at a time, across processes when the lock is
 * PostgreSQL's (`PostgresProjection.layer`): the others wait in `Standby` and take over
 * when the holder stops or dies.
 *
 * The work is split in three: what happens to events and checkpoints
 * (`internal/ProjectionProcessing.ts`), lock tenures, requests, retries and faults
 * (`internal/ProjectionSessions.ts`), and this module, which builds a runner from them.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Schedule,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { CheckpointStore } from "./CheckpointStore.ts"
import { DeadLetterStore } from "./DeadLetterStore.ts"
import type { EventStoreError } from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventStore from "./EventStore.ts"
import * as Processing from "./internal/ProjectionProcessing.ts"
import * as Sessions from "./internal/ProjectionSessions.ts"
import * as Telemetry from "./internal/Telemetry.ts"
import * as Position from "./Position.ts"
import type { Projection } from "./Projection.ts"
import { ProjectionLock } from "./ProjectionLock.ts"
import type { StoredEvent } from "./StoredEvent.ts"
import * as Subscription from "./Subscription.ts"

/**
 * Where a runner is.
 *
 * - `Standby`: waiting for the projection's lock (another runner holds it).
 * - `CatchingUp`: holds the lock; reading the backlog after its checkpoint.
 * - `Live`: caught up; following new commits.
 * - `Retrying`: a transient store error (`error`, e.g. a lost connection) stopped processing;
 *   after `delay` (the runner's `retry` schedule) it starts again from its checkpoint.
 *   `attempt` counts the retries of this outage. `restart` retries at once.
 * - `Faulted`: stopped on an error (`message`, `error`, and the `event` when one caused it);
 *   `restart` or `rebuild` start it again.
 * - `Stopped`: its scope closed.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import type { ProjectionRunner } from "eventcore"
 *
 * const describe = (status: ProjectionRunner.Status): string => {
 *   switch (status._tag) {
 *     case "Retrying":
 *       return `retry ${status.attempt} in ${Duration.toMillis(status.delay)} ms: ${status.message}`
 *     case "Faulted":
 *       return `faulted at ${status.event?.position ?? "no event"}: ${status.message}`
 *     default:
 *       return status._tag
 *   }
 * }
 * ```
 * @since 0.1.0
 */
export type Status =
  | { readonly _tag: "Standby" }
  | { readonly _tag: "CatchingUp" }
  | { readonly _tag: "Live" }
  | {
    readonly _tag: "Retrying"
    readonly message: string
    readonly error: EventStoreError
    readonly attempt: number
    readonly delay: Duration.Duration
  }
  | {
    readonly _tag: "Faulted"
    readonly message: string
    readonly error: unknown
    readonly event: StoredEvent | undefined
  }
  | { readonly _tag: "Stopped" }

/**
 * Counters since the runner started (or was last rebuilt). They count work whose effects
 * stand: a transactional batch that rolled back adds nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { ProjectionRunner } from "eventcore"
 *
 * declare const runner: ProjectionRunner.Runner<unknown>
 *
 * const line = (metrics: ProjectionRunner.Metrics) =>
 *   `${metrics.processed} processed, ${metrics.skipped} dead-lettered, ${metrics.eventsPerSecond.toFixed(1)}/s`
 * const report = Effect.map(runner.metrics, line)
 * ```
 * @since 0.1.0
 */
export interface Metrics {
  /** Events processed (skipped ones included). */
  readonly processed: number
  /** Events sent to the dead-letter store. */
  readonly skipped: number
  /** Retries made under a retry policy. */
  readonly retries: number
  /** Everything up to here has been processed. */
  readonly position: Position.Position
  /** The last checkpoint this runner saved or loaded. */
  readonly checkpoint: Position.Position | undefined
  /** Events per second over the last few seconds. */
  readonly eventsPerSecond: number
}

/**
 * How far behind the head of the store a projection is.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { ProjectionRunner } from "eventcore"
 *
 * declare const runner: ProjectionRunner.Runner<unknown>
 *
 * const line = (lag: ProjectionRunner.Lag) =>
 *   lag.pending > 0
 *     ? `${lag.pending} events wait behind transaction ${lag.heldBy?.transactionId ?? "?"}`
 *     : `${lag.events}${lag.capped ? "+" : ""} events, ${lag.millis} ms behind`
 * const report = Effect.map(runner.lag, line)
 * ```
 * @since 0.1.0
 */
export interface Lag {
  /**
   * Matching events not processed yet, counted up to the cap: those global readers can see,
   * and those committed but held behind the read horizon (`pending`).
   */
  readonly events: number
  /** True when there are at least `events` (a count stopped at the cap). */
  readonly capped: boolean
  /** Age of the oldest unprocessed matching event, visible or not; 0 when there is none. */
  readonly millis: number
  /**
   * Of `events`, those committed but not visible yet: another transaction, older than theirs
   * and still open somewhere in the database cluster, holds every global reader back (see
   * `EventStore.Horizon`). The runner cannot process them until it ends.
   */
  readonly pending: number
  /** Who holds the horizon back, when `pending` events wait and the database says. */
  readonly heldBy: EventStore.HorizonHolder | undefined
}

/**
 * A running projection.
 *
 * @example
 * ```ts
 * import { Effect, Schema, SubscriptionRef } from "effect"
 * import { Event, Projection, ProjectionRunner } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const runner: ProjectionRunner.Runner<number> = yield* ProjectionRunner.start(Projection.fold({
 *     name: "deposits",
 *     events: Event.catalog(Deposited),
 *     initial: 0,
 *     apply: (count) => count + 1
 *   }))
 *   yield* runner.awaitStatus("Live") // caught up with the store
 *   return yield* SubscriptionRef.get(runner.state)
 * }))
 * ```
 * @since 0.1.0
 */
export interface Runner<S> {
  readonly name: string
  readonly status: SubscriptionRef.SubscriptionRef<Status>
  /** The folded state (`Projection.fold`); `undefined` for `Projection.make`. */
  readonly state: SubscriptionRef.SubscriptionRef<S>
  /** The position this runner has processed up to. */
  readonly position: SubscriptionRef.SubscriptionRef<Position.Position>
  readonly metrics: Effect.Effect<Metrics>
  /**
   * Reads the store to tell how far behind the last commit the projection is: from this
   * runner's position while it processes, from the projection's checkpoint (the active
   * runner's progress) while it waits in `Standby` — events held behind the read horizon
   * included, with who holds it.
   */
  readonly lag: Effect.Effect<Lag, EventStore.ReadError>
  /** Completes once the status has the given tag (at once if it has). */
  readonly awaitStatus: <T extends Status["_tag"]>(tag: T) => Effect.Effect<Extract<Status, { _tag: T }>>
  /** Completes once the runner has processed everything up to `position`. */
  readonly awaitPosition: (position: Position.Position) => Effect.Effect<void>
  /**
   * Resets the projection to its starting point: clears the read model (the projection's
   * `reset`), deletes the dead letters and the checkpoint, and processes again from its
   * `startFrom` — the whole history for `"start"` (the default), only new events for `"end"`
   * (a process manager is not meant to act on history again). Completes when the reset is
   * done and processing has begun (once this runner holds the lock).
   *
   * All or nothing: the rebuild is marked pending in the `CheckpointStore` first; a
   * transactional projection then clears everything in one transaction, any other clears its
   * read model first. A rebuild that fails (this effect fails with the error) or is cut short
   * stays pending, and no runner processes anything until it has finished it: `restart`
   * retries it, and so does any runner that starts later.
   *
   * A rebuild asked from outside — `CheckpointStore.beginRebuild` in another process, the
   * CLI's `projections rebuild` — is carried out the same way by the runner holding the lock:
   * at its next save, or within `rebuildCheck` when idle or faulted.
   */
  readonly rebuild: Effect.Effect<void, unknown>
  /**
   * Starts a `Faulted` runner again from its checkpoint, or ends a `Retrying` runner's pause.
   * Has no effect (completes at once) in any other status.
   */
  readonly restart: Effect.Effect<void, unknown>
}

/**
 * Runner settings.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Event, Projection, ProjectionRunner } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const options: ProjectionRunner.Options = { pageSize: 200, lagCap: 100_000, rebuildCheck: "5 seconds" }
 * const runner = ProjectionRunner.start(
 *   Projection.make({ name: "audit", events: Event.catalog(Deposited), handle: (event) => Effect.log(event) }),
 *   options
 * )
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** Events read per page, the largest batch (and transaction) (default 1,000). */
  readonly pageSize?: number | undefined
  /** Where `lag` stops counting (default 10,000). */
  readonly lagCap?: number | undefined
  /**
   * The pauses between attempts after a transient store error (`EventStoreError` with
   * `transient: true`: a lost connection, a deadlock). Default `defaultRetry`: exponential
   * from 100 ms, at most 5 s apart, never giving up. When the schedule ends, the runner faults.
   * The backoff starts over once processing gets something done.
   */
  readonly retry?: Schedule.Schedule<unknown, EventStoreError> | undefined
  /**
   * How often a durable runner holding the lock (or faulted) checks whether a rebuild was asked
   * from outside this runner — `CheckpointStore.beginRebuild` in another process, e.g. the CLI's
   * `projections rebuild` — and then rebuilds as `rebuild` does (default 2 seconds). A runner
   * that processes events notices sooner: its next save finds the rebuild pending.
   */
  readonly rebuildCheck?: Duration.Input | undefined
}

/**
 * Retries after transient store errors: exponential from 100 ms (×2), at most 5 s apart,
 * forever.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { ProjectionRunner } from "eventcore"
 *
 * // Fault after 10 retries of one outage instead of retrying forever.
 * const options: ProjectionRunner.Options = { retry: ProjectionRunner.defaultRetry.pipe(Schedule.upTo({ times: 10 })) }
 * ```
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, EventStoreError> = Schedule.min([
  Schedule.exponential("100 millis", 2),
  Schedule.spaced("5 seconds")
])

/**
 * How often a runner looks for a rebuild asked from outside it: 2 seconds.
 *
 * @example
 * ```ts
 * import { ProjectionRunner } from "eventcore"
 *
 * const options: ProjectionRunner.Options = { rebuildCheck: "500 millis" } // default ProjectionRunner.defaultRebuildCheck
 * ```
 * @since 0.3.0
 */
export const defaultRebuildCheck: Duration.Duration = Duration.seconds(2)

/**
 * Renders a failure for a person: the error's message, or the pretty cause.
 *
 * @example
 * ```ts
 * import { Cause } from "effect"
 * import { EventStoreError, ProjectionRunner } from "eventcore"
 *
 * const error = new EventStoreError({ operation: "readPage", transient: true, cause: "timeout" })
 * ProjectionRunner.describe(Cause.fail(error))
 * // { message: "EventStoreError: Event store readPage failed (transient): timeout", error: EventStoreError }
 * ```
 * @since 0.1.0
 */
export const describe: (cause: Cause.Cause<unknown>) => { readonly message: string; readonly error: unknown } =
  Processing.describe

/**
 * Starts a projection in the current scope. The runner stops (status `Stopped`, checkpoint
 * saved) when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema, SubscriptionRef } from "effect"
 * import { Event, Projection, ProjectionRunner } from "eventcore"
 * import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Total = Projection.fold({
 *   name: "total",
 *   events: Event.catalog(Deposited),
 *   initial: 0,
 *   apply: (total, event) => total + event.amount
 * })
 *
 * const total = Effect.scoped(Effect.gen(function*() {
 *   const runner = yield* ProjectionRunner.start(Total)
 *   yield* runner.awaitStatus("Live")
 *   return yield* SubscriptionRef.get(runner.state)
 * })).pipe(Effect.provide(Layer.mergeAll(MemoryEventStore.layer, MemoryProjections.layer)))
 * ```
 * @since 0.1.0
 */
export const start = <E extends Event.Tagged, S, Err, R>(
  projection: Projection<E, S, Err, R>,
  options?: Options
): Effect.Effect<
  Runner<S>,
  never,
  Scope.Scope | EventStore.EventStore | CheckpointStore | DeadLetterStore | ProjectionLock | R
> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const checkpoints = yield* CheckpointStore
    const deadLetters = yield* DeadLetterStore
    const locks = yield* ProjectionLock
    const context = yield* Effect.context<EventStore.EventStore | R>()
    const { durable, name } = projection
    const lagCap = options?.lagCap ?? 10_000
    const filter = Subscription.catalogFilter(projection.events, projection.filter)

    const status = yield* SubscriptionRef.make<Status>({ _tag: "Standby" })
    const state = yield* SubscriptionRef.make<S>(projection.initial)
    const position = yield* SubscriptionRef.make<Position.Position>(Position.initial)
    const counters: Processing.Counters = { processed: 0, skipped: 0, retries: 0, checkpoint: undefined }
    const progress = { made: false }
    const resumable = { now: false }
    const mailbox = Sessions.makeMailbox()

    // (time, processed) samples for the throughput window.
    let samples: Array<readonly [number, number]> = []
    const windowMillis = 5_000
    const sample = Effect.map(Clock.currentTimeMillis, (now) => {
      samples.push([now, counters.processed])
      while (samples.length > 2 && (samples[1]?.[0] ?? now) < now - windowMillis) samples.shift()
      if (samples.length > 256) samples = samples.slice(-128)
    })

    const setStatus = (next: Status) => SubscriptionRef.set(status, next)

    const processing = Processing.run({
      projection,
      checkpoints,
      deadLetters,
      filter,
      pageSize: options?.pageSize ?? EventStore.defaultPageSize,
      state,
      position,
      counters,
      onLive: Effect.andThen(Effect.sync(() => progress.made = true), setStatus({ _tag: "Live" })),
      onBatch: Effect.andThen(Effect.sync(() => progress.made = true), sample)
    })

    // A rebuild is marked pending first (durably), then cleared in one go: for a transactional
    // projection the read model, dead letters and checkpoint in one transaction; otherwise the
    // read model first, so that a crash halfway never leaves the old checkpoint on a cleared
    // read model (nor replays onto the old one). Whatever fails, the mark stays, and the next
    // session finishes the rebuild before it processes anything.
    const clear = Effect.gen(function*() {
      yield* projection.reset
      yield* deadLetters.clear(name)
      yield* checkpoints.reset(name)
      // "The end" is now, not whenever the next run subscribes: nothing committed after the
      // rebuild returns is missed.
      if (projection.startFrom === "end") yield* checkpoints.advance(name, undefined, yield* store.head)
    })
    const reset = Effect.gen(function*() {
      if (durable) {
        yield* checkpoints.beginRebuild(name)
        yield* projection.transaction === undefined ? clear : projection.transaction(clear)
      } else {
        yield* projection.reset
      }
      yield* SubscriptionRef.set(state, projection.initial)
      yield* SubscriptionRef.set(position, Position.initial)
      counters.processed = 0
      counters.skipped = 0
      counters.retries = 0
      counters.checkpoint = undefined
      samples = []
    })

    yield* Sessions.runSessions({
      name,
      durable,
      locks,
      mailbox,
      setStatus,
      processing,
      reset,
      rebuildPending: checkpoints.rebuildPending(name),
      rebuildCheck: Duration.fromInputUnsafe(options?.rebuildCheck ?? defaultRebuildCheck),
      retrySchedule: options?.retry ?? defaultRetry,
      progress,
      resumable
    }).pipe(
      Effect.provideContext(context),
      Effect.onExit(() => setStatus({ _tag: "Stopped" })),
      Effect.forkScoped
    )

    const ask = (tag: Sessions.Request["_tag"]) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void, unknown>()
        yield* mailbox.offer({ _tag: tag, done })
        return yield* Deferred.await(done)
      })

    const awaitStatus = <T extends Status["_tag"]>(tag: T) =>
      Effect.gen(function*() {
        const current = yield* SubscriptionRef.get(status)
        if (current._tag === tag) return current as Extract<Status, { _tag: T }>
        const found = yield* SubscriptionRef.changes(status).pipe(
          Stream.filter((s) => s._tag === tag),
          Stream.take(1),
          Stream.runHead
        )
        return (found._tag === "Some" ? found.value : current) as Extract<Status, { _tag: T }>
      })

    const awaitPosition = (target: Position.Position) =>
      Effect.gen(function*() {
        if (!Position.isAfter(target, yield* SubscriptionRef.get(position))) return
        yield* SubscriptionRef.changes(position).pipe(
          Stream.filter((p) => !Position.isAfter(target, p)),
          Stream.take(1),
          Stream.runDrain
        )
      })

    const metrics = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const first = samples[0]
      const elapsed = first === undefined ? 0 : now - first[0]
      const eventsPerSecond = first === undefined || elapsed <= 0
        ? 0
        : ((counters.processed - first[1]) * 1000) / elapsed
      return {
        processed: counters.processed,
        skipped: counters.skipped,
        retries: counters.retries,
        position: yield* SubscriptionRef.get(position),
        checkpoint: counters.checkpoint,
        eventsPerSecond
      } satisfies Metrics
    })

    // In Standby this runner's position is stale (initial, or where it was when it lost the
    // lock); the projection's progress is its checkpoint.
    const lagFrom = Effect.gen(function*() {
      const current = yield* SubscriptionRef.get(status)
      if (!durable || current._tag !== "Standby") return yield* SubscriptionRef.get(position)
      const checkpoint = yield* checkpoints.load(name)
      if (checkpoint !== undefined) return checkpoint
      return projection.startFrom === "end" ? undefined : Position.initial
    })

    const lag = Effect.gen(function*() {
      const after = yield* lagFrom
      // No checkpoint and `startFrom: "end"`: the first runner will start at the head.
      if (after === undefined) {
        return { events: 0, capped: false, millis: 0, pending: 0, heldBy: undefined } satisfies Lag
      }
      const page = yield* store.readPage({ after, filter, limit: lagCap })
      // Everything behind the horizon comes after what is visible, so after `after` too.
      const horizon = yield* store.horizon({ filter, cap: lagCap })
      const oldest = page.events[0]
      const now = yield* Clock.currentTimeMillis
      const visibleMillis = oldest === undefined ? 0 : Math.max(0, now - DateTime.toEpochMillis(oldest.recordedAt))
      const behind = {
        events: page.events.length + horizon.pending,
        capped: !page.end || horizon.pendingCapped,
        millis: Math.max(visibleMillis, horizon.pendingMillis),
        pending: horizon.pending,
        heldBy: horizon.heldBy
      } satisfies Lag
      Telemetry.observeProjectionLagEvents(name, behind.events, yield* Effect.context<never>())
      return behind
    })

    return {
      name,
      status,
      state,
      position,
      metrics,
      lag,
      awaitStatus,
      awaitPosition,
      rebuild: ask("Rebuild"),
      restart: Effect.suspend(() => resumable.now ? ask("Restart") : Effect.void)
    } satisfies Runner<S>
  })

/**
 * Starts a projection and never completes: for a fiber or a program whose job is to run one
 * read model until interrupted. The runner stops (checkpoint saved) when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { Event, Projection, ProjectionRunner } from "eventcore"
 * import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Total = Projection.fold({
 *   name: "total", events: Event.catalog(Deposited), initial: 0, apply: (n, e) => n + e.amount
 * })
 * const Live = Layer.mergeAll(MemoryEventStore.layer, MemoryProjections.layer)
 *
 * const main = ProjectionRunner.run(Total).pipe(Effect.scoped, Effect.provide(Live))
 * ```
 * @since 0.1.0
 */
export const run = <E extends Event.Tagged, S, Err, R>(
  projection: Projection<E, S, Err, R>,
  options?: Options
): Effect.Effect<
  never,
  never,
  Scope.Scope | EventStore.EventStore | CheckpointStore | DeadLetterStore | ProjectionLock | R
> => Effect.andThen(start(projection, options), Effect.never)

/**
 * The runner's `Ref`s in one record, for tests and dashboards.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ProjectionRunner } from "eventcore"
 *
 * const report = <S>(runner: ProjectionRunner.Runner<S>) =>
 *   Effect.flatMap(ProjectionRunner.snapshot(runner), ({ metrics, status }) =>
 *     Effect.log(`${runner.name}: ${status._tag}, ${metrics.processed} events`))
 * ```
 * @since 0.1.0
 */
export const snapshot = <S>(runner: Runner<S>) =>
  Effect.all({
    status: SubscriptionRef.get(runner.status),
    state: SubscriptionRef.get(runner.state),
    metrics: runner.metrics
  })
