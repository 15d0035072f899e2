/**
 * Live wake-ups for subscribers: LISTEN/NOTIFY shortens the wait, polling stays the source of
 * truth.
 *
 * The NOTIFY is never sent inside an append's transaction: PostgreSQL serializes the commits
 * of notifying transactions on a cluster-wide lock, which would cap append throughput. Instead
 * the store calls `appended` after a commit, and a single fiber sends `pg_notify` on its own
 * connection. Appends that land while a NOTIFY is in flight coalesce into the next one.
 *
 * @internal
 */
import type { PgClient } from "@effect/sql-pg"
import { Deferred, Duration, Effect, Queue, Schedule, type Scope } from "effect"

/**
 * @since 0.1.0
 */
export interface Wakeups {
  /** Call after an append committed: wakes local waiters and schedules one NOTIFY. */
  readonly appended: Effect.Effect<void>
  /** A snapshot of the current wake-up, taken before checking for new events, so no wake-up is lost. */
  readonly next: Effect.Effect<Effect.Effect<void>>
}

/**
 * Sleeps on the real timer, not Effect's `Clock`: polling is I/O, and a `TestClock` that
 * never advances must not stop a subscriber from seeing commits.
 */
export const sleepReal = (duration: Duration.Duration): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration))
    return Effect.sync(() => clearTimeout(timer))
  })

const retryListen = Schedule.min([Schedule.exponential("100 millis", 2), Schedule.spaced("5 seconds")])

/**
 * Starts the listener and the notifier in the given scope.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  pg: PgClient.PgClient,
  channel: string
): Effect.fn.Return<Wakeups, never, Scope.Scope> {
  let signal = Deferred.makeUnsafe<void>()
  const wake = Effect.suspend(() => {
    const woken = signal
    signal = Deferred.makeUnsafe<void>()
    return Deferred.succeed(woken, undefined)
  })

  // LISTEN on a reserved connection; on loss, re-listen and wake everyone, since
  // notifications may have been missed meanwhile.
  const listen = Effect.scoped(Effect.gen(function*() {
    const notifications = yield* pg.listen(channel)
    yield* wake
    while (true) {
      yield* Queue.take(notifications)
      yield* wake
    }
  })).pipe(
    Effect.tapError((error) =>
      Effect.logWarning("eventcore: LISTEN failed; relying on polling until it recovers", error)
    ),
    Effect.retry(retryListen)
  )
  yield* Effect.forkScoped(listen)

  // One pending NOTIFY at most: offers made while one is in flight collapse into the next.
  const pending = yield* Queue.dropping<void>(1)
  const notify = Queue.take(pending).pipe(
    Effect.flatMap(() => pg.notify(channel, "")),
    Effect.catch((error) => Effect.logWarning("eventcore: NOTIFY failed; subscribers fall back to polling", error)),
    Effect.forever
  )
  yield* Effect.forkScoped(notify)

  return {
    appended: Effect.andThen(wake, Queue.offer(pending, undefined)).pipe(Effect.asVoid),
    next: Effect.sync(() => Deferred.await(signal))
  }
})
