/**
 * Projection benchmarks on PostgreSQL:
 *
 * - catch-up read: events/s through `Subscription.stream` (no live, page size 5,000) and
 *   through a `ProjectionRunner` fold, over a store of N events;
 * - commit -> live subscriber latency: one event appended at a time while a live
 *   subscriber waits; time from the append's call to delivery, p50/p95/p99.
 *
 * Usage: node --import ./scripts/source.mjs bench/projections.ts [events=200000] [samples=500]
 * (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test). Writes JSON to
 * bench/results/projections-<timestamp>.json. Runs in a throwaway schema.
 */
import { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Layer, Queue, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { performance } from "node:perf_hooks"
import { AccountEvents } from "../examples/banking/Account.ts"
import * as EventId from "../src/EventId.ts"
import * as EventStore from "../src/EventStore.ts"
import * as MemoryProjections from "../src/memory/MemoryProjections.ts"
import * as PostgresEventStore from "../src/postgres/PostgresEventStore.ts"
import * as Projection from "../src/Projection.ts"
import * as ProjectionRunner from "../src/ProjectionRunner.ts"
import * as StreamId from "../src/StreamId.ts"
import * as Subscription from "../src/Subscription.ts"
import * as Measure from "./Measure.ts"
import { writeSection } from "./Report.ts"

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const total = Number(process.argv[2] ?? 200_000)
const samples = Number(process.argv[3] ?? 500)
const schema = `ec_bench_proj_${Math.random().toString(36).slice(2, 8)}`
const metadata = { correlationId: "bench", causationId: "bench", custom: {} }

const event = (streamId: StreamId.StreamId, amount: number) =>
  Effect.map(EventId.make, (eventId): EventStore.EventToAppend => ({
    streamId,
    eventId,
    type: "MoneyDeposited",
    schemaVersion: 1,
    payload: { _tag: "MoneyDeposited", amount },
    metadata
  }))

const seed = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const batch = 1_000
  for (let done = 0, n = 0; done < total; done += batch, n++) {
    const streamId = StreamId.makeUnsafe(`bench-${n}`)
    const events = yield* Effect.forEach(
      Array.from({ length: Math.min(batch, total - done) }, (_, i) => i),
      (i) => event(streamId, 1 + (i % 9))
    )
    yield* store.append({ streams: [{ streamId, expected: 0 }], events })
  }
})

const program = Effect.gen(function*() {
  const results: Array<Measure.Result> = []
  const seeded = yield* Measure.timed(seed)
  console.log(`seeded ${total} events in ${seeded.seconds.toFixed(1)} s`)

  // catch-up through the raw subscription
  const raw = yield* Measure.timed(
    Subscription.stream({ from: "start", live: false, pageSize: 5_000 }).pipe(Stream.runCount)
  )
  results.push({
    scenario: "PostgreSQL: catch-up read (Subscription.stream, pages of 5,000)",
    unit: "events",
    operations: raw.value,
    seconds: raw.seconds,
    perSecond: raw.value / raw.seconds,
    target: 200_000
  })

  // catch-up through a projection runner (decode + fold + bookkeeping)
  const fold = Projection.fold({
    name: "bench-total",
    events: AccountEvents,
    initial: 0,
    apply: (sum, e) => e._tag === "MoneyDeposited" ? sum + e.amount : sum
  })
  const head = yield* EventStore.EventStore.use((s) => s.head)
  const projected = yield* Measure.timed(Effect.scoped(Effect.gen(function*() {
    const runner = yield* ProjectionRunner.start(fold, { pageSize: 5_000 })
    yield* runner.awaitPosition(head)
    return (yield* runner.metrics).processed
  })))
  results.push({
    scenario: "PostgreSQL: catch-up through a ProjectionRunner fold (decode + fold)",
    unit: "events",
    operations: projected.value,
    seconds: projected.seconds,
    perSecond: projected.value / projected.seconds,
    target: 200_000
  })

  // commit -> live subscriber latency
  const latencies: Array<number> = []
  yield* Effect.scoped(Effect.gen(function*() {
    const delivered = yield* Queue.unbounded<string>()
    const ready = yield* Deferred.make<void>()
    yield* Subscription.withSignals({ from: "end" }).pipe(
      Stream.runForEach((item) =>
        item._tag === "CaughtUp" ? Deferred.succeed(ready, undefined) : Queue.offer(delivered, item.event.eventId)
      ),
      Effect.forkScoped
    )
    yield* Deferred.await(ready)
    const streamId = StreamId.makeUnsafe("latency")
    const store = yield* EventStore.EventStore
    const started = performance.now()
    for (let i = 0; i < samples; i++) {
      const e = yield* event(streamId, 1)
      const t0 = performance.now()
      yield* store.append({ streams: [{ streamId, expected: i }], events: [e] })
      while ((yield* Queue.take(delivered)) !== e.eventId) {
        // skip anything else
      }
      latencies.push(performance.now() - t0)
    }
    const seconds = (performance.now() - started) / 1000
    results.push({
      scenario: "PostgreSQL: commit -> live subscriber (append + delivery, one at a time)",
      unit: "events",
      operations: samples,
      seconds,
      perSecond: samples / seconds,
      latencyMs: Measure.latencies(latencies),
      note: "target p99 <= 50 ms"
    })
  }))

  for (const r of results) console.log(Measure.format(r))
  const file = Measure.writeJson("projections", results)
  console.log(`results written to ${file}`)
  writeSection("Projections and subscriptions (PostgreSQL)", results, `npm run bench:pg (${total} events)`, [
    "Catch-up reads run over a store of the given size; the live latency is from the append call to delivery " +
    "to a subscriber that is already live."
  ])
}).pipe(
  Effect.ensuring(
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`drop schema if exists ${schema} cascade`)).pipe(
      Effect.ignore
    )
  )
)

const Live = Layer.mergeAll(PostgresEventStore.layer({ schema }), MemoryProjections.layer).pipe(
  Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 8 }))
)

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
