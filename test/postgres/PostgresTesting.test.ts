/**
 * `eventcore/testing/postgres` as a user's test file would use it: the real store, executor
 * and projection services in a fresh schema, dropped afterwards; a clear failure when there
 * is no server.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Layer, Redacted, Schema, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import {
  CheckpointStore,
  Command,
  CommandExecutor,
  Event,
  EventStore,
  Projection,
  ProjectionRunner,
  StreamCategory
} from "eventcore"
import { PostgresTesting } from "eventcore/testing/postgres"
import * as Harness from "./harness.ts"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Events = Event.catalog(Deposited)
const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: 0,
  apply: (total, event) => total + event.amount,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

// The suite's own server (DATABASE_URL or the throwaway one the harness starts).
const url = await Effect.runPromise(Harness.databaseUrl)

layer(PostgresTesting.layer({ url }), { excludeTestServices: true })("PostgresTesting.layer", (pg) => {
  pg.effect("executes commands on PostgreSQL in a schema of its own", () =>
    Effect.gen(function*() {
      const { schema } = yield* PostgresTesting.TestSchema
      assert.match(schema, /^ec_test_[0-9a-f]{16}$/)
      const result = yield* CommandExecutor.execute(Deposit, { account: "1", amount: 5 })
      assert.deepStrictEqual(result.events.map((e) => e.streamId), ["account-1"])
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql.unsafe<{ n: string }>(`select count(*)::text as n from ${schema}.events`)
      assert.strictEqual(rows[0]?.n, "1")
    }))

  pg.effect(
    "runs projections: checkpoints, dead letters and the lock are there too",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const written = yield* CommandExecutor.execute(Deposit, { account: "2", amount: 7 })
        const runner = yield* ProjectionRunner.start(Projection.fold({
          name: "totals",
          events: Events,
          initial: 0,
          apply: (total, event) => total + event.amount
        }))
        const last = written.position
        if (last === undefined) return assert.fail("no position")
        yield* EventStore.awaitVisible(last)
        yield* runner.awaitPosition(last)
        assert.isAtLeast(yield* SubscriptionRef.get(runner.state), 7)
        const checkpoints = yield* CheckpointStore.CheckpointStore
        yield* checkpoints.save("totals", last)
        assert.strictEqual(yield* checkpoints.load("totals"), last)
      }))
  )
})

describe("PostgresTesting.layer lifecycle", () => {
  it.live("drops its schema when released", () =>
    Effect.gen(function*() {
      const schema = yield* Effect.scoped(
        Effect.gen(function*() {
          const context = yield* Layer.build(PostgresTesting.layer({ url, maxConnections: 2 }))
          return Context.get(context, PostgresTesting.TestSchema).schema
        })
      )
      const rows = yield* Effect.scoped(
        SqlClient.SqlClient.use((sql) =>
          sql.unsafe<{ n: string }>("select count(*)::text as n from pg_namespace where nspname = $1", [schema])
        ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })))
      )
      assert.strictEqual(rows[0]?.n, "0")
    }))

  it.live("without a server, fails saying what to do", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        Effect.scoped(Layer.build(PostgresTesting.layer({ url: "postgres://postgres:secret@127.0.0.1:1/test" })))
      )
      assert.isTrue(Exit.isFailure(exit))
      if (!Exit.isFailure(exit)) return
      const message = Cause.pretty(exit.cause)
      assert.include(message, "cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1:1/test")
      assert.include(message, "set DATABASE_URL")
      assert.notInclude(message, "secret")
    }), 30_000)
})
