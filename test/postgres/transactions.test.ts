/**
 * Commands executed inside a caller's transaction (`sql.withTransaction`): safe when the
 * transaction has not written yet (the append gets its own savepoint, so a conflict is retried
 * in the same transaction), refused with `TransactionAlreadyWritten` when it has — its id
 * predates the locks, and its events could land before earlier events of their streams.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schedule, Schema, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { Command, CommandExecutor, Event, EventStore, StreamId } from "eventcore"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import { appendTo, namespace, raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"

const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
const Notes = Event.catalog(Noted)

const Note = Command.make("Note", {
  input: Schema.Struct({ stream: StreamId.StreamId, text: Schema.String }),
  events: Notes,
  streams: ({ stream }) => ({ stream }),
  initial: 0,
  apply: (n) => n + 1,
  handle: ({ input, streams }) => Effect.succeed([streams.stream.append(Noted.make({ text: input.text }))])
})

/** Another process's store on the same schema: a pool of its own, outside any transaction of ours. */
const otherProcess = Effect.gen(function*() {
  const { schema, url } = yield* Harness.TestDatabase
  const built = yield* Layer.build(
    PostgresEventStore.layer({ schema, migrate: false }).pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }))
    )
  )
  return Context.get(built, EventStore.EventStore)
})

const untilCommitted = Schedule.spaced("1 millis").pipe(Schedule.jittered)

const Live = CommandExecutor.layer({ retry: CommandExecutor.defaultRetry }).pipe(
  Layer.provideMerge(Harness.layer({ maxConnections: 8 }))
)

layer(Live, { excludeTestServices: true, timeout: "60 seconds" })("commands inside a caller's transaction", (it) => {
  it.effect("after the transaction wrote: TransactionAlreadyWritten, nothing written, the transaction goes on", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const sql = yield* SqlClient.SqlClient
      const { schema } = yield* Harness.TestDatabase
      yield* sql.unsafe(`create table ${schema}.outbox (id serial primary key, note text)`)
      const stream = StreamId.makeUnsafe(`${ns}refused`)
      const error = yield* sql.withTransaction(Effect.gen(function*() {
        yield* sql.unsafe(`insert into ${schema}.outbox (note) values ('before the command')`)
        const refused = yield* CommandExecutor.execute(Note, { stream, text: "x" }).pipe(Effect.flip)
        // the transaction is still usable: the savepoint took the failure
        yield* sql.unsafe(`insert into ${schema}.outbox (note) values ('after the command')`)
        return refused
      }))
      assert.strictEqual(error._tag, "TransactionAlreadyWritten")
      assert.match(error.message, /before the transaction writes anything, or outside it/)
      assert.strictEqual((yield* EventStore.readStream(stream)).version, 0)
      const notes = yield* raw<{ n: string }>("select count(*)::text as n from ${s}.outbox")
      assert.strictEqual(notes[0]?.n, "2")
    }))

  it.effect("before the transaction wrote: the command commits with the transaction, or rolls back with it", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const sql = yield* SqlClient.SqlClient
      const kept = StreamId.makeUnsafe(`${ns}kept`)
      const dropped = StreamId.makeUnsafe(`${ns}dropped`)
      yield* sql.withTransaction(CommandExecutor.execute(Note, { stream: kept, text: "kept" }))
      const rolledBack = yield* sql.withTransaction(
        Effect.andThen(
          CommandExecutor.execute(Note, { stream: dropped, text: "dropped" }),
          Effect.fail("abort" as const)
        )
      ).pipe(Effect.flip)
      assert.strictEqual(rolledBack, "abort")
      assert.strictEqual((yield* EventStore.readStream(kept)).version, 1)
      assert.strictEqual((yield* EventStore.readStream(dropped)).version, 0)
    }))

  it.effect("a conflict inside the transaction is retried in it: the savepoint rolls back only the append", () =>
    Effect.scoped(Effect.gen(function*() {
      const ns = yield* namespace
      const sql = yield* SqlClient.SqlClient
      const stream = StreamId.makeUnsafe(`${ns}contended`)
      const other = yield* otherProcess
      let raced = false
      // The first decision is overtaken by another process's commit to the same stream.
      const Contended = Command.make("Contended", {
        input: Schema.Struct({ stream: StreamId.StreamId }),
        events: Notes,
        streams: ({ stream }) => ({ stream }),
        initial: 0,
        apply: (n) => n + 1,
        handle: ({ streams }) =>
          Effect.gen(function*() {
            if (!raced) {
              raced = true
              yield* appendTo(stream, "any").pipe(Effect.provideService(EventStore.EventStore, other))
            }
            return [streams.stream.append(Noted.make({ text: "mine" }))]
          })
      })
      const result = yield* sql.withTransaction(CommandExecutor.execute(Contended, { stream }))
      assert.strictEqual(result.attempts, 2)
      const read = yield* EventStore.readStream(stream)
      assert.deepStrictEqual(read.events.map((e) => e.streamVersion), [1, 2])
      assert.strictEqual(read.events[1]?.eventId, result.events[0]?.eventId)
    })))

  it.effect("the global order keeps each stream's versions in order with commands in transactions beside others", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const sql = yield* SqlClient.SqlClient
      const stream = StreamId.makeUnsafe(`${ns}mixed`)
      yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => {
          const execute = CommandExecutor.execute(Note, { stream, text: `n${i}` }, { retry: untilCommitted })
          return i % 2 === 0 ? sql.withTransaction(execute) : execute
        },
        { concurrency: 8, discard: true }
      )
      const read = yield* EventStore.readStream(stream)
      const last = read.events[read.events.length - 1]
      if (last !== undefined) yield* EventStore.awaitVisible(last.position)
      const global = yield* Stream.runCollect(EventStore.readAll({ filter: { streamIds: [stream] } }))
      assert.deepStrictEqual(global.map((e) => e.streamVersion), Array.from({ length: 40 }, (_, i) => i + 1))
    }))
})
