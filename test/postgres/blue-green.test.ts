/**
 * Blue/green rebuilds on PostgreSQL: version 2 of a read model builds in tables of its own
 * beside version 1 while commands append and queries keep answering from version 1; promoting
 * it before it has caught up is refused (from code and from the store alone, as the CLI does);
 * once promoted, queries answer from version 2 in every process sharing the schema, and a
 * process started later serves it at once.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Redacted, Stream, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { BlueGreen, CommandExecutor, Position, ReadModel } from "eventcore"
import { PostgresBlueGreen, PostgresEventStore, PostgresProjection, PostgresReadModel } from "eventcore/postgres"
import { Account, Deposit, Events } from "./deposits.ts"
import * as Harness from "./harness.ts"
import { lastCommitted } from "./projectionFixtures.ts"

const deposit = (account: string, amount: number) => CommandExecutor.execute(Deposit, { account, amount })

/**
 * One version of the balances read model, in tables of its own (`balances`, `balances_v2`).
 * `gate`, when given, holds the handler at the fifth event until it opens: the version stays
 * mid-build (two pages of two committed, the third waiting).
 */
const balances = (schema: string, version: number, gate?: Deferred.Deferred<void>) => {
  const table = BlueGreen.tableName(`${schema}.balances`, version)
  let handled = 0
  return PostgresReadModel.make({
    name: "balances",
    version,
    events: Events,
    filter: Account.filter,
    migrationsTable: `${table}_migrations`,
    migrations: {
      "1_create": Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql.unsafe(`create table if not exists ${table} (account text primary key, balance bigint not null)`)
      )
    },
    handle: (event, stored) =>
      Effect.andThen(
        gate !== undefined && ++handled >= 5 ? Deferred.await(gate) : Effect.void,
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe(
            `insert into ${table} as b values ($1, $2)
             on conflict (account) do update set balance = b.balance + excluded.balance`,
            [stored.streamId, event.amount]
          ))
      ),
    reset: Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`truncate ${table}`)),
    queries: {
      total: () =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.map(
            sql.unsafe<{ total: string | null }>(`select sum(balance)::text as total from ${table}`),
            (rows) => Number(rows[0]?.total ?? 0)
          )),
      source: () => Effect.succeed(table)
    },
    runner: { pageSize: 2 }
  })
}

/** Another process on the same schema: its own pool, lock connection and services. */
const otherProcess = (url: string, schema: string) =>
  Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })).pipe(
    Layer.provideMerge(PostgresEventStore.layer({ schema })),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })),
    Layer.orDie
  )

const awaitActive = (active: SubscriptionRef.SubscriptionRef<number>, version: number) =>
  SubscriptionRef.changes(active).pipe(Stream.filter((v) => v === version), Stream.take(1), Stream.runDrain)

const schemaOf = Harness.TestDatabase.useSync((db) => db.schema)

layer(
  Layer.unwrap(
    Effect.map(schemaOf, (schema) => Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })))
  ).pipe(Layer.provideMerge(Harness.layer({ maxConnections: 6 }))),
  { excludeTestServices: true, timeout: "90 seconds" }
)("blue/green read models on PostgreSQL", (it) => {
  it.effect("v2 builds beside v1, a lagging v2 is refused, then it serves every process, and after a restart", () =>
    Effect.gen(function*() {
      const { schema, url } = yield* Harness.TestDatabase
      for (let i = 0; i < 6; i++) yield* deposit(`${i % 3}`, 1 + i)
      let expected = 21

      yield* Effect.scoped(Effect.gen(function*() {
        const v1 = yield* balances(schema, 1)
        yield* v1.runner.awaitPosition(yield* lastCommitted)
        const gate = yield* Deferred.make<void>()
        const v2 = yield* balances(schema, 2, gate)
        const model = yield* ReadModel.blueGreen({ name: "balances", versions: [v1, v2] })
        assert.strictEqual(yield* model.query.source(), `${schema}.balances`)
        assert.strictEqual(yield* model.query.total(), expected)

        // v2 commits two pages, then waits at its fifth event: mid-build
        yield* SubscriptionRef.changes(v2.runner.position).pipe(
          Stream.filter((p) => p !== Position.initial),
          Stream.take(1),
          Stream.runDrain
        )

        // commands keep appending while queries keep answering, from v1, never empty
        for (let i = 0; i < 3; i++) {
          const result = yield* deposit(`${i}`, 10)
          expected += 10
          assert.strictEqual(yield* model.after(result).total(), expected)
          assert.strictEqual(yield* model.query.source(), `${schema}.balances`)
        }

        // a promotion of the lagging v2 is refused: from code, and from the store alone
        const refused = yield* Effect.flip(model.promote(2))
        assert.strictEqual(refused._tag, "NotCaughtUp")
        const refusedByStore = yield* Effect.flip(PostgresBlueGreen.promote("balances", 2, { schema }))
        assert.strictEqual(refusedByStore._tag, "NotCaughtUp")
        assert.match(refusedByStore.message, /behind/)
        const unknown = yield* Effect.flip(PostgresBlueGreen.promote("balances", 7, { schema }))
        assert.strictEqual(unknown._tag, "UnknownVersion")
        const listed = yield* PostgresBlueGreen.versions("balances", { schema })
        assert.deepStrictEqual(listed.map((v) => [v.version, v.name, v.active]), [
          [1, "balances", true],
          [2, "balances@v2", false]
        ])
        assert.isAbove(listed[1]?.behind ?? 0, 0)

        // another process reads the same read model: its runners wait in Standby, it serves v1
        const other = yield* Layer.build(otherProcess(url, schema))
        const remote = yield* Effect.gen(function*() {
          return yield* ReadModel.blueGreen({
            name: "balances",
            versions: [yield* balances(schema, 1), yield* balances(schema, 2)],
            refresh: "100 millis"
          })
        }).pipe(Effect.provideContext(other))
        assert.strictEqual(yield* remote.query.source(), `${schema}.balances`)

        // v2 catches up; the promotion goes through; both processes answer from v2
        yield* Deferred.succeed(gate, undefined)
        yield* v2.runner.awaitStatus("Live")
        yield* v2.runner.awaitPosition(yield* lastCommitted)
        yield* model.promote(2)
        assert.strictEqual(yield* model.query.source(), `${schema}.balances_v2`)
        assert.strictEqual(yield* model.query.total(), expected)
        const result = yield* deposit("0", 5)
        expected += 5
        assert.strictEqual(yield* model.after(result).total(), expected)
        yield* awaitActive(remote.active, 2)
        assert.strictEqual(yield* remote.query.source(), `${schema}.balances_v2`)
        assert.strictEqual(yield* remote.query.total(), expected)
        // the store-level promotion of what is already active changes nothing
        assert.deepStrictEqual(yield* PostgresBlueGreen.promote("balances", 2, { schema }), { previous: 2, active: 2 })
        // v1 cannot be retired while its runner runs, nor v2 while it is active
        assert.deepStrictEqual((yield* PostgresBlueGreen.versions("balances", { schema })).map((v) => v.running), [
          true,
          true
        ])
        const running = yield* Effect.flip(PostgresBlueGreen.retire("balances", 1, { schema }))
        assert.strictEqual(running._tag, "RetireRefused")
        assert.match(running.message, /still holds the lock/)
        const active = yield* Effect.flip(PostgresBlueGreen.retire("balances", 2, { schema }))
        assert.match(active.message, /active version/)
      }))

      // a process started later, with both versions, serves v2 at once
      yield* Effect.scoped(Effect.gen(function*() {
        const model = yield* ReadModel.blueGreen({
          name: "balances",
          versions: [yield* balances(schema, 1), yield* balances(schema, 2)]
        })
        assert.strictEqual(model.version, 2)
        assert.strictEqual(yield* model.query.source(), `${schema}.balances_v2`)
        assert.strictEqual(yield* model.query.total(), expected)
      }))
      const listed = yield* PostgresBlueGreen.versions("balances", { schema })
      assert.deepStrictEqual(listed.map((v) => [v.version, v.active, v.running]), [[1, false, false], [2, true, false]])

      // v1 retired once nothing runs it: its checkpoint goes, so it is no longer listed
      yield* PostgresBlueGreen.retire("balances", 1, { schema })
      assert.deepStrictEqual((yield* PostgresBlueGreen.versions("balances", { schema })).map((v) => v.version), [2])
    }))

  it.effect("a read model with no checkpoint yet: its active version 1 is known, so retiring it is refused", () =>
    Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const retired = yield* Effect.flip(PostgresBlueGreen.retire("fresh", 1, { schema }))
      assert.strictEqual(retired._tag, "RetireRefused")
      assert.match(retired.message, /active version/)
      const unknown = yield* Effect.flip(PostgresBlueGreen.promote("fresh", 2, { schema }))
      assert.strictEqual(unknown._tag, "UnknownVersion")
      assert.deepStrictEqual(unknown._tag === "UnknownVersion" ? unknown.known : [], [1])
      assert.deepStrictEqual(yield* PostgresBlueGreen.promote("fresh", 1, { schema }), { previous: 1, active: 1 })
    }))

  it.effect("retire holds the version's lock until it commits: no runner can take it between the check and the delete", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const sql = yield* SqlClient.SqlClient
      const versioned = BlueGreen.versionedName("retiring", 2)
      yield* sql.unsafe(`insert into ${schema}.checkpoints (name, position) values ($1, null), ($2, null)`, [
        "retiring",
        versioned
      ])
      // a runner holds the lock of v2: refused
      const holder = yield* sql.reserve // the runner's connection
      const key = `hashtextextended('eventcore/projection/' || $1::text || '/' || $2::text, 0)`
      yield* holder.execute(`select pg_advisory_lock(${key})`, [schema, versioned], undefined)
      const refused = yield* Effect.flip(PostgresBlueGreen.retire("retiring", 2, { schema }))
      assert.strictEqual(refused._tag, "RetireRefused")
      assert.match(refused.message, /still holds the lock/)
      yield* holder.execute(`select pg_advisory_unlock(${key})`, [schema, versioned], undefined)

      // none does: retire checks, then waits before its delete (its transaction open) while a
      // runner tries to take the lock — it cannot until retire has committed
      const reached = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const paused = new Proxy(sql, {
        get: (target, property, receiver) =>
          property === "unsafe"
            ? (text: string, params?: ReadonlyArray<unknown>) =>
              text.startsWith(`delete from ${schema}.checkpoints`)
                ? Effect.andThen(
                  Effect.andThen(Deferred.succeed(reached, undefined), Deferred.await(release)),
                  target.unsafe(text, params)
                )
                : target.unsafe(text, params)
            : Reflect.get(target, property, receiver)
      })
      const retiring = yield* Effect.forkChild(
        PostgresBlueGreen.retire("retiring", 2, { schema }).pipe(Effect.provideService(SqlClient.SqlClient, paused))
      )
      yield* Deferred.await(reached)
      const tried = yield* holder.execute(
        `select pg_try_advisory_lock(${key}) as locked`,
        [schema, versioned],
        undefined
      )
      const locked: unknown = tried[0]?.locked
      if (locked === true) yield* holder.execute(`select pg_advisory_unlock(${key})`, [schema, versioned], undefined)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(retiring)
      assert.isFalse(locked, "a runner took the lock while retire was deleting its checkpoint")
      assert.deepStrictEqual(
        (yield* PostgresBlueGreen.versions("retiring", { schema })).map((v) => v.version),
        [1]
      )
    })))

  it.effect("promote: \"whenCaughtUp\" switches once the new version is live and caught up", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const options = (version: number) =>
        PostgresReadModel.make({
          name: "auto",
          version,
          events: Events,
          migrationsTable: `${BlueGreen.tableName(`${schema}.auto`, version)}_migrations`,
          migrations: {},
          handle: () => Effect.void,
          queries: { version: () => Effect.succeed(version) }
        })
      yield* deposit("a", 1)
      const model = yield* ReadModel.blueGreen({
        name: "auto",
        versions: [yield* options(1), yield* options(2)],
        promote: "whenCaughtUp"
      })
      yield* awaitActive(model.active, 2)
      assert.strictEqual(yield* model.query.version(), 2)
      assert.strictEqual(yield* (yield* BlueGreen.ActiveVersions).get("auto"), 2)
    })))
})
