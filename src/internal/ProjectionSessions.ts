/**
 * The life of a projection runner around its processing: lock tenures ("sessions"), the
 * `rebuild` and `restart` requests, retries after transient store errors, and faults.
 *
 * A session takes the lock, then runs the processing (`projectionProcessing.ts`) until it
 * fails, the lease is lost, or a rebuild is asked for. Everything that runs under the lock is
 * scoped to the session, so closing it stops processing (and saves the checkpoint) before the
 * lock goes to the next runner.
 *
 * @internal
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, Pull, Schedule } from "effect"
import { CheckpointMoved } from "../CheckpointStore.ts"
import type { EventStoreError } from "../Errors.ts"
import type { Lease, ProjectionLock } from "../ProjectionLock.ts"
import type { Status } from "../ProjectionRunner.ts"
import { describe, EventFailed, transientStoreError } from "./ProjectionProcessing.ts"

/** A `rebuild` or `restart` asked of the runner, completed once the runner has acted on it. */
export interface Request {
  readonly _tag: "Rebuild" | "Restart"
  readonly done: Deferred.Deferred<void, unknown>
}

/**
 * Where requests wait for the runner's main fiber. Waiting for one never takes it: the main
 * fiber races "a request arrived" against processing and the lease, and a request taken by a
 * losing branch of such a race would be dropped, its caller waiting forever.
 */
export interface Mailbox {
  readonly offer: (request: Request) => Effect.Effect<void>
  /** Completes once a request is pending (at once if one is). */
  readonly arrived: Effect.Effect<void>
  /**
   * Completes once a rebuild is pending. Restarts asked meanwhile have nothing to do (the
   * runner is running) and complete at once.
   */
  readonly rebuildAsked: Effect.Effect<void>
  /** Takes the oldest pending request. */
  readonly take: () => Request | undefined
  /** Interrupts the callers of every pending request (the runner stopped). */
  readonly close: Effect.Effect<void>
}

export const makeMailbox = (): Mailbox => {
  const pending: Array<Request> = []
  let signal = Deferred.makeUnsafe<void>()
  const arrived = Effect.suspend(() => pending.length > 0 ? Effect.void : Deferred.await(signal))
  return {
    offer: (request) =>
      Effect.suspend(() => {
        pending.push(request)
        const woken = signal
        signal = Deferred.makeUnsafe<void>()
        return Deferred.succeed(woken, undefined)
      }),
    arrived,
    rebuildAsked: Effect.gen(function*() {
      while (true) {
        for (let i = pending.length - 1; i >= 0; i--) {
          const request = pending[i]
          if (request?._tag === "Restart") {
            pending.splice(i, 1)
            yield* Deferred.succeed(request.done, undefined)
          }
        }
        if (pending.length > 0) return
        yield* Deferred.await(signal)
      }
    }),
    take: () => pending.shift(),
    close: Effect.suspend(() => Effect.forEach(pending.splice(0), (request) => Deferred.interrupt(request.done)))
  }
}

/** What the sessions need from the runner. */
export interface Config<E, R> {
  readonly name: string
  /** Durable projections take the lock; folds run without one. */
  readonly durable: boolean
  readonly locks: ProjectionLock["Service"]
  readonly mailbox: Mailbox
  readonly setStatus: (status: Status) => Effect.Effect<void>
  /** One processing run, from the checkpoint; never ends on its own. */
  readonly processing: Effect.Effect<void, E, R>
  /** Clears the checkpoint, dead letters, read model and counters (a rebuild). */
  readonly reset: Effect.Effect<void, unknown, R>
  /** Whether a rebuild begun earlier (by any runner, in any process) has not finished. */
  readonly rebuildPending: Effect.Effect<boolean, unknown, R>
  /**
   * How often a durable runner looks for a rebuild asked from outside (another process, the
   * CLI): an idle runner saves nothing, so nothing else would tell it.
   */
  readonly rebuildCheck: Duration.Duration
  /** The pause between retries after transient store errors; a fresh run after progress. */
  readonly retrySchedule: Schedule.Schedule<unknown, EventStoreError>
  /** Set by processing whenever it gets something done: a later outage starts a fresh backoff. */
  readonly progress: { made: boolean }
  /** Set while a `restart` can resume the runner (faulted, or waiting to retry). */
  readonly resumable: { now: boolean }
}

const neverLost: Lease = { lost: Effect.never, held: Effect.succeed(true) }

/**
 * Completes once a rebuild is pending that this runner did not ask for (`beginRebuild` from
 * another process, or the CLI), checking every `rebuildCheck`. A failed check is not this
 * watcher's to report: processing meets the same store and fails (or retries) on its own.
 * Untraced, as every poll is (ADR 20): traced, each idle runner would send a trace per check.
 */
const externalRebuild = <E, R>(config: Config<E, R>): Effect.Effect<void, never, R> =>
  Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(config.rebuildCheck)
      const pending = yield* config.rebuildPending.pipe(
        Effect.orElseSucceed(() => false),
        Effect.withTracerEnabled(false)
      )
      if (pending) return
    }
  })

/** How a session ended: the processing ended, or the lease was lost (with the request it had not done). */
type Ended =
  | { readonly _tag: "Ended" }
  | { readonly _tag: "Lost"; readonly request: Request | undefined }

/**
 * One lock tenure: takes the lock, acts on the request that started it, processes until the
 * lease is lost ("Lost"), the processing ends ("Ended", never for live subscriptions), or it
 * fails (the session fails with it).
 */
const session = <E, R>(config: Config<E, R>, first: Request | undefined): Effect.Effect<Ended, unknown, R> =>
  Effect.scoped(Effect.gen(function*() {
    const { mailbox, name, setStatus } = config
    yield* setStatus({ _tag: "Standby" })
    const lease = config.durable ? yield* config.locks.acquire(name) : neverLost
    const lost = Effect.as(lease.lost, { _tag: "Lost" as const })
    /**
     * Runs `effect` unless the lease is lost first, or meanwhile: a runner that lost its lock
     * must not decide on a rebuild, nor reset the read model under the runner holding it now
     * (an interrupted reset leaves its rebuild pending; that runner finishes it).
     */
    const whileHeld = <A, E2, R2>(effect: Effect.Effect<A, E2, R2>) =>
      Effect.raceFirst(Effect.map(effect, (value) => ({ _tag: "Held" as const, value })), lost)
    /**
     * Whether the lock is held, checked now: `lost` completes only once the loss is noticed
     * (on PostgreSQL, by the heartbeat, seconds later), and a reset decided in between would
     * clear the read model under the runner holding the lock by then. Asked before resets
     * only: they are rare, and a query per batch would not be.
     */
    const stillHeld = Effect.map(
      whileHeld(lease.held ?? Effect.succeed(true)),
      (held) => held._tag === "Held" && held.value
    )
    let request = first
    // A rebuild that began and did not finish (a crash, a reset that failed) is finished before
    // anything else is processed: it stays pending until it succeeds.
    let unfinished = false
    if (config.durable && request?._tag !== "Rebuild") {
      const pending = yield* whileHeld(config.rebuildPending)
      if (pending._tag === "Lost") return { _tag: "Lost", request } satisfies Ended
      unfinished = pending.value
    }
    if (unfinished) yield* Effect.logWarning(`eventcore: projection ${name}: finishing a rebuild begun earlier`)
    while (true) {
      // Before the request completes: once `rebuild` returns, `Live` means the new run's.
      yield* setStatus({ _tag: "CatchingUp" })
      if (unfinished || request?._tag === "Rebuild") {
        // As if the lease were lost: no reset, the rebuild stays pending for whoever holds the
        // lock (this runner's next session, should it take the lock again, does the one asked
        // of it).
        if (!(yield* stillHeld)) return { _tag: "Lost", request } satisfies Ended
        unfinished = false
        const reset = yield* Effect.exit(whileHeld(config.reset))
        // the next session, should it take the lock again, does the rebuild asked of this one
        if (Exit.isSuccess(reset) && reset.value._tag === "Lost") return { _tag: "Lost", request } satisfies Ended
        const exit = Exit.asVoid(reset)
        if (request !== undefined) yield* Deferred.done(request.done, exit)
        if (Exit.isFailure(exit)) return yield* Effect.failCause(exit.cause)
      } else if (request !== undefined) {
        yield* Deferred.succeed(request.done, undefined)
      }
      request = undefined
      // In the session's scope, so closing it stops processing (and saves the checkpoint)
      // before the lock's finalizer releases the lock to the next runner.
      const fiber = yield* Effect.forkScoped(config.processing)
      const winner = yield* Effect.raceAll([
        Effect.map(Fiber.await(fiber), (exit) => ({ _tag: "Exited" as const, exit })),
        lost,
        Effect.as(mailbox.rebuildAsked, { _tag: "Rebuild" as const }),
        ...(config.durable ? [Effect.as(externalRebuild(config), { _tag: "External" as const })] : [])
      ])
      yield* Fiber.interrupt(fiber)
      switch (winner._tag) {
        case "Exited": {
          if (Exit.isSuccess(winner.exit)) return { _tag: "Ended" } satisfies Ended
          const failed = Cause.findErrorOption(winner.exit.cause)
          if (failed._tag === "None" || !(failed.value instanceof CheckpointMoved)) {
            return yield* Effect.failCause(winner.exit.cause)
          }
          // A rebuild begun elsewhere (another process, the CLI) makes every save fail until
          // it is done: do it, as `rebuild` would, rather than reload and fail again forever.
          // `CheckpointMoved` may also mean that another runner holds the lock now: a lease
          // lost before the answer leaves the rebuild to it.
          const pending = yield* whileHeld(config.rebuildPending)
          if (pending._tag === "Lost") return { _tag: "Lost", request: undefined } satisfies Ended
          if (pending.value) {
            yield* Effect.logWarning(`eventcore: projection ${name}: a rebuild was asked from outside; rebuilding`)
            unfinished = true
            break
          }
          // Another runner processed past us while we believed we held the lock (or the
          // checkpoint was reset): the batch was not saved (nor, if transactional, committed);
          // resume from the checkpoint.
          yield* Effect.logWarning(`eventcore: projection ${name}: ${failed.value.message}; reloading it`)
          break
        }
        case "Lost":
          return { _tag: "Lost", request: undefined } satisfies Ended
        case "External":
          yield* Effect.logWarning(`eventcore: projection ${name}: a rebuild was asked from outside; rebuilding`)
          unfinished = true
          break
        case "Rebuild":
          request = mailbox.take()
      }
    }
  }))

/**
 * The runner's main loop: sessions one after another. A lost lock starts a new session (wait
 * for the lock again); a transient store error pauses under the retry schedule (status
 * `Retrying`) and starts a new one, from the checkpoint; anything else faults the runner until
 * `restart` or `rebuild`.
 */
export const runSessions = <E, R>(config: Config<E, R>): Effect.Effect<void, never, R> => {
  // The request the next session is to act on. It is out of the mailbox (taken while paused, or
  // carried over from a session that lost its lock before doing it), so closing the mailbox
  // does not reach it: if the runner stops first, its caller is told here.
  let pending: Request | undefined
  return Effect.gen(function*() {
    const { mailbox, name, setStatus } = config
    let backoff:
      | ((now: number, input: EventStoreError) => Pull.Pull<[unknown, Duration.Duration], never, unknown>)
      | undefined
    let attempt = 0
    /**
     * Publishes the status, then waits until the pause is over or a request arrives (a
     * `restart` ends the pause). Resumable before the status says so: whoever sees it can
     * restart.
     */
    const pause = (status: Status, wait: Effect.Effect<void, never, R>) =>
      Effect.gen(function*() {
        config.resumable.now = true
        yield* setStatus(status)
        yield* Effect.raceFirst(wait, mailbox.arrived).pipe(
          Effect.ensuring(Effect.sync(() => config.resumable.now = false))
        )
        return mailbox.take()
      })
    while (true) {
      config.progress.made = false
      const exit = yield* Effect.exit(session(config, pending))
      pending = undefined
      if (config.progress.made) {
        backoff = undefined
        attempt = 0
      }
      if (Exit.isSuccess(exit)) {
        if (exit.value._tag === "Ended") return
        pending = exit.value.request
        yield* Effect.logWarning(`eventcore: projection ${name} lost its lock; waiting to take it again`)
        continue
      }
      if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
      const transient = transientStoreError(exit.cause)
      if (transient !== undefined) {
        backoff ??= yield* Schedule.toStep(config.retrySchedule)
        const step = yield* Effect.exit(backoff(yield* Clock.currentTimeMillis, transient))
        if (Exit.isSuccess(step)) {
          const delay = step.value[1]
          attempt++
          yield* Effect.logWarning(
            `eventcore: projection ${name}: ${transient.message}; retry ${attempt} in ${Duration.format(delay)}`
          )
          pending = yield* pause(
            { _tag: "Retrying", message: transient.message, error: transient, attempt, delay },
            Effect.sleep(delay)
          )
          continue
        }
        if (!Pull.isDoneCause(step.cause)) {
          yield* Effect.logError(`eventcore: projection ${name}: its retry schedule failed`, step.cause)
        }
        // the schedule gave up: fault with the store error
      }
      const failed = Cause.findErrorOption(exit.cause)
      const described = failed._tag === "Some" && failed.value instanceof EventFailed
        ? { message: failed.value.message, error: failed.value.error, event: failed.value.event }
        : { ...describe(exit.cause), event: undefined }
      yield* Effect.logError(`eventcore: projection ${name} faulted: ${described.message}`)
      backoff = undefined
      attempt = 0
      // A rebuild asked from outside starts a faulted runner again, as `rebuild` does; one
      // already pending (its reset is what failed) waits for `restart`, as before.
      const alreadyPending = config.durable &&
        (yield* config.rebuildPending.pipe(Effect.orElseSucceed(() => true)))
      pending = yield* pause(
        { _tag: "Faulted", ...described },
        config.durable && !alreadyPending ? externalRebuild(config) : Effect.never
      )
    }
  }).pipe(
    Effect.ensuring(Effect.andThen(
      config.mailbox.close,
      Effect.suspend(() => pending === undefined ? Effect.void : Deferred.interrupt(pending.done))
    ))
  )
}
