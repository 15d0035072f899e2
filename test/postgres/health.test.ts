/**
 * The PostgreSQL health check on a real server, from a bare connection: the schema's version
 * against the library's, the read horizon and who holds it, every checkpoint and how far
 * behind it is, dead letters, and a server that refuses or never answers (ADR 17). Other test
 * files may hold the read horizon too (their transactions are cluster-wide): thresholds on it
 * are set out of their reach where a test is not about it.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Redacted, Schema, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { DeadLetterStore, Event, EventStore, Health, Position, Projection, ProjectionRunner } from "eventcore"
import { Migrations, PostgresHealth, PostgresProjection } from "eventcore/postgres"
import { createServer, type Socket } from "node:net"
import { appendTo, eventually, idleInTransaction, namespace, raw, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

const Notes = Event.catalog(Schema.TaggedStruct("Noted", { text: Schema.String }))

const Live = Layer.unwrap(Effect.map(Harness.TestDatabase, ({ schema }) => PostgresProjection.layer({ schema }))).pipe(
  Layer.provideMerge(Harness.layer({ maxConnections: 4 })),
  Layer.orDie
)

const latest = Math.max(...Migrations.all.map((migration) => migration.version))

/** Out of reach of other test files' transactions, for tests not about the horizon. */
const calm = { horizonAge: "1 hour", lagAge: "1 hour" } as const

const named = (report: Health.Report, name: string): Health.Check => {
  const found = report.checks.find((check) => check.name === name)
  assert.isDefined(found, `no check ${name} in ${report.checks.map((c) => c.name).join(", ")}`)
  return found ?? { name, status: "unhealthy", message: "missing", millis: 0 }
}

/** A schema migrated to the latest version, of this test's own, dropped afterwards. */
const migratedSchema = Effect.acquireRelease(
  Effect.gen(function*() {
    const schema = Harness.freshSchemaName()
    yield* Migrations.run({ schema })
    return schema
  }),
  (schema) => Effect.orDie(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`drop schema ${schema} cascade`)))
)

/** A TCP server that accepts connections and never says a word. */
const silentServer = Effect.acquireRelease(
  Effect.callback<{ readonly port: number; readonly close: () => void }>((resume) => {
    const sockets = new Set<Socket>()
    const server = createServer((socket) => {
      sockets.add(socket)
      socket.on("error", () => sockets.delete(socket))
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({
        port,
        close: () => {
          for (const socket of sockets) socket.destroy()
          server.close()
        }
      }))
    })
  }),
  (server) => Effect.sync(server.close)
)

/** A port nothing listens on: one the system gave a server that is closed again. */
const closedPort = Effect.callback<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const unreachable = (port: number, projections: ReadonlyArray<Health.Watched> = []) =>
  PostgresHealth.check({ projections, thresholds: { timeout: "500 millis" } }).pipe(
    Effect.provide(
      PgClient.layer({ url: Redacted.make(`postgres://postgres@127.0.0.1:${port}/test`), maxConnections: 1 })
    )
  )

layer(Live, { excludeTestServices: true, timeout: "60 seconds" })("PostgresHealth", (it) => {
  it.effect("after the migrations: healthy, live and ready, every check there, runners and checkpoints merged", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const ns = yield* namespace
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: `${ns}notes`,
        events: Notes,
        filter: { streamPrefix: ns },
        checkpoint: { everyEvents: 1 },
        handle: () => Effect.void
      }))
      const written = yield* appendTo(stream(`${ns}a`), 0, 2)
      yield* runner.awaitPosition(written.events[1]?.position ?? Position.initial)

      const report = yield* PostgresHealth.check({ schema, projections: [runner], thresholds: calm })
      assert.deepInclude(report, { status: "healthy", live: true, ready: true })
      assert.deepStrictEqual(report.checks.map((c) => c.name), [
        "store",
        "schema",
        "read-horizon",
        `projection:${ns}notes`,
        "dead-letters"
      ])
      assert.deepInclude(named(report, "schema").details, { schema, version: latest, expected: latest })
      const projection = named(report, `projection:${ns}notes`)
      assert.strictEqual(projection.details?.["runner"], "Live")
      assert.deepInclude(projection.details?.["checkpoint"], {
        position: written.events[1]?.position,
        eventsAfter: 0,
        rebuildPending: false,
        deadLetters: 0
      })
      assert.include(projection.message, "live; caught up")
    })))

  it.effect("a schema behind the library: not ready, saying to run the migrations; ahead: saying to upgrade", () =>
    Effect.scoped(Effect.gen(function*() {
      const schema = yield* migratedSchema
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`delete from ${schema}.migrations where version = $1`, [latest])

      const behind = yield* PostgresHealth.check({ schema })
      assert.deepInclude(behind, { status: "unhealthy", live: true, ready: false })
      // Nothing else is asked of a schema the library cannot read.
      assert.deepStrictEqual(behind.checks.map((c) => c.name), ["store", "schema"])
      const version = named(behind, "schema")
      assert.strictEqual(version.gate, "readiness")
      assert.include(version.message, `lacks migrations ${latest}`)
      assert.include(version.message, "run the migrations")
      assert.deepInclude(version.details, { version: latest - 1, expected: latest, missing: [latest], unknown: [] })

      // Back to the library's version (the row only: the migration's objects are all there).
      yield* sql.unsafe(`insert into ${schema}.migrations (version, name) values ($1, 'restored')`, [latest])
      assert.isTrue((yield* PostgresHealth.check({ schema, mode: "readiness" })).ready)

      yield* sql.unsafe(`insert into ${schema}.migrations (version, name) values ($1, 'from the future')`, [
        latest + 1
      ])
      const ahead = yield* PostgresHealth.check({ schema })
      assert.deepInclude(ahead, { status: "unhealthy", live: true, ready: false })
      assert.include(named(ahead, "schema").message, "upgrade this one")
      assert.deepInclude(named(ahead, "schema").details, { unknown: [latest + 1] })

      const never = yield* PostgresHealth.check({ schema: Harness.freshSchemaName() })
      assert.isFalse(never.ready)
      assert.include(named(never, "schema").message, "has no migrations table: run the migrations")
    })))

  it.effect("a held read horizon: the pending events, how long, and who holds it", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const ns = yield* namespace
      const idle = yield* idleInTransaction
      // A projection known only by its checkpoint (its runner elsewhere), at the visible head.
      const checkpoint = `${ns}elsewhere`
      yield* raw(
        `insert into ${schema}.checkpoints (name, position, updated_at) values ($1, $2, now())`,
        [checkpoint, yield* EventStore.EventStore.use((store) => store.head)]
      )
      yield* appendTo(stream(`${ns}held`), 0, 3)

      const report = yield* PostgresHealth.check({ schema, thresholds: { lagAge: "1 hour" } })
      // What waits behind the horizon is not after the checkpoint yet: the check says it waits.
      assert.match(
        named(report, `projection:${checkpoint}`).message,
        /\d+ more committed events wait behind the read horizon, not counted here/
      )
      const horizon = named(report, "read-horizon")
      assert.isAtLeast(horizon.details?.["pending"] as number, 3)
      assert.include(horizon.message, "committed events have waited up to")
      assert.include(horizon.message, "to end its transaction")
      const holder = horizon.details?.["heldBy"] as { pid?: number; state?: string; transactionId: string }
      assert.isDefined(holder)
      if (holder.pid === idle.pid) {
        assert.strictEqual(holder.state, "idle in transaction")
        assert.include(horizon.message, `backend pid ${idle.pid}`)
      } else {
        // someone older holds it: a transaction whose id is older than ours
        assert.isTrue(BigInt(holder.transactionId) < BigInt(idle.xid), JSON.stringify(holder))
      }
      // Held longer than the threshold: degraded, still ready (commands are still served).
      const degraded = yield* eventually(
        PostgresHealth.check({ schema, thresholds: { horizonAge: "1 millis", lagAge: "1 hour" } }).pipe(
          Effect.filterOrFail((r) => named(r, "read-horizon").status === "degraded")
        )
      )
      assert.deepInclude(degraded, { status: "degraded", live: true, ready: true })

      yield* idle.release
    })))

  it.effect("every checkpoint is listed with what comes after it, rebuilds pending, and dead letters", () =>
    Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const ns = yield* namespace
      yield* raw("insert into ${s}.checkpoints (name, position) values ($1, $2)", [`${ns}reports`, Position.initial])
      yield* raw("insert into ${s}.checkpoints (name, position, rebuild_pending) values ($1, null, true)", [
        `${ns}rebuilding`
      ])
      const written = yield* appendTo(stream(`${ns}c`), 0, 3)
      yield* EventStore.awaitVisible(written.events[2]?.position ?? Position.initial)
      for (const [i, event] of written.events.slice(0, 2).entries()) {
        yield* raw(
          `insert into \${s}.dead_letters
             (projection, event_id, stream_id, stream_version, position, type, error, attempts, recorded_at)
           values ($1, $2, $3, $4, $5, 'Noted', 'boom', 1, now())`,
          [`${ns}reports`, event.eventId, event.streamId, i + 1, event.position]
        )
      }
      const total = yield* raw<{ n: number }>("select count(*)::int as n from ${s}.events")

      const report = yield* PostgresHealth.check({ schema, thresholds: calm })
      assert.deepInclude(report, { status: "degraded", live: true, ready: true })
      const reports = named(report, `projection:${ns}reports`)
      assert.strictEqual(reports.status, "healthy")
      assert.deepInclude(reports.details?.["checkpoint"], {
        position: Position.initial,
        eventsAfter: total[0]?.n,
        rebuildPending: false,
        deadLetters: 2
      })
      assert.include(reports.message, `${total[0]?.n} events of all streams after it`)
      const rebuilding = named(report, `projection:${ns}rebuilding`)
      assert.strictEqual(rebuilding.status, "degraded")
      assert.include(rebuilding.message, "a rebuild began and has not finished")
      const letters = named(report, "dead-letters")
      assert.strictEqual(letters.status, "degraded")
      assert.deepInclude(letters.details?.["byProjection"], { [`${ns}reports`]: 2 })
      // The store's own count, which Health.check reads on any store: the same figure.
      const counts = yield* DeadLetterStore.counts
      assert.strictEqual(counts[`${ns}reports`], 2)
      assert.notProperty(counts, `${ns}rebuilding`)
      const anyStore = yield* Health.check({ thresholds: calm })
      assert.deepInclude(named(anyStore, "dead-letters").details?.["byProjection"], { [`${ns}reports`]: 2 })

      // An oldest event after the checkpoint older than lagAge: degraded.
      const old = yield* eventually(
        PostgresHealth.check({ schema, thresholds: { horizonAge: "1 hour", lagAge: "1 millis" } }).pipe(
          Effect.filterOrFail((r) => named(r, `projection:${ns}reports`).status === "degraded")
        )
      )
      assert.include(named(old, `projection:${ns}reports`).message, "thresholds")
    }))

  it.effect("a server that refuses connections: unhealthy, not ready, at once; runners' lag is not asked for", () =>
    Effect.gen(function*() {
      // A runner whose lag read would never answer: it must not be read while the store is down.
      const runner: Health.Watched = {
        name: "elsewhere",
        status: yield* SubscriptionRef.make<ProjectionRunner.Status>({ _tag: "Live" }),
        lag: Effect.never
      }
      const report = yield* unreachable(yield* closedPort, [runner])
      assert.deepInclude(report, { status: "unhealthy", live: true, ready: false })
      assert.deepStrictEqual(report.checks.map((c) => c.name), ["store", "projection:elsewhere"])
      assert.include(named(report, "store").message, "failed")
      assert.strictEqual(named(report, "projection:elsewhere").message, "live")
    }))

  it.effect("a server that never answers: unhealthy, not ready, once the timeout passes", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* silentServer
      const report = yield* unreachable(server.port)
      assert.deepInclude(report, { status: "unhealthy", live: true, ready: false })
      assert.include(named(report, "store").message, "no answer within 500ms")
    })))
})
