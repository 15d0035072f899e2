/**
 * The part of the backend contract about bad input: one table of requests no store may take,
 * and of odd but valid ones every store must give back verbatim. Each bad row must fail with
 * the typed error and path given, write nothing, and do so on every backend alike.
 *
 * @internal
 */
import { assert, type Vitest } from "@effect/vitest"
import { Effect, Result, Schema } from "effect"
import * as Command from "../../Command.ts"
import * as CommandExecutor from "../../CommandExecutor.ts"
import * as Event from "../../Event.ts"
import * as EventId from "../../EventId.ts"
import * as EventStore from "../../EventStore.ts"
import type * as Metadata from "../../Metadata.ts"
import * as Position from "../../Position.ts"
import * as StreamId from "../../StreamId.ts"

const metadata: Metadata.Metadata = { correlationId: "c", causationId: "c", custom: {} }

/** A class instance: not plain JSON. */
class Money {
  constructor(readonly cents: number) {}
}

const deep = (levels: number): unknown => {
  let value: unknown = "bottom"
  for (let i = 0; i < levels; i++) value = { inner: value }
  return value
}

/** Casts for values JavaScript callers can pass that the types forbid. */
const unchecked = <A>(value: unknown): A => value as A

/** A row of the table: a request to append, the path its error names (`undefined`: accepted). */
interface AppendCase {
  readonly name: string
  readonly streamId?: string
  readonly type?: string
  readonly eventId?: string
  readonly schemaVersion?: number
  readonly payload?: unknown
  readonly metadata?: unknown
  readonly path: ReadonlyArray<string | number> | undefined
}

const appendCases: ReadonlyArray<AppendCase> = [
  { name: "an empty stream id", streamId: "", path: ["streams", 0, "streamId"] },
  { name: "a whitespace-only stream id", streamId: "  \t ", path: ["streams", 0, "streamId"] },
  { name: "a stream id of 256 code points", streamId: "a".repeat(256), path: ["streams", 0, "streamId"] },
  { name: "a stream id with a control character", streamId: "acc\u0007x", path: ["streams", 0, "streamId"] },
  { name: "a stream id with a lone surrogate", streamId: "acc\ud800x", path: ["streams", 0, "streamId"] },
  { name: "a stream id with a lone low surrogate", streamId: "acc\udc00", path: ["streams", 0, "streamId"] },
  { name: "a stream id not trimmed", streamId: " acc", path: ["streams", 0, "streamId"] },
  { name: "an empty event type", type: "", path: ["events", 0, "type"] },
  { name: "an event type with a lone surrogate", type: "Noted\ud800", path: ["events", 0, "type"] },
  { name: "an event type with NUL", type: "No\u0000ted", path: ["events", 0, "type"] },
  { name: "an event id that is not a UUID", eventId: "not-a-uuid", path: ["events", 0, "eventId"] },
  {
    name: "an event id in upper case",
    eventId: "01A22A9C-0000-7000-8000-000000000000",
    path: ["events", 0, "eventId"]
  },
  { name: "schema version 0", schemaVersion: 0, path: ["events", 0, "schemaVersion"] },
  { name: "schema version 1.5", schemaVersion: 1.5, path: ["events", 0, "schemaVersion"] },
  { name: "schema version NaN", schemaVersion: Number.NaN, path: ["events", 0, "schemaVersion"] },
  { name: "a NaN in the payload", payload: { n: Number.NaN }, path: ["n"] },
  { name: "Infinity in the payload", payload: { n: Number.POSITIVE_INFINITY }, path: ["n"] },
  { name: "a bigint in the payload", payload: { n: 10n }, path: ["n"] },
  { name: "a Date in the payload", payload: { at: new Date(0) }, path: ["at"] },
  { name: "a class instance in the payload", payload: { price: new Money(5) }, path: ["price"] },
  { name: "a function in the payload", payload: { f: () => 1 }, path: ["f"] },
  { name: "undefined in an array of the payload", payload: { list: [1, undefined] }, path: ["list", 1] },
  { name: "a NUL in a payload string", payload: { text: "a\u0000b" }, path: ["text"] },
  { name: "a lone surrogate in a payload string", payload: { text: ["ok", "\ud83d"] }, path: ["text", 1] },
  { name: "a NUL in a payload key", payload: { ["k\u0000"]: 1 }, path: ["k\u0000"] },
  { name: "a payload nested 5,000 levels deep", payload: deep(5_000), path: Array(256).fill("inner") },
  { name: "a payload over the size limit (9 MB)", payload: { text: "x".repeat(9_000_000) }, path: [] },
  { name: "metadata userId a number", metadata: { ...metadata, userId: 42 }, path: ["userId"] },
  { name: "metadata custom a string", metadata: { ...metadata, custom: "nope" }, path: ["custom"] },
  { name: "metadata without causationId", metadata: { correlationId: "c", custom: {} }, path: ["causationId"] },
  { name: "metadata with a field it has not", metadata: { ...metadata, tenant: "t" }, path: ["tenant"] },
  { name: "a NaN in custom metadata", metadata: { ...metadata, custom: { n: Number.NaN } }, path: ["custom", "n"] },
  { name: "a Date in custom metadata", metadata: { ...metadata, custom: { d: new Date(0) } }, path: ["custom", "d"] },
  { name: "a bigint in custom metadata", metadata: { ...metadata, custom: { b: 1n } }, path: ["custom", "b"] },
  { name: "a NUL in the correlation id", metadata: { ...metadata, correlationId: "c\u0000" }, path: ["correlationId"] },
  {
    name: "a lone surrogate in custom metadata",
    metadata: { ...metadata, custom: { s: "\udfff" } },
    path: ["custom", "s"]
  },
  // accepted, and read back verbatim
  { name: "a stream id of 255 astral characters", streamId: "😀".repeat(255), path: undefined },
  { name: "an injection-shaped stream id", streamId: `x'; DROP TABLE events; --\\"`, path: undefined },
  { name: "a 5 MB string payload", payload: { text: "é".repeat(2_500_000) }, path: undefined },
  { name: "a payload nested 256 levels deep", payload: deep(255), path: undefined }
]

const namespace = Effect.map(EventId.make, (id) => `b${id.slice(-8)}-`)

/** The last committed event, visible to global readers yet or not: what "nothing written" compares. */
const lastCommitted = Effect.map(EventStore.horizon(), (horizon) => horizon.committed)

const Noted = Schema.TaggedStruct("Noted", { stream: Schema.String })
const Note = Command.make("Note", {
  input: Schema.Struct({ stream: StreamId.StreamId, copies: Schema.Int }),
  events: Event.catalog(Noted),
  streams: ({ stream }) => ({ stream }),
  initial: 0,
  apply: (n) => n + 1,
  handle: ({ input, streams }) =>
    Effect.succeed(
      Array.from({ length: input.copies }, () => streams.stream.append(Noted.make({ stream: input.stream })))
    )
})

/** Registers the tests on a suite's `it`. */
export const register = (it: Vitest.MethodsNonLive<EventStore.EventStore>): void => {
  for (const row of appendCases) {
    const outcome = row.path === undefined ? "is stored and read back verbatim" : "is InvalidInput; nothing is written"
    it.effect(`bad input: ${row.name} ${outcome}`, () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const streamId = unchecked<StreamId.StreamId>(row.streamId ?? `${ns}s`)
        const payload = row.payload ?? { text: "fine" }
        const eventId = unchecked<EventId.EventId>(row.eventId ?? (yield* EventId.make))
        const request: EventStore.AppendRequest = {
          streams: [{ streamId, expected: 0 }],
          events: [{
            streamId,
            eventId,
            type: row.type ?? "Noted",
            schemaVersion: row.schemaVersion ?? 1,
            payload,
            metadata: unchecked<Metadata.Metadata>(row.metadata ?? metadata)
          }]
        }
        const before = yield* lastCommitted
        const result = yield* Effect.result(EventStore.append(request))
        if (row.path === undefined) {
          assert.isTrue(Result.isSuccess(result), Result.isFailure(result) ? result.failure.message : "")
          const read = yield* EventStore.readStream(streamId)
          assert.strictEqual(read.events.length, 1)
          assert.strictEqual(read.events[0]?.streamId, streamId)
          assert.deepStrictEqual(read.events[0]?.payload, payload)
          return
        }
        assert.isTrue(Result.isFailure(result), "accepted")
        if (Result.isFailure(result)) {
          assert.strictEqual(result.failure._tag, "InvalidInput", result.failure.message)
          if (result.failure._tag === "InvalidInput") assert.deepStrictEqual(result.failure.path, row.path)
        }
        // nothing was written, anywhere
        assert.strictEqual(yield* lastCommitted, before)
        if (StreamId.issue(streamId) === undefined) {
          assert.strictEqual((yield* EventStore.readStream(streamId)).version, 0)
        }
      }))
  }

  it.effect("bad input: the same events read back as PostgreSQL's jsonb gives them (-0 is 0, keys in jsonb's order)", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const streamId = StreamId.makeUnsafe(`${ns}s`)
      yield* EventStore.append({
        streams: [{ streamId, expected: 0 }],
        events: [{
          streamId,
          eventId: yield* EventId.make,
          type: "Noted",
          schemaVersion: 1,
          payload: { zz: -0, b: 1.5e2, aa: [{ y: 1, x: 2 }], dropped: undefined },
          metadata: { correlationId: "c", causationId: "c", userId: "u", custom: { b: 2, a: 1 } }
        }]
      })
      const stored = (yield* EventStore.readStream(streamId)).events[0]
      const payload = stored?.payload as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(payload), ["b", "aa", "zz"])
      assert.isTrue(Object.is(payload["zz"], 0), "-0 comes back 0")
      assert.strictEqual(payload["b"], 150)
      assert.deepStrictEqual(Object.keys((payload["aa"] as Array<Record<string, unknown>>)[0] ?? {}), ["x", "y"])
      assert.deepStrictEqual(Object.keys(stored?.metadata.custom ?? {}), ["a", "b"])
    }))

  it.effect("bad input: page sizes that are not positive integers, and positions that are not, are InvalidInput", () =>
    Effect.gen(function*() {
      for (const limit of [0, -1, Number.NaN, 2.5, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(
          EventStore.EventStore.use((store) => store.readPage({ after: Position.initial, limit }))
        )
        assert.strictEqual(error._tag, "InvalidInput", String(limit))
        if (error._tag === "InvalidInput") assert.deepStrictEqual(error.path, ["limit"])
      }
      const position = yield* Effect.flip(
        EventStore.EventStore.use((store) => store.readPage({ after: unchecked("12"), limit: 10 }))
      )
      assert.strictEqual(position._tag, "InvalidInput")
      const filter = yield* Effect.flip(
        EventStore.EventStore.use((store) =>
          store.readPage({ after: Position.initial, limit: 10, filter: { streamPrefix: "a\u0000" } })
        )
      )
      assert.strictEqual(filter._tag, "InvalidInput")
      if (filter._tag === "InvalidInput") assert.deepStrictEqual(filter.path, ["filter", "streamPrefix"])
      const ids = yield* Effect.flip(
        EventStore.EventStore.use((store) => store.readStreams([unchecked("ok"), unchecked("\ud800")]))
      )
      assert.strictEqual(ids._tag, "InvalidInput")
      if (ids._tag === "InvalidInput") assert.deepStrictEqual(ids.path, [1])
    }))

  it.effect("bad input: malformed command input names the field, and nothing is written", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const before = yield* lastCommitted
      for (
        const [input, path] of [
          [{ stream: "", copies: 1 }, ["stream"]],
          [{ stream: "\ud800", copies: 1 }, ["stream"]],
          [{ stream: `${ns}s`, copies: 1.5 }, ["copies"]],
          [{ stream: `${ns}s` }, ["copies"]]
        ] as const
      ) {
        const error = yield* Effect.flip(CommandExecutor.execute(Note, unchecked(input)))
        assert.strictEqual(error._tag, "InvalidInput")
        if (error._tag === "InvalidInput") assert.deepStrictEqual(error.path, path, JSON.stringify(input))
      }
      assert.strictEqual(yield* lastCommitted, before)
    }).pipe(Effect.provide(CommandExecutor.layer())))
}
