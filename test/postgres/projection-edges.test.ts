/**
 * Projections on PostgreSQL at the edges: a transactional rebuild is all or nothing and stays
 * pending until it succeeds; runners never starve the connection pool, however many wait.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { DateTime, Effect, Layer, Redacted, Ref, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { CheckpointStore, DeadLetterStore, Position, Projection, ProjectionRunner } from "eventcore"
import { AccountEvents, balanceDelta } from "../../examples/banking/Account.ts"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import { raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"
import { createReadModels, lastCommitted, replay, seed } from "./projectionFixtures.ts"

const Live = (maxConnections: number) =>
  Layer.unwrap(
    Effect.map(
      Harness.TestDatabase,
      ({ schema }) =>
        PostgresProjection.layer({ schema, lock: { pollInterval: "100 millis", heartbeat: "200 millis" } })
    )
  ).pipe(Layer.provideMerge(Harness.layer({ maxConnections })), Layer.orDie)

const count = (table: string) =>
  Effect.map(raw<{ n: string }>(`select count(*)::text as n from \${s}.${table}`), (rows) => Number(rows[0]?.n))

const balancesTable = Effect.map(
  raw<{ account: string; balance: string }>("select account, balance::text from ${s}.rm_balances"),
  (rows) => new Map(rows.map((r) => [r.account, Number(r.balance)]))
)

layer(Live(8), { excludeTestServices: true, timeout: "60 seconds" })("a transactional rebuild", (it) => {
  it.effect("all or nothing: a reset failing halfway changes nothing and stays pending; it completes on restart", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const sql = yield* SqlClient.SqlClient
      yield* createReadModels(schema)
      yield* seed({ count: 120, accounts: 4, batch: 10 })
      const failing = yield* Ref.make(false)
      const projection = yield* PostgresProjection.transactional({
        name: "atomic",
        events: AccountEvents,
        handle: (event, stored) =>
          Effect.gen(function*() {
            yield* sql.unsafe(`insert into ${schema}.rm_applied (event_id) values ($1)`, [stored.eventId])
            yield* sql.unsafe(
              `insert into ${schema}.rm_balances (account, balance, events) values ($1, $2, 1)
               on conflict (account) do update set balance = rm_balances.balance + excluded.balance,
                 events = rm_balances.events + 1`,
              [stored.streamId, balanceDelta(event)]
            )
          }),
        // clears the tables, then (when told to) fails: the clearing must roll back with it
        reset: Effect.gen(function*() {
          yield* sql.unsafe(`truncate ${schema}.rm_balances, ${schema}.rm_applied`)
          if (yield* Ref.get(failing)) return yield* Effect.fail(new Error("reset failed halfway"))
        })
      })
      const runner = yield* ProjectionRunner.start(projection)
      yield* runner.awaitPosition(yield* lastCommitted)
      const before = yield* balancesTable
      const checkpoint = yield* CheckpointStore.load("atomic")
      yield* DeadLetterStore.DeadLetterStore.use((letters) =>
        Effect.flatMap(DateTime.now, (recordedAt) =>
          letters.record({
            projection: "atomic",
            eventId: "01a22a9c-0000-7000-8000-000000000000",
            streamId: "acct-0",
            streamVersion: 1,
            position: Position.initial,
            type: "MoneyDeposited",
            error: "an old failure",
            attempts: 1,
            recordedAt
          }))
      )

      yield* Ref.set(failing, true)
      yield* runner.rebuild.pipe(Effect.flip)
      yield* runner.awaitStatus("Faulted")
      assert.deepStrictEqual(yield* balancesTable, before, "the read model was cleared although the rebuild failed")
      assert.strictEqual((yield* DeadLetterStore.DeadLetterStore.use((l) => l.list("atomic"))).length, 1)
      assert.strictEqual(yield* count("rm_applied"), 120)
      assert.strictEqual(yield* CheckpointStore.load("atomic"), checkpoint)
      assert.isTrue(yield* CheckpointStore.CheckpointStore.use((c) => c.rebuildPending("atomic")))

      yield* Ref.set(failing, false)
      yield* runner.restart
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* lastCommitted)
      assert.deepStrictEqual(yield* balancesTable, (yield* replay).balances)
      assert.strictEqual(yield* count("rm_applied"), 120)
      assert.isFalse(yield* CheckpointStore.CheckpointStore.use((c) => c.rebuildPending("atomic")))
      assert.strictEqual((yield* DeadLetterStore.DeadLetterStore.use((l) => l.list("atomic"))).length, 0)
    })))
})

layer(Live(4), { excludeTestServices: true, timeout: "60 seconds" })("runners and the pool", (it) => {
  it.effect("nine runners (six names) on a pool of four: all six go live, three wait, one lock connection", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      yield* seed({ count: 30, accounts: 3, batch: 10 })
      const names = Array.from({ length: 6 }, (_, i) => `pooled-${i}`)
      const make = (name: string) => Projection.make({ name, events: AccountEvents, handle: () => Effect.void })
      const active = yield* Effect.forEach(names, (name) => ProjectionRunner.start(make(name)))
      const waiting = yield* Effect.forEach(names.slice(0, 3), (name) => ProjectionRunner.start(make(name)))
      yield* Effect.forEach(active, (runner) => runner.awaitStatus("Live"), { concurrency: "unbounded" })
      for (const runner of waiting) assert.strictEqual((yield* SubscriptionRef.get(runner.status))._tag, "Standby")
      yield* seed({ count: 10, accounts: 1, batch: 10, prefix: "later" })
      const last = yield* lastCommitted
      yield* Effect.forEach(active, (runner) => runner.awaitPosition(last), { concurrency: "unbounded" })
      const sessions = yield* raw<{ n: string }>(
        "select count(*)::text as n from pg_stat_activity where application_name = $1",
        [`eventcore projection locks (${schema})`]
      )
      assert.strictEqual(sessions[0]?.n, "1")
    })))

  it.effect("a store on a pool of one connection fails at once, naming the setting, instead of hanging", () =>
    Effect.gen(function*() {
      const { schema, url } = yield* Harness.TestDatabase
      const error = yield* Layer.build(
        PostgresEventStore.layer({ schema, migrate: false }).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
        )
      ).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "InvalidInput")
      assert.include(error.message, "maxConnections")
    }))
})
