/**
 * Small helpers shared by the PostgreSQL tests.
 */
import { Deferred, Effect, Fiber, Random, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as EventId from "../../src/EventId.ts"
import * as EventStore from "../../src/EventStore.ts"
import type * as Metadata from "../../src/Metadata.ts"
import * as StreamId from "../../src/StreamId.ts"
import { TestDatabase } from "./harness.ts"

export const metadata: Metadata.Metadata = { correlationId: "corr", causationId: "cause", custom: {} }

/** A prefix no other test uses. */
export const namespace = Effect.map(Random.nextIntBetween(0, 2 ** 30), (n) => `pg${n.toString(36)}-`)

export const stream = (id: string) => StreamId.makeUnsafe(id)

export const event = (streamId: StreamId.StreamId, text = "x") =>
  Effect.map(EventId.make, (eventId): EventStore.EventToAppend => ({
    streamId,
    eventId,
    type: "Noted",
    schemaVersion: 1,
    payload: { _tag: "Noted", text },
    metadata
  }))

/** Appends `count` events to one stream at an expected version. */
export const appendTo = (streamId: StreamId.StreamId, expected: EventStore.ExpectedVersion, count = 1) =>
  Effect.flatMap(
    Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) => event(streamId, `e${i}`)),
    (events) => EventStore.append({ streams: [{ streamId, expected }], events })
  )

/** Raw SQL text against this file's schema: `${s}` is replaced by the schema name. */
export const raw = <A extends object = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const { schema } = yield* TestDatabase
    return yield* sql.unsafe<A>(text.replaceAll("${s}", schema), params).unprepared
  })

/**
 * Waits for a condition: retries it 20 ms apart. The bound (about a minute) only turns a hang
 * into a failure; a loaded machine may take many times longer than an idle one.
 */
export const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.retry(effect, { schedule: Schedule.spaced("20 millis"), times: 3_000 })

/**
 * Opens a transaction on a connection of its own that draws a transaction id and then sits
 * idle, as a forgotten `BEGIN` in psql would. Yields its pid, its transaction id and a release.
 */
export const idleInTransaction = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const opened = yield* Deferred.make<{ readonly pid: number; readonly xid: string }, unknown>()
  const release = yield* Deferred.make<void>()
  const fiber = yield* sql.withTransaction(Effect.gen(function*() {
    const rows = yield* sql.unsafe<{ pid: number; xid: string }>(
      "select pg_backend_pid() as pid, pg_current_xact_id()::text as xid"
    )
    const row = rows[0]
    if (row === undefined) return yield* Effect.die(new Error("no row"))
    yield* Deferred.succeed(opened, row)
    yield* Deferred.await(release)
  })).pipe(Effect.onError((cause) => Deferred.failCause(opened, cause)), Effect.forkChild)
  const session = yield* Deferred.await(opened)
  return { ...session, release: Effect.andThen(Deferred.succeed(release, undefined), Fiber.join(fiber)) }
})
