/**
 * A rebuild asked from another connection (as the CLI's `projections rebuild` does, with
 * `CheckpointStore.beginRebuild`) is carried out by the runner that holds the lock, though it
 * did not ask for it: the read model is cleared and replayed, and equals a replay of the store.
 * A runner whose lock connection broke, before its heartbeat notices, does not reset: it
 * takes the lock again and then rebuilds, once.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, type Duration, Effect, Layer, Redacted, Ref, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import { CommandExecutor } from "eventcore"
import { PostgresCheckpointStore, PostgresProjection, PostgresReadModel } from "eventcore/postgres"
import { Account, Deposit, Events } from "./deposits.ts"
import * as Harness from "./harness.ts"
import { lastCommitted } from "./projectionFixtures.ts"

const schemaOf = Harness.TestDatabase.useSync((db) => db.schema)

/** The test's layer: the store in a fresh schema, commands, and PostgreSQL projections. */
const projections = (lock?: PostgresProjection.Options["lock"]) =>
  Layer.unwrap(
    Effect.map(
      schemaOf,
      (schema) => Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema, lock }))
    )
  ).pipe(Layer.provideMerge(Harness.layer({ maxConnections: 4 })))

/** Eight deposits; the position of the last (`lastCommitted`: the visible head may trail it). */
const seed = Effect.gen(function*() {
  for (let i = 0; i < 8; i++) yield* CommandExecutor.execute(Deposit, { account: `${i % 3}`, amount: 1 + i })
  return yield* lastCommitted
})

/** A balances read model in `<schema>.ext_balances`; `onReset` runs in each reset. */
const balances = (
  schema: string,
  rebuildCheck: Duration.Input,
  onReset: Effect.Effect<void, SqlError, SqlClient.SqlClient>
) => {
  const table = `${schema}.ext_balances`
  return PostgresReadModel.make({
    name: "ext_balances",
    events: Events,
    filter: Account.filter,
    migrationsTable: `${table}_migrations`,
    migrations: {
      "1_create": Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql.unsafe(
            `create table ${table} (account text primary key, balance bigint not null, events int not null)`
          )
      )
    },
    handle: (event, stored) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `insert into ${table} as b values ($1, $2, 1)
           on conflict (account) do update set balance = b.balance + excluded.balance, events = b.events + 1`,
          [stored.streamId, event.amount]
        )),
    reset: Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.andThen(sql.unsafe(`truncate ${table}`), onReset)),
    queries: {
      rows: () =>
        Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql.unsafe<{ account: string; balance: string; events: number }>(
              `select account, balance::text, events from ${table} order by account`
            )
        )
    },
    runner: { rebuildCheck }
  })
}

/** `CheckpointStore.beginRebuild` from another connection, as the CLI does. */
const beginRebuildElsewhere = (schema: string, url: string) =>
  Effect.gen(function*() {
    const checkpoints = yield* PostgresCheckpointStore.make({ schema })
    yield* checkpoints.beginRebuild("ext_balances")
  }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)

layer(projections(), { excludeTestServices: true, timeout: "60 seconds" })(
  "a rebuild asked from outside the runner",
  (it) => {
    it.effect("the running runner rebuilds: its read model equals a replay of the store", () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema, url } = yield* Harness.TestDatabase
        const resets = yield* Deferred.make<void>()
        const last = yield* seed
        const model = yield* balances(schema, "200 millis", Deferred.succeed(resets, undefined))
        yield* model.runner.awaitStatus("Live")
        yield* model.runner.awaitPosition(last)
        const before = yield* model.query.rows()

        // another connection, as the CLI would: the runner is idle, nothing else tells it
        yield* beginRebuildElsewhere(schema, url)

        yield* Deferred.await(resets)
        yield* model.runner.awaitStatus("Live")
        yield* model.runner.awaitPosition(last)
        const after = yield* model.query.rows()
        assert.deepStrictEqual(after, before) // each event applied once, as a replay does
        assert.strictEqual(after.reduce((n, row) => n + row.events, 0), 8)
        const checkpoints = yield* PostgresCheckpointStore.make({ schema })
        assert.isFalse(yield* checkpoints.rebuildPending("ext_balances"))
        assert.strictEqual(yield* checkpoints.load("ext_balances"), last)

        // and it goes on
        const result = yield* CommandExecutor.execute(Deposit, { account: "0", amount: 100 })
        const rows = yield* model.after(result).rows()
        assert.strictEqual(rows.reduce((n, row) => n + row.events, 0), 9)
      })))
  }
)

// A heartbeat that does not come round during the test: only the check before a reset can
// find the broken lock connection.
layer(projections({ heartbeat: "1 hour" }), { excludeTestServices: true, timeout: "60 seconds" })(
  "a rebuild asked from outside a runner whose lock connection broke unnoticed",
  (it) => {
    it.effect("the runner does not reset without the lock: it takes the lock again, then rebuilds once", () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema, url } = yield* Harness.TestDatabase
        const sql = yield* SqlClient.SqlClient
        const lockConnection = `eventcore projection locks (${schema})`
        // Which backend holds a projection lock of this schema, at each reset (none: -1).
        const holders = yield* Ref.make<ReadonlyArray<number>>([])
        const recordHolder = Effect.gen(function*() {
          const tx = yield* SqlClient.SqlClient
          const rows = yield* tx.unsafe<{ pid: number }>(
            `select l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'advisory' and l.granted and a.application_name = $1`,
            [lockConnection]
          )
          yield* Ref.update(holders, (all) => [...all, rows[0]?.pid ?? -1])
        })
        const last = yield* seed
        // No periodic check either: the save that fails with CheckpointMoved is what tells it.
        const model = yield* balances(schema, "1 hour", recordHolder)
        yield* model.runner.awaitStatus("Live")
        yield* model.runner.awaitPosition(last)
        const before = yield* model.query.rows()
        const [broken] = yield* sql.unsafe<{ pid: number }>(
          `select l.pid from pg_locks l join pg_stat_activity a on a.pid = l.pid
           where l.locktype = 'advisory' and l.granted and a.application_name = $1`,
          [lockConnection]
        )
        assert.isDefined(broken, "no lock connection holds the lock")
        if (broken === undefined) return

        // The CLI marks a rebuild, and the lock connection breaks: the server frees the lock
        // (once the backend is gone), the runner's lease does not know.
        yield* beginRebuildElsewhere(schema, url)
        yield* sql.unsafe(`select pg_terminate_backend($1)`, [broken.pid])
        yield* sql.unsafe<{ n: number }>(`select count(*)::int as n from pg_stat_activity where pid = $1`, [
          broken.pid
        ]).pipe(Effect.repeat({ until: (rows) => rows[0]?.n === 0, schedule: Schedule.spaced("20 millis") }))

        // A deposit: its save fails (the rebuild is pending), and the runner decides to rebuild.
        const result = yield* CommandExecutor.execute(Deposit, { account: "0", amount: 100 })
        const rows = yield* model.after(result).rows()
        yield* model.runner.awaitStatus("Live")

        const resets = yield* Ref.get(holders)
        assert.strictEqual(resets.length, 1, `resets under lock holders ${resets.join(", ")}`)
        const [holder] = resets
        assert.notStrictEqual(holder, -1, "the read model was reset while no one held the lock")
        assert.notStrictEqual(holder, broken.pid, "the read model was reset on the broken lock connection")
        // replayed, each event once, and the deposit on top
        const deposited: string = Account.makeUnsafe("0")
        assert.deepStrictEqual(
          rows,
          before.map((row) =>
            row.account === deposited
              ? { account: row.account, balance: String(Number(row.balance) + 100), events: row.events + 1 }
              : row
          )
        )
        const checkpoints = yield* PostgresCheckpointStore.make({ schema })
        assert.isFalse(yield* checkpoints.rebuildPending("ext_balances"))
      })))
  }
)
