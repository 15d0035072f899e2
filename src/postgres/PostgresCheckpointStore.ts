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
import { CheckpointStore } from "../CheckpointStore.ts"
import type { InvalidInput } from "../Errors.ts"
import type { Position } from "../Position.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"

/**
 * @since 0.1.0
 */
export interface Options {
  /** The PostgreSQL schema of the store (default `"eventcore"`), migrated by the event store. */
  readonly schema?: string | undefined
}

/**
 * Builds the checkpoint store on the `SqlClient` in context.
 *
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const loadSql = `select position from ${schema}.checkpoints where name = $1`
  // Forward only: a late save (a runner that lost its lock) never moves a checkpoint back.
  const saveSql = `insert into ${schema}.checkpoints as c (name, position, updated_at) values ($1, $2, now())
    on conflict (name) do update set position = excluded.position, updated_at = now()
    where c.position collate "C" < excluded.position collate "C"`
  const resetSql = `delete from ${schema}.checkpoints where name = $1`

  return CheckpointStore.of({
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
    reset: (name) =>
      sql.unsafe(resetSql, [name]).pipe(
        Effect.asVoid,
        Effect.mapError((error) => fromSqlError("checkpoint reset", error))
      )
  })
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
