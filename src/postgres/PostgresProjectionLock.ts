/**
 * One active runner per projection name across processes: PostgreSQL session-level advisory
 * locks, keyed by a 64-bit hash of the schema and the projection name.
 *
 * - Where they live: every lock this process holds, and every try of a runner waiting in
 *   `Standby`, goes through one dedicated connection of its own, opened from the `PgClient`'s
 *   settings beside its pool, not taken from it. Runners therefore never starve the pool,
 *   however many wait, and a process uses one connection for all its projection locks. The
 *   connection opens when a runner first needs it and closes a second after the last lets go.
 * - Within the process, runners of one name take turns on a semaphore first: session locks
 *   are re-entrant, so the session alone would let two of them in.
 * - Taking one: `pg_try_advisory_lock`, retried every `pollInterval` while another process
 *   holds it. The release is registered before the first try, so an interruption at any point
 *   (even while a try the server granted is in flight) cannot leave the lock behind.
 * - Holding: a heartbeat (`select 1`) every `heartbeat` checks the connection; one that gets
 *   no answer within `heartbeatTimeout` (a broken or half-open connection, a stalled server)
 *   means every lease on it is lost: their runners stop processing, the session is terminated
 *   from a pool connection (`pg_terminate_backend`, checked by pid and backend start time) so
 *   the server frees its locks at once, and the next try opens a fresh connection.
 * - Checking it now (`Lease.held`, asked by a runner before it resets its read model): the
 *   lock's row in `pg_locks`, read on the lock connection itself within `heartbeatTimeout`. A
 *   failure or no answer is a broken connection found early: not held, and every lease on it
 *   is lost as if the heartbeat had found it.
 * - Losing it: when the holding process dies, its connection closes and PostgreSQL releases
 *   the lock at once; a waiting runner takes it on its next poll.
 * - Releasing: `pg_advisory_unlock` within `heartbeatTimeout`; if that fails or times out,
 *   the session counts as broken: terminated, its other leases lost with it.
 * - A broken session is handled once, by whichever of these finds it first; the others find
 *   it handled, so runners already on a fresh connection stay there.
 *
 * @since 0.1.0
 */
import { PgClient, PgConnection } from "@effect/sql-pg"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, RcRef, Scope, Semaphore } from "effect"
import { EventStoreError, type InvalidInput } from "../Errors.ts"
import { ProjectionLock } from "../ProjectionLock.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"
import { sleepReal } from "./Wakeups.ts"

/**
 * Settings of the PostgreSQL projection lock: the store's schema, how often a waiting runner
 * tries for a lock, and the heartbeat on the lock connection.
 *
 * @example
 * ```ts
 * import { PostgresProjectionLock } from "eventcore/postgres"
 *
 * const options: PostgresProjectionLock.Options = { pollInterval: "2 seconds", heartbeat: "1 second", heartbeatTimeout: "5 seconds" }
 * const Lock = PostgresProjectionLock.layer(options)
 * ```
 * @since 0.1.0
 */
export interface Options {
  readonly schema?: string | undefined
  /** How often a waiting runner tries the lock again. Default 500 ms. */
  readonly pollInterval?: Duration.Input | undefined
  /** How often the lock connection is checked. Default 1 second. */
  readonly heartbeat?: Duration.Input | undefined
  /**
   * How long a heartbeat (or an unlock) may take before the connection counts as broken.
   * Default 5 seconds.
   */
  readonly heartbeatTimeout?: Duration.Input | undefined
}

const failure = (error: Parameters<typeof fromSqlError>[1]) => fromSqlError("projection lock", error)

/**
 * The SQL expression of a projection's lock key, from SQL expressions of the store's schema
 * and the projection's name. Also used by the tools that look for a projection's runner
 * (PostgresBlueGreen, the CLI).
 *
 * @internal
 */
export const lockKeySql = (schema: string, name: string): string =>
  `hashtextextended('eventcore/projection/' || ${schema} || '/' || ${name}, 0)`

/**
 * A condition on the `pg_locks` row `row`: it is the granted lock of the key expression `key`
 * in this database. A lock taken with a bigint key shows as `objsubid` 1, its high 32 bits in
 * `classid`, its low ones in `objid` (both `oid`, unsigned: the shift wraps into the sign as
 * the key's own bits do).
 *
 * @internal
 */
export const grantedLockSql = (row: string, key: string): string =>
  `${row}.locktype = 'advisory' and ${row}.granted and ${row}.objsubid = 1
    and ${row}.database = (select oid from pg_database where datname = current_database())
    and ((${row}.classid::bigint << 32) | ${row}.objid::bigint) = ${key}`

const keySql = lockKeySql("$1::text", "$2::text")

/** Whether this session holds the lock of `keySql`. */
const heldSql = `select exists (
  select 1 from pg_locks l where l.pid = pg_backend_pid() and ${grantedLockSql("l", keySql)}
) as held`

/**
 * Runs `effect` in a fiber of its own and waits at most `timeout` for it, measured on the real
 * timer (this is I/O; a `TestClock` must not stop it). On time out the fiber is interrupted in
 * the background: interrupting a statement on a dead connection waits for the driver to give
 * up on it, and the caller has better things to do meanwhile.
 */
const within = <A, E>(effect: Effect.Effect<A, E>, timeout: Duration.Duration) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(effect)
    const exit = yield* Effect.raceFirst(
      Effect.asSome(Fiber.await(fiber)),
      Effect.as(sleepReal(timeout), Option.none())
    ).pipe(Effect.onInterrupt(() => Effect.forkDetach(Fiber.interrupt(fiber))))
    if (Option.isNone(exit)) {
      yield* Effect.forkDetach(Fiber.interrupt(fiber))
      return yield* Effect.fail("timeout" as const)
    }
    return yield* exit.value
  })

/** The dedicated connection holding this process's locks. */
interface Session {
  readonly query: (text: string, params: ReadonlyArray<unknown>) => Effect.Effect<
    ReadonlyArray<Record<string, unknown>>,
    EventStoreError
  >
  /** Completes once the session is known to be broken: every lock on it may be gone. */
  readonly lost: Effect.Effect<void>
  /**
   * Marks the session broken: every lease on it is lost, the next try opens a fresh one, and
   * the session is terminated from a pool connection so the server frees its locks now. Only
   * the first call acts.
   */
  readonly loseAll: (why: string, cause: Cause.Cause<unknown>) => Effect.Effect<void>
}

/**
 * Builds the lock on the `PgClient` in context (its settings for the dedicated connection,
 * its pool to terminate a stuck session).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresProjectionLock } from "eventcore/postgres"
 *
 * const exclusive = Effect.scoped(Effect.gen(function*() {
 *   const locks = yield* PostgresProjectionLock.make({ pollInterval: "1 second" }) // needs a PgClient
 *   const lease = yield* locks.acquire("balances") // held until the scope closes
 *   yield* Effect.raceFirst(Effect.log("working").pipe(Effect.forever), lease.lost)
 * }))
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const pg = yield* PgClient.PgClient
  const pollInterval = Duration.fromInputUnsafe(options?.pollInterval ?? "500 millis")
  const heartbeat = Duration.fromInputUnsafe(options?.heartbeat ?? "1 second")
  const heartbeatTimeout = Duration.fromInputUnsafe(options?.heartbeatTimeout ?? "5 seconds")

  const terminateSql =
    `select pg_terminate_backend(pid) from pg_stat_activity where pid = $1 and backend_start::text = $2`

  /** The `lost` of the session acquired last: which session `sessions` holds, if any. */
  let current: Deferred.Deferred<void> | undefined
  const sessions: RcRef.RcRef<Session, EventStoreError> = yield* RcRef.make({
    idleTimeToLive: "1 second",
    acquire: Effect.gen(function*() {
      const connection = yield* PgConnection.make({
        ...pg.config,
        applicationName: `eventcore projection locks (${schema})`
      }).pipe(Effect.mapError(failure))
      const query = (text: string, params: ReadonlyArray<unknown>) =>
        Effect.map(connection.query(text, params, false), (result) => result.rows).pipe(Effect.mapError(failure))
      // Who this session is, so that it can be terminated from elsewhere, and only it (a pid
      // alone may be reused by a later session).
      const [self] = yield* query(
        `select pid, backend_start::text as started from pg_stat_activity where pid = pg_backend_pid()`,
        []
      )
      const terminate = (why: string) =>
        self === undefined ? Effect.void : within(
          pg.unsafe(terminateSql, [self["pid"], self["started"]]),
          heartbeatTimeout
        ).pipe(
          Effect.andThen(
            Effect.logWarning(`eventcore: projection locks of ${schema}: ${why}; terminated their session`)
          ),
          Effect.catchCause((cause) =>
            Effect.logWarning(
              `eventcore: projection locks of ${schema}: ${why}, and their session could not be terminated; ` +
                "the server frees the locks when it notices the connection is gone",
              cause
            )
          )
        )
      const lost = yield* Deferred.make<void>()
      // Acts once per session: the heartbeat, a failed `held` check and a failed unlock may
      // each find the same broken session, up to a heartbeat apart. By the second, runners may
      // hold leases on a fresh session; invalidating that one would open yet another connection
      // beside it.
      let broken = false
      const loseAll = (why: string, cause: Cause.Cause<unknown>) =>
        Effect.suspend(() => {
          if (broken) return Effect.void
          broken = true
          return Effect.gen(function*() {
            // Out of the ref before anyone hears of the loss, so that runners trying again get
            // a fresh session; and only this session: the ref may hold another by now.
            if (current === lost) yield* RcRef.invalidate(sessions)
            yield* Deferred.succeed(lost, undefined)
            yield* Effect.logWarning(`eventcore: projection locks of ${schema}: ${why}`, cause)
            yield* terminate(why)
          })
        }).pipe(Effect.uninterruptible)
      yield* Effect.forkScoped(
        Effect.gen(function*() {
          while (true) {
            yield* sleepReal(heartbeat)
            yield* within(query("select 1", []), heartbeatTimeout)
          }
        }).pipe(
          Effect.catchCause((cause) =>
            Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : loseAll("the lock connection failed", cause)
          )
        )
      )
      current = lost
      return { query, lost: Deferred.await(lost), loseAll } satisfies Session
    })
  })

  const local = new Map<string, Semaphore.Semaphore>()
  const turnOf = (name: string) => {
    let semaphore = local.get(name)
    if (semaphore === undefined) {
      semaphore = Semaphore.makeUnsafe(1)
      local.set(name, semaphore)
    }
    return semaphore
  }

  /**
   * One try on the current session, in the caller's scope: the lease, or undefined (the
   * scope's finalizers then only give the session back).
   */
  const tryOnce = (name: string) =>
    Effect.gen(function*() {
      const session = yield* RcRef.get(sessions)
      // Registered before the try: whatever interrupts it, the lock does not stay behind. Only
      // a try that may have been granted is undone (an unlock of a lock not held makes the
      // server log a warning, and waiting runners try every `pollInterval`).
      let mayHold = true
      yield* Effect.addFinalizer(() =>
        mayHold
          ? within(session.query(`select pg_advisory_unlock(${keySql})`, [schema, name]), heartbeatTimeout).pipe(
            // terminated, the session loses its other leases too: tell their runners now
            Effect.catchCause((cause) => session.loseAll(`the lock of projection ${name} could not be released`, cause))
          )
          : Effect.void
      )
      const rows = yield* session.query(`select pg_try_advisory_lock(${keySql}) as locked`, [schema, name])
      mayHold = rows[0]?.["locked"] === true
      if (!mayHold) return undefined
      const held = within(session.query(heldSql, [schema, name]), heartbeatTimeout).pipe(
        Effect.map((answer) => answer[0]?.["held"] === true),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.interrupt
            // the heartbeat would find the same, later: every lease on the session is lost now
            : Effect.as(session.loseAll("the lock connection failed a check", cause), false)
        )
      )
      return { lost: session.lost, held }
    })

  const acquire = (name: string) =>
    Effect.gen(function*() {
      yield* Semaphore.takeScoped(turnOf(name), 1)
      while (true) {
        // The try is interruptible; handing its scope over to the caller's is not.
        const lease = yield* Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const attempt = yield* Scope.make()
            const exit = yield* Effect.exit(restore(Scope.provide(tryOnce(name), attempt)))
            if (Exit.isSuccess(exit) && exit.value !== undefined) {
              yield* Effect.addFinalizer((end) => Scope.close(attempt, end))
              return exit.value
            }
            yield* Scope.close(attempt, exit)
            return yield* exit
          })
        )
        if (lease !== undefined) return lease
        yield* sleepReal(pollInterval)
      }
    })

  return ProjectionLock.of({
    acquire: (name) =>
      acquire(name).pipe(
        Effect.catchDefect((defect) =>
          Effect.fail(new EventStoreError({ operation: "projection lock", transient: true, cause: defect }))
        )
      )
  })
})

/**
 * The PostgreSQL projection lock as a layer.
 *
 * @example
 * ```ts
 * import { PostgresProjectionLock } from "eventcore/postgres"
 *
 * // Needs a PgClient.
 * const Lock = PostgresProjectionLock.layer({ heartbeat: "2 seconds", heartbeatTimeout: "10 seconds" })
 * ```
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<ProjectionLock, InvalidInput, PgClient.PgClient> =>
  Layer.effect(ProjectionLock, make(options))
