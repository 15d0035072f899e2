/**
 * The span tree a tracer sees, on the in-memory store: a command's span, one child per
 * attempt, under it the store's reads, discovery and append; subscription pages under their
 * subscriber's span; a projection runner's spans all in chains EventCore or the user began.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schedule, Schema, Stream, Tracer } from "effect"
import {
  Command,
  CommandExecutor,
  Event,
  EventStore,
  Projection,
  ProjectionRunner,
  StreamCategory,
  StreamId,
  Subscription
} from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { ChaosStore, TestLayers } from "eventcore/testing"
import { chainOf, childrenOf, named, parentOf, recordingTracer, rootOf } from "./spans.ts"

const Account = StreamCategory.make("account")
const Opened = Schema.TaggedStruct("Opened", { partner: Schema.optional(Schema.String) })
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Events = Event.catalog(Opened, Deposited)

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Int }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, refusal, streams }) =>
    input.amount <= 0
      ? refusal("positive-amount", "the amount must be positive")
      : [streams.account.append(Deposited.make({ amount: input.amount }))]
})

const Open = Command.make("Open", {
  input: Schema.Struct({ account: Account.Id, partner: Schema.optional(Schema.String) }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Opened.make({ partner: input.partner }))]
})

// Deposits into an account and into the partner its opening named: the partner is discovered.
const DepositWithPartner = Command.make("DepositWithPartner", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Int }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined as string | undefined,
  apply: (state, event, role) => role === "account" && event._tag === "Opened" ? event.partner : state,
  discover: (partner) => partner === undefined ? [] : [StreamId.makeUnsafe(partner)],
  decide: ({ input, state, stream, streams }) => [
    streams.account.append(Deposited.make({ amount: input.amount })),
    ...(state === undefined
      ? []
      : [stream(StreamId.makeUnsafe(state)).append(Deposited.make({ amount: input.amount }))])
  ]
})

const one = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string): Tracer.NativeSpan => {
  const found = named(spans, name)
  assert.strictEqual(found.length, 1, `one ${name} span, found ${found.length}`)
  return found[0] as Tracer.NativeSpan
}

describe("the span tree of a command", () => {
  it.effect("a command, its attempt, the boundary read and the append, each parented to the one above", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* CommandExecutor.execute(Deposit, { account: "1", amount: 5 }).pipe(
        Effect.withSpan("request"),
        Effect.withTracer(tracer)
      )
      const request = one(spans, "request")
      const execute = one(spans, "CommandExecutor.execute")
      const attempt = one(spans, "CommandExecutor.attempt")
      const read = one(spans, "EventStore.readStreams")
      const append = one(spans, "EventStore.append")
      assert.strictEqual(parentOf(execute), request)
      assert.strictEqual(parentOf(attempt), execute)
      assert.strictEqual(parentOf(read), attempt)
      assert.strictEqual(parentOf(append), attempt)
      assert.deepStrictEqual(childrenOf(spans, attempt).map((s) => s.name), [
        "EventStore.readStreams",
        "EventStore.append"
      ])
      assert.strictEqual(attempt.attributes.get("eventcore.attempt"), 1)
      assert.strictEqual(attempt.attributes.get("eventcore.outcome"), "ok")
      assert.strictEqual(read.attributes.get("eventcore.streams"), 1)
      assert.strictEqual(append.attributes.get("eventcore.streams"), 1)
      assert.strictEqual(append.attributes.get("eventcore.events"), 1)
      assert.strictEqual(execute.attributes.get("eventcore.outcome"), "ok")
      // every span ended, the read before the append began
      for (const span of spans) assert.strictEqual(span.status._tag, "Ended", span.name)
      const readEnd = read.status._tag === "Ended" ? read.status.endTime : 0n
      assert.isTrue(readEnd <= append.startTime)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a refusal: the attempt says refused, and nothing was appended", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "2", amount: 0 })).pipe(Effect.withTracer(tracer))
      const attempt = one(spans, "CommandExecutor.attempt")
      assert.strictEqual(attempt.attributes.get("eventcore.outcome"), "refused")
      assert.strictEqual(one(spans, "CommandExecutor.execute").attributes.get("eventcore.outcome"), "refused")
      assert.deepStrictEqual(named(spans, "EventStore.append"), [])
      assert.strictEqual(parentOf(one(spans, "EventStore.readStreams")), attempt)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("discovery is a span under the attempt, with the discovered streams read in it", () =>
    Effect.gen(function*() {
      yield* CommandExecutor.execute(Open, { account: "3", partner: "account-4" })
      const { spans, tracer } = recordingTracer()
      yield* CommandExecutor.execute(DepositWithPartner, { account: "3", amount: 2 }).pipe(Effect.withTracer(tracer))
      const attempt = one(spans, "CommandExecutor.attempt")
      const discover = one(spans, "CommandExecutor.discover")
      assert.strictEqual(parentOf(discover), attempt)
      assert.strictEqual(discover.attributes.get("eventcore.discovered"), 1)
      const reads = named(spans, "EventStore.readStreams")
      assert.deepStrictEqual(reads.map((read) => parentOf(read)), [attempt, discover])
      assert.strictEqual(parentOf(one(spans, "EventStore.append")), attempt)
      assert.strictEqual(one(spans, "EventStore.append").attributes.get("eventcore.streams"), 2)
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("conflicts until the retries give up: one span per attempt, numbered, each a conflict", () =>
    Effect.gen(function*() {
      yield* ChaosStore.calm(CommandExecutor.execute(Deposit, { account: "5", amount: 1 }))
      const { spans, tracer } = recordingTracer()
      const error = yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "5", amount: 1 })).pipe(
        Effect.withTracer(tracer)
      )
      assert.strictEqual(error._tag, "ConcurrencyConflict")
      const execute = one(spans, "CommandExecutor.execute")
      const attempts = named(spans, "CommandExecutor.attempt")
      assert.deepStrictEqual(attempts.map((a) => a.attributes.get("eventcore.attempt")), [1, 2, 3])
      for (const attempt of attempts) {
        assert.strictEqual(parentOf(attempt), execute)
        assert.strictEqual(attempt.attributes.get("eventcore.outcome"), "conflict")
        assert.deepStrictEqual(attempt.attributes.get("eventcore.conflicting_streams"), ["account-5"])
        assert.strictEqual(attempt.status._tag === "Ended" && attempt.status.exit._tag, "Failure")
        assert.deepStrictEqual(childrenOf(spans, attempt).map((s) => s.name), ["EventStore.readStreams"])
      }
      assert.strictEqual(execute.attributes.get("eventcore.outcome"), "conflict")
      assert.strictEqual(execute.attributes.get("eventcore.attempts"), 3)
    }).pipe(Effect.provide(
      CommandExecutor.layer({ retry: Schedule.recurs(2) }).pipe(
        Layer.provideMerge(ChaosStore.layer({ operations: { append: { conflict: 1 } } })),
        Layer.provide(MemoryEventStore.layer)
      )
    )))
})

describe("how many spans", () => {
  it.effect("with Tracer.MinimumTraceLevel at Info, only the command's span is sampled (exported)", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* CommandExecutor.execute(Deposit, { account: "9", amount: 1 }).pipe(
        Effect.withSpan("request"),
        Effect.withTracer(tracer),
        Effect.provideService(Tracer.MinimumTraceLevel, "Info")
      )
      const sampled = spans.filter((span) => span.sampled).map((span) => span.name)
      assert.deepStrictEqual(sampled, ["request", "CommandExecutor.execute"])
      // the others are still parented, so nothing under them becomes a root
      assert.strictEqual(parentOf(one(spans, "EventStore.append")), one(spans, "CommandExecutor.attempt"))
    }).pipe(Effect.provide(TestLayers.memory())))
})

describe("subscription and projection spans", () => {
  it.effect("each page a subscription reads is a span under the subscriber's, with the store's read in it", () =>
    Effect.gen(function*() {
      for (const amount of [1, 2, 3]) yield* CommandExecutor.execute(Deposit, { account: "6", amount })
      const { spans, tracer } = recordingTracer()
      yield* Stream.runCollect(Subscription.stream({ from: "start", live: false, pageSize: 2 })).pipe(
        Effect.withSpan("consumer"),
        Effect.withTracer(tracer)
      )
      const consumer = one(spans, "consumer")
      const pages = named(spans, "Subscription.page")
      assert.deepStrictEqual(pages.map((page) => page.attributes.get("eventcore.events")), [2, 1])
      assert.strictEqual(pages[0]?.attributes.get("eventcore.page.after"), "00000000000000000000.00000000000000000000")
      assert.strictEqual(pages[1]?.attributes.get("eventcore.page.after"), "00000000000000000002.00000000000000000002")
      for (const page of pages) {
        assert.strictEqual(parentOf(page), consumer)
        assert.deepStrictEqual(childrenOf(spans, page).map((s) => s.name), ["EventStore.readPage"])
      }
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a projection runner's spans: batches and pages, and no chain that EventCore did not begin", () =>
    Effect.scoped(Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Projection.make({
          name: "traced",
          events: Events,
          // a command a handler executes is part of the batch's trace
          handle: (event, stored) =>
            event._tag === "Deposited" && event.amount === 1 && stored.streamId === "account-7"
              ? Effect.asVoid(Effect.orDie(CommandExecutor.execute(Deposit, { account: "8", amount: 9 })))
              : Effect.void
        }))
        yield* runner.awaitStatus("Live")
        yield* CommandExecutor.execute(Deposit, { account: "7", amount: 1 })
        yield* runner.awaitPosition(yield* EventStore.EventStore.use((store) => store.head))
      }).pipe(Effect.withTracer(tracer))
      const batches = named(spans, "ProjectionRunner.batch")
      assert.isAtLeast(batches.length, 1)
      const pages = named(spans, "Subscription.page")
      assert.isTrue(pages.some((page) => page.attributes.get("eventcore.events") === 1))
      assert.isTrue(pages.some((page) => page.attributes.get("eventcore.page.live") === true))
      const nested = named(spans, "CommandExecutor.execute").find((span) =>
        chainOf(span).includes("ProjectionRunner.batch")
      )
      assert.isDefined(nested, "the handler's command is a child of the batch")
      // every root is a span EventCore makes (the test made none around the runner)
      const roots = new Set(spans.map((span) => rootOf(span)).map((root) => root._tag === "Span" ? root.name : ""))
      for (const root of roots) {
        assert.include(
          ["CommandExecutor.execute", "Subscription.page", "ProjectionRunner.batch", "EventStore.head"],
          root
        )
      }
    })).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))
})
