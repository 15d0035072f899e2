/**
 * One active runner per projection name across processes: a PostgreSQL session-level
 * advisory lock, keyed by a 64-bit hash of the schema and the projection name, held on a
 * connection reserved from the pool for as long as the runner is active.
 *
 * - Taking it: `pg_try_advisory_lock` on the reserved connection, retried every
 *   `pollInterval` while another session holds it (waiting runners stay in `Standby`). The
 *   release is registered before the first try, so an interruption at any point (even while a
 *   try that the server granted is in flight) cannot leave the lock on a pooled connection.
 * - Holding it: the connection stays reserved (the pool cannot hand it to anyone else, so no
 *   other code can unlock it or run under it); a heartbeat (`select 1`) every `heartbeat`
 *   notices a broken connection and reports the lease lost, so the runner stops processing.
 *   A heartbeat that gets no answer within `heartbeatTimeout` (a half-open connection, a
 *   stalled server) counts as lost too.
 * - Losing it: when the holding process dies, its connection closes and PostgreSQL releases
 *   the lock at once; a waiting runner takes it on its next poll. When the heartbeat fails,
 *   the lock's session is terminated from another connection (`pg_terminate_backend`, checked
 *   by pid and backend start time), so a session the client can no longer reach does not keep
 *   the lock until the server notices.
 * - Releasing it: `pg_advisory_unlock_all()` (the session holds nothing else) within
 *   `heartbeatTimeout` before the connection goes back to the pool; if that fails or times
 *   out, the session is terminated instead, so it never returns to the pool holding the lock.
 *
 * @since 0.1.0
 */
import { Cause, Deferred, Duration, Effect, Fiber, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"
import { EventStoreError, type InvalidInput } from "../Errors.ts"
import { ProjectionLock } from "../ProjectionLock.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"
import { sleepReal } from "./Wakeups.ts"

/**
 * @since 0.1.0
 */
export interface Options {
  readonly schema?: string | undefined
  /** How often a waiting runner tries the lock again. Default 500 ms. */
  readonly pollInterval?: Duration.Input | undefined
  /** How often a holder checks its connection. Default 1 second. */
  readonly heartbeat?: Duration.Input | undefined
  /**
   * How long a heartbeat (or the unlock) may take before the connection counts as broken.
   * Default 5 seconds.
   */
  readonly heartbeatTimeout?: Duration.Input | undefined
}

const keySql = `hashtextextended('eventcore/projection/' || $1::text || '/' || $2::text, 0)`

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

/**
 * Builds the lock on the `SqlClient` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresProjectionLock } from "eventcore/postgres"
 *
 * const exclusive = Effect.scoped(Effect.gen(function*() {
 *   const locks = yield* PostgresProjectionLock.make({ pollInterval: "1 second" }) // needs a SqlClient
 *   const lease = yield* locks.acquire("balances") // held until the scope closes
 *   yield* Effect.raceFirst(Effect.log("working").pipe(Effect.forever), lease.lost)
 * }))
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const pollInterval = Duration.fromInputUnsafe(options?.pollInterval ?? "500 millis")
  const heartbeat = Duration.fromInputUnsafe(options?.heartbeat ?? "1 second")
  const heartbeatTimeout = Duration.fromInputUnsafe(options?.heartbeatTimeout ?? "5 seconds")

  const acquire = (name: string) =>
    Effect.gen(function*() {
      const connection = yield* sql.reserve.pipe(Effect.mapError((error) => fromSqlError("projection lock", error)))
      const query = (text: string, params: ReadonlyArray<unknown> = [schema, name]) =>
        connection.executeUnprepared(text, params, undefined).pipe(
          Effect.mapError((error) => fromSqlError("projection lock", error))
        )
      // Who this session is, so it can be terminated from elsewhere, and only it (a pid alone
      // may be reused by a later session).
      const [self] = yield* query(
        `select pid, backend_start::text as started from pg_stat_activity where pid = pg_backend_pid()`,
        []
      ) as Effect.Effect<ReadonlyArray<{ readonly pid: number; readonly started: string }>, EventStoreError>
      const terminate = (why: string) =>
        self === undefined
          ? Effect.void
          : within(
            sql.unsafe(
              `select pg_terminate_backend(pid) from pg_stat_activity where pid = $1 and backend_start::text = $2`,
              [self.pid, self.started]
            ),
            heartbeatTimeout
          ).pipe(
            Effect.andThen(Effect.logWarning(`eventcore: projection ${name}: ${why}; terminated its lock session`)),
            Effect.catchCause((cause) =>
              Effect.logWarning(
                `eventcore: projection ${name}: ${why}, and its lock session could not be terminated; ` +
                  "the server frees the lock when it notices the connection is gone",
                cause
              )
            )
          )
      // Registered before the first try: whatever interrupts what follows, the connection does
      // not go back to the pool holding the lock.
      yield* Effect.addFinalizer(() =>
        within(query(`select pg_advisory_unlock_all()`, []), heartbeatTimeout).pipe(
          Effect.catchCause(() => terminate("could not unlock"))
        )
      )
      while (true) {
        const rows = yield* query(`select pg_try_advisory_lock(${keySql}) as locked`)
        if ((rows[0] as { readonly locked?: boolean } | undefined)?.locked === true) break
        yield* sleepReal(pollInterval)
      }
      const lost = yield* Deferred.make<void>()
      const beat = Effect.gen(function*() {
        while (true) {
          yield* sleepReal(heartbeat)
          yield* within(query("select 1", []), heartbeatTimeout)
        }
      }).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.gen(function*() {
            yield* Effect.logWarning(`eventcore: projection ${name} lost its lock connection`, cause)
            yield* Deferred.succeed(lost, undefined)
            // Processing stops (above); the session must go even though the lease's scope is
            // closing meanwhile: it may be alive on the server, holding the lock.
            yield* Effect.uninterruptible(terminate("its lock connection failed"))
          })
        )
      )
      yield* Effect.forkScoped(beat)
      return { lost: Deferred.await(lost) }
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
 * // Needs a SqlClient.
 * const Lock = PostgresProjectionLock.layer({ heartbeat: "2 seconds", heartbeatTimeout: "10 seconds" })
 * ```
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<ProjectionLock, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(ProjectionLock, make(options))
