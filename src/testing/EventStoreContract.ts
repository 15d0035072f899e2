/**
 * The backend contract suite: what every `EventStore` must do, as vitest tests. The memory and
 * PostgreSQL stores run it; adapter authors run it against theirs:
 *
 * ```ts
 * // test/my-store.test.ts
 * import type { Layer } from "effect"
 * import type { EventStore } from "eventcore"
 * import { EventStoreContract } from "eventcore/testing"
 *
 * declare const MyStoreLive: Layer.Layer<EventStore.EventStore> // your adapter's layer
 *
 * EventStoreContract.suite("my store", MyStoreLive)
 * ```
 *
 * Tests share one store, so each works in streams of its own (a random prefix) and filters
 * global reads by that prefix.
 *
 * @since 0.1.0
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, type Layer, Random, Result, Schema, Stream } from "effect"
import * as Event from "../Event.ts"
import * as EventId from "../EventId.ts"
import * as EventStore from "../EventStore.ts"
import type * as Metadata from "../Metadata.ts"
import * as Position from "../Position.ts"
import * as StreamId from "../StreamId.ts"
import * as Subscription from "../Subscription.ts"
import * as BadInput from "./contract/BadInput.ts"
import * as Idempotency from "./contract/Idempotency.ts"

const Noted = Schema.TaggedStruct("Noted", { text: Schema.String, n: Schema.Number })
const Flagged = Schema.TaggedStruct("Flagged", { on: Schema.Boolean })
const NotedV1 = Schema.Struct({ _tag: Schema.Literal("Noted"), words: Schema.Array(Schema.String) })
const Events = Event.catalog(
  Event.versioned(Noted, [
    Event.upcast(NotedV1, (v1) => ({ _tag: "Noted", text: v1.words.join(" "), n: v1.words.length }))
  ]),
  Flagged
)

const metadata: Metadata.Metadata = {
  correlationId: "corr",
  causationId: "cause",
  userId: "tester",
  custom: { k: [1, "x"] }
}

/** A namespace of stream ids no other test uses. */
const namespace = Effect.map(Random.nextIntBetween(0, 2 ** 30), (n) => `t${n.toString(36)}-`)

const note = (streamId: StreamId.StreamId, text: string, n = 0) =>
  Effect.map(EventId.make, (eventId): EventStore.EventToAppend => {
    const encoded = Events.encode(Noted.make({ text, n }))
    if (Result.isFailure(encoded)) throw encoded.failure
    return { streamId, eventId, metadata, ...encoded.success }
  })

const appendNotes = (streamId: StreamId.StreamId, expected: EventStore.ExpectedVersion, texts: ReadonlyArray<string>) =>
  Effect.flatMap(
    Effect.forEach(texts, (text, i) => note(streamId, text, i)),
    (events) => EventStore.append({ streams: [{ streamId, expected }], events })
  )

/** The element at `index`, asserted to exist. */
const at = <A>(items: ReadonlyArray<A>, index: number): A => {
  const item = items[index]
  assert.isDefined(item, `no element at ${index}`)
  return item as A
}

/** Whether positions strictly increase along the list. */
const ascending = (events: ReadonlyArray<{ readonly position: Position.Position }>): boolean =>
  events.every((e, i) => i === 0 || Position.isAfter(e.position, at(events, i - 1).position))

const texts = (read: EventStore.StreamRead) =>
  read.events.map((e) => {
    const decoded = Events.decode(e)
    if (Result.isFailure(decoded)) throw decoded.failure
    return decoded.success._tag === "Noted" ? decoded.success.text : "flag"
  })

/**
 * Registers the contract tests for a store layer. The layer is built once for the suite.
 *
 * @example
 * ```ts
 * import { EventStoreContract } from "eventcore/testing"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * EventStoreContract.suite("memory", MemoryEventStore.layer)
 * ```
 * @since 0.1.0
 */
export const suite = <E>(name: string, store: Layer.Layer<EventStore.EventStore, E>): void =>
  layer(store, { excludeTestServices: true, timeout: "60 seconds" })(`EventStore contract: ${name}`, (it) => {
    Idempotency.register(it)
    BadInput.register(it)

    it.effect("appends to a new stream and reads it back with versions 1..n", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}a`)
        const result = yield* appendNotes(id, 0, ["one", "two", "three"])
        assert.deepStrictEqual(result.events.map((e) => e.streamVersion), [1, 2, 3])
        assert.deepStrictEqual(result.versions, [{ streamId: id, version: 3 }])
        const read = yield* EventStore.readStream(id)
        assert.strictEqual(read.version, 3)
        assert.deepStrictEqual(texts(read), ["one", "two", "three"])
        assert.deepStrictEqual(read.events.map((e) => e.eventId), result.events.map((e) => e.eventId))
        assert.deepStrictEqual(read.events[0]?.metadata, metadata)
        assert.isTrue(ascending(read.events))
      }))

    it.effect("a stream that was never written has version 0 and no events", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const read = yield* EventStore.readStream(StreamId.makeUnsafe(`${ns}nothing`))
        assert.strictEqual(read.version, 0)
        assert.strictEqual(read.events.length, 0)
      }))

    it.effect("reads several streams in one call, in the order asked", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const [a, b, c] = [`${ns}a`, `${ns}b`, `${ns}c`].map(StreamId.makeUnsafe) as [
          StreamId.StreamId,
          StreamId.StreamId,
          StreamId.StreamId
        ]
        yield* appendNotes(a, 0, ["a1"])
        yield* appendNotes(b, 0, ["b1", "b2"])
        const reads = yield* EventStore.EventStore.use((s) => s.readStreams([c, b, a]))
        assert.deepStrictEqual(reads.map((r) => [r.streamId, r.version]), [[c, 0], [b, 2], [a, 1]])
        assert.deepStrictEqual(texts(at(reads, 1)), ["b1", "b2"])
      }))

    it.effect("a wrong expected version is a ConcurrencyConflict naming stream, expected and actual; nothing is written", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}a`)
        yield* appendNotes(id, 0, ["one"])
        const error = yield* Effect.flip(appendNotes(id, 0, ["again"]))
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        if (error._tag === "ConcurrencyConflict") {
          assert.deepStrictEqual(error.conflicts, [{ streamId: id, expected: 0, actual: 1 }])
        }
        assert.deepStrictEqual(texts(yield* EventStore.readStream(id)), ["one"])
      }))

    it.effect("expected version \"any\" appends whatever the version", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}a`)
        yield* appendNotes(id, "any", ["one"])
        yield* appendNotes(id, "any", ["two"])
        assert.deepStrictEqual(texts(yield* EventStore.readStream(id)), ["one", "two"])
      }))

    it.effect("a multi-stream append is atomic: one stale stream and no stream is written", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        const b = StreamId.makeUnsafe(`${ns}b`)
        yield* appendNotes(b, 0, ["b1"])
        const events = [yield* note(a, "a1"), yield* note(b, "b2")]
        const error = yield* Effect.flip(
          EventStore.append({ streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 0 }], events })
        )
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        assert.strictEqual((yield* EventStore.readStream(a)).version, 0)
        assert.strictEqual((yield* EventStore.readStream(b)).version, 1)
        const ok = yield* EventStore.append({
          streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 1 }],
          events
        })
        assert.deepStrictEqual(ok.events.map((e) => [e.streamId, e.streamVersion]), [[a, 1], [b, 2]])
      }))

    it.effect("a read-only participant that changed fails the append", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const written = StreamId.makeUnsafe(`${ns}written`)
        const readOnly = StreamId.makeUnsafe(`${ns}read-only`)
        yield* appendNotes(readOnly, 0, ["r1"])
        const event = yield* note(written, "w1")
        const boundary = [{ streamId: written, expected: 0 }, { streamId: readOnly, expected: 1 }] as const
        yield* appendNotes(readOnly, 1, ["r2"])
        const error = yield* Effect.flip(EventStore.append({ streams: boundary, events: [event] }))
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        if (error._tag === "ConcurrencyConflict") {
          assert.deepStrictEqual(error.conflicts, [{ streamId: readOnly, expected: 1, actual: 2 }])
        }
        assert.strictEqual((yield* EventStore.readStream(written)).version, 0)
      }))

    it.effect("write skew: two appends that each read the other's stream never both commit", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        for (let round = 0; round < 20; round++) {
          const a = StreamId.makeUnsafe(`${ns}a${round}`)
          const b = StreamId.makeUnsafe(`${ns}b${round}`)
          const toA = yield* note(a, "from-b-view")
          const toB = yield* note(b, "from-a-view")
          const results = yield* Effect.all([
            Effect.result(
              EventStore.append({
                streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 0 }],
                events: [toA]
              })
            ),
            Effect.result(
              EventStore.append({
                streams: [{ streamId: b, expected: 0 }, { streamId: a, expected: 0 }],
                events: [toB]
              })
            )
          ], { concurrency: "unbounded" })
          const committed = results.filter(Result.isSuccess).length
          assert.strictEqual(committed, 1, `round ${round}: ${committed} commits`)
          const [ra, rb] = [yield* EventStore.readStream(a), yield* EventStore.readStream(b)]
          assert.strictEqual(ra.version + rb.version, 1)
        }
      }))

    it.effect("of N concurrent appends at the same expected version exactly one wins", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}contended`)
        yield* appendNotes(id, 0, ["start"])
        const attempts = yield* Effect.forEach(
          Array.from({ length: 16 }, (_, i) => i),
          (i) => Effect.result(appendNotes(id, 1, [`writer-${i}`])),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(attempts.filter(Result.isSuccess).length, 1)
        for (const failure of attempts.filter(Result.isFailure)) {
          assert.strictEqual(failure.failure._tag, "ConcurrencyConflict")
        }
        assert.strictEqual((yield* EventStore.readStream(id)).version, 2)
      }))

    it.effect("an event for a stream outside the request's boundary is InvalidInput and nothing is written", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        const outside = StreamId.makeUnsafe(`${ns}outside`)
        const error = yield* Effect.flip(
          EventStore.append({
            streams: [{ streamId: a, expected: 0 }],
            events: [yield* note(a, "ok"), yield* note(outside, "no")]
          })
        )
        assert.strictEqual(error._tag, "InvalidInput")
        assert.strictEqual((yield* EventStore.readStream(a)).version, 0)
        assert.strictEqual((yield* EventStore.readStream(outside)).version, 0)
      }))

    it.effect("a malformed request (bad expected version, a stream twice, an event id twice) is InvalidInput; nothing is written", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        const one = yield* note(a, "one")
        const requests: ReadonlyArray<EventStore.AppendRequest> = [
          { streams: [{ streamId: a, expected: -1 }], events: [one] },
          { streams: [{ streamId: a, expected: 1.5 }], events: [one] },
          { streams: [{ streamId: a, expected: 0 }, { streamId: a, expected: 0 }], events: [one] },
          { streams: [{ streamId: a, expected: 0 }], events: [one, one] }
        ]
        for (const request of requests) {
          const error = yield* Effect.flip(EventStore.append(request))
          assert.strictEqual(error._tag, "InvalidInput", JSON.stringify(request.streams))
        }
        assert.strictEqual((yield* EventStore.readStream(a)).version, 0)
      }))

    it.effect("a boundary past the store's limit is InvalidInput naming the limit; one at the limit commits", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const boundary = (n: number) =>
          Array.from({ length: n }, (_, i) => ({ streamId: StreamId.makeUnsafe(`${ns}s${i}`), expected: 0 }))
        const first = StreamId.makeUnsafe(`${ns}s0`)
        const tooBig = yield* Effect.flip(EventStore.append({
          streams: boundary(EventStore.defaultMaxBoundary + 1),
          events: [yield* note(first, "x")]
        }))
        assert.strictEqual(tooBig._tag, "InvalidInput")
        assert.include(tooBig.message, String(EventStore.defaultMaxBoundary))
        assert.strictEqual((yield* EventStore.readStream(first)).version, 0)
        const atLimit = yield* EventStore.append({
          streams: boundary(EventStore.defaultMaxBoundary),
          events: [yield* note(first, "x")]
        })
        assert.strictEqual(atLimit.versions.length, EventStore.defaultMaxBoundary)
      }))

    it.effect("a payload that is not JSON is InvalidInput naming where; undefined properties are dropped", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        const raw = (payload: unknown) =>
          Effect.map(EventId.make, (eventId): EventStore.EventToAppend => ({
            streamId: a,
            eventId,
            type: "Noted",
            schemaVersion: 2,
            payload,
            metadata
          }))
        const refused: ReadonlyArray<readonly [unknown, ReadonlyArray<string | number>]> = [
          [{ _tag: "Noted", text: "x", n: Number.NaN }, ["n"]],
          [{ _tag: "Noted", text: new Date(0), n: 1 }, ["text"]],
          [{ _tag: "Noted", text: "x", n: 1, extra: [1, 2n] }, ["extra", 1]]
        ]
        for (const [payload, path] of refused) {
          const error = yield* Effect.flip(
            EventStore.append({ streams: [{ streamId: a, expected: 0 }], events: [yield* raw(payload)] })
          )
          assert.strictEqual(error._tag, "InvalidInput")
          if (error._tag === "InvalidInput") assert.deepStrictEqual(error.path, path)
        }
        assert.strictEqual((yield* EventStore.readStream(a)).version, 0)
        yield* EventStore.append({
          streams: [{ streamId: a, expected: 0 }],
          events: [yield* raw({ _tag: "Noted", text: "kept", n: 1, gone: undefined })]
        })
        assert.deepStrictEqual(at((yield* EventStore.readStream(a)).events, 0).payload, {
          _tag: "Noted",
          text: "kept",
          n: 1
        })
      }))

    it.effect("an event id that is already stored conflicts and writes nothing", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        const b = StreamId.makeUnsafe(`${ns}b`)
        const first = yield* note(a, "first")
        yield* EventStore.append({ streams: [{ streamId: a, expected: 0 }], events: [first] })
        const again = { ...first, streamId: b }
        const error = yield* Effect.flip(
          EventStore.append({ streams: [{ streamId: b, expected: 0 }], events: [again] })
        )
        assert.strictEqual(error._tag, "ConcurrencyConflict")
        assert.strictEqual((yield* EventStore.readStream(b)).version, 0)
      }))

    it.effect("an append of no events checks versions and writes nothing", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = StreamId.makeUnsafe(`${ns}a`)
        yield* EventStore.append({ streams: [{ streamId: a, expected: 0 }], events: [] })
        const error = yield* Effect.flip(EventStore.append({ streams: [{ streamId: a, expected: 3 }], events: [] }))
        assert.strictEqual(error._tag, "ConcurrencyConflict")
      }))

    it.effect("stream ids with quotes, semicolons, backslashes and non-Latin text are stored verbatim", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const ids = [
          `${ns}it's "quoted"`,
          `${ns}a; DROP TABLE events; --`,
          `${ns}back\\slash\\\\`,
          `${ns}счёт-口座-💶`,
          `${ns}%_like*`
        ]
        let last = Position.initial
        for (const raw of ids) {
          const id = StreamId.makeUnsafe(raw)
          last = (yield* appendNotes(id, 0, [raw])).events[0]?.position ?? last
          const read = yield* EventStore.readStream(id)
          assert.strictEqual(read.events[0]?.streamId, raw)
          assert.deepStrictEqual(texts(read), [raw])
        }
        yield* EventStore.awaitVisible(last)
        const prefixed = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: `${ns}%_` } }))
        assert.deepStrictEqual(prefixed.map((e) => e.streamId), [`${ns}%_like*`])
      }))

    it.effect("readAll returns the global order, with filters by stream ids, prefix and event types, in any page size", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const [a, b, other] = ["acc-a", "acc-b", "other"].map((s) => StreamId.makeUnsafe(`${ns}${s}`)) as [
          StreamId.StreamId,
          StreamId.StreamId,
          StreamId.StreamId
        ]
        yield* appendNotes(a, 0, ["a1", "a2"])
        yield* appendNotes(other, 0, ["o1"])
        const flag = Events.encode(Flagged.make({ on: true }))
        if (Result.isFailure(flag)) return yield* flag.failure
        yield* EventStore.append({
          streams: [{ streamId: b, expected: 0 }],
          events: [{ streamId: b, eventId: yield* EventId.make, metadata, ...flag.success }]
        })
        const written = yield* appendNotes(a, 2, ["a3"])
        // Global readers see a commit once every older transaction has ended (the read horizon).
        yield* EventStore.awaitVisible(at(written.events, 0).position)

        const all = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: ns } }))
        assert.deepStrictEqual(all.map((e) => `${e.streamId.slice(ns.length)}@${e.streamVersion}`), [
          "acc-a@1",
          "acc-a@2",
          "other@1",
          "acc-b@1",
          "acc-a@3"
        ])
        assert.isTrue(ascending(all))
        for (const pageSize of [1, 2, 3]) {
          const paged = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: ns }, pageSize }))
          assert.deepStrictEqual(paged.map((e) => e.eventId), all.map((e) => e.eventId))
        }
        const byIds = yield* Stream.runCollect(EventStore.readAll({ filter: { streamIds: [b, other] } }))
        assert.deepStrictEqual(byIds.map((e) => e.streamId), [other, b])
        const byPrefix = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: `${ns}acc-` } }))
        assert.strictEqual(byPrefix.length, 4)
        const byType = yield* Stream.runCollect(
          EventStore.readAll({ filter: { streamPrefix: ns, eventTypes: ["Flagged"] } })
        )
        assert.deepStrictEqual(byType.map((e) => e.streamId), [b])
        const after = yield* Stream.runCollect(
          EventStore.readAll({ after: at(all, 2).position, filter: { streamPrefix: ns } })
        )
        assert.deepStrictEqual(after.map((e) => e.eventId), all.slice(3).map((e) => e.eventId))
        const head = yield* EventStore.EventStore.use((s) => s.head)
        assert.isFalse(Position.isAfter(at(all, all.length - 1).position, head))
      }))

    it.effect("an event written with an older schema version reads back as the current version", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}old`)
        yield* EventStore.append({
          streams: [{ streamId: id, expected: 0 }],
          events: [{
            streamId: id,
            eventId: yield* EventId.make,
            type: "Noted",
            schemaVersion: 1,
            payload: { _tag: "Noted", words: ["hello", "old", "world"] },
            metadata
          }]
        })
        const stored = at((yield* EventStore.readStream(id)).events, 0)
        assert.strictEqual(stored.schemaVersion, 1)
        const decoded = Events.decode(stored)
        assert.deepStrictEqual(decoded, Result.succeed(Noted.make({ text: "hello old world", n: 3 })))
      }))

    it.effect("an unknown type, an unknown version or a bad payload decodes to EventDecodeError naming the event", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}strange`)
        const raw = (type: string, schemaVersion: number, payload: unknown) =>
          Effect.map(EventId.make, (eventId) => ({ streamId: id, eventId, type, schemaVersion, payload, metadata }))
        yield* EventStore.append({
          streams: [{ streamId: id, expected: 0 }],
          events: [
            yield* raw("Renamed", 1, {}),
            yield* raw("Noted", 7, {}),
            yield* raw("Noted", 2, { _tag: "Noted", text: 5 })
          ]
        })
        const read = yield* EventStore.readStream(id)
        const errors = read.events.map((e) => Events.decode(e)).filter(Result.isFailure).map((r) => r.failure)
        assert.deepStrictEqual(errors.map((e) => [e.streamId, e.streamVersion, e.type, e.schemaVersion]), [
          [id, 1, "Renamed", 1],
          [id, 2, "Noted", 7],
          [id, 3, "Noted", 2]
        ])
      }))

    it.effect("a subscription catches up, then follows new commits live, exactly once and in order", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}live`)
        yield* appendNotes(id, 0, ["before-1", "before-2"])
        const caughtUp = yield* Deferred.make<void>()
        const received = yield* Subscription.stream({ from: "start", filter: { streamPrefix: ns } }).pipe(
          Stream.tap((e) => e.streamVersion === 2 ? Deferred.succeed(caughtUp, undefined) : Effect.void),
          Stream.take(5),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Deferred.await(caughtUp)
        yield* appendNotes(id, 2, ["live-3"])
        yield* appendNotes(id, 3, ["live-4", "live-5"])
        const events = yield* Fiber.join(received)
        assert.deepStrictEqual(events.map((e) => e.streamVersion), [1, 2, 3, 4, 5])
      }))

    it.effect("a subscription from \"end\" sees only what is committed after it starts", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const id = StreamId.makeUnsafe(`${ns}tail`)
        const old = yield* appendNotes(id, 0, ["old"])
        yield* EventStore.awaitVisible(at(old.events, 0).position)
        const head = yield* EventStore.EventStore.use((s) => s.head)
        const received = yield* Subscription.stream({ from: head, filter: { streamPrefix: ns } }).pipe(
          Stream.take(1),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* appendNotes(id, 1, ["new"])
        const events = yield* Fiber.join(received)
        assert.deepStrictEqual(events.map((e) => e.streamVersion), [2])
      }))

    it.effect("a subscriber sees every event of many concurrent writers exactly once, in global order", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const writers = 8
        const perWriter = 10
        const received = yield* Subscription.stream({ from: "start", filter: { streamPrefix: ns } }).pipe(
          Stream.take(writers * perWriter),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Effect.forEach(
          Array.from({ length: writers }, (_, w) => w),
          (w) =>
            Effect.forEach(
              Array.from({ length: perWriter }, (_, i) => i),
              (i) => appendNotes(StreamId.makeUnsafe(`${ns}w${w}`), i, [`w${w}-${i}`]),
              { discard: true }
            ),
          { concurrency: "unbounded", discard: true }
        )
        const events = yield* Fiber.join(received)
        assert.strictEqual(new Set(events.map((e) => e.eventId)).size, writers * perWriter)
        assert.isTrue(ascending(events))
        for (let w = 0; w < writers; w++) {
          const versions = events.filter((e) => e.streamId === `${ns}w${w}`).map((e) => e.streamVersion)
          assert.deepStrictEqual(versions, Array.from({ length: perWriter }, (_, i) => i + 1))
        }
      }))
  })
