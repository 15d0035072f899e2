/**
 * Read models in PostgreSQL: migrations for their tables, typed queries, read-your-writes with
 * a runner, and inline read models updated in the transaction of the append (consistent at
 * commit; a failing update fails the append and writes nothing; rebuilt from history).
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { Command, CommandExecutor, Event, EventStore, StreamCategory } from "eventcore"
import { PostgresProjection, PostgresReadModel } from "eventcore/postgres"
import * as Harness from "./harness.ts"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Events = Event.catalog(Deposited)

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

/** One definition per table: a read model of balances, in the test file's schema. */
const balancesOptions = (schema: string, table: string) => ({
  name: table,
  events: Events,
  filter: Account.filter,
  migrationsTable: `${schema}.${table}_migrations`,
  migrations: {
    "1_create": Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql.unsafe(`create table ${schema}.${table} (account text primary key, balance bigint not null)`)
    ),
    "2_add_events": Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql.unsafe(`alter table ${schema}.${table} add column events int not null default 0`)
    )
  },
  handle: (event: typeof Deposited.Type, stored: { readonly streamId: string }) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      event.amount === 13
        ? Effect.die(new Error("unlucky amount"))
        : sql.unsafe(
          `insert into ${schema}.${table} values ($1, $2, 1)
           on conflict (account) do update set balance = ${table}.balance + excluded.balance, events = ${table}.events + 1`,
          [stored.streamId, event.amount]
        )),
  reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`truncate ${schema}.${table}`)),
  queries: {
    balance: (account: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql.unsafe<{ balance: string }>(`select balance::text from ${schema}.${table} where account = $1`, [
            Account.makeUnsafe(account)
          ]),
          (rows) => Number(rows[0]?.balance ?? 0)
        )),
    total: () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          sql.unsafe<{ total: string | null }>(`select sum(balance)::text as total from ${schema}.${table}`),
          (rows) => Number(rows[0]?.total ?? 0)
        ))
  }
})

const schemaOf = Harness.TestDatabase.useSync((db) => db.schema)

const Base = Harness.layer({ maxConnections: 6 })

layer(
  Layer.unwrap(
    Effect.map(schemaOf, (schema) => Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })))
  )
    .pipe(Layer.provideMerge(Base)),
  { excludeTestServices: true, timeout: "60 seconds" }
)("PostgresReadModel.make", (it) => {
  it.effect("migrates once, applies through a runner, and answers after a command's writes", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const model = yield* PostgresReadModel.make(balancesOptions(schema, "rm_runner"))
      const first = yield* CommandExecutor.execute(Deposit, { account: "1", amount: 5 })
      assert.strictEqual(yield* model.after(first).balance("1"), 5)
      const second = yield* CommandExecutor.execute(Deposit, { account: "1", amount: 2 })
      assert.strictEqual(yield* model.after(second).balance("1"), 7)
      // the migrations ran once each, and starting again runs none
      const sql = yield* SqlClient.SqlClient
      const applied = yield* sql.unsafe<{ migration_id: number }>(
        `select migration_id from ${schema}.rm_runner_migrations order by migration_id`
      )
      assert.deepStrictEqual(applied.map((r) => r.migration_id), [1, 2])
      yield* PostgresReadModel.migrate(
        "rm_runner",
        balancesOptions(schema, "rm_runner").migrations,
        `${schema}.rm_runner_migrations`
      )
    })))
})

const inlineLayer = Layer.unwrap(Effect.map(schemaOf, (schema) =>
  CommandExecutor.layer().pipe(
    Layer.provideMerge(PostgresReadModel.inline(balancesOptions(schema, "rm_inline")).layer)
  ))).pipe(Layer.provideMerge(Base))

layer(inlineLayer, { excludeTestServices: true })("PostgresReadModel.inline", (it) => {
  const model = Effect.flatMap(
    schemaOf,
    (schema) => PostgresReadModel.inline(balancesOptions(schema, "rm_inline")).readModel
  )

  it.effect("is consistent at commit: the read model has the events as soon as the command returns", () =>
    Effect.gen(function*() {
      const balances = yield* model
      yield* CommandExecutor.execute(Deposit, { account: "a", amount: 4 })
      assert.strictEqual(yield* balances.query.balance("a"), 4)
      // concurrent commands on one stream: conflicts retried, each event applied once
      yield* Effect.forEach(
        Array.from({ length: 12 }, (_, i) => i + 1),
        // Each conflict means another deposit committed: 12 deposits need at most 12 attempts.
        (amount) => CommandExecutor.execute(Deposit, { account: "b", amount }, { retry: Schedule.recurs(12) }),
        { concurrency: 8, discard: true }
      )
      assert.strictEqual(yield* balances.query.balance("b"), (12 * 13) / 2)
      assert.strictEqual((yield* EventStore.readStream(Account.makeUnsafe("b"))).version, 12)
    }))

  it.effect("a failing update fails the append: nothing written, the read model unchanged", () =>
    Effect.gen(function*() {
      const balances = yield* model
      yield* CommandExecutor.execute(Deposit, { account: "c", amount: 1 })
      const exit = yield* Effect.exit(CommandExecutor.execute(Deposit, { account: "c", amount: 13 }))
      assert.strictEqual(exit._tag, "Failure")
      const read = yield* EventStore.readStream(Account.makeUnsafe("c"))
      assert.strictEqual(read.version, 1)
      assert.strictEqual(yield* balances.query.balance("c"), 1)
    }))

  it.effect("an idempotent replay applies nothing twice", () =>
    Effect.gen(function*() {
      const balances = yield* model
      const first = yield* CommandExecutor.execute(Deposit, { account: "d", amount: 3 }, { idempotencyKey: "d-1" })
      const again = yield* CommandExecutor.execute(Deposit, { account: "d", amount: 3 }, { idempotencyKey: "d-1" })
      assert.isFalse(first.replayed)
      assert.isTrue(again.replayed)
      assert.strictEqual(yield* balances.query.balance("d"), 3)
    }))

  it.effect("rebuild replays the whole store into it: what it lost, or history from before it, is back", () =>
    Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const inline = PostgresReadModel.inline(balancesOptions(schema, "rm_inline"))
      const balances = yield* inline.readModel
      // the read model loses a row (or never saw the history before it existed)
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`delete from ${schema}.rm_inline where account = $1`, [Account.makeUnsafe("a")])
      assert.strictEqual(yield* balances.query.balance("a"), 0)
      yield* inline.rebuild({ schema })
      const replayed = yield* Stream.runCollect(EventStore.readAll({ filter: Account.filter }))
      const expected = replayed.reduce((sum, e) => sum + (e.payload as { amount: number }).amount, 0)
      assert.strictEqual(yield* balances.query.total(), expected)
      assert.strictEqual(yield* balances.query.balance("a"), 4)
    }))
})

const stackedLayer = Layer.unwrap(Effect.map(schemaOf, (schema) =>
  CommandExecutor.layer().pipe(
    Layer.provideMerge(PostgresReadModel.inline(balancesOptions(schema, "rm_outer")).layer),
    Layer.provideMerge(PostgresReadModel.inline(balancesOptions(schema, "rm_inner")).layer)
  ))).pipe(Layer.provideMerge(Base))

layer(stackedLayer, { excludeTestServices: true })("stacked inline read models", (it) => {
  it.effect("all of them and the append commit together, or none", () =>
    Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const outer = yield* PostgresReadModel.inline(balancesOptions(schema, "rm_outer")).readModel
      const inner = yield* PostgresReadModel.inline(balancesOptions(schema, "rm_inner")).readModel
      yield* CommandExecutor.execute(Deposit, { account: "s", amount: 2 })
      assert.deepStrictEqual([yield* outer.query.balance("s"), yield* inner.query.balance("s")], [2, 2])
      const failed = yield* Effect.exit(CommandExecutor.execute(Deposit, { account: "s", amount: 13 }))
      assert.strictEqual(failed._tag, "Failure")
      assert.deepStrictEqual([yield* outer.query.balance("s"), yield* inner.query.balance("s")], [2, 2])
      assert.strictEqual((yield* EventStore.readStream(Account.makeUnsafe("s"))).version, 1)
    }))
})
