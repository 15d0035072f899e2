import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import { CommandExecutor, EventStore, Position } from "eventcore"
import { Scenario, TestLayers } from "eventcore/testing"
import { AccountEvents, AccountOpened, MoneyDeposited, OpenAccount, Transfer } from "../examples/banking/Account.ts"

const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const setup = Scenario.given(AccountEvents, {
  "acc-1": [AccountOpened.make({ owner: "ann" }), MoneyDeposited.make({ amount: 100 })],
  "acc-2": [AccountOpened.make({ owner: "bob" })]
})

describe("metadata", () => {
  it.effect("metadata set by the caller is carried into every event a command writes", () =>
    Effect.gen(function*() {
      yield* setup
      const before = yield* EventStore.EventStore.use((store) => store.head)
      const metadata = {
        correlationId: "req-7",
        causationId: "click-3",
        userId: "alice",
        custom: { ip: "10.0.0.1", n: 3 }
      }
      const result = yield* CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 10 }, { metadata })
      const written = yield* Stream.runCollect(EventStore.readAll({ after: before }))
      assert.strictEqual(written.length, 2)
      assert.deepStrictEqual(written.map((e) => e.eventId), result.events.map((e) => e.eventId))
      for (const event of written) assert.deepStrictEqual(event.metadata, metadata)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("missing ids default to one execution id, shared by all events of the command", () =>
    Effect.gen(function*() {
      yield* setup
      const before = yield* EventStore.EventStore.use((store) => store.head)
      yield* CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 10 }, {
        metadata: { userId: "bob" }
      })
      const written = yield* Stream.runCollect(EventStore.readAll({ after: before }))
      const [first, second] = written
      assert.isDefined(first)
      assert.isDefined(second)
      assert.match(first.metadata.correlationId, uuidV7)
      assert.strictEqual(first.metadata.causationId, first.metadata.correlationId)
      assert.deepStrictEqual(second.metadata, first.metadata)
      assert.deepStrictEqual(first.metadata, {
        correlationId: first.metadata.correlationId,
        causationId: first.metadata.correlationId,
        userId: "bob",
        custom: {}
      })
      // another execution gets another id
      yield* CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 10 })
      const [third] = yield* Stream.runCollect(EventStore.readAll({ after: second.position }))
      assert.notStrictEqual(third?.metadata.correlationId, first.metadata.correlationId)
    }).pipe(Effect.provide(TestLayers.memory())))
})

describe("event ids and timestamps under the deterministic layers", () => {
  const program = Effect.gen(function*() {
    for (let i = 0; i < 5; i++) {
      yield* CommandExecutor.execute(OpenAccount, { account: `acc-${i}`, owner: `owner-${i}` })
      yield* TestClock.adjust("1500 millis")
    }
    return yield* Stream.runCollect(EventStore.readAll())
  })

  it.effect("event ids are UUIDv7, unique, time-ordered, and carry the TestClock's time", () =>
    Effect.gen(function*() {
      const events = yield* program
      const ids = events.map((e) => e.eventId)
      for (const id of ids) assert.match(id, uuidV7)
      assert.strictEqual(new Set(ids).size, ids.length)
      assert.deepStrictEqual(ids.toSorted(), ids)
      events.forEach((event, i) => {
        const millis = 1_700_000_000_000 + i * 1500
        assert.strictEqual(parseInt(event.eventId.slice(0, 8) + event.eventId.slice(9, 13), 16), millis)
        assert.isTrue(DateTime.toEpochMillis(event.recordedAt) === millis)
      })
    }).pipe(Effect.provide(TestLayers.memory({ startTime: 1_700_000_000_000 }))))

  it.effect("the same seed gives the same ids, metadata and timestamps; another seed other ids", () =>
    Effect.gen(function*() {
      const strip = (
        events: ReadonlyArray<{ eventId: string; position: Position.Position; recordedAt: DateTime.Utc }>
      ) => events.map((e) => ({ ...e, recordedAt: DateTime.toEpochMillis(e.recordedAt) }))
      const a = strip(yield* program.pipe(Effect.provide(TestLayers.memory({ seed: "one" }))))
      const b = strip(yield* program.pipe(Effect.provide(TestLayers.memory({ seed: "one" }))))
      const c = strip(yield* program.pipe(Effect.provide(TestLayers.memory({ seed: "two" }))))
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a.map((e) => e.eventId), c.map((e) => e.eventId))
      // only the random parts differ
      assert.deepStrictEqual(a.map((e) => e.eventId.slice(0, 13)), c.map((e) => e.eventId.slice(0, 13)))
    }))

  it.effect("TestLayers.random reproduces a sequence on every build", () =>
    Effect.gen(function*() {
      const draw = Effect.all([Random.next, Random.next, Random.next])
      const a = yield* draw.pipe(Effect.provide(TestLayers.random("x")))
      const b = yield* draw.pipe(Effect.provide(TestLayers.random("x")))
      const c = yield* draw.pipe(Effect.provide(TestLayers.random("y")))
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a, c)
    }))
})
