/**
 * Checkpoints in PostgreSQL: the `checkpoints` table of the store's schema
 * (`name text primary key, position text, updated_at timestamptz`).
 *
 * Every statement goes through the `SqlClient` in context, so a save made inside
 * `sql.withTransaction` commits or rolls back with the read-model writes around it: that is
 * what gives `PostgresProjection.transactional` its exactly-once effects.
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { CheckpointMoved, CheckpointStore } from "../CheckpointStore.ts"
import type { InvalidInput } from "../Errors.ts"
import type { Position } from "../Position.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"
import * as Tracing from "./tracing.ts"

/**
 * Where the checkpoints are kept.
 *
 * @example
 * ```ts
 * import { PostgresCheckpointStore } from "eventcore/postgres"
 *
 * const options: PostgresCheckpointStore.Options = { schema: "billing" } // the store's schema
 * const Checkpoints = PostgresCheckpointStore.layer(options) // needs a SqlClient
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** The PostgreSQL schema of the store (default `"eventcore"`), migrated by the event store. */
  readonly schema?: string | undefined
}

/**
 * Builds the checkpoint store on the `SqlClient` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresCheckpointStore } from "eventcore/postgres"
 *
 * const program = Effect.gen(function*() {
 *   const checkpoints = yield* PostgresCheckpointStore.make({ schema: "billing" }) // needs a SqlClient
 *   return yield* checkpoints.load("balances")
 * })
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const loadSql = `select position from ${schema}.checkpoints where name = $1 and position is not null`
  // Forward only: a late save (a runner that lost its lock) never moves a checkpoint back.
  const saveSql = `insert into ${schema}.checkpoints as c (name, position, updated_at) values ($1, $2, now())
    on conflict (name) do update set position = excluded.position, updated_at = now()
    where c.position collate "C" < excluded.position collate "C"`
  // Compare-and-set: inside a transaction the row (or, for a first save, its key) stays locked
  // until commit, so of two runners committing batches from the same checkpoint one waits,
  // then finds it moved.
  const advanceSql = `update ${schema}.checkpoints set position = $3, updated_at = now()
    where name = $1 and position = $2 and not rebuild_pending returning 1 as advanced`
  const createSql = `insert into ${schema}.checkpoints (name, position, updated_at) values ($1, $2, now())
    on conflict (name) do nothing returning 1 as advanced`
  const resetSql = `delete from ${schema}.checkpoints where name = $1`
  // A pending rebuild keeps the row (its position stays until the rebuild resets it).
  const beginRebuildSql = `insert into ${schema}.checkpoints as c (name, position, updated_at, rebuild_pending)
    values ($1, null, now(), true)
    on conflict (name) do update set rebuild_pending = true, updated_at = now()`
  const rebuildPendingSql = `select rebuild_pending from ${schema}.checkpoints where name = $1`

  const store = CheckpointStore.of({
    load: (name) =>
      sql.unsafe<{ readonly position: string }>(loadSql, [name]).pipe(
        Effect.map((rows) => rows[0]?.position as Position | undefined),
        Effect.mapError((error) => fromSqlError("checkpoint load", error))
      ),
    save: (name, position) =>
      sql.unsafe(saveSql, [name, position]).pipe(
        Effect.asVoid,
        Effect.mapError((error) => fromSqlError("checkpoint save", error))
      ),
    advance: (name, from, to) =>
      (from === undefined ? sql.unsafe(createSql, [name, to]) : sql.unsafe(advanceSql, [name, from, to])).pipe(
        Effect.mapError((error) => fromSqlError("checkpoint save", error)),
        Effect.flatMap((rows) =>
          rows.length === 1 ? Effect.void : Effect.fail(new CheckpointMoved({ name, expected: from }))
        )
      ),
    reset: (name) =>
      sql.unsafe(resetSql, [name]).pipe(
        Effect.asVoid,
        Effect.mapError((error) => fromSqlError("checkpoint reset", error))
      ),
    beginRebuild: (name) =>
      sql.unsafe(beginRebuildSql, [name]).pipe(
        Effect.asVoid,
        Effect.mapError((error) => fromSqlError("checkpoint rebuild", error))
      ),
    rebuildPending: (name) =>
      sql.unsafe<{ readonly rebuild_pending: boolean }>(rebuildPendingSql, [name]).pipe(
        Effect.map((rows) => rows[0]?.rebuild_pending === true),
        Effect.mapError((error) => fromSqlError("checkpoint rebuild", error))
      )
  })
  // A span per operation (tracing.ts): a runner's checkpoint statements are never root spans.
  return Tracing.checkpoints(store, { schema, database: Tracing.databaseOfClient(sql) })
})

/**
 * The PostgreSQL checkpoint store as a layer (the event store's layer creates the table).
 *
 * @example
 * ```ts
 * import { PostgresCheckpointStore } from "eventcore/postgres"
 *
 * const Checkpoints = PostgresCheckpointStore.layer({ schema: "eventcore" }) // needs a SqlClient
 * ```
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<CheckpointStore, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(CheckpointStore, make(options))
