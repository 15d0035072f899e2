/**
 * A logical restore into a cluster whose transaction ids run behind the restored events'.
 * Simulated faithfully in one cluster: the events, streams and checkpoints of a store are
 * copied into a new schema with every transaction id raised by a billion — exactly what
 * pg_restore of a dump taken from a cluster a billion transactions ahead would write. The
 * store refuses to start with a typed error until `Restore.adopt` runs; afterwards the restored
 * events keep their order and positions (checkpoints stay valid) and new events follow them.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { EventStore, Position, Subscription } from "eventcore"
import * as Migrations from "../../src/postgres/Migrations.ts"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import * as Restore from "../../src/postgres/Restore.ts"
import { appendTo, namespace, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

const ahead = 1_000_000_000n

const shifted = (position: Position.Position) =>
  Position.make(Position.transaction(position) + ahead, Position.sequence(position))

/** Copies the store of this file's schema into `target` as pg_restore from a cluster `ahead` would. */
const restoreInto = (target: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* Harness.TestDatabase
    yield* Migrations.run({ schema: target })
    yield* sql.unsafe(
      `insert into ${target}.events (position, tx_id, event_id, stream_id, stream_version, type, schema_version, payload, metadata, recorded_at)
       overriding system value
       select position, (tx_id::text::bigint + ${ahead})::text::xid8, event_id, stream_id, stream_version, type,
              schema_version, payload, metadata, recorded_at
       from ${schema}.events`
    )
    yield* sql.unsafe(`insert into ${target}.streams select * from ${schema}.streams`)
    yield* sql.unsafe(
      `select setval(pg_get_serial_sequence('${target}.events', 'position'), (select max(position) from ${target}.events))`
    )
  })

/** A store on `schema`, built in the current scope. */
const storeOn = (schema: string) =>
  Effect.gen(function*() {
    const { url } = yield* Harness.TestDatabase
    const built = yield* Layer.build(
      PostgresEventStore.layer({ schema, migrate: false }).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 }))
      )
    )
    return Context.get(built, EventStore.EventStore)
  })

layer(Harness.layer({ maxConnections: 6 }), { excludeTestServices: true, timeout: "60 seconds" })(
  "logical restore",
  (it) => {
    it.effect("the store refuses to start, adopt raises the offset, order and checkpoints hold, new events follow", () =>
      Effect.scoped(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const ns = yield* namespace
        const target = Harness.freshSchemaName()
        yield* Effect.addFinalizer(() => Effect.orDie(sql.unsafe(`drop schema if exists ${target} cascade`)))
        const a = stream(`${ns}a`)
        const b = stream(`${ns}b`)
        yield* appendTo(a, 0, 3)
        yield* appendTo(b, 0, 2)
        const last = yield* appendTo(a, 3, 2)
        yield* EventStore.awaitVisible(last.events[1]?.position ?? Position.initial)
        const original = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: ns } }))
        assert.strictEqual(original.length, 7)
        // a projection had processed the first four events when the dump was taken
        const checkpoint = shifted((original[3] as EventStore.StreamRead["events"][number]).position)
        yield* restoreInto(target)

        const refused = yield* storeOn(target).pipe(Effect.flip)
        assert.strictEqual(refused._tag, "RestoredEventsAhead")
        assert.match(refused.message, new RegExp(`select ${target}\\.adopt_restored_events\\(\\)`))

        const { after, before } = yield* Restore.adopt({ schema: target })
        assert.strictEqual(before, 0n)
        assert.isTrue(after > 0n)
        assert.deepStrictEqual(yield* Restore.adopt({ schema: target }), { before: after, after })

        const store = yield* storeOn(target)
        const inTarget = <A, E>(effect: Effect.Effect<A, E, EventStore.EventStore>) =>
          Effect.provideService(effect, EventStore.EventStore, store)
        yield* inTarget(EventStore.awaitVisible(shifted(original[6]?.position ?? Position.initial)))
        const restored = yield* inTarget(Stream.runCollect(EventStore.readAll()))
        assert.deepStrictEqual(restored.map((e) => e.eventId), original.map((e) => e.eventId))
        assert.deepStrictEqual(restored.map((e) => e.position), original.map((e) => shifted(e.position)))

        const appended = yield* inTarget(appendTo(b, 2))
        const written = appended.events[0]?.position ?? Position.initial
        assert.isTrue(Position.isAfter(written, shifted(original[6]?.position ?? Position.initial)))
        yield* inTarget(EventStore.awaitVisible(written))
        const resumed = yield* inTarget(
          Subscription.stream({ from: checkpoint, live: false }).pipe(Stream.runCollect)
        )
        assert.deepStrictEqual(resumed.map((e) => e.eventId), [
          ...original.slice(4).map((e) => e.eventId),
          appended.events[0]?.eventId
        ])
      })))

    it.effect("a store restored from a cluster that is behind needs nothing", () =>
      Effect.gen(function*() {
        const { schema } = yield* Harness.TestDatabase
        yield* Restore.check({ schema })
        assert.deepStrictEqual(yield* Restore.adopt({ schema }), { before: 0n, after: 0n })
      }))
  }
)
