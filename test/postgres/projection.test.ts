/**
 * The PostgreSQL parts of projections: checkpoints (forward only, inside transactions),
 * dead letters, the cross-process lock (one active runner, takeover within seconds), and a
 * transactional read model that rebuilds to the same result.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Layer, Redacted, Scope, Stream, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { AccountEvents } from "../../examples/banking/Account.ts"
import { CheckpointStore } from "../../src/CheckpointStore.ts"
import { DeadLetterStore } from "../../src/DeadLetterStore.ts"
import * as Position from "../../src/Position.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as PostgresProjectionLock from "../../src/postgres/PostgresProjectionLock.ts"
import * as Projection from "../../src/Projection.ts"
import { ProjectionLock } from "../../src/ProjectionLock.ts"
import * as ProjectionRunner from "../../src/ProjectionRunner.ts"
import { raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"
import { createReadModels, lastCommitted, replay, seed, transactionalBalances } from "./projectionFixtures.ts"
import * as Proxy from "./proxy.ts"

const TestLayer = Layer.unwrap(
  Effect.map(
    Harness.TestDatabase,
    ({ schema }) => PostgresProjection.layer({ schema, lock: { pollInterval: "100 millis", heartbeat: "200 millis" } })
  )
).pipe(
  Layer.provideMerge(Harness.layer()),
  Layer.orDie
)

/** A scope closed when the test's scope closes, whether the test passes or not. */
const childScope = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer((exit) => Scope.close(scope, exit))
  return scope
})

/**
 * Cross-process waits are bounded: a test that would hang fails saying what it waited for. The
 * bound is far above what the waits take (a poll interval or two) so that a loaded machine
 * does not fail them.
 */
const within = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string) =>
  effect.pipe(
    Effect.timeoutOrElse({
      duration: Duration.seconds(60),
      orElse: () => Effect.die(new Error(`still waiting after 60 s: ${what}`))
    })
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
      const target = yield* lastCommitted
      yield* runner.awaitPosition(target)
      const lag = yield* runner.lag
      const seen = {
        lag,
        target,
        position: yield* SubscriptionRef.get(runner.position),
        status: yield* SubscriptionRef.get(runner.status),
        checkpoint: yield* CheckpointStore.use((c) => c.load("balances-tx")),
        now: yield* lastCommitted
      }
      assert.strictEqual(lag.events, 0, JSON.stringify(seen, (_, v) => typeof v === "bigint" ? String(v) : v))
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

  it.effect("two runners, one name: one processes; when it stops or its connection dies, another takes over within seconds", () =>
    Effect.scoped(Effect.gen(function*() {
      const processedBy = { a: 0, b: 0, c: 0 }
      const make = (who: "a" | "b" | "c") =>
        Projection.make({
          name: "exclusive",
          events: AccountEvents,
          handle: () => Effect.sync(() => void processedBy[who]++),
          checkpoint: { everyEvents: 1 }
        })
      const scopeA = yield* childScope
      const a = yield* ProjectionRunner.start(make("a")).pipe(Scope.provide(scopeA))
      yield* a.awaitStatus("Live")
      const b = yield* ProjectionRunner.start(make("b"))
      yield* a.awaitPosition(yield* lastCommitted)
      yield* seed({ count: 5, accounts: 1, batch: 5, prefix: "lock1" })
      yield* a.awaitPosition(yield* lastCommitted)
      assert.strictEqual((yield* SubscriptionRef.get(b.status))._tag, "Standby")
      assert.strictEqual(processedBy.b, 0)
      const byA = processedBy.a

      // a stops: b takes over on its next poll, from a's checkpoint
      yield* Scope.close(scopeA, Exit.void)
      yield* within(b.awaitStatus("Live"), "b takes over from a")
      yield* seed({ count: 3, accounts: 1, batch: 3, prefix: "lock2" })
      yield* within(b.awaitPosition(yield* lastCommitted), "b processes lock2")
      assert.strictEqual(processedBy.a, byA)
      assert.strictEqual(processedBy.b, 3)

      // a new runner c waits; b's lock connection is killed (as if its process died). b notices
      // and competes for the lock again with c: either may win (b often does: it tries at once,
      // c only on its next poll), and exactly one of them processes what comes next.
      const c = yield* ProjectionRunner.start(make("c"))
      assert.strictEqual((yield* SubscriptionRef.get(c.status))._tag, "Standby")
      const afterLoss = SubscriptionRef.changes(b.status).pipe(Stream.dropWhile((s) => s._tag !== "Standby"))
      const bNoticed = yield* Effect.forkScoped(Stream.runHead(afterLoss))
      const bLiveAgain = yield* Effect.forkScoped(
        Stream.runHead(Stream.filter(afterLoss, (s) => s._tag === "Live"))
      )
      yield* raw(
        `select pg_terminate_backend(pid) from pg_locks
        where locktype = 'advisory' and granted and pid <> pg_backend_pid()
          and ((classid::bigint << 32) | objid::bigint) = hashtextextended('eventcore/projection/' || $1 || '/exclusive', 0)`,
        [(yield* Harness.TestDatabase).schema]
      )
      const winner = yield* within(
        Effect.raceFirst(
          Effect.as(Fiber.join(bLiveAgain), "b" as const),
          Effect.as(c.awaitStatus("Live"), "c" as const)
        ),
        "b or c takes the lock after b's connection died"
      )
      yield* within(Fiber.join(bNoticed), "b noticed it lost the lock")
      const [active, waiting] = winner === "b" ? [b, c] : [c, b]
      assert.strictEqual((yield* SubscriptionRef.get(waiting.status))._tag, "Standby")
      yield* seed({ count: 2, accounts: 1, batch: 2, prefix: "lock3" })
      yield* within(active.awaitPosition(yield* lastCommitted), `${winner} processes lock3`)
      assert.deepStrictEqual(processedBy, { a: byA, b: winner === "b" ? 5 : 3, c: winner === "c" ? 2 : 0 })
    })))

  it.effect("a lock connection that stops answering (half-open) counts as lost; its session is terminated", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema, url } = yield* Harness.TestDatabase
      const proxy = yield* Proxy.make(new URL(url))
      const proxiedUrl = new URL(url)
      proxiedUrl.port = String(proxy.port)
      // a's lock lives on a pool behind the proxy; everything else goes straight to the server
      const proxied = yield* Layer.build(
        PostgresProjectionLock.layer({
          schema,
          pollInterval: "100 millis",
          heartbeat: "100 millis",
          heartbeatTimeout: "500 millis"
        })
          .pipe(Layer.provide(PgClient.layer({ url: Redacted.make(proxiedUrl.toString()), maxConnections: 4 })))
      )
      const processedBy = { a: 0, b: 0 }
      const make = (who: "a" | "b") =>
        Projection.make({
          name: "half-open",
          events: AccountEvents,
          handle: () => Effect.sync(() => void processedBy[who]++),
          checkpoint: { everyEvents: 1 }
        })
      const a = yield* ProjectionRunner.start(make("a")).pipe(Effect.provideContext(proxied))
      yield* within(a.awaitStatus("Live"), "a goes live")
      const b = yield* ProjectionRunner.start(make("b"))
      yield* within(a.awaitPosition(yield* lastCommitted), "a catches up")
      const afterLoss = SubscriptionRef.changes(a.status).pipe(Stream.dropWhile((s) => s._tag !== "Standby"))
      const aNoticed = yield* Effect.forkScoped(Stream.runHead(afterLoss))
      const aLiveAgain = yield* Effect.forkScoped(Stream.runHead(Stream.filter(afterLoss, (s) => s._tag === "Live")))
      // the connections open now (a's lock session) stop passing bytes, both ways
      proxy.freeze()
      yield* within(Fiber.join(aNoticed), "a notices its lock connection hangs")
      // The frozen session was terminated, so the lock is free: b takes it, or a again on a
      // fresh connection (the proxy passes new ones).
      const winner = yield* within(
        Effect.raceFirst(
          Effect.as(Fiber.join(aLiveAgain), "a" as const),
          Effect.as(b.awaitStatus("Live"), "b" as const)
        ),
        "the lock the frozen session held is taken again"
      )
      const before = { ...processedBy }
      yield* seed({ count: 2, accounts: 1, batch: 2, prefix: "half-open" })
      yield* within((winner === "a" ? a : b).awaitPosition(yield* lastCommitted), `${winner} processes`)
      assert.deepStrictEqual(processedBy, { ...before, [winner]: before[winner] + 2 })
      assert.strictEqual((yield* SubscriptionRef.get((winner === "a" ? b : a).status))._tag, "Standby")
    })))

  it.effect("an acquisition interrupted at any moment leaves no lock behind", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const locks = yield* ProjectionLock
      const holders = Effect.map(
        raw<{ n: string }>(
          `select count(*)::text as n from pg_locks where locktype = 'advisory' and granted
            and ((classid::bigint << 32) | objid::bigint) = hashtextextended('eventcore/projection/' || $1 || '/interrupted', 0)`,
          [schema]
        ),
        (rows) => Number(rows[0]?.n)
      )
      // interrupt acquisitions at many points, including while the granted try is in flight
      for (let i = 0; i < 40; i++) {
        const fiber = yield* Effect.forkChild(Effect.scoped(Effect.andThen(locks.acquire("interrupted"), Effect.never)))
        for (let j = 0; j < i; j++) yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* holders, 0, `after an interruption at step ${i}`)
      }
      // and the lock is free for the next runner
      yield* within(Effect.scoped(locks.acquire("interrupted")), "the lock is free")
    })))
})
