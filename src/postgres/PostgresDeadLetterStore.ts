/**
 * Dead letters in PostgreSQL: the `dead_letters` table of the store's schema, one row per
 * (projection, event). A record made inside a transactional projection's transaction commits
 * with it.
 *
 * @since 0.1.0
 */
import { DateTime, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { type DeadLetter, DeadLetterStore } from "../DeadLetterStore.ts"
import type { InvalidInput } from "../Errors.ts"
import type { Position } from "../Position.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"

/**
 * Where the dead letters are kept: the store's schema (default `"eventcore"`), migrated by the event store.
 *
 * @example
 * ```ts
 * import { PostgresDeadLetterStore } from "eventcore/postgres"
 *
 * const options: PostgresDeadLetterStore.Options = { schema: "billing" }
 * const DeadLetters = PostgresDeadLetterStore.layer(options) // needs a SqlClient
 * ```
 * @since 0.1.0
 */
export interface Options {
  readonly schema?: string | undefined
}

interface Row {
  readonly projection: string
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: string | number | bigint
  readonly position: string
  readonly type: string
  readonly error: string
  readonly attempts: number
  readonly recorded_at: Date | string
}

/**
 * Builds the dead-letter store on the `SqlClient` in context (its table comes with the
 * store's migrations).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresDeadLetterStore } from "eventcore/postgres"
 *
 * const program = Effect.gen(function*() {
 *   const deadLetters = yield* PostgresDeadLetterStore.make({ schema: "billing" }) // needs a SqlClient
 *   return yield* deadLetters.list("balances")
 * })
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(
  options?: Options
): Effect.fn.Return<DeadLetterStore["Service"], InvalidInput | SqlError, SqlClient.SqlClient> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const recordSql = `insert into ${schema}.dead_letters
    (projection, event_id, stream_id, stream_version, position, type, error, attempts, recorded_at)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    on conflict (projection, event_id) do update set error = excluded.error, attempts = excluded.attempts,
      recorded_at = excluded.recorded_at`
  const columns =
    `projection, event_id::text as event_id, stream_id, stream_version, position, type, error, attempts, recorded_at`
  const toLetter = (row: Row): DeadLetter => ({
    projection: row.projection,
    eventId: row.event_id,
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    position: row.position as Position,
    type: row.type,
    error: row.error,
    attempts: Number(row.attempts),
    recordedAt: DateTime.makeUnsafe(row.recorded_at)
  })
  return DeadLetterStore.of({
    record: (letter) =>
      sql.unsafe(recordSql, [
        letter.projection,
        letter.eventId,
        letter.streamId,
        letter.streamVersion,
        letter.position,
        letter.type,
        letter.error,
        letter.attempts,
        DateTime.toDateUtc(letter.recordedAt)
      ]).pipe(Effect.asVoid, Effect.mapError((error) => fromSqlError("dead letter record", error))),
    list: (projection) =>
      (projection === undefined
        ? sql.unsafe<Row>(`select ${columns} from ${schema}.dead_letters order by position collate "C"`)
        : sql.unsafe<Row>(
          `select ${columns} from ${schema}.dead_letters where projection = $1 order by position collate "C"`,
          [projection]
        )).pipe(
          Effect.map((rows) => rows.map(toLetter)),
          Effect.mapError((error) => fromSqlError("dead letter list", error))
        ),
    clear: (projection) =>
      sql.unsafe(`delete from ${schema}.dead_letters where projection = $1`, [projection]).pipe(
        Effect.asVoid,
        Effect.mapError((error) => fromSqlError("dead letter clear", error))
      ),
    discard: (projection, eventId) =>
      // The id is compared as text: a malformed one matches nothing rather than failing the cast.
      sql.unsafe<{ readonly discarded: number }>(
        `delete from ${schema}.dead_letters where projection = $1 and event_id::text = lower($2) returning 1 as discarded`,
        [projection, eventId]
      ).pipe(
        Effect.map((rows) => rows.length > 0),
        Effect.mapError((error) => fromSqlError("dead letter discard", error))
      ),
    // One aggregate query, whatever the number of rows: health checks run it on every probe.
    counts: Effect.suspend(() =>
      sql.unsafe<{ readonly projection: string; readonly n: number }>(
        `select projection, count(*)::int as n from ${schema}.dead_letters group by projection`
      )
    ).pipe(
      Effect.map((rows) => Object.fromEntries(rows.map((row) => [row.projection, Number(row.n)]))),
      Effect.mapError((error) => fromSqlError("dead letter counts", error))
    )
  })
})

/**
 * The PostgreSQL dead-letter store as a layer.
 *
 * @example
 * ```ts
 * import { PostgresDeadLetterStore } from "eventcore/postgres"
 *
 * const DeadLetters = PostgresDeadLetterStore.layer({ schema: "eventcore" }) // needs a SqlClient
 * ```
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<DeadLetterStore, InvalidInput | SqlError, SqlClient.SqlClient> =>
  Layer.effect(DeadLetterStore, make(options))
