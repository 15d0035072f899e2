/**
 * Blue/green read models on PostgreSQL: the active version of each read model in the store
 * schema's `read_model_versions` table (`layer`, part of `PostgresProjection.layer`), and what
 * an operator needs without the application's code — `versions` lists a read model's versions
 * with their checkpoints, `promote` makes a caught-up one active, `retire` forgets an old one
 * (the CLI's `read-models versions`, `promote` and `retire`).
 *
 * @since 0.3.0
 */
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as BlueGreen from "../BlueGreen.ts"
import type { EventStoreError, InvalidInput } from "../Errors.ts"
import * as Position from "../Position.ts"
import { fromSqlError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"
import * as PostgresProjectionLock from "./PostgresProjectionLock.ts"

/**
 * Where the active versions are kept.
 *
 * @example
 * ```ts
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const options: PostgresBlueGreen.Options = { schema: "billing" } // the store's schema
 * const ActiveVersions = PostgresBlueGreen.layer(options) // needs a SqlClient
 * ```
 * @since 0.3.0
 */
export interface Options {
  /** The PostgreSQL schema of the store (default `"eventcore"`), migrated by the event store. */
  readonly schema?: string | undefined
}

const failed = (operation: string) => Effect.mapError((error: SqlError) => fromSqlError(operation, error))

/**
 * The active versions on the `SqlClient` in context.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const active = Effect.flatMap(PostgresBlueGreen.make({ schema: "eventcore" }), (versions) => versions.get("orders")) // needs a SqlClient
 * ```
 * @since 0.3.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const table = `${schema}.read_model_versions`
  const select = (name: string) =>
    sql.unsafe<{ readonly active: number }>(`select active from ${table} where name = $1`, [name]).pipe(
      Effect.map((rows) => rows[0] === undefined ? undefined : Number(rows[0].active))
    )
  const activeAfter = (name: string, fallback: number) => Effect.map(select(name), (active) => active ?? fallback)

  return BlueGreen.ActiveVersions.of({
    get: (name) => select(name).pipe(failed("read model version get")),
    initialize: (name, version) =>
      sql.unsafe(`insert into ${table} (name, active) values ($1, $2) on conflict (name) do nothing`, [name, version])
        .pipe(Effect.andThen(activeAfter(name, version)), failed("read model version initialize")),
    activate: (name, version, activateOptions) =>
      sql.unsafe(
        `insert into ${table} as v (name, active) values ($1, $2)
         on conflict (name) do update set active = excluded.active, updated_at = now()
         ${activateOptions?.onlyUpward === true ? "where v.active < excluded.active" : ""}`,
        [name, version]
      ).pipe(Effect.andThen(activeAfter(name, version)), failed("read model version activate"))
  })
})

/**
 * The PostgreSQL active versions as a layer (included in `PostgresProjection.layer`).
 *
 * @example
 * ```ts
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const ActiveVersions = PostgresBlueGreen.layer({ schema: "eventcore" }) // needs a SqlClient
 * ```
 * @since 0.3.0
 */
export const layer = (
  options?: Options
): Layer.Layer<BlueGreen.ActiveVersions, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(BlueGreen.ActiveVersions, make(options))

/**
 * One version of a read model, as the store sees it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * // A version that could be promoted: caught up with every event in the store, and not rebuilding.
 * const promotable = (info: PostgresBlueGreen.VersionInfo) =>
 *   !info.active && !info.rebuildPending && info.checkpoint !== undefined && info.behind === 0
 *
 * const candidates = Effect.map(PostgresBlueGreen.versions("orders"), (versions) => versions.filter(promotable))
 * ```
 * @since 0.3.0
 */
export interface VersionInfo {
  readonly version: number
  /** The name it runs under (checkpoint, lock, dead letters): `BlueGreen.versionedName`. */
  readonly name: string
  /** Whether readers are served from it. */
  readonly active: boolean
  /** Where its runner has got to; `undefined` before its first save (or during a rebuild). */
  readonly checkpoint: Position.Position | undefined
  /** Whether a rebuild of it has begun and not finished. */
  readonly rebuildPending: boolean
  /**
   * Events in the store after its checkpoint, of every type, counted up to `cap`: an upper
   * bound of its lag (the store does not know which events it wants).
   */
  readonly behind: number
  /** True when `behind` stopped at the cap. */
  readonly capped: boolean
  /** Whether a runner holds its lock (is running it), in any process on this database. */
  readonly running: boolean
}

/**
 * Lists the versions of a read model the store knows — those with a checkpoint, and the
 * active one — with their checkpoints, oldest first. Reads only.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const report = Effect.map(
 *   PostgresBlueGreen.versions("orders", { schema: "eventcore" }), // needs a SqlClient
 *   (versions) => versions.map((v) => `v${v.version}${v.active ? " (active)" : ""}: ${v.behind} behind`)
 * )
 * ```
 * @since 0.3.0
 */
export const versions = Effect.fn("PostgresBlueGreen.versions")(function*(
  name: string,
  options?: Options & { readonly cap?: number | undefined }
): Effect.fn.Return<ReadonlyArray<VersionInfo>, EventStoreError | InvalidInput, SqlClient.SqlClient> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const cap = Math.max(1, Math.floor(options?.cap ?? 10_000))
  return yield* Effect.gen(function*() {
    const active = yield* activeOf(sql, schema, name, false)
    const listed: Array<VersionInfo> = []
    for (const row of yield* knownOf(sql, schema, name, active)) {
      const after = row.checkpoint ?? Position.initial
      const counted = yield* sql.unsafe<{ readonly behind: string }>(
        `select count(*)::text as behind from (
           select 1 from ${schema}.events e where (e.tx_id, e.position) > ($1::xid8, $2::bigint) limit $3
         ) later`,
        [Position.transaction(after).toString(), Position.sequence(after).toString(), cap]
      )
      const behind = Number(counted[0]?.behind ?? 0)
      const versioned = BlueGreen.versionedName(name, row.version)
      listed.push({
        version: row.version,
        name: versioned,
        active: row.version === active,
        checkpoint: row.checkpoint,
        rebuildPending: row.rebuildPending,
        behind,
        capped: behind >= cap,
        running: yield* runningOf(sql, schema, versioned)
      })
    }
    return listed
  }).pipe(Effect.mapError((error) => fromSqlError("read model versions", error)))
})

/**
 * Makes `version` the active version of a read model, for every process (each switches
 * within its `refresh`). Refused with `NotCaughtUp` when it has no checkpoint yet, a rebuild
 * of it is pending, or its checkpoint is behind the active version's (readers would go back);
 * `force: true` skips these checks (e.g. to roll back to an older version). Refused with
 * `UnknownVersion` when the store has no checkpoint of it at all (it never ran) and it is not
 * the active version (promoting the active one changes nothing). Returns the version active
 * before and after.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const promoted = PostgresBlueGreen.promote("orders", 2, { schema: "eventcore" }).pipe( // needs a SqlClient
 *   Effect.catchTag("NotCaughtUp", (refused) => Effect.logWarning(refused.message))
 * )
 * ```
 * @since 0.3.0
 */
export const promote = Effect.fn("PostgresBlueGreen.promote")(function*(
  name: string,
  version: number,
  options?: Options & { readonly force?: boolean | undefined }
): Effect.fn.Return<
  { readonly previous: number; readonly active: number },
  BlueGreen.NotCaughtUp | BlueGreen.UnknownVersion | EventStoreError | InvalidInput,
  SqlClient.SqlClient
> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const target = yield* BlueGreen.parseVersion(name, version)
  const sql = yield* SqlClient.SqlClient
  return yield* sql.withTransaction(Effect.gen(function*() {
    // The row is locked until commit: two promotions at once take turns.
    const previous = yield* activeOf(sql, schema, name, true)
    const rows = yield* knownOf(sql, schema, name, previous)
    const candidate = rows.find((row) => row.version === target)
    if (candidate === undefined) {
      return yield* new BlueGreen.UnknownVersion({ name, version: target, known: rows.map((row) => row.version) })
    }
    const serving = rows.find((row) => row.version === previous)
    if (options?.force !== true && target !== previous) {
      const refuse = (detail: string) => new BlueGreen.NotCaughtUp({ name, version: target, detail })
      if (candidate.rebuildPending) return yield* refuse("a rebuild of it is pending")
      if (candidate.checkpoint === undefined) return yield* refuse("it has saved no checkpoint yet")
      if (serving?.checkpoint !== undefined && Position.isAfter(serving.checkpoint, candidate.checkpoint)) {
        return yield* refuse(
          `its checkpoint ${candidate.checkpoint} is behind ${serving.checkpoint}, where version ${previous} is`
        )
      }
    }
    yield* sql.unsafe(`update ${schema}.read_model_versions set active = $2, updated_at = now() where name = $1`, [
      name,
      target
    ])
    return { previous, active: target }
  })).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fromSqlError("read model promote", error))))
})

/**
 * Retires a version no process serves or runs any more: deletes its checkpoint and dead
 * letters, so it no longer shows in `versions`. Its tables are the application's: drop them
 * yourself. Refused with `RetireRefused` for the active version (even one with no checkpoint
 * yet), or while a runner holds its lock (deploy without it first: a runner that finds its
 * checkpoint gone starts over). The lock is taken for the transaction, so no runner can take it
 * between the check and the delete.
 *
 * @example
 * ```ts
 * import { PostgresBlueGreen } from "eventcore/postgres"
 *
 * const retired = PostgresBlueGreen.retire("orders", 1, { schema: "eventcore" }) // needs a SqlClient
 * ```
 * @since 0.3.0
 */
export const retire = Effect.fn("PostgresBlueGreen.retire")(function*(
  name: string,
  version: number,
  options?: Options
): Effect.fn.Return<
  void,
  BlueGreen.RetireRefused | BlueGreen.UnknownVersion | EventStoreError | InvalidInput,
  SqlClient.SqlClient
> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const target = yield* BlueGreen.parseVersion(name, version)
  const sql = yield* SqlClient.SqlClient
  const versioned = BlueGreen.versionedName(name, target)
  return yield* sql.withTransaction(Effect.gen(function*() {
    // Locks the active version's row: a promotion of this version waits, then finds no checkpoint.
    const active = yield* activeOf(sql, schema, name, true)
    const rows = yield* knownOf(sql, schema, name, active)
    if (!rows.some((row) => row.version === target)) {
      return yield* new BlueGreen.UnknownVersion({ name, version: target, known: rows.map((row) => row.version) })
    }
    const refuse = (detail: string) => new BlueGreen.RetireRefused({ name, version: target, detail })
    if (target === active) return yield* refuse("it is the active version; promote another one first")
    // The runner's own lock key, for this transaction: a transaction-level advisory lock
    // conflicts with the runner's session-level one, so it is not granted while a runner holds
    // it, and no runner takes it (and loads the checkpoint about to go) until this commits.
    const [locked] = yield* sql.unsafe<{ readonly locked: boolean }>(
      `select pg_try_advisory_xact_lock(${lockKey}) as locked`,
      [schema, versioned]
    )
    if (locked?.locked !== true) {
      return yield* refuse(`a runner still holds the lock of ${versioned}; stop it (deploy without it) first`)
    }
    yield* sql.unsafe(`delete from ${schema}.dead_letters where projection = $1`, [versioned])
    yield* sql.unsafe(`delete from ${schema}.checkpoints where name = $1`, [versioned])
  })).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(fromSqlError("read model retire", error))))
})

/** The key of a projection's lock, as PostgresProjectionLock computes it ($1 the schema, $2 the name). */
const lockKey = PostgresProjectionLock.lockKeySql("$1::text", "$2::text")

/**
 * Whether a session holds the projection lock of `versioned` (PostgresProjectionLock: a
 * session advisory lock on a 64-bit hash, which pg_locks shows split into classid and objid).
 */
const runningOf = (sql: SqlClient.SqlClient, schema: string, versioned: string) =>
  Effect.map(
    sql.unsafe<{ readonly running: boolean }>(
      `select exists (select 1 from pg_locks l where ${
        PostgresProjectionLock.grantedLockSql("l", lockKey)
      }) as running`,
      [schema, versioned]
    ),
    (rows) => rows[0]?.running === true
  )

/** The active version (1 when none is recorded); `lock` records it if absent and locks its row. */
const activeOf = (sql: SqlClient.SqlClient, schema: string, name: string, lock: boolean) =>
  Effect.gen(function*() {
    if (lock) {
      yield* sql.unsafe(
        `insert into ${schema}.read_model_versions (name, active) values ($1, 1) on conflict do nothing`,
        [
          name
        ]
      )
    }
    const rows = yield* sql.unsafe<{ readonly active: number }>(
      `select active from ${schema}.read_model_versions where name = $1${lock ? " for update" : ""}`,
      [name]
    )
    return rows[0] === undefined ? 1 : Number(rows[0].active)
  })

/** The checkpoints of a read model's versions: `name` (version 1) and `name@v<n>`. */
const checkpointsOf = (sql: SqlClient.SqlClient, schema: string, name: string) =>
  Effect.map(
    sql.unsafe<{ readonly name: string; readonly position: string | null; readonly rebuild_pending: boolean }>(
      `select name, position, rebuild_pending from ${schema}.checkpoints
       where name = $1 or left(name, length($1) + 2) = $1 || '@v'`,
      [name]
    ),
    (rows) =>
      rows.flatMap((row) => {
        const version = BlueGreen.versionOf(name, row.name)
        return version === undefined ? [] : [{
          version,
          checkpoint: (row.position ?? undefined) as Position.Position | undefined,
          rebuildPending: row.rebuild_pending
        }]
      })
  )

/**
 * The versions the store knows, oldest first: those with a checkpoint, and the active one
 * (with no checkpoint before its runner first saves), as `versions` lists them.
 */
const knownOf = (sql: SqlClient.SqlClient, schema: string, name: string, active: number) =>
  Effect.map(checkpointsOf(sql, schema, name), (rows) => {
    const known = rows.some((row) => row.version === active)
      ? rows
      : [...rows, { version: active, checkpoint: undefined, rebuildPending: false }]
    return known.toSorted((a, b) => a.version - b.version)
  })
