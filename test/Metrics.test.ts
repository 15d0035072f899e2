/**
 * The metrics and the command span, as an exporter would see them: each named metric appears
 * with its attributes and the values the commands, subscriptions and projections behind them
 * imply. A fresh registry per test.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric, Schedule, Schema, Stream, Tracer } from "effect"
import {
  Command,
  CommandExecutor,
  DeadLetterStore,
  Event,
  EventStore,
  Metrics,
  Projection,
  ProjectionRunner,
  StreamCategory,
  Subscription
} from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { ChaosStore, TestLayers } from "eventcore/testing"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Events = Event.catalog(Deposited)

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

const fresh = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Metric.MetricRegistry, new Map())

const valueOf = <S>(metric: Metric.Metric<never, S> | Metric.Metric<number, S>, attributes?: Record<string, string>) =>
  Metric.value(attributes === undefined ? metric : Metric.withAttributes(metric, attributes))

describe("metrics", () => {
  it.effect("commands by outcome, duration, attempts, events appended by category, append latency", () =>
    fresh(Effect.gen(function*() {
      yield* CommandExecutor.execute(Deposit, { account: "1", amount: 5 })
      yield* CommandExecutor.execute(Deposit, { account: "1", amount: 7 })
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "1", amount: 0 }))
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "", amount: 1 }))
      const ok = yield* valueOf(Metrics.commands, { command: "Deposit", outcome: "ok" })
      const refused = yield* valueOf(Metrics.commands, { command: "Deposit", outcome: "refused" })
      const invalid = yield* valueOf(Metrics.commands, { command: "Deposit", outcome: "invalid" })
      assert.deepStrictEqual([ok.count, refused.count, invalid.count], [2, 1, 1])
      const duration = yield* valueOf(Metrics.commandDuration, { command: "Deposit" })
      assert.strictEqual(duration.count, 4)
      // the invalid one never got to an attempt
      assert.strictEqual((yield* valueOf(Metrics.commandAttempts, { command: "Deposit" })).count, 3)
      assert.strictEqual((yield* valueOf(Metrics.eventsAppended, { category: "account" })).count, 2)
      assert.strictEqual((yield* valueOf(Metrics.appendDuration, { outcome: "ok" })).count, 2)
    })).pipe(Effect.provide(TestLayers.memory())))

  it.effect("conflicts by the category of the stream that moved, and the command that gave up", () =>
    fresh(Effect.gen(function*() {
      yield* ChaosStore.calm(CommandExecutor.execute(Deposit, { account: "2", amount: 1 }))
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "2", amount: 1 }))
      assert.strictEqual((yield* valueOf(Metrics.conflicts, { category: "account" })).count, 3)
      assert.strictEqual((yield* valueOf(Metrics.commands, { command: "Deposit", outcome: "conflict" })).count, 1)
      assert.strictEqual((yield* valueOf(Metrics.commandAttempts, { command: "Deposit" })).count, 1 + 3)
      assert.strictEqual((yield* valueOf(Metrics.appendDuration, { outcome: "conflict" })).count, 3)
    })).pipe(Effect.provide(TestLayers.chaos({
      retry: Schedule.recurs(2),
      chaos: { operations: { append: { conflict: 1 } } }
    }))))

  it.effect("subscription pages and events; projection events processed and skipped, dead letters, and lag", () =>
    fresh(Effect.scoped(Effect.gen(function*() {
      for (const amount of [1, 2, 3, 13, 4]) yield* CommandExecutor.execute(Deposit, { account: "3", amount })
      const read = yield* Stream.runCollect(Subscription.stream({ from: "start", live: false }))
      assert.strictEqual(read.length, 5)
      assert.isAtLeast((yield* valueOf(Metrics.subscriptionPages)).count, 1)
      assert.isAtLeast((yield* valueOf(Metrics.subscriptionEvents)).count, 5)
      const runner = yield* ProjectionRunner.start(Projection.make({
        name: "unlucky",
        events: Events,
        onFailure: Projection.skip,
        handle: (event) => event.amount === 13 ? Effect.fail("unlucky") : Effect.void
      }))
      const last = yield* EventStore.EventStore.use((s) => s.head)
      yield* runner.awaitPosition(last)
      const processed = yield* valueOf(Metrics.projectionEvents, { projection: "unlucky", outcome: "processed" })
      const dead = yield* valueOf(Metrics.projectionEvents, { projection: "unlucky", outcome: "skipped" })
      const letters = yield* valueOf(Metrics.projectionDeadLetters, { projection: "unlucky" })
      assert.deepStrictEqual([processed.count, dead.count, letters.count], [4, 1, 1])
      assert.lengthOf(yield* DeadLetterStore.list("unlucky"), letters.count)
      // The batch set the time-lag series (its value is wall-clock dependent; its presence is not).
      const series = (yield* Metric.snapshot).filter((m) => m.id === "eventcore.projection.lag.millis")
      assert.deepStrictEqual(series.map((m) => m.attributes), [{ projection: "unlucky" }])
      yield* runner.lag
      assert.strictEqual((yield* valueOf(Metrics.projectionLagEvents, { projection: "unlucky" })).value, 0)
    }))).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))
})

/** A tracer that keeps every span it makes, to look at their attributes. */
const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { spans, tracer }
}

describe("the command span", () => {
  it.effect("carries the command, outcome, attempts, boundary size, and on a conflict the streams", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* CommandExecutor.execute(Deposit, { account: "4", amount: 1 }).pipe(Effect.withTracer(tracer))
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "4", amount: 0 })).pipe(Effect.withTracer(tracer))
      const [ok, refused] = spans.filter((s) => s.name === "CommandExecutor.execute")
      assert.strictEqual(ok?.attributes.get("eventcore.command"), "Deposit")
      assert.strictEqual(ok?.attributes.get("eventcore.outcome"), "ok")
      assert.strictEqual(ok?.attributes.get("eventcore.attempts"), 1)
      assert.strictEqual(ok?.attributes.get("eventcore.boundary.size"), 1)
      assert.strictEqual(ok?.attributes.get("eventcore.events"), 1)
      assert.strictEqual(refused?.attributes.get("eventcore.outcome"), "refused")
    }).pipe(Effect.provide(TestLayers.memory())))

  it.effect("a projection runner makes one span per batch, named after the projection", () =>
    Effect.scoped(Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const written = yield* CommandExecutor.execute(Deposit, { account: "6", amount: 1 })
      yield* Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Projection.make({
          name: "traced",
          events: Events,
          handle: () => Effect.void
        }))
        if (written.position !== undefined) yield* runner.awaitPosition(written.position)
      }).pipe(Effect.withTracer(tracer))
      const batches = spans.filter((s) => s.name === "ProjectionRunner.batch")
      assert.isAtLeast(batches.length, 1)
      assert.strictEqual(batches[0]?.attributes.get("eventcore.projection"), "traced")
    })).pipe(Effect.provide(MemoryProjections.layer), Effect.provide(TestLayers.memory())))

  it.effect("a command that gave up names the conflicting streams", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      yield* ChaosStore.calm(CommandExecutor.execute(Deposit, { account: "5", amount: 1 }))
      spans.length = 0
      yield* Effect.flip(CommandExecutor.execute(Deposit, { account: "5", amount: 1 })).pipe(Effect.withTracer(tracer))
      const span = spans.find((s) => s.name === "CommandExecutor.execute")
      assert.strictEqual(span?.attributes.get("eventcore.outcome"), "conflict")
      assert.deepStrictEqual(span?.attributes.get("eventcore.conflicting_streams"), ["account-5"])
    }).pipe(Effect.provide(
      CommandExecutor.layer({ retry: Schedule.recurs(2) }).pipe(
        Layer.provideMerge(ChaosStore.layer({ operations: { append: { conflict: 1 } } })),
        Layer.provide(MemoryEventStore.layer)
      )
    )))
})
