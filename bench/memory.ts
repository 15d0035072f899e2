/**
 * `npm run bench:memory`: the in-memory scenarios of DESIGN §7. Prints throughput against the
 * targets and writes JSON to bench/results/. Nothing here is asserted.
 */
import { Effect, Layer, Random, Schema } from "effect"
import { Command, CommandExecutor, Event, EventId, EventStore, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { Deposit, OpenAccount, Transfer } from "../examples/banking/Account.ts"
import * as Measure from "./Measure.ts"
import { writeSection } from "./Report.ts"

const Ticked = Schema.TaggedStruct("Ticked", { n: Schema.Number })
const Ticks = Event.catalog(Ticked)
const metadata = { correlationId: "bench", causationId: "bench", custom: {} }

const CountTicks = Command.make("CountTicks", {
  input: Schema.Struct({ stream: StreamId.StreamId }),
  events: Ticks,
  streams: ({ stream }) => ({ stream }),
  initial: 0,
  apply: (count) => count + 1,
  handle: () => Effect.succeed([])
})

const layer = () => CommandExecutor.layer().pipe(Layer.provideMerge(MemoryEventStore.layer))

const transfers = (count: number, accounts: number) =>
  Effect.gen(function*() {
    const ids = Array.from({ length: accounts }, (_, i) => StreamId.makeUnsafe(`account-${i}`))
    for (const account of ids) {
      yield* CommandExecutor.execute(OpenAccount, { account, owner: "bench" })
      yield* CommandExecutor.execute(Deposit, { account, amount: 1_000_000_000 })
    }
    const inputs = Array.from({ length: count }, (_, i) => ({
      from: ids[i % accounts] as string,
      to: ids[(i * 7 + 1) % accounts] as string,
      amount: 1
    })).filter((t) => t.from !== t.to)
    const { seconds } = yield* Measure.timed(
      Effect.forEach(inputs, (input) => CommandExecutor.execute(Transfer, input), { discard: true })
    )
    return {
      scenario:
        `memory: 2-stream transfer commands, one fiber (${accounts} accounts, ${inputs.length} transfers, streams average ${
          (2 + inputs.length / accounts).toFixed(0)
        } events when read)`,
      unit: "commands",
      operations: inputs.length,
      seconds,
      perSecond: inputs.length / seconds,
      target: 200_000
    } satisfies Measure.Result
  }).pipe(Effect.provide(layer()))

const appends = (events: number, batch: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const random = yield* Random.Random
    const streamCount = 1_000
    const versions = Array.from({ length: streamCount }, () => 0)
    const payload = { _tag: "Ticked", n: 1 }
    const batches = events / batch
    const { seconds } = yield* Measure.timed(Effect.forEach(Array.from({ length: batches }, (_, i) => i), (i) => {
      const s = i % streamCount
      const streamId = `stream-${s}` as StreamId.StreamId
      const toAppend = Array.from({ length: batch }, () => ({
        streamId,
        eventId: EventId.generate(Date.now(), random),
        type: "Ticked",
        schemaVersion: 1,
        payload,
        metadata
      }))
      const expected = versions[s] ?? 0
      versions[s] = expected + batch
      return store.append({ streams: [{ streamId, expected }], events: toAppend })
    }, { discard: true }))
    return {
      scenario: batch === 1 ? "memory: append 1 event" : `memory: append in batches of ${batch}`,
      unit: batch === 1 ? "appends" : "events",
      operations: events,
      seconds,
      perSecond: events / seconds,
      target: batch === 1 ? 500_000 : 1_000_000
    } satisfies Measure.Result
  }).pipe(Effect.provide(MemoryEventStore.layer))

const fold = (events: number) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const random = yield* Random.Random
    const stream = StreamId.makeUnsafe("long-stream")
    const chunk = 10_000
    for (let written = 0; written < events; written += chunk) {
      yield* store.append({
        streams: [{ streamId: stream, expected: written }],
        events: Array.from({ length: chunk }, (_, i) => ({
          streamId: stream,
          eventId: EventId.generate(Date.now(), random),
          type: "Ticked",
          schemaVersion: 1,
          payload: { _tag: "Ticked", n: written + i },
          metadata
        }))
      })
    }
    // The first execution decodes every event; the catalog caches decoded events per stored
    // event, so later executions measure the fold itself. Both are reported.
    const cold = yield* Measure.timed(CommandExecutor.execute(CountTicks, { stream }))
    const warm = yield* Measure.timed(CommandExecutor.execute(CountTicks, { stream }))
    return [
      {
        scenario: `memory: read + decode + fold a ${events.toLocaleString("en-US")}-event stream (first read)`,
        unit: "events",
        operations: events,
        seconds: cold.seconds,
        perSecond: events / cold.seconds,
        target: 10_000_000
      },
      {
        scenario: `memory: read + fold a ${events.toLocaleString("en-US")}-event stream (decoded events cached)`,
        unit: "events",
        operations: events,
        seconds: warm.seconds,
        perSecond: events / warm.seconds,
        target: 10_000_000
      }
    ] satisfies Array<Measure.Result>
  }).pipe(Effect.provide(layer()))

const program = Effect.gen(function*() {
  const results: Array<Measure.Result> = []
  const record = (r: Measure.Result) =>
    Effect.sync(() => {
      results.push(r)
      console.log(Measure.format(r))
    })
  yield* transfers(20_000, 1_000) // warm-up
  yield* record(yield* transfers(200_000, 100_000))
  yield* record(yield* transfers(200_000, 10_000))
  yield* appends(100_000, 1) // warm-up
  yield* record(yield* appends(500_000, 1))
  yield* record(yield* appends(1_000_000, 100))
  for (const r of yield* fold(1_000_000)) yield* record(r)
  console.log(`results written to ${Measure.writeJson("memory", results)}`)
  writeSection("Memory", results, "npm run bench:memory", [
    "One fiber, the in-memory store, the default executor (a span per command, default retry schedule). " +
    "Transfers fold both accounts' streams on every command, so their cost grows with stream length: the " +
    "scenario names how long the streams are when read."
  ])
})

Effect.runPromise(program.pipe(Random.withSeed("bench"))).catch((error) => {
  console.error(error)
  process.exit(1)
})
