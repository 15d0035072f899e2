/**
 * Read models in PostgreSQL tables, with typed queries and migrations for their tables.
 *
 * - `make`: updated by a projection runner, each batch and the checkpoint in one transaction
 *   (exactly once); queries wait for a command's writes with `after(result)`.
 * - `inline`: updated in the transaction of the append itself, as Marten's and Emmett's
 *   inline projections are: consistent at commit, at the price of a transaction around every
 *   append (see docs/read-models.md for what that costs).
 *
 * Tables are created and evolved by migrations run with Effect's SQL migrator, recorded in a
 * table of the read model's own, under a lock, so several processes may start at once.
 *
 * @since 0.3.0
 */
import { DateTime, Effect, Layer, Result, type Scope } from "effect"
import { Migrator, SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as BlueGreen from "../BlueGreen.ts"
import type { CheckpointStore } from "../CheckpointStore.ts"
import type { DeadLetterStore } from "../DeadLetterStore.ts"
import { EventDecodeError, EventStoreError, type InvalidInput } from "../Errors.ts"
import type * as Event from "../Event.ts"
import * as EventStore from "../EventStore.ts"
import * as Position from "../Position.ts"
import type * as Projection from "../Projection.ts"
import type { ProjectionLock } from "../ProjectionLock.ts"
import * as ProjectionRunner from "../ProjectionRunner.ts"
import * as ReadModel from "../ReadModel.ts"
import * as Serializer from "../Serializer.ts"
import type { StoredEvent } from "../StoredEvent.ts"
import { fromAppendError } from "./errors.ts"
import * as Migrations from "./Migrations.ts"
import { OwnTransaction } from "./ownTransaction.ts"
import * as PostgresProjection from "./PostgresProjection.ts"
import { eventColumns, type EventRow, toStoredEvent } from "./rows.ts"

/**
 * Queries against the read model's tables: functions returning Effects that need the
 * `SqlClient` (provided by the read model).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import type { PostgresReadModel } from "eventcore/postgres"
 *
 * const queries = {
 *   balance: (account: string) =>
 *     Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       Effect.map(sql<{ balance: string }>`select balance::text from balances where account = ${account}`,
 *         (rows) => Number(rows[0]?.balance ?? 0)))
 * } satisfies PostgresReadModel.SqlQueries
 * ```
 * @since 0.3.0
 */
export type SqlQueries = {
  readonly [name: string]: (...args: never) => Effect.Effect<unknown, unknown, SqlClient.SqlClient>
}

/**
 * The queries as callers see them: the `SqlClient` provided.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { SqlClient } from "effect/sql"
 * import type { SqlError } from "effect/sql/SqlError"
 * import type { ReadModel } from "eventcore"
 * import type { PostgresReadModel } from "eventcore/postgres"
 *
 * type Queries = { readonly balance: (account: string) => Effect.Effect<number, SqlError, SqlClient.SqlClient> }
 *
 * // What `PostgresReadModel.make` gives callers: the same queries, needing nothing.
 * declare const balances: ReadModel.ReadModel<PostgresReadModel.Provided<Queries>>
 * const balance: Effect.Effect<number, SqlError> = balances.query.balance("acc-1")
 * ```
 * @since 0.3.0
 */
export type Provided<D extends SqlQueries> = {
  readonly [K in keyof D]: D[K] extends (...args: infer A) => Effect.Effect<infer X, infer Y, SqlClient.SqlClient>
    ? (...args: A) => Effect.Effect<X, Y>
    : never
}

/**
 * What both kinds of PostgreSQL read model are made of.
 *
 * @example
 * ```ts
 * import type { Event } from "eventcore"
 * import type { PostgresReadModel } from "eventcore/postgres"
 *
 * // The application's conventions, for every read model it defines.
 * const withConventions = <E extends Event.Tagged, Err, R, D extends PostgresReadModel.SqlQueries>(
 *   options: PostgresReadModel.Options<E, Err, R, D>
 * ): PostgresReadModel.Options<E, Err, R, D> => ({
 *   migrationsTable: `read_models.${options.name}_migrations`,
 *   ...options
 * })
 * ```
 * @since 0.3.0
 */
export interface Options<E extends Event.Tagged, Err, R, D extends SqlQueries> extends Projection.CommonOptions<E> {
  /**
   * The migrations of the read model's tables, by `<id>_<name>` (`"1_create_balances"`), run
   * in order of id, each once, before the read model starts.
   */
  readonly migrations: Readonly<Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>>
  /**
   * Where applied migrations are recorded; default `eventcore_read_model_<name>` (the name
   * with anything but letters, digits and `_` replaced), in the search path. Schema-qualify
   * it (`"app.balances_migrations"`) to keep it beside the tables.
   */
  readonly migrationsTable?: string | undefined
  /** Applies one event, inside the read model's transaction (use the `SqlClient` from context). */
  readonly handle: (event: E, stored: StoredEvent) => Effect.Effect<void, Err, R>
  /** Clears the tables before a rebuild. */
  readonly reset?: Effect.Effect<void, Err, R> | undefined
  /** The read model's queries. */
  readonly queries: D
}

const defaultMigrationsTable = (name: string) => `eventcore_read_model_${name.replace(/[^A-Za-z0-9_]/g, "_")}`

/**
 * Runs the read model's migrations (each once, in order, under the migrator's lock).
 *
 * With nothing pending it only reads the migrations table: a role with `select` on it (and
 * no more) starts. Effect's migrator locks that table (ACCESS EXCLUSIVE) before it looks,
 * which PostgreSQL allows only with UPDATE, DELETE or TRUNCATE, so it runs only when a
 * migration is pending; concurrent starts still serialize on its lock. A pending migration the
 * role may not apply fails with a `MigrationError` that says to run it as the migration role
 * (docs/roles.md).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PostgresReadModel } from "eventcore/postgres"
 *
 * const migrate = PostgresReadModel.migrate("balances", {
 *   "1_create_balances": Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *     sql`create table if not exists balances (account text primary key, balance bigint not null)`)
 * })
 * ```
 * @since 0.3.0
 */
export const migrate = Effect.fn("PostgresReadModel.migrate")(function*(
  name: string,
  migrations: Readonly<Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>>>,
  migrationsTable?: string
): Effect.fn.Return<void, Migrator.MigrationError | SqlError, SqlClient.SqlClient> {
  const sql = yield* SqlClient.SqlClient
  const table = migrationsTable ?? defaultMigrationsTable(name)
  // The ids the migrator would consider: keys `<id>_<name>`; it runs those above the latest recorded.
  const ids = Object.keys(migrations).flatMap((key) => {
    const match = /^(\d+)_(.+)$/.exec(key)
    return match?.[1] === undefined ? [] : [Number(match[1])]
  })
  // The table named as the migrator names it (quoted as its statements quote it).
  const [quoted] = sql`${sql(table)}`.compile(true)
  const [found] = yield* sql<{ readonly role: string; readonly found: boolean }>`select current_user::text as role,
    to_regclass(${quoted}) is not null as found`.withoutTransform
  const pending = found?.found === true
    ? yield* Effect.map(
      sql<{ readonly latest: number | null }>`select max(migration_id) as latest from ${sql(table)}`.withoutTransform,
      (rows) => ids.filter((id) => id > Number(rows[0]?.latest ?? 0))
    )
    : ids
  // A missing table is the migrator's to create, even with no migrations (as before).
  if (found?.found === true && pending.length === 0) return
  yield* Migrator.make({})({ loader: Migrator.fromRecord({ ...migrations }), table }).pipe(
    Effect.mapError((error) => {
      const denied = permissionDenied(error)
      return denied === undefined ? error : new Migrator.MigrationError({
        kind: "Failed",
        cause: error,
        message: `Read model ${name} has migrations pending (${pending.toSorted((a, b) => a - b).join(", ")}) that ` +
          `role ${found?.role ?? "?"} cannot apply (${denied}). Run the read model's migrations as the migration ` +
          `role (PostgresReadModel.migrate connected as it, with migrations table ${table}), then start again. ` +
          `See docs/roles.md.`
      })
    })
  )
})

/**
 * The server's message when it refused for want of a privilege (SQLSTATE 42501): the
 * migrator's lock or table, or a statement of a migration (wrapped in a `MigrationError`).
 */
const permissionDenied = (error: Migrator.MigrationError | SqlError): string | undefined => {
  const sqlError: unknown = error._tag === "SqlError" ? error : error.cause
  if (typeof sqlError !== "object" || sqlError === null || !("reason" in sqlError)) return undefined
  const reason: unknown = sqlError.reason
  const cause: unknown = typeof reason === "object" && reason !== null && "cause" in reason ? reason.cause : undefined
  if (typeof cause !== "object" || cause === null) return undefined
  const { code, message } = cause as { readonly code?: unknown; readonly message?: unknown }
  return code === "42501" ? (typeof message === "string" ? message : "permission denied") : undefined
}

const provideQueries = <D extends SqlQueries>(queries: D, sql: SqlClient.SqlClient): Provided<D> => {
  const provided: Record<string, (...args: never) => Effect.Effect<unknown, unknown>> = {}
  for (const key of Object.keys(queries)) {
    const query = queries[key]
    if (query !== undefined) {
      provided[key] = (...args: never) => Effect.provideService(query(...args), SqlClient.SqlClient, sql)
    }
  }
  return provided as unknown as Provided<D>
}

/**
 * A read model kept by a projection runner: migrations first, then a transactional runner
 * (every batch and the checkpoint in one transaction; one runner per name across processes).
 * Scoped: the runner stops with the scope.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Event } from "eventcore"
 * import { PostgresReadModel } from "eventcore/postgres"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const balances = PostgresReadModel.make({
 *   name: "balances",
 *   events: Event.catalog(Deposited),
 *   migrations: {
 *     "1_create_balances": Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`create table balances (account text primary key, balance bigint not null)`)
 *   },
 *   handle: (event, stored) =>
 *     Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`insert into balances values (${stored.streamId}, ${event.amount})
 *           on conflict (account) do update set balance = balances.balance + excluded.balance`),
 *   reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql`truncate balances`),
 *   queries: {
 *     balance: (account: string) =>
 *       Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *         Effect.map(sql<{ balance: string }>`select balance::text from balances where account = ${account}`,
 *           (rows) => Number(rows[0]?.balance ?? 0)))
 *   }
 * })
 * // const model = yield* balances; yield* model.after(result).balance("acc-1")
 * ```
 * @since 0.3.0
 */
export const make = <E extends Event.Tagged, Err, R, D extends SqlQueries>(
  options: Options<E, Err, R, D> & {
    /**
     * The version (default 1), for blue/green rebuilds (`ReadModel.blueGreen`): a version
     * other than 1 runs under its own name, `BlueGreen.versionedName(name, version)` —
     * checkpoint, lock, dead letters, and the default migrations table — beside the others.
     * Give each version tables of its own (`BlueGreen.tableName(base, version)`).
     */
    readonly version?: number | undefined
    /** The runner's settings (page size, retries, `rebuildCheck`). */
    readonly runner?: ProjectionRunner.Options | undefined
  }
): Effect.Effect<
  ReadModel.ReadModel<Provided<D>> & { readonly runner: ProjectionRunner.Runner<void> },
  Migrator.MigrationError | SqlError | InvalidInput,
  | SqlClient.SqlClient
  | EventStore.EventStore
  | CheckpointStore
  | DeadLetterStore
  | ProjectionLock
  | Scope.Scope
  | Exclude<R, SqlClient.SqlClient>
> =>
  Effect.gen(function*() {
    const { migrations, migrationsTable, queries, runner: runnerOptions, version: given, ...projection } = options
    const version = yield* BlueGreen.parseVersion(options.name, given ?? 1)
    const name = BlueGreen.versionedName(options.name, version)
    const sql = yield* SqlClient.SqlClient
    yield* migrate(name, migrations, migrationsTable)
    const transactional = yield* PostgresProjection.transactional({ ...projection, name })
    const runner = yield* ProjectionRunner.start(
      transactional as Projection.Projection<E, void, unknown, Exclude<R, SqlClient.SqlClient> | SqlClient.SqlClient>,
      runnerOptions
    )
    return {
      ...ReadModel.make(options.name, provideQueries(queries, sql), ReadModel.awaitRunner(name, runner), version),
      runner
    }
  })

/**
 * An inline read model: `layer` wraps the event store so that every append runs in a
 * transaction that also applies the appended events to the read model; `readModel` gives its
 * queries, consistent at commit (`after` does not wait).
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { PostgresEventStore, type PostgresReadModel } from "eventcore/postgres"
 *
 * // The store, wrapped so that every append also updates the read model.
 * const storeWith = <D extends PostgresReadModel.SqlQueries, Err, R>(model: PostgresReadModel.Inline<D, Err, R>) =>
 *   model.layer.pipe(Layer.provideMerge(PostgresEventStore.layer()))
 * ```
 * @since 0.3.0
 */
export interface Inline<D extends SqlQueries, Err, R> {
  readonly name: string
  /**
   * Wraps the `EventStore` below it: runs the migrations when built, then applies every append
   * and the read model's updates in one transaction. A failing update fails the append
   * (`EventStoreError`, operation `inline read model <name>`), and nothing is written.
   */
  readonly layer: Layer.Layer<
    EventStore.EventStore,
    Migrator.MigrationError | SqlError,
    EventStore.EventStore | SqlClient.SqlClient | Exclude<R, SqlClient.SqlClient>
  >
  /** The queries. */
  readonly readModel: Effect.Effect<ReadModel.ReadModel<Provided<D>>, never, SqlClient.SqlClient>
  /**
   * Rebuilds the read model from every event in the store, in one transaction that holds off
   * appends meanwhile (a `SHARE` lock on the store's events table): for a read model added to
   * a store that already has history, or after a change to `handle`.
   */
  readonly rebuild: (options?: { readonly schema?: string | undefined }) => Effect.Effect<
    void,
    Err | SqlError | EventDecodeError,
    SqlClient.SqlClient | Exclude<R, SqlClient.SqlClient>
  >
}

/**
 * Defines an inline read model (see `Inline`).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { Event } from "eventcore"
 * import { PostgresEventStore, PostgresReadModel } from "eventcore/postgres"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const Balances = PostgresReadModel.inline({
 *   name: "balances",
 *   events: Event.catalog(Deposited),
 *   migrations: {
 *     "1_create": Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`create table balances (account text primary key, balance bigint not null)`)
 *   },
 *   handle: (event, stored) =>
 *     Effect.flatMap(SqlClient.SqlClient, (sql) =>
 *       sql`insert into balances values (${stored.streamId}, ${event.amount})
 *           on conflict (account) do update set balance = balances.balance + excluded.balance`),
 *   queries: {
 *     total: () => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`select sum(balance)::text as total from balances`)
 *   }
 * })
 *
 * // the store, wrapped: every append updates `balances` in its own transaction
 * const Store = Balances.layer.pipe(Layer.provideMerge(PostgresEventStore.layer()))
 * ```
 * @since 0.3.0
 */
export const inline = <E extends Event.Tagged, Err, R, D extends SqlQueries>(
  options: Omit<Options<E, Err, R, D>, "onFailure" | "checkpoint" | "startFrom">
): Inline<D, Err, R> => {
  const { events: catalog, filter, handle, name } = options
  const types = new Set(catalog.types)
  const matches = (stored: StoredEvent) =>
    types.has(stored.type) && (filter === undefined || EventStore.matches(filter, stored))
  // R is the handler's context: the SqlClient (provided here) and whatever else it needs
  // (taken from the layer's or the caller's context).
  type Rest = Exclude<R, SqlClient.SqlClient>
  const apply = (stored: StoredEvent, sql: SqlClient.SqlClient): Effect.Effect<void, Err | EventDecodeError, Rest> => {
    if (!matches(stored)) return Effect.void
    const decoded = catalog.decode(stored)
    if (Result.isFailure(decoded)) return Effect.fail(decoded.failure)
    return Effect.provideService(handle(decoded.success, stored), SqlClient.SqlClient, sql) as Effect.Effect<
      void,
      Err,
      Rest
    >
  }

  const layer = Layer.effect(
    EventStore.EventStore,
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const sql = yield* SqlClient.SqlClient
      const context = yield* Effect.context<Rest>()
      yield* migrate(name, options.migrations, options.migrationsTable)
      const failed = (cause: unknown) =>
        new EventStoreError({ operation: `inline read model ${name}`, transient: false, cause })
      const append = (
        request: EventStore.AppendRequest
      ): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> =>
        sql.withTransaction(Effect.gen(function*() {
          // First in a transaction of its own: no savepoint needed (ownTransaction.ts).
          const result = yield* Effect.provideService(store.append(request), OwnTransaction, true)
          if (result.replayed || result.events.length === 0) return result
          const recordedAt = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          for (let i = 0; i < result.events.length; i++) {
            const committed = result.events[i]
            const appended = request.events[i]
            if (committed === undefined || appended === undefined) continue
            const stored: StoredEvent = {
              eventId: committed.eventId,
              streamId: committed.streamId,
              streamVersion: committed.streamVersion,
              position: committed.position,
              type: appended.type,
              schemaVersion: appended.schemaVersion,
              payload: appended.payload,
              metadata: appended.metadata,
              recordedAt: DateTime.makeUnsafe(recordedAt)
            }
            yield* apply(stored, sql).pipe(
              Effect.provideContext(context),
              Effect.mapError((error) => error instanceof EventStoreError ? error : failed(error))
            )
          }
          return result
        })).pipe(
          // BEGIN or COMMIT failing is the append's failure, classified as the store's own: a
          // serialization failure is a conflict (retried), a lost connection transient (the
          // executor then finds out whether it committed before deciding again).
          Effect.catchTag("SqlError", (error) => Effect.fail(fromAppendError(error, request.streams)))
        )
      return EventStore.EventStore.of({ ...store, append })
    })
  )

  const readModel = Effect.map(
    SqlClient.SqlClient,
    (sql) => ReadModel.make(name, provideQueries(options.queries, sql), () => Effect.void)
  )

  const rebuild = (rebuildOptions?: { readonly schema?: string | undefined }) =>
    Effect.gen(function*() {
      const schema = yield* Migrations.parseSchemaName(rebuildOptions?.schema ?? Migrations.defaultSchema).pipe(
        Effect.orDie
      )
      const sql = yield* SqlClient.SqlClient
      const serializer = yield* Serializer.Serializer
      yield* sql.withTransaction(Effect.gen(function*() {
        // Appends wait meanwhile; in-flight ones finish first, so every event is visible here.
        yield* sql.unsafe(`lock table ${schema}.events in share mode`)
        if (options.reset !== undefined) {
          yield* (Effect.provideService(options.reset, SqlClient.SqlClient, sql) as Effect.Effect<void, Err, Rest>)
        }
        let after = Position.initial
        for (;;) {
          const rows = yield* sql.unsafe<EventRow>(
            `select ${eventColumns} from ${schema}.events e
             where (e.tx_id, e.position) > ($1::xid8, $2::bigint) order by e.tx_id, e.position limit 1000`,
            [Position.transaction(after).toString(), Position.sequence(after)]
          )
          for (const row of rows) {
            const stored = toStoredEvent(row, serializer)
            if (stored instanceof EventDecodeError) return yield* stored
            yield* apply(stored, sql)
            after = stored.position
          }
          if (rows.length < 1000) return
        }
      }))
    })

  return { name, layer, readModel, rebuild }
}
