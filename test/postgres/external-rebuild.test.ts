/**
 * A rebuild asked from another connection (as the CLI's `projections rebuild` does, with
 * `CheckpointStore.beginRebuild`) is carried out by the runner that holds the lock, though it
 * did not ask for it: the read model is cleared and replayed, and equals a replay of the store.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Command, CommandExecutor, Event, Position, StreamCategory } from "eventcore"
import { PostgresCheckpointStore, PostgresProjection, PostgresReadModel } from "eventcore/postgres"
import * as Harness from "./harness.ts"

/** The position of a command's last event (each command here writes one). */
const written = (result: CommandExecutor.ExecutionResult): Position.Position => {
  if (result.position === undefined) throw new Error("the command wrote nothing")
  return result.position
}

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

const schemaOf = Harness.TestDatabase.useSync((db) => db.schema)

layer(
  Layer.unwrap(
    Effect.map(schemaOf, (schema) => Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })))
  ).pipe(Layer.provideMerge(Harness.layer({ maxConnections: 4 }))),
  { excludeTestServices: true, timeout: "60 seconds" }
)("a rebuild asked from outside the runner", (it) => {
  it.effect("the running runner rebuilds: its read model equals a replay of the store", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema, url } = yield* Harness.TestDatabase
      const table = `${schema}.ext_balances`
      const resets = yield* Deferred.make<void>()
      // Waits use the last command's position, not the store's head: the visible head trails
      // commits while any other transaction on the server is open (other test files).
      let last = yield* CommandExecutor.execute(Deposit, { account: "0", amount: 1 })
      for (let i = 1; i < 8; i++) last = yield* CommandExecutor.execute(Deposit, { account: `${i % 3}`, amount: 1 + i })
      const model = yield* PostgresReadModel.make({
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
        reset: Effect.flatMap(
          SqlClient.SqlClient,
          (sql) => Effect.andThen(sql.unsafe(`truncate ${table}`), Deferred.succeed(resets, undefined))
        ),
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
        runner: { rebuildCheck: "200 millis" }
      })
      yield* model.runner.awaitStatus("Live")
      yield* model.runner.awaitPosition(written(last))
      const before = yield* model.query.rows()

      // another connection, as the CLI would: the runner is idle, nothing else tells it
      yield* Effect.gen(function*() {
        const checkpoints = yield* PostgresCheckpointStore.make({ schema })
        yield* checkpoints.beginRebuild("ext_balances")
      }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)

      yield* Deferred.await(resets)
      yield* model.runner.awaitStatus("Live")
      yield* model.runner.awaitPosition(written(last))
      const after = yield* model.query.rows()
      assert.deepStrictEqual(after, before) // each event applied once, as a replay does
      assert.strictEqual(after.reduce((n, row) => n + row.events, 0), 8)
      const checkpoints = yield* PostgresCheckpointStore.make({ schema })
      assert.isFalse(yield* checkpoints.rebuildPending("ext_balances"))
      assert.strictEqual(yield* checkpoints.load("ext_balances"), written(last))

      // and it goes on
      const result = yield* CommandExecutor.execute(Deposit, { account: "0", amount: 100 })
      const rows = yield* model.after(result).rows()
      assert.strictEqual(rows.reduce((n, row) => n + row.events, 0), 9)
    })))
})
