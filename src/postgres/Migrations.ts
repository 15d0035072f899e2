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
import { appendFunction, appendSignature, previousSignatures } from "./appendFunction.ts"

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
 * @example
 * ```ts
 * import { Migrations } from "eventcore/postgres"
 *
 * // What the store's schema is made of, e.g. for a migration review.
 * const listing = Migrations.all.map((migration: Migrations.Migration) =>
 *   `${migration.version}_${migration.name}: ${migration.statements("eventcore").length} statements`
 * )
 * ```
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

const leastPrivilege: Migration = {
  version: 4,
  name: "append_as_owner",
  statements: (s) => [
    // The append function runs with its owner's rights (security definer, see
    // appendFunction.ts), so the application role needs no write privilege on the tables.
    appendFunction(s),
    // Functions are executable by PUBLIC unless revoked: only the roles granted it
    // (`grants`) may append. A later migration that drops and recreates the function must
    // revoke again (`create or replace` keeps the privileges).
    `revoke all on function ${s}.append(${appendSignature}) from public`,
    // Adopting a restored store is the migration role's (an operator's) action, not the application's.
    `revoke all on function ${s}.adopt_restored_events() from public`
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

const boundedIdempotencyExpiry: Migration = {
  version: 6,
  name: "append_bounds_idempotency_expiry",
  statements: (s) => [
    // The youngest an idempotency record can be and still expire in an append, by the server's
    // clock (ADR 19): the expiry instant comes from the caller, and the application role, which
    // may not delete records, must not clear live ones through the function either. A constant
    // function, like tx_offset(); the migration role may replace it (docs/roles.md).
    `create function ${s}.idempotency_min_retention() returns interval language sql immutable parallel safe as $fn$ select interval '1 hour' $fn$`,
    // The same signature: `create or replace` keeps the grants and the revoke of migration 4.
    // (On a new store migration 1 already created this version, which resolves the function
    // above only when called, after every pending migration ran.)
    appendFunction(s)
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
 * // ["1 create_streams_events_checkpoints", "2 create_dead_letters",
 * //  "3 ordering_offset_idempotency_keys_pending_rebuilds", "4 append_as_owner", "5 read_model_versions",
 * //  "6 append_bounds_idempotency_expiry"]
 * ```
 * @since 0.1.0
 */
export const all: ReadonlyArray<Migration> = [
  initial,
  deadLetters,
  trust,
  leastPrivilege,
  readModelVersions,
  boundedIdempotencyExpiry
]

/**
 * The 64-bit advisory lock key guarding migrations of one schema (transaction-scoped, so it
 * is released by the commit or rollback of the migrating transaction).
 */
const migrationLockSql = "select pg_advisory_xact_lock(hashtextextended('eventcore/migrate/' || $1::text, 0))"

/**
 * The schema's record of applied versions (created by `run` before the first migration).
 */
const createMigrationsTable = (schema: string) =>
  `create table if not exists ${schema}.migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`

/**
 * A PostgreSQL role name, as `select current_user` shows it (case and all): printable ASCII,
 * at most 63 characters. Statements quote it, so it may hold any of those characters; longer
 * or other names are refused rather than truncated by the server to another role's name.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * Schema.decodeUnknownSync(Migrations.RoleName)("billing_app")
 * ```
 * @since 0.3.0
 */
export const RoleName = Schema.String.check(
  Schema.isPattern(/^[\x20-\x7e]{1,63}$/, {
    message: "a role name must be 1-63 printable ASCII characters"
  })
)

const parseRoleName = (name: string): Effect.Effect<string, InvalidInput> =>
  Schema.decodeUnknownEffect(RoleName)(name).pipe(
    Effect.mapError((error) => InvalidInput.fromIssue("PostgreSQL role name", error.issue))
  )

const quoteIdentifier = (name: string) => `"${name.replaceAll(`"`, `""`)}"`

/**
 * The application role's privileges on the store's schema at the latest version (see
 * docs/roles.md for what each one is for). Events enter only through the append function,
 * which runs with its owner's rights: the role gets no INSERT, UPDATE, DELETE or TRUNCATE on
 * `events`, `streams` or `idempotency_keys`, and nothing that creates, alters or drops.
 */
const applicationGrants = (s: string, role: string): ReadonlyArray<string> => [
  `grant usage on schema ${s} to ${role}`,
  // Start-up (the recorded version), reads, the read horizon, idempotency keys' results;
  // streams' versions for tools (the store reads them only inside the append function).
  `grant select on ${s}.migrations, ${s}.events, ${s}.streams, ${s}.idempotency_keys to ${role}`,
  // Projection runners: checkpoints (saved, reset for a rebuild) and dead letters (recorded, cleared).
  `grant select, insert, update, delete on ${s}.checkpoints, ${s}.dead_letters to ${role}`,
  // Blue/green read models: the active version, set on first use and switched (read for update).
  `grant select, insert, update on ${s}.read_model_versions to ${role}`,
  `grant execute on function ${s}.append(${appendSignature}), ${s}.tx_offset() to ${role}`,
  // Tables that later migrations (or the migration role's read models) add to the schema are
  // readable at once; anything more comes with the grants of the version that adds them.
  // Default privileges cover only objects the role running this creates: the migration role.
  `alter default privileges in schema ${s} grant select on tables to ${role}`
]

/**
 * The statements that give a role what the application needs on the store's schema, and no
 * more: to execute commands (append through the append function, idempotency keys), read
 * (streams, the global order, the read horizon), and run projections (checkpoints, dead
 * letters, blue/green versions; advisory locks and LISTEN/NOTIFY need no grant). The role
 * cannot change or delete events, append except through the append function, nor create,
 * alter or drop anything in the schema.
 *
 * Run them as the migration role (the owner of the schema's objects): `ALTER DEFAULT
 * PRIVILEGES` applies to objects the role running it creates later. `run({ grantTo })` runs
 * them after migrating. Read-model tables are yours to grant (docs/roles.md). Idempotent.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * const statements = Effect.runSync(Migrations.grants({ schema: "eventcore", role: "billing_app" }))
 * console.log(statements.map((statement) => `${statement};`).join("\n"))
 * // grant usage on schema eventcore to "billing_app";
 * // grant select on eventcore.migrations, eventcore.events, eventcore.streams,
 * //   eventcore.idempotency_keys to "billing_app"; ...
 * ```
 * @since 0.3.0
 */
export const grants = (options: {
  readonly schema?: string | undefined
  readonly role: string
}): Effect.Effect<ReadonlyArray<string>, InvalidInput> =>
  Effect.gen(function*() {
    const schema = yield* parseSchemaName(options.schema ?? defaultSchema)
    const role = yield* parseRoleName(options.role)
    return applicationGrants(schema, quoteIdentifier(role))
  })

/**
 * The role running `run` lacks a privilege it needs: to apply pending migrations (to create
 * the schema, or to change objects another role owns), or to grant privileges on the
 * schema's objects. Nothing was changed. The application's role is not meant to migrate: run
 * the migrations as the migration role (`eventcore migrate`, or `Migrations.run` connected as
 * it), then start again. See docs/roles.md.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Migrations, PostgresEventStore } from "eventcore/postgres"
 *
 * const StoreLive = PostgresEventStore.layer().pipe(
 *   Layer.tapError((e) => e instanceof Migrations.MissingPrivilege ? Effect.logError(e.message) : Effect.void)
 * )
 * ```
 * @since 0.3.0
 */
export class MissingPrivilege extends Schema.TaggedError<MissingPrivilege>()("MissingPrivilege", {
  schema: Schema.String,
  /** The role that ran the migrations (`current_user`). */
  role: Schema.String,
  /** The versions not yet applied (none when only granting failed). */
  pending: Schema.Array(Schema.Number),
  /** What the role lacks. */
  missing: Schema.String
}) {
  override get message(): string {
    return this.pending.length > 0
      ? `Schema ${this.schema} has migrations pending (version ${this.pending.join(", ")}) that role ` +
        `${this.role} cannot apply: it lacks ${this.missing}. Run the migrations as the migration role (the ` +
        `owner of the schema): \`eventcore migrate\`, or Migrations.run connected as it; then start again. ` +
        `See docs/roles.md.`
      : `Role ${this.role} cannot grant privileges on schema ${this.schema}: it lacks ${this.missing}. Grant ` +
        `them as the migration role (the owner of the schema's objects). See docs/roles.md.`
  }
}

/** What the catalog says about the schema and the running role (readable by any role). */
interface Found {
  readonly role: string
  readonly database: string
  readonly create_on_database: boolean
  readonly schema_exists: boolean
  readonly create_on_schema: boolean
  readonly table_exists: boolean
  readonly table_owner: string | null
  readonly owns_table: boolean
}

const inspectSql = `select current_user::text as role, current_database()::text as database,
    has_database_privilege(current_database(), 'CREATE') as create_on_database,
    n.oid is not null as schema_exists,
    coalesce(has_schema_privilege(n.oid, 'CREATE'), false) as create_on_schema,
    c.oid is not null as table_exists,
    pg_get_userbyid(c.relowner)::text as table_owner,
    coalesce(pg_has_role(c.relowner, 'USAGE'), false) as owns_table
  from (select 1) as one
  left join pg_namespace n on n.nspname = $1
  left join pg_class c on c.relnamespace = n.oid and c.relname = 'migrations' and c.relkind = 'r'`

/** What the role lacks to migrate the schema (undefined: nothing known to be missing). */
const missingToMigrate = (schema: string, found: Found): string | undefined => {
  if (!found.schema_exists) {
    return found.create_on_database ? undefined : `CREATE on database ${found.database}, to create schema ${schema} ` +
      `(or have it created for the role: create schema ${schema} authorization ${quoteIdentifier(found.role)})`
  }
  if (!found.table_exists) return found.create_on_schema ? undefined : `CREATE on schema ${schema}`
  return found.owns_table ? undefined : `the privileges of role ${found.table_owner ?? "?"}, which owns the ` +
    `store's objects in schema ${schema}`
}

/** A permission error of the server (SQLSTATE 42501), with its message. */
const permissionDenied = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null) return undefined
  const { code, message } = cause as { readonly code?: unknown; readonly message?: unknown }
  return code === "42501" ? (typeof message === "string" ? message : "a privilege") : undefined
}

/**
 * Brings a schema up to the latest version. Idempotent: a second run applies nothing.
 * Returns the versions it applied.
 *
 * A schema already up to date costs two plain reads (the catalog, the recorded versions) and
 * needs no privilege beyond reading its `migrations` table: the application's role starts
 * there. Otherwise migrators serialize on an advisory lock and apply what is pending in one
 * transaction; a role that cannot (it may not create the schema, or does not own its objects)
 * fails with `MissingPrivilege` and changes nothing. Creating the schema takes CREATE on the
 * database; a schema created beforehand for the migrating role (`create schema ... authorization`)
 * needs none.
 *
 * `grantTo` gives each role the application's privileges (`grants`) in the same transaction,
 * whether or not anything was pending.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * // As the migration role, at deploy time; the application then starts without migrating.
 * const program = Migrations.run({ schema: "eventcore", grantTo: ["billing_app"] }).pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://billing_migrator@localhost/app") }))
 * )
 * ```
 * @since 0.1.0
 */
export const run = Effect.fn("Migrations.run")(function*(
  options?: {
    readonly schema?: string | undefined
    /** Roles to give the application's privileges (`grants`) after migrating. @since 0.3.0 */
    readonly grantTo?: ReadonlyArray<string> | undefined
  }
): Effect.fn.Return<ReadonlyArray<number>, SqlError | InvalidInput | MissingPrivilege, SqlClient.SqlClient> {
  const schema = yield* parseSchemaName(options?.schema ?? defaultSchema)
  const roles = yield* Effect.forEach(options?.grantTo ?? [], parseRoleName)
  const sql = yield* SqlClient.SqlClient
  const exec = (statement: string, params: ReadonlyArray<unknown> = []) => sql.unsafe(statement, params).unprepared
  const inspect = Effect.map(sql.unsafe<Found>(inspectSql, [schema]).unprepared, (rows) => rows[0])
  const pendingOf = (found: Found | undefined) =>
    found?.table_exists === true
      ? Effect.map(
        sql.unsafe<{ readonly version: number }>(`select version from ${schema}.migrations`).unprepared,
        (rows) => {
          const applied = new Set(rows.map((row) => Number(row.version)))
          return all.filter((migration) => !applied.has(migration.version))
        }
      )
      : Effect.succeed(all)

  // Up to date, nothing to grant: plain reads, no lock, no DDL (versions are only ever added,
  // so a schema with every version this code knows stays up to date for it).
  if (roles.length === 0 && (yield* pendingOf(yield* inspect)).length === 0) return []

  let pending: ReadonlyArray<Migration> = []
  return yield* sql.withTransaction(Effect.gen(function*() {
    yield* exec(migrationLockSql, [schema])
    const found = yield* inspect
    if (found === undefined) return yield* Effect.die("the catalog query returned no row")
    pending = yield* pendingOf(found)
    const missing = pending.length > 0 || roles.length > 0 ? missingToMigrate(schema, found) : undefined
    if (missing !== undefined) {
      return yield* new MissingPrivilege({
        schema,
        role: found.role,
        pending: pending.map((migration) => migration.version),
        missing
      })
    }
    if (!found.schema_exists) yield* exec(`create schema ${schema}`)
    if (!found.table_exists) yield* exec(createMigrationsTable(schema))
    for (const migration of pending) {
      for (const statement of migration.statements(schema)) yield* exec(statement)
      yield* exec(`insert into ${schema}.migrations (version, name) values ($1, $2)`, [
        migration.version,
        migration.name
      ])
    }
    for (const role of roles) {
      for (const statement of applicationGrants(schema, quoteIdentifier(role))) yield* exec(statement)
    }
    return pending.map((migration) => migration.version)
  })).pipe(
    // Anything else the server refused for want of a privilege (rolled back, nothing changed).
    Effect.catchIf(
      (error): error is SqlError => error._tag === "SqlError" && permissionDenied(error) !== undefined,
      (error) =>
        Effect.flatMap(inspect, (found) =>
          Effect.fail(
            new MissingPrivilege({
              schema,
              role: found?.role ?? "?",
              pending: pending.map((migration) => migration.version),
              missing: `a privilege the server asked for: ${permissionDenied(error) ?? ""}`
            })
          ))
    )
  )
})

/**
 * What `run` would do to a schema, without doing it: the statements it would send, in order,
 * and the versions already applied. Reads only (the catalog and the `migrations` table).
 *
 * The first pending migration's statements begin with what `run` creates when it is missing
 * (the schema, then its `migrations` table); each migration ends with the row recording it.
 * `grants` are the statements `run({ grantTo })` sends after them, in the same transaction
 * (none without `grantTo`). Everything runs under the migrators' advisory lock, which is not
 * listed.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Migrations } from "eventcore/postgres"
 *
 * const dryRun = Effect.map(
 *   Migrations.plan({ schema: "eventcore", grantTo: ["billing_app"] }), // needs a SqlClient
 *   ({ pending, grants }) => [...pending.flatMap((migration) => migration.statements), ...grants].join(";\n")
 * )
 * ```
 * @since 0.3.0
 */
export const plan = Effect.fn("Migrations.plan")(function*(
  options?: {
    readonly schema?: string | undefined
    /** Roles `run` would give the application's privileges (`grants`). */
    readonly grantTo?: ReadonlyArray<string> | undefined
  }
): Effect.fn.Return<
  {
    readonly applied: ReadonlyArray<{ readonly version: number; readonly name: string; readonly appliedAt: Date }>
    readonly pending: ReadonlyArray<
      { readonly version: number; readonly name: string; readonly statements: ReadonlyArray<string> }
    >
    readonly grants: ReadonlyArray<string>
  },
  SqlError | InvalidInput,
  SqlClient.SqlClient
> {
  const schema = yield* parseSchemaName(options?.schema ?? defaultSchema)
  const roles = yield* Effect.forEach(options?.grantTo ?? [], parseRoleName)
  const sql = yield* SqlClient.SqlClient
  const found = (yield* sql.unsafe<Found>(inspectSql, [schema]).unprepared)[0]
  const applied = found?.table_exists === true
    ? (yield* sql.unsafe<{ readonly version: number; readonly name: string; readonly applied_at: Date }>(
      `select version, name, applied_at from ${schema}.migrations order by version`
    )).map((row) => ({ version: Number(row.version), name: row.name, appliedAt: row.applied_at }))
    : []
  const done = new Set(applied.map((row) => row.version))
  // As `run`: the schema and the table only when missing.
  const preamble = [
    ...(found?.schema_exists === true ? [] : [`create schema ${schema}`]),
    ...(found?.table_exists === true ? [] : [createMigrationsTable(schema)])
  ]
  const pending = all.filter((migration) => !done.has(migration.version)).map((migration, i) => ({
    version: migration.version,
    name: migration.name,
    statements: [
      ...(i === 0 ? preamble : []),
      ...migration.statements(schema),
      `insert into ${schema}.migrations (version, name) values (${migration.version}, '${migration.name}')`
    ]
  }))
  return { applied, pending, grants: roles.flatMap((role) => applicationGrants(schema, quoteIdentifier(role))) }
})
