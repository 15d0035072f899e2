/**
 * Lost acknowledgements on a real connection: the append reaches PostgreSQL and commits, and
 * the connection drops before the reply arrives (a TCP proxy cuts it). A transient retry must
 * not apply the command again; an idempotency key must hold across two processes.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { Command, CommandExecutor, Event, EventStore, StreamId } from "eventcore"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import { namespace } from "./fixtures.ts"
import * as Harness from "./harness.ts"
import * as Proxy from "./proxy.ts"

const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })

const Note = Command.make("Note", {
  input: Schema.Struct({ stream: StreamId.StreamId, text: Schema.String }),
  events: Event.catalog(Noted),
  streams: ({ stream }) => ({ stream }),
  initial: 0,
  apply: (n) => n + 1,
  handle: ({ input, streams }) => Effect.succeed([streams.stream.append(Noted.make({ text: input.text }))])
})

class TestProxy extends Context.Service<TestProxy, Proxy.Proxy>()("test/TestProxy") {}

/** The store's connections all pass through the proxy. */
const Live = Layer.unwrap(Effect.gen(function*() {
  const url = yield* Harness.databaseUrl
  const proxy = yield* Proxy.make(new URL(url))
  const proxied = new URL(url)
  proxied.port = String(proxy.port)
  return CommandExecutor.layer({ transientRetry: Schedule.spaced("10 millis").pipe(Schedule.upTo({ times: 20 })) })
    .pipe(
      Layer.provideMerge(Harness.layer({ maxConnections: 4, url: Effect.succeed(proxied.toString()) })),
      Layer.merge(Layer.succeed(TestProxy, proxy))
    )
}))

layer(Live, { excludeTestServices: true, timeout: "60 seconds" })("lost acknowledgements", (it) => {
  it.effect("the connection drops after the commit: the transient retry returns the committed events, once", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const proxy = yield* TestProxy
      const stream = StreamId.makeUnsafe(`${ns}lost`)
      const marker = `${ns}marker-lost`
      proxy.loseReplyTo(marker)
      const result = yield* CommandExecutor.execute(Note, { stream, text: marker })
      assert.strictEqual(proxy.lost(), 1, "the reply was not lost: the test proves nothing")
      const read = yield* EventStore.readStream(stream)
      assert.strictEqual(read.version, 1, "the command was applied twice")
      assert.isAtLeast(result.attempts, 2)
      assert.deepStrictEqual(result.events.map((e) => e.eventId), read.events.map((e) => e.eventId))
      assert.deepStrictEqual(result.events.map((e) => e.position), read.events.map((e) => e.position))
    }))

  it.effect("an idempotency key holds across processes: two pools, one key, one write", () =>
    Effect.scoped(Effect.gen(function*() {
      const ns = yield* namespace
      const { schema, url } = yield* Harness.TestDatabase
      const stream = StreamId.makeUnsafe(`${ns}keyed`)
      // a second process: its own pool and executor on the same schema
      const other = yield* Layer.build(
        CommandExecutor.layer().pipe(
          Layer.provide(PostgresEventStore.layer({ schema, migrate: false })),
          Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 2 }))
        )
      )
      const inOther = <A, E>(effect: Effect.Effect<A, E, CommandExecutor.CommandExecutor>) =>
        Effect.provide(effect, other)
      const key = `${ns}request-1`
      const results = yield* Effect.all(
        Array.from({ length: 6 }, (_, i) => {
          const execute = CommandExecutor.execute(Note, { stream, text: "once" }, { idempotencyKey: key })
          return i % 2 === 0 ? execute : inOther(execute)
        }),
        { concurrency: "unbounded" }
      )
      assert.strictEqual((yield* EventStore.readStream(stream)).version, 1)
      assert.strictEqual(results.filter((r) => !r.replayed).length, 1)
      for (const r of results) assert.deepStrictEqual(r.events, results[0]?.events)
    })))
})
