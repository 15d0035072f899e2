/**
 * One active runner per projection name across processes: a PostgreSQL session-level
 * advisory lock, keyed by a 64-bit hash of the schema and the projection name, held on a
 * connection reserved from the pool for as long as the runner is active.
 *
 * - Taking it: `pg_try_advisory_lock` on the reserved connection, retried every
 *   `pollInterval` while another session holds it (waiting runners stay in `Standby`).
 * - Holding it: the connection stays reserved (the pool cannot hand it to anyone else, so no
 *   other code can unlock it or run under it); a heartbeat (`select 1`) every `heartbeat`
 *   notices a broken connection and reports the lease lost, so the runner stops processing.
 * - Losing it: when the holding process dies, its connection closes and PostgreSQL releases
 *   the lock at once; a waiting runner takes it on its next poll.
 * - Releasing it: `pg_advisory_unlock` before the connection goes back to the pool.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Layer } from "effect"
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
}

const keySql = `hashtextextended('eventcore/projection/' || $1::text || '/' || $2::text, 0)`

/**
 * Builds the lock on the `SqlClient` in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const pollInterval = Duration.fromInputUnsafe(options?.pollInterval ?? "500 millis")
  const heartbeat = Duration.fromInputUnsafe(options?.heartbeat ?? "1 second")

  const acquire = (name: string) =>
    Effect.gen(function*() {
      const connection = yield* sql.reserve.pipe(Effect.mapError((error) => fromSqlError("projection lock", error)))
      const query = (text: string) =>
        connection.executeUnprepared(text, [schema, name], undefined).pipe(
          Effect.mapError((error) => fromSqlError("projection lock", error))
        )
      while (true) {
        const rows = yield* query(`select pg_try_advisory_lock(${keySql}) as locked`)
        if ((rows[0] as { readonly locked?: boolean } | undefined)?.locked === true) break
        yield* sleepReal(pollInterval)
      }
      yield* Effect.addFinalizer(() =>
        query(`select pg_advisory_unlock(${keySql})`).pipe(
          Effect.catchCause((cause) =>
            Effect.logWarning(`eventcore: could not unlock projection ${name}; its connection is gone`, cause)
          )
        )
      )
      const lost = yield* Deferred.make<void>()
      const beat = Effect.gen(function*() {
        while (true) {
          yield* sleepReal(heartbeat)
          yield* connection.executeUnprepared("select 1", [], undefined)
        }
      }).pipe(
        Effect.catchCause((cause) =>
          Effect.andThen(
            Effect.logWarning(`eventcore: projection ${name} lost its lock connection`, cause),
            Deferred.succeed(lost, undefined)
          )
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
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<ProjectionLock, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(ProjectionLock, make(options))
