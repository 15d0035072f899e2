import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Equal, Schema } from "effect"
import { EventId, EventStore, Position, StreamId } from "eventcore"
import { Arbitraries, Scenario, TestLayers } from "eventcore/testing"
import * as fc from "fast-check"
import { AccountEvents } from "../examples/banking/Account.ts"

const stored = (type: string, schemaVersion: number, payload: unknown) => ({
  eventId: EventId.generate(0, { nextDoubleUnsafe: () => 0.5, nextIntUnsafe: () => 1 }),
  streamId: StreamId.makeUnsafe("s"),
  streamVersion: 1,
  position: Position.make(1, 1),
  type,
  schemaVersion,
  payload,
  metadata: { correlationId: "c", causationId: "c", custom: {} },
  recordedAt: DateTime.makeUnsafe(0)
})

describe("Arbitraries", () => {
  it("events of a catalog are valid events that round-trip through the catalog", () => {
    const types = new Set<string>()
    fc.assert(
      fc.property(Arbitraries.event(AccountEvents), (event) => {
        types.add(event._tag)
        assert.isTrue(Schema.is(AccountEvents.schema)(event))
        const encoded = AccountEvents.encode(event)
        assert.strictEqual(encoded._tag, "Success")
        if (encoded._tag !== "Success") return
        const decoded = AccountEvents.decode(
          stored(encoded.success.type, encoded.success.schemaVersion, encoded.success.payload)
        )
        assert.strictEqual(decoded._tag, "Success")
        if (decoded._tag === "Success") assert.isTrue(Equal.equals(decoded.success, event))
      }),
      { seed: 11, numRuns: 200 }
    )
    // every event type of the catalog is generated
    assert.deepStrictEqual([...types].toSorted(), [...AccountEvents.types].toSorted())
  })

  it.effect.prop("Effect's own Arbitrary of a catalog's events fits its schema", [
    Arbitraries.eventArbitrary(AccountEvents)
  ], ([event]) =>
    Effect.sync(() => {
      assert.isTrue(AccountEvents.has(event._tag))
      assert.strictEqual(AccountEvents.encode(event)._tag, "Success")
    }), { arbitrary: { seed: 13, runs: 200 } })

  it.effect.prop(
    "Effect's own Arbitrary of stream ids gives valid ids",
    [Arbitraries.streamIdArbitrary],
    ([id]) =>
      Effect.sync(() => {
        assert.strictEqual(StreamId.makeUnsafe(id), id)
      }),
    { arbitrary: { seed: 14, runs: 200 } }
  )

  it("histories of any events, appended by Scenario.given, read back as the same events", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(Arbitraries.streamId, { minLength: 1, maxLength: 4 }),
        fc.array(Arbitraries.events(AccountEvents, { maxLength: 6 }), { minLength: 4, maxLength: 4 }),
        async (ids, histories) => {
          const given = Object.fromEntries(ids.map((id, i) => [id, histories[i] ?? []]))
          await Effect.runPromise(
            Effect.gen(function*() {
              yield* Scenario.given(AccountEvents, given)
              for (const id of ids) {
                const read = yield* EventStore.readStream(id)
                const decoded = read.events.map((e) => AccountEvents.decode(e))
                const values = decoded.map((d) => d._tag === "Success" ? d.success : d.failure)
                assert.isTrue(Equal.equals(values, given[id]), `stream ${JSON.stringify(id)}`)
                assert.deepStrictEqual(read.events.map((e) => e.streamVersion), values.map((_, i) => i + 1))
              }
            }).pipe(Effect.provide(TestLayers.memory()))
          )
        }
      ),
      { seed: 12, numRuns: 50 }
    )
  })
})
