/**
 * Ambient metadata: set once around a request, carried into every event its commands write,
 * merged with what each call passes; and set by projection runners around each event, so a
 * command executed in reaction is caused by that event and keeps its correlation.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import {
  Command,
  CommandExecutor,
  Event,
  EventStore,
  Metadata,
  Projection,
  ProjectionRunner,
  StreamCategory
} from "eventcore"
import { MemoryProjections } from "eventcore/memory"
import { TestLayers } from "eventcore/testing"

const Note = StreamCategory.make("note")
const Noted = Schema.TaggedStruct("Noted", { text: Schema.String })
const Echoed = Schema.TaggedStruct("Echoed", { text: Schema.String })
const Notes = Event.catalog(Noted, Echoed)

const Write = Command.make("Write", {
  input: Schema.Struct({ note: Note.Id, text: Schema.String, echo: Schema.optionalKey(Schema.Boolean) }),
  events: Notes,
  streams: ({ note }) => ({ note }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [
    streams.note.append(input.echo === true ? Echoed.make({ text: input.text }) : Noted.make({ text: input.text }))
  ]
})

/** The stored metadata of the first event an execution wrote. */
const metadataOf = (result: CommandExecutor.ExecutionResult) =>
  Effect.gen(function*() {
    const first = result.events[0]
    if (first === undefined) return yield* Effect.die(new Error("nothing written"))
    const read = yield* EventStore.readStream(first.streamId)
    const stored = read.events.find((e) => e.eventId === first.eventId)
    if (stored === undefined) return yield* Effect.die(new Error("not stored"))
    return stored.metadata
  })

describe("ambient metadata", () => {
  it.effect("set once around a request, it reaches every command; per-call fields win, custom merges", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([
        CommandExecutor.execute(Write, { note: "1", text: "a" }),
        CommandExecutor.execute(Write, { note: "2", text: "b" }, {
          metadata: { causationId: "button-7", custom: { ip: "10.0.0.2" } }
        })
      ]).pipe(
        Metadata.withAmbient({ correlationId: "req-1", causationId: "req-1", userId: "ann", custom: { tenant: "t1" } })
      )
      assert.deepStrictEqual(yield* metadataOf(a), {
        correlationId: "req-1",
        causationId: "req-1",
        userId: "ann",
        custom: { tenant: "t1" }
      })
      assert.deepStrictEqual(yield* metadataOf(b), {
        correlationId: "req-1",
        causationId: "button-7",
        userId: "ann",
        custom: { tenant: "t1", ip: "10.0.0.2" }
      })
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("nested settings merge; outside them nothing is ambient", () =>
    Effect.gen(function*() {
      const inner = yield* CommandExecutor.execute(Write, { note: "3", text: "c" }).pipe(
        Metadata.withAmbient({ userId: "bob" }),
        Metadata.withAmbient({ correlationId: "req-2", userId: "ann" })
      )
      const nested = yield* metadataOf(inner)
      assert.strictEqual(nested.correlationId, "req-2")
      assert.strictEqual(nested.userId, "bob")
      const outside = yield* CommandExecutor.execute(Write, { note: "4", text: "d" })
      const metadata = yield* metadataOf(outside)
      assert.isUndefined(metadata.userId)
      // the execution's own id correlates it
      assert.strictEqual(metadata.causationId, metadata.correlationId)
      assert.notStrictEqual(metadata.correlationId, "req-2")
      assert.deepStrictEqual(yield* Metadata.Ambient, {})
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a projection's commands are caused by the event it processes, in its correlation and user", () =>
    Effect.scoped(Effect.gen(function*() {
      const original = yield* CommandExecutor.execute(Write, { note: "5", text: "hello" }).pipe(
        Metadata.withAmbient({ correlationId: "req-3", userId: "cy" })
      )
      const echo = Projection.make({
        name: "echo",
        events: Notes,
        filter: Note.filter,
        handle: (event, stored) =>
          event._tag === "Noted" && event.text === "as system"
            ? Effect.asVoid(
              CommandExecutor.execute(Write, {
                note: `${Note.idOf(stored.streamId)}-echo`,
                text: event.text,
                echo: true
              })
                .pipe(Metadata.withAmbient({ userId: "system" }))
            )
            : event._tag === "Noted"
            ? Effect.asVoid(
              CommandExecutor.execute(Write, {
                note: `${Note.idOf(stored.streamId)}-echo`,
                text: event.text,
                echo: true
              })
            )
            : Effect.void
      })
      const runner = yield* ProjectionRunner.start(echo)
      const source = original.events[0]
      if (source === undefined) return assert.fail("nothing written")
      yield* runner.awaitPosition(source.position)
      const echoed = (yield* EventStore.readStream(Note.makeUnsafe("5-echo"))).events[0]
      assert.strictEqual(echoed?.type, "Echoed")
      assert.deepStrictEqual(echoed?.metadata, {
        correlationId: "req-3",
        causationId: source.eventId,
        userId: "cy",
        custom: {}
      })
      // a handler's own ambient metadata goes over the cause, which it keeps
      const system = yield* CommandExecutor.execute(Write, { note: "6", text: "as system" }).pipe(
        Metadata.withAmbient({ correlationId: "req-4", userId: "dee" })
      )
      const systemSource = system.events[0]
      if (systemSource === undefined) return assert.fail("nothing written")
      yield* runner.awaitPosition(systemSource.position)
      const systemEcho = (yield* EventStore.readStream(Note.makeUnsafe("6-echo"))).events[0]
      assert.deepStrictEqual(systemEcho?.metadata, {
        correlationId: "req-4",
        causationId: systemSource.eventId,
        userId: "system",
        custom: {}
      })
      // and outside the handler, nothing of the cause remains
      const after = yield* CommandExecutor.execute(Write, { note: "7", text: "later", echo: true })
      const afterEvent = (yield* EventStore.readStream(Note.makeUnsafe("7"))).events[0]
      assert.notStrictEqual(afterEvent?.metadata.causationId, systemSource.eventId)
      assert.isDefined(after)
    })).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))
})
