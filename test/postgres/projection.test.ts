/**
 * The PostgreSQL parts of projections: checkpoints (forward only, inside transactions),
 * dead letters, the cross-process lock (one active runner, takeover within seconds), and a
 * transactional read model that rebuilds to the same result.
 */
import { assert, layer } from "@effect/vitest"
import { Clock, Deferred, Effect, Exit, Layer, Scope, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { AccountEvents } from "../../examples/banking/Account.ts"
import { CheckpointStore } from "../../src/CheckpointStore.ts"
import { DeadLetterStore } from "../../src/DeadLetterStore.ts"
import * as Position from "../../src/Position.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as Projection from "../../src/Projection.ts"
import { ProjectionLock } from "../../src/ProjectionLock.ts"
import * as ProjectionRunner from "../../src/ProjectionRunner.ts"
import { raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"
import { createReadModels, lastCommitted, replay, seed, transactionalBalances } from "./projectionFixtures.ts"

const TestLayer = Layer.unwrap(
  Effect.map(
    Harness.TestDatabase,
    ({ schema }) => PostgresProjection.layer({ schema, lock: { pollInterval: "100 millis", heartbeat: "200 millis" } })
  )
).pipe(
  Layer.provideMerge(Harness.layer()),
  Layer.orDie
)

const balancesTable = Effect.map(
  raw<{ account: string; balance: string }>("select account, balance::text from ${s}.rm_balances"),
  (rows) => new Map(rows.map((r) => [r.account, Number(r.balance)]))
)

layer(TestLayer, { excludeTestServices: true })("PostgreSQL projections", (it) => {
  it.effect("checkpoints: load, forward-only save, reset, and rollback with the transaction", () =>
    Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore
      const sql = yield* SqlClient.SqlClient
      assert.isUndefined(yield* checkpoints.load("cp"))
      yield* checkpoints.save("cp", Position.make(5, 5))
      yield* checkpoints.save("cp", Position.make(4, 9)) // behind: ignored
      assert.strictEqual(yield* checkpoints.load("cp"), Position.make(5, 5))
      yield* checkpoints.save("cp", Position.make(10, 1))
      assert.strictEqual(yield* checkpoints.load("cp"), Position.make(10, 1))
      // a save inside a transaction that rolls back leaves no trace
      const rolledBack = yield* sql.withTransaction(
        Effect.andThen(checkpoints.save("cp", Position.make(20, 1)), Effect.fail("abort" as const))
      ).pipe(Effect.exit)
      assert.isTrue(Exit.isFailure(rolledBack))
      assert.strictEqual(yield* checkpoints.load("cp"), Position.make(10, 1))
      yield* checkpoints.reset("cp")
      assert.isUndefined(yield* checkpoints.load("cp"))
    }))

  it.effect("transactional read model: catches up, goes live, equals a replay, rebuilds to the same", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      yield* createReadModels(schema)
      yield* seed({ count: 500, accounts: 5, batch: 50 })
      const runner = yield* ProjectionRunner.start(yield* transactionalBalances(schema), { pageSize: 64 })
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* lastCommitted)
      const expected = yield* replay
      const first = yield* balancesTable
      assert.deepStrictEqual(first, expected.balances)
      assert.strictEqual(yield* CheckpointStore.use((c) => c.load("balances-tx")), yield* lastCommitted)
      // live
      yield* seed({ count: 10, accounts: 1, batch: 10, prefix: "live" })
      yield* runner.awaitPosition(yield* lastCommitted)
      const lag = yield* runner.lag
      assert.strictEqual(lag.events, 0)
      const afterLive = yield* balancesTable
      assert.deepStrictEqual(afterLive, (yield* replay).balances)
      // rebuild: same read model
      yield* runner.rebuild
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* lastCommitted)
      assert.deepStrictEqual(yield* balancesTable, afterLive)
      const applied = yield* raw<{ n: string }>("select count(*)::text as n from ${s}.rm_applied")
      assert.strictEqual(Number(applied[0]?.n), (yield* replay).count)
    })))

  it.effect("skip in a transactional projection: the poison event's writes roll back, the dead letter commits", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`create table ${schema}.rm_poison (event_id uuid primary key)`)
      const rows = yield* raw<{ event_id: string }>(
        "select event_id::text from ${s}.events order by position limit 1 offset 3"
      )
      const poisonId = rows[0]?.event_id
      const projection = yield* PostgresProjection.transactional({
        name: "poisoned",
        events: AccountEvents,
        onFailure: Projection.skip,
        handle: (_event, stored) =>
          Effect.gen(function*() {
            yield* sql.unsafe(`insert into ${schema}.rm_poison (event_id) values ($1)`, [stored.eventId])
            if (stored.eventId === poisonId) return yield* Effect.fail(new Error(`cannot handle ${stored.eventId}`))
          })
      })
      const runner = yield* ProjectionRunner.start(projection)
      yield* runner.awaitPosition(yield* lastCommitted)
      const letters = yield* DeadLetterStore.use((d) => d.list("poisoned"))
      assert.strictEqual(letters.length, 1)
      assert.strictEqual(letters[0]?.eventId, poisonId)
      assert.include(letters[0]?.error ?? "", "cannot handle")
      const written = yield* raw<{ n: string; poison: string }>(
        "select count(*)::text as n, count(*) filter (where event_id = $1)::text as poison from ${s}.rm_poison",
        [poisonId]
      )
      assert.strictEqual(Number(written[0]?.poison), 0)
      assert.strictEqual(Number(written[0]?.n), (yield* replay).count - 1)
      assert.strictEqual((yield* SubscriptionRef.get(runner.status))._tag, "Live")
    })))

  it.effect("transactional: a runner that lost its lock without noticing cannot commit a batch over the new holder's", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const sql = yield* SqlClient.SqlClient
      // no unique key: a second application of an event shows up as a second row
      yield* sql.unsafe(`create table ${schema}.rm_fenced (event_id uuid not null, runner text not null)`)
      yield* seed({ count: 10, accounts: 1, batch: 10, prefix: "fenced" })
      const zombieEntered = yield* Deferred.make<void>()
      const zombieGo = yield* Deferred.make<void>()
      const fenced = (runner: "zombie" | "holder") =>
        PostgresProjection.transactional({
          name: "fenced",
          events: AccountEvents,
          filter: { streamPrefix: "fenced-" },
          handle: (_event, stored) =>
            Effect.gen(function*() {
              if (runner === "zombie") {
                yield* Deferred.succeed(zombieEntered, undefined)
                yield* Deferred.await(zombieGo)
              }
              yield* sql.unsafe(`insert into ${schema}.rm_fenced (event_id, runner) values ($1, $2)`, [
                stored.eventId,
                runner
              ])
            })
        })
      // Both runners believe they hold the lock: the window between a holder's lock connection
      // dying and its heartbeat noticing, while another runner has taken the lock.
      const bothHold = Effect.provideService(ProjectionLock, { acquire: () => Effect.succeed({ lost: Effect.never }) })
      const zombie = yield* bothHold(ProjectionRunner.start(yield* fenced("zombie")))
      yield* Deferred.await(zombieEntered)
      const holder = yield* bothHold(ProjectionRunner.start(yield* fenced("holder")))
      yield* holder.awaitStatus("Live")
      yield* holder.awaitPosition(yield* lastCommitted)
      // the zombie wakes up and finishes the batch it had started
      yield* Deferred.succeed(zombieGo, undefined)
      yield* zombie.awaitPosition(yield* lastCommitted)
      const rows = yield* raw<{ n: string; distinct_events: string }>(
        "select count(*)::text as n, count(distinct event_id)::text as distinct_events from ${s}.rm_fenced"
      )
      assert.deepStrictEqual(rows[0], { n: "10", distinct_events: "10" })
      yield* zombie.awaitStatus("Live")
    })))

  it.effect("two runners, one name: one processes; when it stops or its connection dies, the other takes over within seconds", () =>
    Effect.gen(function*() {
      const processedBy = { a: 0, b: 0 }
      const make = (who: "a" | "b") =>
        Projection.make({
          name: "exclusive",
          events: AccountEvents,
          handle: () => Effect.sync(() => void processedBy[who]++),
          checkpoint: { everyEvents: 1 }
        })
      const scopeA = yield* Scope.make()
      const scopeB = yield* Scope.make()
      const a = yield* ProjectionRunner.start(make("a")).pipe(Scope.provide(scopeA))
      yield* a.awaitStatus("Live")
      const b = yield* ProjectionRunner.start(make("b")).pipe(Scope.provide(scopeB))
      yield* a.awaitPosition(yield* lastCommitted)
      yield* seed({ count: 5, accounts: 1, batch: 5, prefix: "lock1" })
      yield* a.awaitPosition(yield* lastCommitted)
      assert.strictEqual((yield* SubscriptionRef.get(b.status))._tag, "Standby")
      assert.strictEqual(processedBy.b, 0)
      const byA = processedBy.a

      // a stops: b takes over within seconds, from a's checkpoint
      const stopped = yield* Clock.currentTimeMillis
      yield* Scope.close(scopeA, Exit.void)
      yield* b.awaitStatus("Live")
      const tookOver = (yield* Clock.currentTimeMillis) - stopped
      assert.isBelow(tookOver, 5_000)
      yield* seed({ count: 3, accounts: 1, batch: 3, prefix: "lock2" })
      yield* b.awaitPosition(yield* lastCommitted)
      assert.strictEqual(processedBy.a, byA)
      assert.strictEqual(processedBy.b, 3)

      // a new runner c waits; b's lock connection is killed (as if its process died): c takes over
      const scopeC = yield* Scope.make()
      const c = yield* ProjectionRunner.start(make("a")).pipe(Scope.provide(scopeC))
      assert.strictEqual((yield* SubscriptionRef.get(c.status))._tag, "Standby")
      const killedAt = yield* Clock.currentTimeMillis
      yield* raw(
        `select pg_terminate_backend(pid) from pg_locks
        where locktype = 'advisory' and granted and pid <> pg_backend_pid()
          and ((classid::bigint << 32) | objid::bigint) = hashtextextended('eventcore/projection/' || $1 || '/exclusive', 0)`,
        [(yield* Harness.TestDatabase).schema]
      )
      yield* c.awaitStatus("Live")
      assert.isBelow((yield* Clock.currentTimeMillis) - killedAt, 5_000)
      // b noticed it lost the lock and waits again
      yield* b.awaitStatus("Standby")
      yield* seed({ count: 2, accounts: 1, batch: 2, prefix: "lock3" })
      yield* c.awaitPosition(yield* lastCommitted)
      assert.strictEqual(processedBy.b, 3)
      assert.strictEqual(processedBy.a, byA + 2)
      yield* Scope.close(scopeC, Exit.void)
      yield* Scope.close(scopeB, Exit.void)
    }))
})
