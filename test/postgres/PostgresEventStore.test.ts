/**
 * What the PostgreSQL store guarantees beyond the shared contract: concurrency under real
 * locks, visibility with transactions committing out of order, a backend killed mid-append,
 * immutability, and the shape of what is stored.
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Result } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import * as EventStore from "../../src/EventStore.ts"
import * as Position from "../../src/Position.ts"
import { appendTo, event, eventually, namespace, raw, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

/** Runs `body` inside a transaction on its own connection, held open until `release` completes. */
const holdTransaction = <A, E, R>(body: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const started = yield* Deferred.make<A, E>()
    const release = yield* Deferred.make<"commit" | "rollback">()
    const fiber = yield* sql.withTransaction(Effect.gen(function*() {
      const value = yield* Effect.tapError(body, (e) => Deferred.fail(started, e))
      yield* Deferred.succeed(started, value)
      if ((yield* Deferred.await(release)) === "rollback") return yield* Effect.fail("rolled back on purpose" as const)
    })).pipe(Effect.result, Effect.forkChild)
    const value = yield* Deferred.await(started)
    const finish = (how: "commit" | "rollback") =>
      Deferred.succeed(release, how).pipe(Effect.andThen(Fiber.join(fiber)))
    return { value, finish }
  })

/** A raw call of the append function for one new event, as another process might make it. */
const rawAppendSql = `select o_tx_id from \${s}.append(
  array[$1::text], array[-1]::bigint[], array[gen_random_uuid()], array[$1::text], array['Noted'], array[1],
  array['{"_tag":"Noted","text":"raw"}'::jsonb], array['{"correlationId":"c","causationId":"c","custom":{}}'::jsonb],
  now())`

/** The message PostgreSQL sent, which the driver keeps on the reason's cause. */
const serverMessage = (error: SqlError): string => {
  const cause = error.reason.cause
  return cause instanceof Error ? cause.message : String(cause)
}

const readAllAfter = (after: Position.Position, prefix: string) =>
  EventStore.EventStore.use((store) => store.readPage({ after, filter: { streamPrefix: prefix }, limit: 1_000 }))

layer(Harness.layer(), { excludeTestServices: true, timeout: "120 seconds" })("PostgresEventStore", (it) => {
  it.effect("write skew between two read-only participants never commits twice (100 rounds)", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      for (let round = 0; round < 100; round++) {
        const a = stream(`${ns}a${round}`)
        const b = stream(`${ns}b${round}`)
        yield* appendTo(a, 0)
        yield* appendTo(b, 0)
        const [toA, toB] = [yield* event(a), yield* event(b)]
        const results = yield* Effect.all([
          Effect.result(
            EventStore.append({ streams: [{ streamId: a, expected: 1 }, { streamId: b, expected: 1 }], events: [toA] })
          ),
          Effect.result(
            EventStore.append({ streams: [{ streamId: a, expected: 1 }, { streamId: b, expected: 1 }], events: [toB] })
          )
        ], { concurrency: "unbounded" })
        assert.strictEqual(results.filter(Result.isSuccess).length, 1, `round ${round}`)
        const failure = results.find(Result.isFailure)
        assert.strictEqual(failure?.failure._tag, "ConcurrencyConflict")
      }
    }))

  it.effect("of 32 concurrent appends expecting version 0 of a new stream exactly one wins (20 rounds)", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      for (let round = 0; round < 20; round++) {
        const id = stream(`${ns}new${round}`)
        const attempts = yield* Effect.forEach(
          Array.from({ length: 32 }, (_, i) => i),
          () => Effect.result(appendTo(id, 0, 2)),
          {
            concurrency: "unbounded"
          }
        )
        assert.strictEqual(attempts.filter(Result.isSuccess).length, 1, `round ${round}`)
        const read = yield* EventStore.readStream(id)
        assert.deepStrictEqual(read.events.map((e) => e.streamVersion), [1, 2])
      }
    }))

  it.effect("a conflict names every stale stream with expected and actual versions", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const [a, b, c] = [stream(`${ns}a`), stream(`${ns}b`), stream(`${ns}c`)]
      yield* appendTo(a, 0, 2)
      yield* appendTo(b, 0, 1)
      const error = yield* EventStore.append({
        streams: [{ streamId: a, expected: 1 }, { streamId: b, expected: 1 }, { streamId: c, expected: 3 }],
        events: [yield* event(a)]
      }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      if (error._tag === "ConcurrencyConflict") {
        assert.deepStrictEqual(error.conflicts, [
          { streamId: a, expected: 1, actual: 2 },
          { streamId: c, expected: 3, actual: 0 }
        ])
      }
    }))

  it.effect("events of one append get positions in request order, one transaction, versions per stream", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const [a, b] = [stream(`${ns}a`), stream(`${ns}b`)]
      const events = [yield* event(a), yield* event(b), yield* event(a), yield* event(b), yield* event(a)]
      const result = yield* EventStore.append({
        streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 0 }],
        events
      })
      assert.deepStrictEqual(result.events.map((e) => e.streamVersion), [1, 1, 2, 2, 3])
      assert.deepStrictEqual(result.versions.map((v) => v.version), [3, 2])
      const positions = result.events.map((e) => e.position)
      assert.deepStrictEqual(positions.toSorted(), positions)
      assert.strictEqual(new Set(positions.map(Position.transaction)).size, 1)
      yield* EventStore.awaitVisible(positions[4] ?? Position.initial)
      const page = yield* readAllAfter(Position.initial, ns)
      assert.deepStrictEqual(page.events.map((e) => e.eventId), events.map((e) => e.eventId))
      assert.deepStrictEqual(page.events.map((e) => e.position), positions)
    }))

  it.effect("a transaction that commits late is never passed over: readPage waits for it", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const early = stream(`${ns}early`)
      const late = stream(`${ns}late`)
      // The held transaction draws its transaction id and position first...
      const held = yield* holdTransaction(raw<{ o_tx_id: bigint }>(rawAppendSql, [early]))
      // ...then another append commits after it.
      const committed = yield* appendTo(late, 0)
      const before = yield* readAllAfter(Position.initial, ns)
      assert.deepStrictEqual(before.events, [], "nothing past the open transaction is visible")
      const heldTx = held.value[0]?.o_tx_id
      assert.isDefined(heldTx)
      assert.isTrue(
        Position.transaction(before.next) < BigInt(heldTx ?? 0),
        "the page does not move past the open transaction"
      )
      yield* held.finish("commit")
      yield* EventStore.awaitVisible(committed.events[0]?.position ?? Position.initial)
      const after = yield* readAllAfter(before.next, ns)
      assert.deepStrictEqual(after.events.map((e) => e.streamId), [early, late])
      assert.strictEqual(after.events[1]?.eventId, committed.events[0]?.eventId)
      const again = yield* readAllAfter(after.next, ns)
      assert.deepStrictEqual(again.events, [], "each event exactly once")
    }))

  it.effect("awaitAppend wakes when a commit becomes visible", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const store = yield* EventStore.EventStore
      const start = yield* store.head
      const waiter = yield* Effect.forkChild(eventually(
        Effect.flatMap(store.awaitAppend(start), () => store.head).pipe(
          Effect.filterOrFail((h) => Position.isAfter(h, start), () => "not yet")
        )
      ))
      yield* appendTo(stream(`${ns}live`), 0)
      const head = yield* Fiber.join(waiter)
      assert.isTrue(Position.isAfter(head, start))
    }))

  it.effect("a backend terminated mid-append fails with a transient EventStoreError and writes nothing", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const id = stream(`${ns}victim`)
      // Another session holds the stream's exclusive lock, so our append blocks inside the function.
      const holder = yield* holdTransaction(raw(rawAppendSql, [id]))
      const doomed = yield* event(id)
      const append = yield* EventStore.append({ streams: [{ streamId: id, expected: "any" }], events: [doomed] }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      // Other test files share the database: only an append into this file's schema counts.
      const { schema } = yield* Harness.TestDatabase
      const [blocked] = yield* eventually(
        raw<{ pid: number }>(
          `select pid from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock' and query like $1 and pid <> pg_backend_pid()`,
          [`%${schema}.append(%`]
        ).pipe(Effect.filterOrFail((rows) => rows.length === 1, () => "append not blocked yet"))
      )
      yield* raw("select pg_terminate_backend($1)", [blocked?.pid])
      const error = yield* Fiber.join(append)
      assert.strictEqual(error._tag, "EventStoreError")
      if (error._tag === "EventStoreError") {
        assert.isTrue(error.transient, error.message)
        assert.strictEqual(error.operation, "append")
        assert.include(error.message, "Event store append failed (transient)")
      }
      yield* holder.finish("rollback")
      const rows = yield* raw(`select 1 from \${s}.events where event_id = $1::uuid`, [doomed.eventId])
      assert.strictEqual(rows.length, 0)
      // The store recovers: the pool replaces the dead connection.
      const retried = yield* appendTo(id, 0)
      assert.strictEqual(retried.events[0]?.streamVersion, 1)
    }))

  it.effect("stored events cannot be updated, deleted or truncated", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const id = stream(`${ns}fixed`)
      yield* appendTo(id, 0)
      for (
        const statement of [
          `update \${s}.events set type = 'Changed' where stream_id = $1`,
          `delete from \${s}.events where stream_id = $1`
        ]
      ) {
        const error = yield* raw(statement, [id]).pipe(Effect.flip)
        assert.include(serverMessage(error), "events are immutable")
      }
      const truncate = yield* raw(`truncate \${s}.events`).pipe(Effect.flip)
      assert.include(serverMessage(truncate), "events are immutable")
      assert.strictEqual((yield* EventStore.readStream(id)).version, 1)
    }))

  it.effect("a row with hand-written metadata that is not metadata fails the read with EventDecodeError naming it", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const id = stream(`${ns}tampered`)
      yield* raw(
        `insert into \${s}.events (event_id, stream_id, stream_version, type, schema_version, payload, metadata, recorded_at)
         values (gen_random_uuid(), $1, 1, 'Noted', 1, '{}', '"not metadata"', now())`,
        [id]
      )
      const error = yield* EventStore.readStream(id).pipe(Effect.flip)
      assert.strictEqual(error._tag, "EventDecodeError")
      if (error._tag === "EventDecodeError") {
        assert.strictEqual(error.streamId, id)
        assert.strictEqual(error.streamVersion, 1)
        assert.include(error.reason, "not EventCore metadata")
      }
    }))

  it.effect("every stream's events appear in version order in the global order, under contention", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const streams = [stream(`${ns}x`), stream(`${ns}y`), stream(`${ns}z`)]
      // Each writer appends to one stream while reading all three: transaction ids must follow commit order.
      const written = yield* Effect.forEach(
        Array.from({ length: 12 }, (_, w) => w),
        (w) =>
          Effect.forEach(Array.from({ length: 10 }, (_, i) => i), () =>
            Effect.gen(function*() {
              const target = streams[w % 3] ?? streams[0]
              if (target === undefined) return Position.initial
              const result = yield* EventStore.append({
                streams: streams.map((streamId) => ({ streamId, expected: "any" as const })),
                events: [yield* event(target)]
              })
              return result.events[0]?.position ?? Position.initial
            })),
        { concurrency: "unbounded" }
      )
      yield* EventStore.awaitVisible(written.flat().reduce((a, b) => (Position.isAfter(b, a) ? b : a)))
      const events = yield* readAllAfter(Position.initial, ns).pipe(Effect.map((p) => p.events))
      assert.strictEqual(events.length, 120)
      for (const id of streams) {
        const versions = events.filter((e) => e.streamId === id).map((e) => e.streamVersion)
        assert.deepStrictEqual(versions, Array.from({ length: 40 }, (_, i) => i + 1))
      }
    }))
})
