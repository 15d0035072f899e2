import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema, Stream } from "effect"
import { CommandExecutor, Event, EventStore, InvalidInput, Position, StreamId } from "eventcore"
import { Arbitraries, TestLayers } from "eventcore/testing"
import * as fc from "fast-check"
import { Deposit, OpenAccount, Transfer } from "../examples/banking/Account.ts"

const run = <A, E>(effect: Effect.Effect<A, E, TestLayers.Services>) => effect.pipe(Effect.provide(TestLayers.memory()))

const storeIsEmpty = Effect.gen(function*() {
  const head = yield* EventStore.EventStore.use((store) => store.head)
  assert.strictEqual(head, Position.initial)
  assert.strictEqual(yield* Stream.runCount(EventStore.readAll()), 0)
})

describe("stream ids", () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ["empty", "", "must not be empty"],
    ["whitespace only", "   \t ", "must not be empty"],
    ["256 characters", "a".repeat(256), "at most 255"],
    ["control character", "acc\u0000-1", "control characters"],
    ["newline inside", "acc\n1", "control characters"],
    ["DEL inside", "acc\u007f1", "control characters"],
    ["C1 control inside", "acc\u00851", "control characters"]
  ]
  for (const [name, input, issue] of cases) {
    it.effect(`rejects ${name} with InvalidInput`, () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(StreamId.make(input))
        assert.instanceOf(error, InvalidInput)
        assert.strictEqual(error.subject, "stream id")
        assert.include(error.issue, issue)
      }))
  }

  it.effect("accepts 255 characters and counts code points, not UTF-16 units", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* StreamId.make("a".repeat(255)), "a".repeat(255))
      const emoji = "😀".repeat(255) // 510 UTF-16 units
      assert.strictEqual(yield* StreamId.make(emoji), emoji)
      yield* Effect.flip(StreamId.make("😀".repeat(256)))
    }))

  it.effect("trims", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* StreamId.make("  account-1 \n"), "account-1")
    }))

  it("accepts every generated valid id unchanged", () => {
    fc.assert(
      fc.property(Arbitraries.streamId, (id) => Schema.is(StreamId.StreamId)(id) && StreamId.makeUnsafe(id) === id),
      {
        seed: 1,
        numRuns: 300
      }
    )
  })

  it("rejects every generated invalid id, for the generated reason", () => {
    const expected = { "empty": "must not be empty", "too-long": "at most 255", "control-character": "control" }
    fc.assert(
      fc.property(Arbitraries.invalidStreamIdCase, ({ reason, value }) => {
        const exit = Effect.runSyncExit(Effect.flip(StreamId.make(value)))
        assert.isTrue(exit._tag === "Success", `${JSON.stringify(value)} must be rejected`)
        if (exit._tag === "Success") assert.include(exit.value.issue, expected[reason])
      }),
      { seed: 2, numRuns: 300 }
    )
  })
})

describe("command input", () => {
  it.effect("an empty stream id in the input is InvalidInput at that field, and nothing is written", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(OpenAccount, { account: "", owner: "ann" }))
      assert.instanceOf(error, InvalidInput)
      if (!(error instanceof InvalidInput)) return
      assert.deepStrictEqual(error.path, ["account"])
      assert.strictEqual(error.subject, "input of command OpenAccount")
      assert.include(error.message, "account")
      yield* storeIsEmpty
    })))

  it.effect("a 256-character stream id is InvalidInput at that field", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(Transfer, { from: "a", to: "b".repeat(256), amount: 1 }))
      assert.instanceOf(error, InvalidInput)
      if (error instanceof InvalidInput) assert.deepStrictEqual(error.path, ["to"])
      yield* storeIsEmpty
    })))

  it.effect("a control character in a stream id is InvalidInput at that field", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "acc\u00071", amount: 1 }))
      assert.instanceOf(error, InvalidInput)
      if (error instanceof InvalidInput) {
        assert.deepStrictEqual(error.path, ["account"])
        assert.include(error.issue, "control characters")
      }
      yield* storeIsEmpty
    })))

  it.effect("a wrongly typed field is InvalidInput at that field", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        CommandExecutor.execute(Deposit, { account: "acc-1", amount: "ten" as unknown as number })
      )
      assert.instanceOf(error, InvalidInput)
      if (error instanceof InvalidInput) assert.deepStrictEqual(error.path, ["amount"])
      yield* storeIsEmpty
    })))

  it.effect("a missing field is InvalidInput at that field", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        CommandExecutor.execute(OpenAccount, { account: "acc-1" } as unknown as { account: string; owner: string })
      )
      assert.instanceOf(error, InvalidInput)
      if (error instanceof InvalidInput) assert.deepStrictEqual(error.path, ["owner"])
      yield* storeIsEmpty
    })))

  it.effect("input that is not an object at all is InvalidInput for the input as a whole", () =>
    run(Effect.gen(function*() {
      const error = yield* Effect.flip(
        CommandExecutor.execute(OpenAccount, null as unknown as { account: string; owner: string })
      )
      assert.instanceOf(error, InvalidInput)
      if (error instanceof InvalidInput) assert.deepStrictEqual(error.path, [])
      yield* storeIsEmpty
    })))

  it("any invalid stream id as command input fails with InvalidInput and writes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(Arbitraries.invalidStreamId, async (account) => {
        await Effect.runPromise(run(Effect.gen(function*() {
          const error = yield* Effect.flip(CommandExecutor.execute(OpenAccount, { account, owner: "ann" }))
          assert.instanceOf(error, InvalidInput)
          if (error instanceof InvalidInput) assert.deepStrictEqual(error.path, ["account"])
          yield* storeIsEmpty
        })))
      }),
      { seed: 3, numRuns: 100 }
    )
  })
})

describe("event type names", () => {
  it("a catalog refuses a tag no store can keep, saying which and why", () => {
    for (
      const [tag, issue] of [["Noted\ud800", "unpaired surrogates"], ["", "must not be empty"], [
        " Noted",
        "whitespace"
      ]]
    ) {
      assert.throws(
        () => Event.catalog(Schema.TaggedStruct(tag as string, { n: Schema.Number })),
        new RegExp(issue as string)
      )
    }
  })

  it.effect("a stream id with an unpaired surrogate is InvalidInput, so two ids never alias one stream", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(StreamId.make("account-\ud800"))
      assert.include(error.issue, "well-formed Unicode")
    }))
})
