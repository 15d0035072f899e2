/**
 * What a projection runner does while it holds the lock: load the checkpoint, read the
 * subscription from there, apply each event under the projection's failure policy, and save
 * the checkpoint under its checkpoint policy. The lock, the sessions around this and the
 * public runner live in `projectionSessions.ts` and `ProjectionRunner.ts`.
 *
 * @internal
 */
import { Cause, Clock, Data, DateTime, Duration, Effect, Exit, Stream, SubscriptionRef } from "effect"
import type { CheckpointMoved, CheckpointStore } from "../CheckpointStore.ts"
import type { DeadLetterStore } from "../DeadLetterStore.ts"
import { EventStoreError } from "../Errors.ts"
import type * as Event from "../Event.ts"
import type * as EventStore from "../EventStore.ts"
import * as Metadata from "../Metadata.ts"
import * as Position from "../Position.ts"
import type { Projection } from "../Projection.ts"
import type { StoredEvent } from "../StoredEvent.ts"
import * as Subscription from "../Subscription.ts"
import * as Causation from "./Causation.ts"
import * as Telemetry from "./Telemetry.ts"

/**
 * The runner's counters. Only work whose effects stand is counted: a transactional batch that
 * rolled back (a fault, a lost lock, a `CheckpointMoved`) adds nothing.
 */
export interface Counters {
  processed: number
  skipped: number
  retries: number
  /** The last checkpoint this runner saved or loaded. */
  checkpoint: Position.Position | undefined
}

/** An event failed and the policy says stop: the runner faults with this. */
export class EventFailed extends Data.TaggedError("eventcore/ProjectionRunner/EventFailed")<{
  readonly message: string
  readonly error: unknown
  readonly event: StoredEvent
}> {}

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

/**
 * The transient store error in a cause, if that is what it failed with: the store (or the
 * database behind it) is briefly unavailable, so the same work will likely succeed later.
 */
export const transientStoreError = (cause: Cause.Cause<unknown>): EventStoreError | undefined => {
  for (const reason of cause.reasons) {
    if (Cause.isFailReason(reason) && reason.error instanceof EventStoreError && reason.error.transient) {
      return reason.error
    }
  }
  return undefined
}

/** What one run needs from the runner. */
export interface Environment<E extends Event.Tagged, S, Err, R> {
  readonly projection: Projection<E, S, Err, R>
  readonly checkpoints: CheckpointStore["Service"]
  readonly deadLetters: DeadLetterStore["Service"]
  readonly filter: EventStore.EventFilter
  readonly pageSize: number
  readonly state: SubscriptionRef.SubscriptionRef<S>
  /** Published after each batch, once the checkpoint the policy asked for is saved. */
  readonly position: SubscriptionRef.SubscriptionRef<Position.Position>
  readonly counters: Counters
  /** The run reached the end of the backlog (status `Live`). */
  readonly onLive: Effect.Effect<void>
  /** A batch was processed (throughput sampling, progress for retry backoff). */
  readonly onBatch: Effect.Effect<void>
}

/** Work done in one batch, added to the counters only if the batch's effects stand. */
interface Tally {
  processed: number
  skipped: number
  retries: number
}

const tick = { _tag: "Tick" } as const
type Input = Subscription.Item<StoredEvent> | typeof tick

/** The last event of a batch, if it has one. */
const lastEvent = (items: ReadonlyArray<Input>): StoredEvent | undefined => {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i]
    if (item !== undefined && item._tag === "Event") return item.event
  }
  return undefined
}

/**
 * One run: from the checkpoint (or the projection's `startFrom`) until interrupted or failed.
 * Fails with `EventFailed` (policy: stop), `CheckpointMoved` (another runner or a rebuild
 * moved the checkpoint: reload and go on), an `EventStoreError`, or the transaction's error.
 * Always tries to save its position on the way out, unless the checkpoint moved meanwhile.
 */
export const run = <E extends Event.Tagged, S, Err, R>(
  env: Environment<E, S, Err, R>
): Effect.Effect<void, EventFailed | CheckpointMoved | EventStore.ReadError | Err, EventStore.EventStore | R> =>
  Effect.gen(function*() {
    const { checkpoints, counters, deadLetters, projection } = env
    const { durable, name, transaction } = projection
    const everyMillis = Duration.toMillis(projection.checkpoint.every)

    const metricsContext = yield* Effect.context<never>()
    // The event being processed, for the commands a handler executes (internal/Causation.ts).
    const causation: Causation.Cell = { event: undefined, outer: yield* Metadata.Ambient }
    const loaded = durable ? yield* checkpoints.load(name) : undefined
    counters.checkpoint = loaded
    let saved = loaded
    let at = loaded ?? Position.initial
    // Where a plain (non-transactional) projection's effects reach, event by event: a stop in
    // the middle of a batch saves this, so the next runner does not redo what was done.
    let done = at
    let folded = yield* SubscriptionRef.get(env.state)
    let sinceSave = 0
    let lastSaveAt = yield* Clock.currentTimeMillis
    let live = false
    yield* SubscriptionRef.set(env.position, at)

    const markSaved = (to: Position.Position) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        saved = to
        counters.checkpoint = to
        sinceSave = 0
        lastSaveAt = now
      })
    const save = (to: Position.Position) => Effect.andThen(checkpoints.advance(name, saved, to), markSaved(to))

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

    /** One event under the failure policy: the new state, or `EventFailed`. */
    const processEvent = (current: S, stored: StoredEvent, tally: Tally) =>
      Effect.gen(function*() {
        const decoded = projection.events.decode(stored)
        let attempts = 0
        let failure: Cause.Cause<unknown>
        if (decoded._tag === "Failure") {
          failure = Cause.fail(decoded.failure)
        } else {
          // A command the handler executes is caused by this event, in its correlation.
          causation.event = stored
          const step = projection.step(current, decoded.success, stored)
          const once = Effect.sandbox(
            Effect.suspend(() => {
              attempts++
              // A nested transaction is a savepoint: a failed attempt rolls back its own writes.
              return transaction === undefined ? step : transaction(step)
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
          tally.retries += Math.max(0, attempts - 1)
          if (Exit.isSuccess(exit)) return exit.value
          // sandbox put the step's whole cause in the error channel
          const inner = Cause.findErrorOption(exit.cause)
          failure = inner._tag === "Some" ? inner.value : exit.cause
          if (Cause.hasInterruptsOnly(failure)) return yield* Effect.interrupt
          // The store is unavailable, not the event at fault: neither skip it nor fault on it;
          // the session retries the batch from the checkpoint after a pause.
          if (transientStoreError(failure) !== undefined) return yield* Effect.failCause(failure)
        }
        const { error, message } = describe(failure)
        const policy = projection.onFailure
        const skip = policy._tag === "Skip" || (policy._tag === "Retry" && policy.exhausted === "skip")
        if (!skip) return yield* new EventFailed({ message, error, event: stored })
        yield* recordDeadLetter(stored, message, attempts)
        tally.skipped++
        yield* Effect.logWarning(`eventcore: projection ${name} skipped event ${stored.eventId}: ${message}`)
        return current
      }) as Effect.Effect<S, EventFailed | EventStoreError, R>

    const applyEvents = (items: ReadonlyArray<Input>, last: Position.Position, tally: Tally) =>
      Effect.gen(function*() {
        let next = folded
        const pure = transaction === undefined ? projection.pure : undefined
        for (const item of items) {
          if (item._tag !== "Event") continue
          if (pure !== undefined) {
            // Fast path for pure folds; a decode failure or a throw takes the policy path.
            const decoded = projection.events.decode(item.event)
            if (decoded._tag === "Success") {
              try {
                next = pure(next, decoded.success, item.event)
                tally.processed++
                done = item.position
                continue
              } catch {
                // handled below, under the failure policy
              }
            }
          }
          next = yield* processEvent(next, item.event, tally)
          tally.processed++
          if (transaction === undefined) done = item.position
        }
        // Inside the transaction: the batch commits only if the checkpoint is still where this
        // runner left it (see `CheckpointStore.advance`).
        if (durable && transaction !== undefined) yield* checkpoints.advance(name, saved, last)
        return next
      })

    const batch = (items: ReadonlyArray<Input>) =>
      Effect.gen(function*() {
        let last: Position.Position | undefined
        let events = 0
        let caughtUp = false
        for (const item of items) {
          if (item._tag === "Tick") continue
          last = item.position
          if (item._tag === "Event") events++
          else caughtUp = true
        }
        if (last === undefined) {
          // Only ticks: save an idle runner's position once the policy's interval has passed.
          if (durable && saved !== at && (yield* Clock.currentTimeMillis) - lastSaveAt >= everyMillis) {
            yield* save(at)
          }
          return
        }
        if (events > 0) {
          const tally: Tally = { processed: 0, skipped: 0, retries: 0 }
          const body = applyEvents(items, last, tally)
          const transactional = durable && transaction !== undefined
          folded = yield* (transaction === undefined ? body : transaction(body)).pipe(
            // Rolled-back work is not counted; a plain projection's effects stand either way.
            Effect.onExit((exit) =>
              Effect.sync(() => {
                if (!transactional || Exit.isSuccess(exit)) {
                  counters.processed += tally.processed
                  counters.skipped += tally.skipped
                  counters.retries += tally.retries
                  Telemetry.observeProjectionBatch(name, tally.processed, tally.skipped, metricsContext)
                }
              })
            )
          )
          const newest = lastEvent(items)
          if (newest !== undefined) {
            const now = yield* Clock.currentTimeMillis
            Telemetry.observeProjectionLag(name, now - DateTime.toEpochMillis(newest.recordedAt), metricsContext)
          }
          causation.event = undefined
          if (transactional) yield* markSaved(last)
          else sinceSave += events
          yield* SubscriptionRef.set(env.state, folded)
        }
        at = last
        done = last
        yield* env.onBatch
        const goesLive = caughtUp && !live
        if (durable && saved !== at) {
          const now = yield* Clock.currentTimeMillis
          if (goesLive || sinceSave >= projection.checkpoint.everyEvents || now - lastSaveAt >= everyMillis) {
            yield* save(at)
          }
        }
        // Published after the save, so whoever awaits this position (or Live) also sees the
        // checkpoint the policy asked for: a runner taking over next resumes after it.
        yield* SubscriptionRef.set(env.position, at)
        if (goesLive) {
          live = true
          yield* env.onLive
        }
      })

    const from: Subscription.From = loaded ?? projection.startFrom
    const items: Stream.Stream<Input, EventStore.ReadError, EventStore.EventStore> = Subscription.withSignals({
      from,
      filter: env.filter,
      pageSize: env.pageSize
    })
    // Ticks let an idle durable runner save its last position on the `every` interval: without
    // them a save waits for the next batch, which may never come.
    const input = durable
      ? Stream.merge(items, Stream.as(Stream.tick(projection.checkpoint.every), tick), { haltStrategy: "left" })
      : items
    yield* input.pipe(
      // One span per batch of events, so the store and SQL queries a batch makes are its
      // children rather than orphan root spans; idle ticks make none.
      Stream.runForEachArray((items) =>
        items.some((item) => item._tag === "Event")
          ? Effect.withSpan(batch(items), "ProjectionRunner.batch", {
            attributes: { "eventcore.projection": name, "eventcore.batch.size": items.length },
            captureStackTrace: false
          })
          : batch(items)
      ),
      // Always save on the way out (interruption included), unless another runner or a rebuild
      // moved the checkpoint meanwhile (the failure that stopped this run already says so):
      // up to the last event whose effects stand, so a runner taking over next does not redo it.
      Effect.ensuring(Effect.suspend(() =>
        durable && saved !== done
          ? save(done).pipe(
            Effect.catchTag("CheckpointMoved", () => Effect.void),
            Effect.catchCause((cause) =>
              Effect.logWarning(`eventcore: projection ${name} could not save its checkpoint on shutdown`, cause)
            )
          )
          : Effect.void
      )),
      // Every event's handler sees the cell: commands it executes are caused by that event.
      Effect.provideService(Causation.Current, causation)
    )
  })
