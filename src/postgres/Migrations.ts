/**
 * Versioned, idempotent migrations of the PostgreSQL event store, kept in their own schema
 * (`eventcore` unless configured) and recorded in that schema's `migrations` table.
 *
 * Concurrent migrators (several processes starting at once) serialize on a transaction-scoped
 * advisory lock, and each run applies only the versions not yet recorded, all in one
 * transaction: a failed migration leaves nothing behind.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { InvalidInput } from "../Errors.ts"
import { appendFunction, previousSignatures } from "./appendFunction.ts"

/**
 * The schema used when none is configured.
 *
 * @example
 * ```ts
 * import { Migrations } from "eventcore/postgres"
 *
 * const program = Migrations.run({ schema: Migrations.defaultSchema }) // the same as Migrations.run()
 * ```
 * @since 0.1.0
 */
export const defaultSchema = "eventcore"

/**
 * A PostgreSQL schema name the store can live in. Identifiers cannot be bound as parameters,
 * so the name is restricted to a shape that needs no quoting and leaves room for the
 * notification channel name (63 bytes at most).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * Schema.decodeUnknownSync(Migrations.SchemaName)("billing_events")
 * ```
 * @since 0.1.0
 */
export const SchemaName = Schema.String.check(
  Schema.isPattern(/^[a-z_][a-z0-9_]{0,47}$/, {
    message: "a schema name must be 1-48 lowercase letters, digits or underscores, not starting with a digit"
  })
)

/**
 * Parses a schema name, failing with `InvalidInput`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * Effect.runSync(Migrations.parseSchemaName("billing_events")) // "billing_events"
 * Migrations.parseSchemaName("Billing") // fails with InvalidInput: uppercase letters are not allowed
 * ```
 * @since 0.1.0
 */
export const parseSchemaName = (name: string): Effect.Effect<string, InvalidInput> =>
  Schema.decodeUnknownEffect(SchemaName)(name).pipe(
    Effect.mapError((error) => InvalidInput.fromIssue("PostgreSQL schema name", error.issue))
  )

/**
 * One migration: a version, a name, and the statements it runs (one statement each, since
 * the extended protocol runs one command per message).
 *
 * @since 0.1.0
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly statements: (schema: string) => ReadonlyArray<string>
}

const initial: Migration = {
  version: 1,
  name: "create_streams_events_checkpoints",
  statements: (s) => [
    `create table ${s}.streams (
      stream_id text primary key,
      version bigint not null check (version >= 0)
    )`,
    `create table ${s}.events (
      position bigint generated always as identity primary key,
      tx_id xid8 not null default pg_current_xact_id(),
      event_id uuid not null unique,
      stream_id text not null,
      stream_version bigint not null check (stream_version >= 1),
      type text not null,
      schema_version integer not null,
      payload jsonb not null,
      metadata jsonb not null,
      recorded_at timestamptz not null,
      unique (stream_id, stream_version)
    )`,
    // Global reads page by (tx_id, position) below the snapshot's xmin.
    `create index events_tx_id_position on ${s}.events (tx_id, position)`,
    `create table ${s}.checkpoints (
      name text primary key,
      position text not null,
      updated_at timestamptz not null default now()
    )`,
    `create function ${s}.reject_event_change() returns trigger language plpgsql as $fn$
    begin
      raise exception using
        errcode = 'EC403',
        message = 'eventcore: events are immutable; ' || tg_op || ' on ' || tg_table_schema || '.events is rejected';
    end
    $fn$`,
    `create trigger events_immutable before update or delete on ${s}.events
      for each row execute function ${s}.reject_event_change()`,
    `create trigger events_no_truncate before truncate on ${s}.events
      for each statement execute function ${s}.reject_event_change()`,
    // The current append function: on a store created at version 1 a later migration
    // replaces it (dropping the signature it had then); a new store gets it here directly.
    appendFunction(s)
  ]
}

const deadLetters: Migration = {
  version: 2,
  name: "create_dead_letters",
  statements: (s) => [
    // Events a projection skipped, with the error, so an operator can see and replay them.
    `create table ${s}.dead_letters (
      projection text not null,
      event_id uuid not null,
      stream_id text not null,
      stream_version bigint not null,
      position text not null,
      type text not null,
      error text not null,
      attempts integer not null,
      recorded_at timestamptz not null,
      primary key (projection, event_id)
    )`
  ]
}

const trust: Migration = {
  version: 3,
  name: "ordering_offset_idempotency_keys_pending_rebuilds",
  statements: (s) => [
    // The append function changes signature (idempotency keys, the ordering offset) and
    // behaviour (isolation levels, callers' transactions): the old one goes first, or a call
    // with the old arguments would be ambiguous.
    ...previousSignatures.map((signature) => `drop function if exists ${s}.append(${signature})`),
    // The global order is (tx_id, position) where tx_id is the transaction id plus this
    // offset: 0, until a logical restore into a cluster whose transaction ids run behind the
    // restored events makes `adopt_restored_events()` raise it (docs/operations.md). A
    // constant function, so the planner folds it into every statement (replacing it
    // invalidates their cached plans); every change is recorded in `ordering_changes`.
    txOffsetFunction(s, 0n),
    `create table ${s}.ordering_changes (
      changed_at timestamptz not null default now(),
      old_offset bigint not null,
      new_offset bigint not null,
      newest_tx_id text not null,
      next_xid text not null
    )`,
    adoptRestoredEvents(s),
    // Commands executed with an idempotency key: the first result, kept for a retention.
    `create table ${s}.idempotency_keys (
      key text primary key,
      fingerprint text not null,
      result jsonb not null,
      recorded_at timestamptz not null
    )`,
    `create index idempotency_keys_recorded_at on ${s}.idempotency_keys (recorded_at)`,
    // A rebuild that has begun and not finished: the next runner finishes it before processing.
    `alter table ${s}.checkpoints add column rebuild_pending boolean not null default false`,
    // A rebuild may begin before the projection ever saved a position.
    `alter table ${s}.checkpoints alter column position drop not null`,
    appendFunction(s)
  ]
}

/**
 * After a logical restore into a cluster whose transaction ids run behind the restored
 * events' (pg_dump/pg_restore, logical replication), raises the ordering offset so that every
 * new transaction orders after every restored event, and global readers see the restored
 * events again. Serialized with migrations; does nothing when the store is not ahead.
 */
const adoptRestoredEvents = (s: string): string => `
create function ${s}.adopt_restored_events() returns table (old_offset bigint, new_offset bigint)
language plpgsql as $fn$
declare
  v_old bigint;
  v_newest bigint;
  v_next bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('eventcore/migrate/${s}', 0));
  v_old := ${s}.tx_offset();
  select max(e.tx_id)::text::bigint into v_newest from ${s}.events e;
  v_next := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
  if v_newest is null or v_newest - v_old < v_next then
    return query select v_old, v_old;
    return;
  end if;
  execute format(
    'create or replace function %I.tx_offset() returns bigint language sql immutable parallel safe as %L',
    '${s}',
    'select ' || (v_newest - v_next + 1)::text || '::bigint'
  );
  insert into ${s}.ordering_changes (old_offset, new_offset, newest_tx_id, next_xid)
  values (v_old, v_newest - v_next + 1, v_newest::text, v_next::text);
  return query select v_old, v_newest - v_next + 1;
end
$fn$`

/** The ordering offset as a constant function (see migration 3). */
const txOffsetFunction = (s: string, offset: bigint): string =>
  `create or replace function ${s}.tx_offset() returns bigint language sql immutable parallel safe as $fn$ select ${offset}::bigint $fn$`

const readModelVersions: Migration = {
  version: 5,
  name: "read_model_versions",
  statements: (s) => [
    // The version of each blue/green read model that readers are served from (BlueGreen.ts).
    `create table ${s}.read_model_versions (
      name text primary key,
      active integer not null check (active >= 1),
      updated_at timestamptz not null default now()
    )`
  ]
}

/**
 * Every migration, in version order. New versions are appended, never edited.
 *
 * @example
 * ```ts
 * import { Migrations } from "eventcore/postgres"
 *
 * Migrations.all.map((m) => `${m.version} ${m.name}`)
 * // ["1 create_streams_events_checkpoints", "2 create_dead_letters", "3 ordering_offset_idempotency_keys_pending_rebuilds"]
 * ```
 * @since 0.1.0
 */
export const all: ReadonlyArray<Migration> = [initial, deadLetters, trust, readModelVersions]

/**
 * The 64-bit advisory lock key guarding migrations of one schema (transaction-scoped, so it
 * is released by the commit or rollback of the migrating transaction).
 */
const migrationLockSql = "select pg_advisory_xact_lock(hashtextextended('eventcore/migrate/' || $1::text, 0))"

/**
 * Brings a schema up to the latest version. Idempotent: a second run applies nothing.
 * Returns the versions it applied.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * const program = Migrations.run({ schema: "eventcore" }).pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@localhost/app") }))
 * )
 * ```
 * @since 0.1.0
 */
export const run = Effect.fn("Migrations.run")(function*(
  options?: { readonly schema?: string | undefined }
): Effect.fn.Return<ReadonlyArray<number>, SqlError | InvalidInput, SqlClient.SqlClient> {
  const schema = yield* parseSchemaName(options?.schema ?? defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const exec = (statement: string, params: ReadonlyArray<unknown> = []) => sql.unsafe(statement, params).unprepared

  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* exec(migrationLockSql, [schema])
    yield* exec(`create schema if not exists ${schema}`)
    yield* exec(`create table if not exists ${schema}.migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`)
    const rows = yield* sql.unsafe<{ readonly version: number }>(`select version from ${schema}.migrations`).unprepared
    const applied = new Set(rows.map((row) => Number(row.version)))
    const pending = all.filter((migration) => !applied.has(migration.version))
    for (const migration of pending) {
      for (const statement of migration.statements(schema)) yield* exec(statement)
      yield* exec(`insert into ${schema}.migrations (version, name) values ($1, $2)`, [
        migration.version,
        migration.name
      ])
    }
    return pending.map((migration) => migration.version)
  }))
})

/** What `run` creates first when missing: the schema and its `migrations` table (as `run` does). */
const preamble = (schema: string): ReadonlyArray<string> => [
  `create schema if not exists ${schema}`,
  createMigrationsTable(schema)
]

/**
 * What `run` would do to a schema, without doing it: the statements it would send, in order
 * (creating the schema and its `migrations` table when missing, then each pending migration
 * and the row recording it), and the versions already applied. Reads only.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * const dryRun = Effect.map(
 *   Migrations.plan({ schema: "eventcore" }), // needs a SqlClient
 *   ({ pending }) => pending.flatMap((migration) => migration.statements).join(";\n")
 * )
 * ```
 * @since 0.3.0
 */
export const plan = Effect.fn("Migrations.plan")(function*(
  options?: { readonly schema?: string | undefined }
): Effect.fn.Return<
  {
    readonly applied: ReadonlyArray<{ readonly version: number; readonly name: string; readonly appliedAt: Date }>
    readonly pending: ReadonlyArray<
      { readonly version: number; readonly name: string; readonly statements: ReadonlyArray<string> }
    >
  },
  SqlError | InvalidInput,
  SqlClient.SqlClient
> {
  const schema = yield* parseSchemaName(options?.schema ?? defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const found = yield* sql.unsafe<{ readonly found: boolean }>("select to_regclass($1) is not null as found", [
    `${schema}.migrations`
  ])
  const applied = found[0]?.found === true
    ? (yield* sql.unsafe<{ readonly version: number; readonly name: string; readonly applied_at: Date }>(
      `select version, name, applied_at from ${schema}.migrations order by version`
    )).map((row) => ({ version: Number(row.version), name: row.name, appliedAt: row.applied_at }))
    : []
  const done = new Set(applied.map((row) => row.version))
  const pending = all.filter((migration) => !done.has(migration.version)).map((migration, i) => ({
    version: migration.version,
    name: migration.name,
    statements: [
      ...(i === 0 && found[0]?.found !== true ? preamble(schema) : []),
      ...migration.statements(schema),
      `insert into ${schema}.migrations (version, name) values (${migration.version}, '${migration.name}')`
    ]
  }))
  return { applied, pending }
})
