/**
 * Runs a projection as a scoped fiber: takes the projection's lock, catches up from its
 * checkpoint, goes live, saves checkpoints, applies the failure policy, and exposes status,
 * lag and throughput. `rebuild` resets the checkpoint, clears the read model and replays.
 *
 * One runner per projection name is active at a time, across processes when the lock is
 * PostgreSQL's (`PostgresProjections.layer`): the others wait in `Standby` and take over
 * when the holder stops or dies.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Data,
  DateTime,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Queue,
  type Scope,
  Stream,
  SubscriptionRef
} from "effect"
import { CheckpointMoved, CheckpointStore } from "./CheckpointStore.ts"
import { DeadLetterStore } from "./DeadLetterStore.ts"
import type { EventStoreError } from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventStore from "./EventStore.ts"
import * as Position from "./Position.ts"
import type { Projection } from "./Projection.ts"
import { type Lease, ProjectionLock } from "./ProjectionLock.ts"
import type { StoredEvent } from "./StoredEvent.ts"
import * as Subscription from "./Subscription.ts"

/**
 * Where a runner is.
 *
 * - `Standby`: waiting for the projection's lock (another runner holds it).
 * - `CatchingUp`: reading the backlog after its checkpoint.
 * - `Live`: caught up; following new commits.
 * - `Faulted`: stopped on an error (`message`, `error`, and the `event` when one caused it);
 *   `restart` or `rebuild` start it again.
 * - `Stopped`: its scope closed.
 *
 * @since 0.1.0
 */
export type Status =
  | { readonly _tag: "Standby" }
  | { readonly _tag: "CatchingUp" }
  | { readonly _tag: "Live" }
  | {
    readonly _tag: "Faulted"
    readonly message: string
    readonly error: unknown
    readonly event: StoredEvent | undefined
  }
  | { readonly _tag: "Stopped" }

/**
 * Counters since the runner started (or was last rebuilt).
 *
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
 * How far behind the head of the store a runner is.
 *
 * @since 0.1.0
 */
export interface Lag {
  /** Matching events not processed yet (counted up to the cap). */
  readonly events: number
  /** True when there are at least `events` (the count stopped at the cap). */
  readonly capped: boolean
  /** Age of the oldest unprocessed matching event; 0 when there is none. */
  readonly millis: number
}

/**
 * A running projection.
 *
 * @since 0.1.0
 */
export interface Runner<S> {
  readonly name: string
  readonly status: SubscriptionRef.SubscriptionRef<Status>
  /** The folded state (`Projection.fold`); `undefined` for `Projection.make`. */
  readonly state: SubscriptionRef.SubscriptionRef<S>
  /** The position processed up to. */
  readonly position: SubscriptionRef.SubscriptionRef<Position.Position>
  readonly metrics: Effect.Effect<Metrics>
  /** Reads the store to tell how far behind the head the runner is. */
  readonly lag: Effect.Effect<Lag, EventStoreError>
  /** Completes once the status has the given tag (at once if it has). */
  readonly awaitStatus: <T extends Status["_tag"]>(tag: T) => Effect.Effect<Extract<Status, { _tag: T }>>
  /** Completes once the runner has processed everything up to `position`. */
  readonly awaitPosition: (position: Position.Position) => Effect.Effect<void>
  /**
   * Resets the checkpoint, clears the read model (the projection's `reset`) and its dead
   * letters, and replays from the start. Completes when the reset is done and the replay has
   * begun (once this runner holds the lock).
   */
  readonly rebuild: Effect.Effect<void, unknown>
  /** Starts a faulted runner again from its checkpoint (no effect otherwise). */
  readonly restart: Effect.Effect<void, unknown>
}

/**
 * Runner settings.
 *
 * @since 0.1.0
 */
export interface Options {
  /** Events read per page, the largest batch (and transaction) (default 1,000). */
  readonly pageSize?: number | undefined
  /** Where `lag` stops counting (default 10,000). */
  readonly lagCap?: number | undefined
}

class EventFailed extends Data.TaggedError("eventcore/ProjectionRunner/EventFailed")<{
  readonly message: string
  readonly error: unknown
  readonly event: StoredEvent
}> {}

type Command = { readonly _tag: "Rebuild" | "Restart"; readonly done: Deferred.Deferred<void, unknown> }

/** Renders a failure for a person: the error's message, or the pretty cause. */
export const describe = (cause: Cause.Cause<unknown>): { readonly message: string; readonly error: unknown } => {
  const error = Cause.squash(cause)
  const message = error instanceof Error
    ? `${error.name === "Error" && "_tag" in error ? String(error._tag) : error.name}: ${error.message}`
    : typeof error === "string"
    ? error
    : Cause.pretty(cause)
  return { message, error }
}

const neverLost: Lease = { lost: Effect.never }

/**
 * Starts a projection in the current scope. The runner stops (status `Stopped`, checkpoint
 * saved) when the scope closes.
 *
 * @example
 * ```ts
 * import { Effect, Layer, SubscriptionRef } from "effect"
 * import { Projection, ProjectionRunner } from "eventcore"
 * import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
 *
 * // const Total = Projection.fold({ name: "total", events: Deposits, initial: 0, apply: (n, e) => n + e.amount })
 * // const program = Effect.scoped(Effect.gen(function*() {
 * //   const runner = yield* ProjectionRunner.start(Total)
 * //   yield* runner.awaitStatus("Live")
 * //   return yield* SubscriptionRef.get(runner.state)
 * // })).pipe(Effect.provide(Layer.mergeAll(MemoryEventStore.layer, MemoryProjections.layer)))
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
    const context = yield* Effect.context<R>()
    const { name, durable } = projection
    const pageSize = options?.pageSize ?? EventStore.defaultPageSize
    const lagCap = options?.lagCap ?? 10_000
    const filter = Subscription.catalogFilter(projection.events, projection.filter)
    const everyMillis = Duration.toMillis(projection.checkpoint.every)

    const status = yield* SubscriptionRef.make<Status>({ _tag: "Standby" })
    const state = yield* SubscriptionRef.make<S>(projection.initial)
    const position = yield* SubscriptionRef.make<Position.Position>(Position.initial)
    const commands = yield* Queue.unbounded<Command>()
    const counters = { processed: 0, skipped: 0, retries: 0, checkpoint: undefined as Position.Position | undefined }
    // (time, processed) samples for the throughput window.
    let samples: Array<readonly [number, number]> = []
    const windowMillis = 5_000

    const sample = Effect.map(Clock.currentTimeMillis, (now) => {
      samples.push([now, counters.processed])
      while (samples.length > 2 && (samples[1]?.[0] ?? now) < now - windowMillis) samples.shift()
      if (samples.length > 256) samples = samples.slice(-128)
    })

    const setStatus = (next: Status) => SubscriptionRef.set(status, next)

    // -- one event ----------------------------------------------------------------------------

    const recordDeadLetter = (stored: StoredEvent, message: string, attempts: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        deadLetters.record({
          projection: name,
          eventId: stored.eventId,
          streamId: stored.streamId,
          streamVersion: stored.streamVersion,
          position: stored.position,
          type: stored.type,
          error: message,
          attempts,
          recordedAt: DateTime.makeUnsafe(now)
        }))

    /** Processes one event under the failure policy: the new state, or an `EventFailed`. */
    const processEvent = (current: S, stored: StoredEvent) =>
      Effect.gen(function*() {
        const decoded = projection.events.decode(stored)
        let attempts = 0
        let failure: Cause.Cause<unknown>
        if (decoded._tag === "Failure") {
          failure = Cause.fail(decoded.failure)
        } else {
          const step = projection.step(current, decoded.success, stored)
          const once = Effect.sandbox(
            Effect.suspend(() => {
              attempts++
              return projection.transaction === undefined ? step : projection.transaction(step)
            })
          )
          const policy = projection.onFailure
          const attempt = policy._tag === "Retry"
            ? Effect.retry(once, {
              schedule: policy.schedule,
              while: (cause: Cause.Cause<unknown>) => !Cause.hasInterruptsOnly(cause)
            })
            : once
          const exit = yield* Effect.exit(attempt)
          counters.retries += Math.max(0, attempts - 1)
          if (Exit.isSuccess(exit)) return exit.value
          // sandbox put the step's whole cause in the error channel
          const inner = Cause.findErrorOption(exit.cause)
          failure = inner._tag === "Some" ? inner.value : exit.cause
          if (Cause.hasInterruptsOnly(failure)) return yield* Effect.interrupt
        }
        const { error, message } = describe(failure)
        const policy = projection.onFailure
        const skip = policy._tag === "Skip" || (policy._tag === "Retry" && policy.exhausted === "skip")
        if (!skip) return yield* new EventFailed({ message, error, event: stored })
        yield* recordDeadLetter(stored, message, attempts)
        counters.skipped++
        yield* Effect.logWarning(`eventcore: projection ${name} skipped event ${stored.eventId}: ${message}`)
        return current
      })

    // -- the processing fiber -----------------------------------------------------------------

    const process = Effect.gen(function*() {
      yield* setStatus({ _tag: "CatchingUp" })
      const loaded = durable ? yield* checkpoints.load(name) : undefined
      counters.checkpoint = loaded
      let saved = loaded
      let at = loaded ?? Position.initial
      let folded = yield* SubscriptionRef.get(state)
      let sinceSave = 0
      let lastSaveAt = yield* Clock.currentTimeMillis
      let live = false
      yield* SubscriptionRef.set(position, at)

      const save = (to: Position.Position) =>
        Effect.gen(function*() {
          yield* checkpoints.advance(name, saved, to)
          saved = to
          counters.checkpoint = to
          sinceSave = 0
          lastSaveAt = yield* Clock.currentTimeMillis
        })

      const batch = (items: ReadonlyArray<Subscription.Item<StoredEvent>>) =>
        Effect.gen(function*() {
          const last = items[items.length - 1]
          if (last === undefined) return
          let events = 0
          for (const item of items) if (item._tag === "Event") events++
          const caughtUp = last._tag === "CaughtUp" || items.some((item) => item._tag === "CaughtUp")
          if (events > 0) {
            const body = Effect.gen(function*() {
              let next = folded
              const pure = projection.transaction === undefined ? projection.pure : undefined
              for (const item of items) {
                if (item._tag !== "Event") continue
                if (pure !== undefined) {
                  // Fast path for pure folds; a decode failure or a throw takes the policy path.
                  const decoded = projection.events.decode(item.event)
                  if (decoded._tag === "Success") {
                    try {
                      next = pure(next, decoded.success, item.event)
                      continue
                    } catch {
                      // handled below, under the failure policy
                    }
                  }
                }
                next = yield* processEvent(next, item.event)
              }
              if (durable && projection.transaction !== undefined) {
                yield* checkpoints.advance(name, saved, last.position)
              }
              return next
            })
            folded = projection.transaction === undefined ? yield* body : yield* projection.transaction(body)
            counters.processed += events
            if (durable && projection.transaction !== undefined) {
              saved = last.position
              counters.checkpoint = last.position
              sinceSave = 0
              lastSaveAt = yield* Clock.currentTimeMillis
            } else {
              sinceSave += events
            }
            yield* SubscriptionRef.set(state, folded)
          }
          at = last.position
          yield* sample
          const goesLive = caughtUp && !live
          if (durable && saved !== at) {
            const now = yield* Clock.currentTimeMillis
            if (goesLive || sinceSave >= projection.checkpoint.everyEvents || now - lastSaveAt >= everyMillis) {
              yield* save(at)
            }
          }
          // Published after the save, so whoever awaits this position (or Live) also sees the
          // checkpoint the policy asked for: a runner taking over next resumes after it.
          yield* SubscriptionRef.set(position, at)
          if (goesLive) {
            live = true
            yield* setStatus({ _tag: "Live" })
          }
        })

      const from: Subscription.From = loaded ?? projection.startFrom
      yield* Subscription.withSignals({ from, filter, pageSize }).pipe(
        Stream.runForEachArray(batch),
        // Always save on shutdown (interruption included), unless another runner has moved the
        // checkpoint meanwhile (the failure that stopped this one already says so).
        Effect.ensuring(Effect.suspend(() =>
          durable && saved !== at
            ? checkpoints.advance(name, saved, at).pipe(
              Effect.tap(() => Effect.sync(() => counters.checkpoint = at)),
              Effect.catchTag("CheckpointMoved", () => Effect.void),
              Effect.catchCause((cause) =>
                Effect.logWarning(`eventcore: projection ${name} could not save its checkpoint on shutdown`, cause)
              )
            )
            : Effect.void
        ))
      )
    })

    // -- sessions: one per lock tenure ----------------------------------------------------------

    const reset = Effect.gen(function*() {
      if (durable) {
        yield* checkpoints.reset(name)
        yield* deadLetters.clear(name)
      }
      yield* projection.reset
      yield* SubscriptionRef.set(state, projection.initial)
      yield* SubscriptionRef.set(position, Position.initial)
      counters.processed = 0
      counters.skipped = 0
      counters.retries = 0
      counters.checkpoint = undefined
      samples = []
    })

    const session = (pending: Command | undefined) =>
      Effect.scoped(Effect.gen(function*() {
        yield* setStatus({ _tag: "Standby" })
        const lease = durable ? yield* locks.acquire(name) : neverLost
        let command = pending
        while (true) {
          if (command !== undefined) {
            if (command._tag === "Rebuild") {
              const exit = yield* Effect.exit(reset)
              yield* Deferred.done(command.done, exit)
              if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
            } else {
              yield* Deferred.succeed(command.done, undefined)
            }
            command = undefined
          }
          // In the session's scope, so closing it stops processing (and saves the checkpoint)
          // before the lock's finalizer releases the lock to the next runner.
          const fiber = yield* Effect.forkScoped(process)
          const winner = yield* Effect.raceAll([
            Effect.map(Fiber.await(fiber), (exit) => ({ _tag: "Exited" as const, exit })),
            Effect.as(lease.lost, { _tag: "Lost" as const }),
            Effect.map(Queue.take(commands), (next) => ({ _tag: "Command" as const, next }))
          ])
          yield* Fiber.interrupt(fiber)
          switch (winner._tag) {
            case "Exited": {
              if (Exit.isSuccess(winner.exit)) return "ended" as const
              const failed = Cause.findErrorOption(winner.exit.cause)
              if (failed._tag === "None" || !(failed.value instanceof CheckpointMoved)) {
                return yield* Effect.failCause(winner.exit.cause)
              }
              // Another runner processed past us while we believed we held the lock: the
              // batch was not saved (nor, if transactional, committed); resume from its checkpoint.
              yield* Effect.logWarning(`eventcore: projection ${name}: ${failed.value.message}; reloading it`)
              break
            }
            case "Lost":
              return "lost" as const
            case "Command":
              command = winner.next
          }
        }
      }))

    const main = Effect.gen(function*() {
      let pending: Command | undefined
      while (true) {
        const exit = yield* Effect.exit(session(pending))
        pending = undefined
        if (Exit.isSuccess(exit)) {
          if (exit.value === "ended") return
          yield* Effect.logWarning(`eventcore: projection ${name} lost its lock; waiting to take it again`)
          continue
        }
        if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
        const failed = Cause.findErrorOption(exit.cause)
        const described = failed._tag === "Some" && failed.value instanceof EventFailed
          ? { message: failed.value.message, error: failed.value.error, event: failed.value.event }
          : { ...describe(exit.cause), event: undefined }
        yield* Effect.logError(`eventcore: projection ${name} faulted: ${described.message}`)
        yield* setStatus({ _tag: "Faulted", ...described })
        pending = yield* Queue.take(commands)
      }
    }).pipe(
      Effect.provideContext(context),
      Effect.onExit(() => setStatus({ _tag: "Stopped" }))
    )
    yield* Effect.forkScoped(main)

    const send = (tag: Command["_tag"]) =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void, unknown>()
        yield* Queue.offer(commands, { _tag: tag, done })
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

    const lag = Effect.gen(function*() {
      const after = yield* SubscriptionRef.get(position)
      const page = yield* store.readPage({ after, filter, limit: lagCap })
      const oldest = page.events[0]
      const now = yield* Clock.currentTimeMillis
      return {
        events: page.events.length,
        capped: !page.end,
        millis: oldest === undefined ? 0 : Math.max(0, now - DateTime.toEpochMillis(oldest.recordedAt))
      } satisfies Lag
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
      rebuild: send("Rebuild"),
      restart: send("Restart")
    } satisfies Runner<S>
  })

/**
 * Runs a projection until the scope closes, as a layer: for applications that wire read
 * models at startup.
 *
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

/** The runner's `Ref`s in one record, for tests and dashboards. */
export const snapshot = <S>(runner: Runner<S>) =>
  Effect.all({
    status: SubscriptionRef.get(runner.status),
    state: SubscriptionRef.get(runner.state),
    metrics: runner.metrics
  })
