/**
 * Least privilege (docs/roles.md): a migration role owns the schema and migrates it; the
 * application role, with only `Migrations.grants`, starts the store without any CREATE
 * privilege, executes commands, reads, follows live, and runs projections — and cannot
 * change, delete or insert events behind the append function, nor create, alter or drop
 * anything. Roles are cluster-wide: each run makes its own (random names) and drops them,
 * with everything they own, when the file's layer is released, failed or not.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Redacted, Ref, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { TestClock } from "effect/testing"
import {
  CheckpointStore,
  Command,
  CommandExecutor,
  DeadLetterStore,
  EventStore,
  Projection,
  ProjectionRunner,
  StreamId,
  Subscription
} from "eventcore"
import { Migrations, PostgresEventStore, PostgresProjection, PostgresReadModel, Restore } from "eventcore/postgres"
import {
  AccountEvents,
  Deposit,
  MoneyDeposited,
  OpenAccount,
  Transfer,
  Withdraw
} from "../../examples/banking/Account.ts"
import * as PostgresAppend from "../../src/postgres/appendFunction.ts"
import * as Harness from "./harness.ts"

const suffix = Math.random().toString(36).slice(2, 10)
const migrator = `ec_migrator_${suffix}`
const app = `ec_app_${suffix}`
const schema = `ec_roles_${suffix}`
const readModels = `ec_roles_rm_${suffix}`

/** A client connected as `username` (the test database, trust authentication). */
const clientAs = (username: string | undefined, maxConnections: number) =>
  Layer.unwrap(
    Effect.map(Harness.databaseUrl, (url) => PgClient.layer({ url: Redacted.make(url), username, maxConnections }))
  )

/** Runs statements as the superuser of the test database. */
const asAdmin = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.scoped(Effect.provide(effect, clientAs(undefined, 1)))

/** Runs statements as the migration role. */
const asMigrator = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.scoped(Effect.provide(effect, clientAs(migrator, 2)))

const execAll = (statements: ReadonlyArray<string>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => Effect.forEach(statements, (statement) => sql.unsafe(statement).unprepared, { discard: true })
  )

const databaseName = Effect.map(Harness.databaseUrl, (url) => new URL(url).pathname.slice(1))

/**
 * The two roles and the store's schema, migrated by the migration role with the application's
 * grants; a read-model table migrated by the migration role and granted to the application.
 * Released: everything the roles own (the schemas) and every privilege they hold, then the roles.
 */
const Roles = Layer.effectDiscard(Effect.gen(function*() {
  const database = yield* databaseName
  yield* Effect.addFinalizer(() =>
    Effect.forEach(
      [
        `drop owned by ${migrator} cascade`,
        `drop owned by ${app} cascade`,
        `drop role if exists ${app}`,
        `drop role if exists ${migrator}`
      ],
      (statement) =>
        asAdmin(execAll([statement])).pipe(
          Effect.catch((error) => Effect.logError(`roles test cleanup: ${statement} failed`, error))
        ),
      { discard: true }
    )
  )
  yield* asAdmin(execAll([
    `create role ${migrator} login`,
    `create role ${app} login`,
    // Only to create the schemas the first time (docs/roles.md).
    `grant create on database ${database} to ${migrator}`
  ]))
  yield* asMigrator(Effect.gen(function*() {
    const applied = yield* Migrations.run({ schema, grantTo: [app] })
    assert.deepStrictEqual(applied, Migrations.all.map((m) => m.version))
    yield* execAll([`create schema ${readModels}`])
    yield* PostgresReadModel.migrate("balances", balancesMigrations, `${readModels}.balances_migrations`)
    yield* execAll([
      `grant usage on schema ${readModels} to ${app}`,
      `grant select, insert, update, delete, truncate on ${readModels}.balances to ${app}`,
      // Only select: with nothing pending, the read model's start only reads its migrations table.
      `grant select on ${readModels}.balances_migrations to ${app}`
    ])
  }))
}))

const balancesMigrations = {
  "1_create_balances": Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql.unsafe(`create table ${readModels}.balances (account text primary key, balance bigint not null)`).unprepared
  )
}

const balances = PostgresReadModel.make({
  name: "balances",
  events: AccountEvents,
  migrationsTable: `${readModels}.balances_migrations`,
  migrations: balancesMigrations,
  handle: (event, stored) =>
    event._tag === "MoneyDeposited"
      ? Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `insert into ${readModels}.balances values ($1, $2)
           on conflict (account) do update set balance = balances.balance + excluded.balance`,
          [stored.streamId, event.amount]
        ))
      : Effect.void,
  reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`truncate ${readModels}.balances`)),
  queries: {
    balance: (account: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql.unsafe<{ balance: string }>(`select balance::text from ${readModels}.balances where account = $1`, [
            account
          ]),
          (rows) => Number(rows[0]?.balance ?? 0)
        ))
  }
})

/** Everything the application runs, connected as the application role. */
const AsApp = Layer.mergeAll(
  CommandExecutor.layer(),
  PostgresProjection.layer({ schema, lock: { pollInterval: "50 millis" } })
).pipe(
  Layer.provideMerge(PostgresEventStore.layer({ schema, pollInterval: "50 millis" })),
  Layer.provideMerge(clientAs(app, 4))
)

/** The SQLSTATE of a failed statement. */
const stateOf = (exit: Exit.Exit<unknown, SqlError>): string | undefined => {
  if (Exit.isSuccess(exit)) return "succeeded"
  const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")
  const cause: unknown = error?._tag === "Fail" ? error.error.reason.cause : undefined
  return typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined
}

const statementFails = (statement: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.exit(sql.unsafe(statement).unprepared))

const account = (id: string) => StreamId.makeUnsafe(`account-${suffix}-${id}`)

/**
 * Calls the append function as the connected role, as a caller that bypasses the store would:
 * no events, only an idempotency key with the instants it claims (SQL expressions).
 */
const appendKeyDirectly = (key: string, fingerprint: string, claims: {
  readonly recordedAt: string
  readonly notBefore: string
}) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.exit(
      sql.unsafe<{ readonly o_replay: unknown }>(
        `select o_replay from ${schema}.append(array[$1::text], array[-1]::bigint[], '{}'::uuid[], '{}'::text[],
           '{}'::text[], '{}'::integer[], '{}'::jsonb[], '{}'::jsonb[], ${claims.recordedAt}, $2, $3, ${claims.notBefore})`,
        [`keys-${suffix}`, key, fingerprint]
      ).unprepared
    ))

/** As the migration role, sets the store's minimum retention of idempotency records (docs/roles.md). */
const setMinRetention = (interval: string) =>
  asMigrator(execAll([
    `create or replace function ${schema}.idempotency_min_retention() returns interval
       language sql immutable parallel safe as $fn$ select interval '${interval}' $fn$`
  ]))

/** The idempotency records of these keys, as the application role reads them. */
const idempotencyRecords = (keys: ReadonlyArray<string>) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql.unsafe<{ readonly key: string; readonly fingerprint: string; readonly result: string; readonly at: string }>(
        `select key, fingerprint, result::text as result, recorded_at::text as at
       from ${schema}.idempotency_keys where key = any($1::text[]) order by key`,
        [`{${keys.join(",")}}`]
      ).unprepared
  )

/**
 * Deposits to two accounts; on its first attempt another writer appends to one of them first,
 * so the append conflicts and the executor runs it again.
 */
const makeDepositBoth = (interfered: Ref.Ref<boolean>) =>
  Command.make("DepositBoth", {
    input: Schema.Struct({ a: StreamId.StreamId, b: StreamId.StreamId }),
    events: AccountEvents,
    streams: ({ a, b }) => ({ a, b }),
    initial: 0,
    apply: (count) => count + 1,
    handle: ({ input, streams }) =>
      Effect.gen(function*() {
        if (!(yield* Ref.getAndSet(interfered, true))) {
          yield* CommandExecutor.execute(Deposit, { account: input.b, amount: 1 })
        }
        return [
          streams.a.append(MoneyDeposited.make({ amount: 10 })),
          streams.b.append(MoneyDeposited.make({ amount: 10 }))
        ]
      })
  })

layer(AsApp.pipe(Layer.provideMerge(Roles)), { excludeTestServices: true, timeout: "120 seconds" })(
  "the application role",
  (it) => {
    it.effect("starts the store with no CREATE privilege and no DDL (the restore check included)", () =>
      Effect.gen(function*() {
        const database = yield* databaseName
        const privileges = yield* asAdmin(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) =>
              sql.unsafe<{ readonly on_database: boolean; readonly on_schema: boolean; readonly owns: boolean }>(
                `select has_database_privilege($1, $2, 'CREATE') as on_database,
                    has_schema_privilege($1, $3, 'CREATE') as on_schema,
                    pg_has_role($1, (select nspowner from pg_namespace where nspname = $3), 'USAGE') as owns`,
                [app, database, schema]
              )
          )
        )
        assert.deepStrictEqual(privileges[0], { on_database: false, on_schema: false, owns: false })
        // The layer above started; starting again, and the checks it runs, still need nothing more.
        yield* Effect.scoped(PostgresEventStore.make({ schema }))
        yield* Restore.check({ schema })
        assert.deepStrictEqual(yield* Migrations.run({ schema }), [])
      }))

    it.effect("executes commands: multi-stream appends, a conflict retried, idempotency keys", () =>
      Effect.gen(function*() {
        const [a, b] = [account("a"), account("b")]
        yield* CommandExecutor.execute(OpenAccount, { account: a, owner: "ann" })
        yield* CommandExecutor.execute(OpenAccount, { account: b, owner: "bob" })
        yield* CommandExecutor.execute(Deposit, { account: a, amount: 100 })
        const transfer = yield* CommandExecutor.execute(Transfer, { from: a, to: b, amount: 30 })
        assert.deepStrictEqual(transfer.events.map((e) => e.streamId), [a, b])

        const retried = yield* CommandExecutor.execute(makeDepositBoth(yield* Ref.make(false)), { a, b })
        assert.strictEqual(retried.attempts, 2)

        const first = yield* CommandExecutor.execute(Withdraw, { account: a, amount: 5 }, { idempotencyKey: "w-1" })
        const again = yield* CommandExecutor.execute(Withdraw, { account: a, amount: 5 }, { idempotencyKey: "w-1" })
        assert.isFalse(first.replayed)
        assert.isTrue(again.replayed)
        assert.deepStrictEqual(again.events, first.events)
        const reused = yield* Effect.flip(
          CommandExecutor.execute(Withdraw, { account: a, amount: 6 }, { idempotencyKey: "w-1" })
        )
        assert.strictEqual(reused._tag, "InvalidInput")

        const read = yield* EventStore.readStream(a)
        // opened, deposit, transfer, deposit (retried command), one withdrawal
        assert.strictEqual(read.version, 5)
        const all = yield* Stream.runCollect(EventStore.readAll())
        assert.isTrue(all.some((e) => e.streamId === b && e.type === "TransferReceived"))
      }))

    it.effect("follows new events live (LISTEN/NOTIFY)", () =>
      Effect.gen(function*() {
        const c = account("c")
        const head = yield* EventStore.EventStore.use((store) => store.head)
        const subscribed = yield* Subscription.stream({ from: head, filter: { streamIds: [c] } }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* CommandExecutor.execute(OpenAccount, { account: c, owner: "cy" })
        const seen = yield* Fiber.join(subscribed)
        assert.deepStrictEqual(seen.map((e) => e.streamId), [c])
      }))

    it.effect("runs projections: checkpoints, the lock, dead letters, a rebuild, a read model", () =>
      Effect.scoped(Effect.gen(function*() {
        const d = account("d")
        yield* CommandExecutor.execute(OpenAccount, { account: d, owner: "dee" })
        yield* CommandExecutor.execute(Deposit, { account: d, amount: 7 })
        const last = yield* CommandExecutor.execute(Withdraw, { account: d, amount: 2 })
        const position = last.position
        assert.isDefined(position)
        if (position === undefined) return

        const audit = Projection.make({
          name: `audit-${suffix}`,
          events: AccountEvents,
          filter: { streamIds: [d] },
          handle: (event) => event._tag === "MoneyWithdrawn" ? Effect.fail("withdrawals are refused") : Effect.void,
          onFailure: Projection.skip
        })
        const runner = yield* ProjectionRunner.start(audit)
        yield* runner.awaitPosition(position)
        const letters = yield* DeadLetterStore.list(audit.name)
        assert.deepStrictEqual(letters.map((l) => l.type), ["MoneyWithdrawn"])
        yield* runner.rebuild
        yield* runner.awaitPosition(position)
        assert.strictEqual((yield* DeadLetterStore.list(audit.name)).length, 1)
        assert.isDefined(yield* CheckpointStore.load(audit.name))

        // A transactional read model in a table of its own, migrated by the migration role.
        const model = yield* balances
        assert.strictEqual(yield* model.after(last).balance(d), 7)
      })))

    it.effect("reports the read horizon; who holds it in full with pg_read_all_stats", () =>
      Effect.scoped(Effect.gen(function*() {
        // Another role's transaction, holding the horizon behind an event the application appends.
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = asAdmin(Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.withTransaction(
            sql.unsafe("select pg_current_xact_id()::text").unprepared.pipe(
              Effect.andThen(Deferred.succeed(started, undefined)),
              Effect.andThen(Deferred.await(release))
            )
          )))
        yield* Effect.forkScoped(holder)
        yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
        yield* Deferred.await(started)
        yield* CommandExecutor.execute(OpenAccount, { account: account("e"), owner: "eve" })

        const hidden = yield* EventStore.horizon()
        assert.isAtLeast(hidden.pending, 1)
        assert.isDefined(hidden.heldBy)
        // Without pg_read_all_stats, another role's session shows who and where, but not its
        // state, start or query (PostgreSQL says "<insufficient privilege>" for the query).
        if (hidden.heldBy?.kind === "session" && hidden.heldBy.user !== app) {
          assert.isDefined(hidden.heldBy.pid)
          assert.isUndefined(hidden.heldBy.state)
          assert.isUndefined(hidden.heldBy.since)
          assert.strictEqual(hidden.heldBy.query, "<insufficient privilege>")
        }
        yield* asAdmin(execAll([`grant pg_read_all_stats to ${app}`]))
        const shown = yield* EventStore.horizon()
        assert.isAtLeast(shown.pending, 1)
        assert.isDefined(shown.heldBy?.state)
        assert.isDefined(shown.heldBy?.since)
      })))

    it.effect("cannot change, delete or insert events, nor create, alter or drop anything", () =>
      Effect.gen(function*() {
        const refused = [
          `update ${schema}.events set type = 'Forged'`,
          `delete from ${schema}.events`,
          `truncate ${schema}.events`,
          `insert into ${schema}.events (event_id, stream_id, stream_version, type, schema_version, payload,
             metadata, recorded_at)
           values (gen_random_uuid(), 'forged', 1, 'Forged', 1, '{}', '{}', now())`,
          `update ${schema}.streams set version = 0`,
          `insert into ${schema}.streams values ('forged', 1)`,
          `delete from ${schema}.idempotency_keys`,
          `delete from ${schema}.migrations`,
          `drop table ${schema}.events`,
          `alter table ${schema}.events disable trigger events_immutable`,
          `create table ${schema}.forged (x int)`,
          `create or replace function ${schema}.tx_offset() returns bigint language sql as 'select 0::bigint'`,
          `create or replace function ${schema}.idempotency_min_retention() returns interval language sql
             as $$ select interval '0' $$`,
          `select * from ${schema}.adopt_restored_events()`
        ]
        for (const statement of refused) {
          // A permission error (42501), not the immutability trigger's EC403.
          assert.strictEqual(stateOf(yield* statementFails(statement)), "42501", statement)
        }
        const adopt = yield* Effect.exit(Restore.adopt({ schema }))
        assert.isTrue(Exit.isFailure(adopt))
        const migrate = yield* Effect.flip(Migrations.run({ schema, grantTo: [app] }))
        assert.strictEqual(migrate._tag, "MissingPrivilege")
      }))

    it.effect("cannot expire live idempotency keys through the append function, whatever instant it passes", () =>
      Effect.gen(function*() {
        const a = account("keyed")
        yield* CommandExecutor.execute(OpenAccount, { account: a, owner: "kim" })
        const live = [`live-1-${suffix}`, `live-2-${suffix}`, `live-3-${suffix}`]
        for (const key of live) {
          yield* CommandExecutor.execute(Deposit, { account: a, amount: 1 }, { idempotencyKey: key })
        }
        const before = yield* idempotencyRecords(live)
        assert.strictEqual(before.length, 3)
        // A century ahead, or the server's own now (a bound at now() alone would let this one
        // expire every record made before the call).
        for (const [i, notBefore] of ["now() + interval '100 years'", "now()"].entries()) {
          const claims = { recordedAt: "now()", notBefore }
          // A live key under another request: refused as a reuse, not replaced.
          const reuse = yield* appendKeyDirectly(live[0] ?? "", "forged", claims)
          assert.strictEqual(stateOf(reuse), PostgresAppend.idempotencyKeyReusedState, notBefore)
          // A key of its own is recorded, and clears none of the live ones.
          assert.strictEqual(stateOf(yield* appendKeyDirectly(`own-${i}-${suffix}`, "own", claims)), "succeeded")
        }
        assert.deepStrictEqual(yield* idempotencyRecords(live), before)
        const retried = yield* CommandExecutor.execute(Deposit, { account: a, amount: 1 }, { idempotencyKey: live[0] })
        assert.isTrue(retried.replayed)
        assert.strictEqual((yield* EventStore.readStream(a)).version, 4)
      }))

    it.effect("an executor's retention shorter than the store's minimum is the minimum on PostgreSQL", () =>
      Effect.gen(function*() {
        const a = account("short")
        const key = `short-${suffix}`
        yield* TestClock.setTime(Date.now())
        yield* CommandExecutor.execute(OpenAccount, { account: a, owner: "sam" })
        const first = yield* CommandExecutor.execute(Deposit, { account: a, amount: 1 }, { idempotencyKey: key })
        // Expired by the executor's one-minute retention; an hour is not over on the server.
        yield* TestClock.adjust("2 minutes")
        const again = yield* CommandExecutor.execute(Deposit, { account: a, amount: 1 }, { idempotencyKey: key })
        assert.isTrue(again.replayed)
        assert.deepStrictEqual(again.events, first.events)
        assert.strictEqual((yield* EventStore.readStream(a)).version, 2)
      }).pipe(
        Effect.provide(CommandExecutor.layer({ idempotencyRetention: "1 minute" })),
        Effect.provide(TestClock.layer())
      ))

    it.effect("the append function still expires what an honest caller's retention expires", () =>
      Effect.gen(function*() {
        const [first, other] = [`old-1-${suffix}`, `old-2-${suffix}`]
        // Recorded by a writer whose clock said 2020-01-01 (a TestClock, say), with a retention of a month.
        const then = { recordedAt: "timestamptz '2020-01-01Z'", notBefore: "timestamptz '2019-12-01Z'" }
        for (const key of [first, other]) {
          assert.strictEqual(stateOf(yield* appendKeyDirectly(key, "then", then)), "succeeded")
        }
        // Live by that writer's measure: another request under the key is a reuse.
        assert.strictEqual(
          stateOf(yield* appendKeyDirectly(first, "now", then)),
          PostgresAppend.idempotencyKeyReusedState
        )
        // Expired by today's writer, a day's retention: the key is taken afresh and the other one cleared.
        const today = yield* appendKeyDirectly(first, "now", {
          recordedAt: "now()",
          notBefore: "now() - interval '1 day'"
        })
        assert.isTrue(Exit.isSuccess(today))
        if (Exit.isSuccess(today)) assert.deepStrictEqual(today.value.map((row) => row.o_replay), [null]) // not a replay
        assert.deepStrictEqual((yield* idempotencyRecords([first, other])).map((r) => [r.key, r.fingerprint]), [[
          first,
          "now"
        ]])

        // A record two minutes old outlives a caller's one-minute retention (the store keeps it an
        // hour) until the migration role lowers the store's minimum retention.
        const recent = `recent-${suffix}`
        const twoMinutesAgo = { recordedAt: "now() - interval '2 minutes'", notBefore: "now() - interval '1 day'" }
        assert.strictEqual(stateOf(yield* appendKeyDirectly(recent, "then", twoMinutesAgo)), "succeeded")
        const aMinute = { recordedAt: "now()", notBefore: "now() - interval '1 minute'" }
        assert.strictEqual(
          stateOf(yield* appendKeyDirectly(recent, "now", aMinute)),
          PostgresAppend.idempotencyKeyReusedState
        )
        const lowered = yield* setMinRetention("0").pipe(
          Effect.andThen(appendKeyDirectly(recent, "now", aMinute)),
          Effect.ensuring(Effect.orDie(setMinRetention("1 hour")))
        )
        assert.strictEqual(stateOf(lowered), "succeeded")
        assert.deepStrictEqual((yield* idempotencyRecords([recent])).map((r) => r.fingerprint), ["now"])
      }))
  }
)

layer(Roles, { excludeTestServices: true, timeout: "120 seconds" })("migrations and privileges", (it) => {
  it.effect("an application starting on a schema with a migration pending fails, naming what it lacks", () =>
    Effect.gen(function*() {
      const pendingSchema = `${schema}_pending`
      // The migration that makes the append run as its owner, as on a store created before it.
      const upgrade = Migrations.all.find((m) => m.name === "append_as_owner")?.version ?? 0
      const recorded = asMigrator(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql.unsafe<{ readonly version: number }>(`select version from ${pendingSchema}.migrations`),
          (rows) => rows.map((row) => row.version)
        )))
      yield* asMigrator(Effect.gen(function*() {
        yield* Migrations.run({ schema: pendingSchema, grantTo: [app] })
        yield* execAll([`delete from ${pendingSchema}.migrations where version = ${upgrade}`])
      }))
      const startApp = Effect.scoped(
        Effect.provide(PostgresEventStore.make({ schema: pendingSchema }), clientAs(app, 2))
      )
      const error = yield* Effect.flip(startApp)
      assert.strictEqual(error._tag, "MissingPrivilege")
      if (error._tag !== "MissingPrivilege") return
      assert.deepStrictEqual(error.pending, [upgrade])
      assert.strictEqual(error.role, app)
      assert.include(error.missing, migrator)
      assert.include(error.message, "Run the migrations as the migration role")
      assert.notInclude(yield* recorded, upgrade) // nothing changed
      // The migration role applies it (over the function as it stands), and the application starts.
      assert.deepStrictEqual(yield* asMigrator(Migrations.run({ schema: pendingSchema, grantTo: [app] })), [upgrade])
      yield* startApp
    }))

  it.effect("a read model starts with only select on its migrations table; a pending one says to migrate as the migration role", () =>
    Effect.gen(function*() {
      const table = `${readModels}.later_migrations`
      const first = {
        "1_create_later": Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql.unsafe(`create table ${readModels}.later (id int primary key)`).unprepared
        )
      }
      const second = {
        ...first,
        "2_add_note": Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql.unsafe(`alter table ${readModels}.later add column note text`).unprepared
        )
      }
      const recorded = asMigrator(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql.unsafe<{ readonly migration_id: number }>(`select migration_id from ${table} order by 1`),
          (rows) => rows.map((row) => row.migration_id)
        )))
      // Two migrators at once: the migrator's lock serializes them, each migration runs once.
      yield* asMigrator(Effect.all([
        PostgresReadModel.migrate("later", first, table),
        PostgresReadModel.migrate("later", first, table)
      ], { concurrency: 2 }))
      assert.deepStrictEqual(yield* recorded, [1])
      yield* asAdmin(execAll([`grant select on ${table} to ${app}`]))
      const asApp = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
        Effect.scoped(Effect.provide(effect, clientAs(app, 1)))

      // Nothing pending: the application role (select only, no UPDATE for the migrator's lock) starts.
      yield* asApp(PostgresReadModel.migrate("later", first, table))
      // Something pending: refused, saying what to do; nothing changed.
      const error = yield* Effect.flip(asApp(PostgresReadModel.migrate("later", second, table)))
      assert.strictEqual(error._tag, "MigrationError")
      assert.include(error.message, `Read model later has migrations pending (2) that role ${app} cannot apply`)
      assert.include(error.message, "Run the read model's migrations as the migration role")
      assert.deepStrictEqual(yield* recorded, [1])
      // The migration role applies it; the application starts again.
      yield* asMigrator(PostgresReadModel.migrate("later", second, table))
      assert.deepStrictEqual(yield* recorded, [1, 2])
      yield* asApp(PostgresReadModel.migrate("later", second, table))
    }))

  it.effect("a table a later migration adds is readable by the application at once (the migrator's default privileges)", () =>
    Effect.gen(function*() {
      // As a later migration would: created by the migration role, which ran the grants.
      yield* asMigrator(execAll([
        `create table ${schema}.added_later (id int primary key)`,
        `insert into ${schema}.added_later values (1)`
      ]))
      const rows = yield* Effect.scoped(Effect.provide(
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => sql.unsafe<{ readonly id: number }>(`select id from ${schema}.added_later`).unprepared
        ),
        clientAs(app, 1)
      ))
      assert.deepStrictEqual(rows.map((row) => row.id), [1])
      // Select only: anything more comes with the grants of the version that adds the table.
      const insert = yield* Effect.scoped(Effect.provide(
        statementFails(`insert into ${schema}.added_later values (2)`),
        clientAs(app, 1)
      ))
      assert.strictEqual(stateOf(insert), "42501")
      yield* asMigrator(execAll([`drop table ${schema}.added_later`]))
    }))

  it.effect("the plan is what run does: its statements, run by hand as the migration role, leave nothing to run", () =>
    Effect.gen(function*() {
      const planned = `${schema}_planned`
      // A schema created for the migration role: the plan creates only the migrations table in it.
      yield* asAdmin(execAll([`create schema ${planned} authorization ${migrator}`]))
      yield* asMigrator(Effect.gen(function*() {
        const { pending, grants } = yield* Migrations.plan({ schema: planned, grantTo: [app] })
        const statements = [...pending.flatMap((migration) => migration.statements), ...grants]
        assert.isFalse(statements.some((statement) => statement.startsWith("create schema")))
        const sql = yield* SqlClient.SqlClient
        yield* sql.withTransaction(execAll(statements))
        const after = yield* Migrations.plan({ schema: planned })
        assert.deepStrictEqual(after.applied.map((m) => m.version), Migrations.all.map((m) => m.version))
        assert.deepStrictEqual(after.pending, [])
        assert.deepStrictEqual(yield* Migrations.run({ schema: planned }), [])
      }))
      // The application starts on it with the grants the plan listed.
      yield* Effect.scoped(Effect.provide(PostgresEventStore.make({ schema: planned }), clientAs(app, 2)))
    }))

  it.effect("the migration role needs CREATE on the database only to create the schema", () =>
    Effect.gen(function*() {
      const database = yield* databaseName
      yield* asAdmin(execAll([`revoke create on database ${database} from ${migrator}`]))
      const missing = yield* Effect.flip(asMigrator(Migrations.run({ schema: `${schema}_new` })))
      assert.strictEqual(missing._tag, "MissingPrivilege")
      if (missing._tag === "MissingPrivilege") assert.include(missing.missing, `CREATE on database ${database}`)
      // A schema created for it beforehand (empty, its own) is enough.
      yield* asAdmin(execAll([`create schema ${schema}_given authorization ${migrator}`]))
      const applied = yield* asMigrator(Migrations.run({ schema: `${schema}_given`, grantTo: [app] }))
      assert.deepStrictEqual(applied, Migrations.all.map((m) => m.version))
    }))

  it.effect("grants are statements to read, run as the migration role, and idempotent", () =>
    Effect.gen(function*() {
      const statements = yield* Migrations.grants({ schema, role: app })
      assert.isTrue(statements.every((statement) => !/\b(insert|update|delete|truncate)\b.*\.events\b/.test(statement)))
      yield* asMigrator(execAll(statements))
      yield* asMigrator(execAll(statements))
      const bad = yield* Effect.flip(Migrations.grants({ schema, role: "x".repeat(64) }))
      assert.strictEqual(bad._tag, "InvalidInput")
    }))

  it.effect("only the roles granted it may append: PUBLIC's default EXECUTE is revoked", () =>
    Effect.gen(function*() {
      const rows = yield* asAdmin(Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe<{ readonly grantee: string; readonly privilege: string }>(
          `select coalesce(r.rolname, 'PUBLIC') as grantee, a.privilege_type as privilege
           from pg_proc p, aclexplode(p.proacl) a left join pg_roles r on r.oid = a.grantee
           where p.oid = $1::regprocedure order by 1`,
          [`${schema}.append(${PostgresAppend.appendSignature})`]
        )))
      assert.deepStrictEqual(
        rows.map((row) =>
          `${row.grantee} ${row.privilege}`
        ).toSorted(),
        [
          `${app} EXECUTE`,
          `${migrator} EXECUTE`
        ].toSorted()
      )
    }))
})
