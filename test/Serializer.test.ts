import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result, Schema } from "effect"
import { Command, CommandExecutor, Event, EventStore, Serializer, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { TestLayers } from "eventcore/testing"

// A schema whose encoded form is not JSON: `Schema.Date` encodes to a Date object.
const Scheduled = Schema.TaggedStruct("Scheduled", { at: Schema.Date })
const Schedule = Command.make("Schedule", {
  input: Schema.Struct({ stream: StreamId.StreamId }),
  events: Event.catalog(Scheduled),
  streams: ({ stream }) => ({ stream }),
  initial: undefined,
  apply: (state) => state,
  handle: ({ streams }) => Effect.succeed([streams.stream.append(Scheduled.make({ at: new Date(0) }))])
})

const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
const Note = Command.make("Note", {
  input: Schema.Struct({ stream: StreamId.StreamId, text: Schema.String }),
  events: Event.catalog(Noted),
  streams: ({ stream }) => ({ stream }),
  initial: [] as ReadonlyArray<string>,
  apply: (texts, event) => [...texts, event.text],
  handle: ({ input, streams }) => Effect.succeed([streams.stream.append(Noted.make({ text: input.text }))])
})

// Keeps every payload inside an envelope: what is stored differs from what readers decode.
const stored: Array<unknown> = []
const Enveloped: Serializer.Serializer = {
  name: "enveloped-json",
  serialize: (payload) =>
    Result.map(Serializer.json.serialize(payload), (data) => {
      const envelope = { data }
      stored.push(envelope)
      return envelope
    }),
  deserialize: (kept) =>
    typeof kept === "object" && kept !== null && "data" in kept
      ? Result.succeed(kept.data)
      : Result.fail({ path: [], reason: "not an envelope" })
}

describe("Serializer", () => {
  it("the JSON serializer refuses what JSON cannot hold, saying where", () => {
    const refusal = Serializer.json.serialize({ a: [1, { at: new Date(0) }] })
    assert.isTrue(Result.isFailure(refusal))
    if (Result.isFailure(refusal)) {
      assert.deepStrictEqual(refusal.failure.path, ["a", 1, "at"])
      assert.include(refusal.failure.reason, "Date")
    }
    const cycle: Record<string, unknown> = {}
    cycle["self"] = cycle
    assert.isTrue(Result.isFailure(Serializer.json.serialize(cycle)))
    // undefined properties are not JSON: the store drops them, as JSON does
    assert.deepStrictEqual(
      Serializer.encodePayload(Serializer.json, { a: 1, b: undefined }, 0, "T"),
      Result.succeed("{\"a\":1}")
    )
    const plain = { a: [1, "x", null, true], b: { c: 2 } }
    assert.strictEqual(Result.getOrThrow(Serializer.json.serialize(plain)), plain, "JSON is stored as it is")
  })

  it.effect("a command whose event does not encode to JSON fails with InvalidInput and writes nothing", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(Schedule, { stream: "calendar" }))
      assert.strictEqual(error._tag, "InvalidInput")
      if (error._tag === "InvalidInput") assert.deepStrictEqual(error.path, ["at"])
      assert.strictEqual((yield* EventStore.readStream(StreamId.makeUnsafe("calendar"))).version, 0)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a store uses the serializer it is given, and readers see the payload it deserializes", () =>
    Effect.gen(function*() {
      yield* CommandExecutor.execute(Note, { stream: "notes", text: "hello" })
      const result = yield* CommandExecutor.execute(Note, { stream: "notes", text: "again" })
      assert.strictEqual(result.attempts, 1)
      const read = yield* EventStore.readStream(StreamId.makeUnsafe("notes"))
      assert.deepStrictEqual(read.events.map((e) => e.payload), [
        { _tag: "Noted", text: "hello" },
        { _tag: "Noted", text: "again" }
      ])
      assert.deepStrictEqual(stored, [{ data: { _tag: "Noted", text: "hello" } }, {
        data: { _tag: "Noted", text: "again" }
      }])
    }).pipe(
      Effect.provide(
        CommandExecutor.layer().pipe(
          Layer.provideMerge(MemoryEventStore.layer),
          Layer.provide(Layer.succeed(Serializer.Serializer, Enveloped))
        )
      )
    ))
})
