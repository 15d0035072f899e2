/**
 * `node --import ./scripts/source.mjs bench/appendSecurityDefiner.ts`: what running the append
 * function as its owner (`security definer`, with a fixed `search_path`) costs per append,
 * against the same function run with the caller's rights (ADR 19).
 *
 * Two schemas migrated alike; in one the function is replaced by its caller's-rights variant.
 * First the wrapper alone (a function adding 1, with and without the attributes), then three
 * measurements of the append, each in short runs alternating between the two (A B, B A, ...: drift on
 * a shared machine hits both alike), summarized by the median of the pairs' ratios:
 *
 * - through the store: one fiber appending one event at a time (the latency a command sees);
 * - server side: the function called in a loop, a transaction per call, commits not flushed;
 * - pgbench: the store's call, one client, a transaction per call.
 *
 * Nothing is asserted. DATABASE_URL selects the server; the schemas are dropped at the end.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { EventId, type EventStore, StreamId } from "eventcore"
import { Migrations, PostgresEventStore } from "eventcore/postgres"
import { performance } from "node:perf_hooks"
import { appendFunction } from "../src/postgres/appendFunction.ts"
import * as Pgbench from "./pg/pgbench.ts"

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const appendsPerRound = Number(process.env["APPENDS"] ?? 300)
const pairs = Number(process.env["PAIRS"] ?? 30)
const metadata = { correlationId: "bench", causationId: "bench", custom: {} }

const pgbenchPairs = Number(process.env["PGBENCH_PAIRS"] ?? 10)
const loopPairs = Number(process.env["LOOP_PAIRS"] ?? 20)
const loopCalls = 500

const definer = "ec_bench_definer"
const invoker = "ec_bench_invoker"

/** The function as the current migration creates it, with or without its owner's rights. */
const invokerVariant = (schema: string) => {
  const ddl = appendFunction(schema)
  const header = /\n\s*security definer set search_path = pg_catalog, pg_temp\n/
  if (!header.test(ddl)) throw new Error("the append function is not security definer: nothing to compare")
  return ddl.replace(header, "\n")
}

/** One event to the client's own stream, as the store sends it (any expected version). */
const pgbenchAppend = (schema: string) => {
  const stream = `('sd-' || (:client_id)::text)`
  const meta = `'{"correlationId":"bench","causationId":"bench","custom":{}}'::jsonb`
  return `select o_tx_id from ${schema}.append(array[${stream}], array[-1]::bigint[], array[gen_random_uuid()], ` +
    `array[${stream}], array['Ticked'], array[1], array['{"_tag":"Ticked"}'::jsonb], array[${meta}], now());\n`
}

/** One round: `appendsPerRound` appends, one at a time, to a fresh stream; µs per append. */
const round = (store: EventStore.EventStore["Service"], stream: number) =>
  Effect.gen(function*() {
    const streamId = StreamId.makeUnsafe(`bench-${stream}`)
    const start = performance.now()
    for (let version = 0; version < appendsPerRound; version++) {
      const eventId = yield* EventId.make
      yield* store.append({
        streams: [{ streamId, expected: version }],
        events: [{ streamId, eventId, type: "Ticked", schemaVersion: 1, payload: { version }, metadata }]
      })
    }
    return ((performance.now() - start) * 1000) / appendsPerRound
  })

const median = (values: ReadonlyArray<number>) => {
  const sorted = values.toSorted((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  for (const schema of [definer, invoker]) {
    yield* sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared
    yield* Migrations.run({ schema })
  }
  yield* sql.unsafe(invokerVariant(invoker)).unprepared

  // The wrapper alone: a function that only adds 1, with and without the two attributes.
  yield* sql.unsafe(`create function ${definer}.inc(a int) returns int language plpgsql
    security definer set search_path = pg_catalog, pg_temp as $$ begin return a + 1; end $$`).unprepared
  yield* sql.unsafe(`create function ${invoker}.inc(a int) returns int language plpgsql
    as $$ begin return a + 1; end $$`).unprepared
  const wrapperA: Array<number> = []
  const wrapperB: Array<number> = []
  const calls = 100_000
  const incs = (schema: string) =>
    Effect.gen(function*() {
      const start = performance.now()
      yield* sql.unsafe(`do $$ declare x int; begin for i in 1..${calls} loop x := ${schema}.inc(i); end loop; end $$`)
        .unprepared
      return ((performance.now() - start) * 1000) / calls
    })
  for (let pair = 0; pair < 6; pair++) {
    const [first, second] = pair % 2 === 0 ? [definer, invoker] : [invoker, definer]
    const x = yield* incs(first)
    const y = yield* incs(second)
    wrapperA.push(first === definer ? x : y)
    wrapperB.push(first === definer ? y : x)
  }
  yield* Effect.log(
    `the wrapper alone, 6 pairs of ${calls} calls of a function adding 1: median per call security definer ` +
      `${median(wrapperA).toFixed(2)} µs, caller's rights ${median(wrapperB).toFixed(2)} µs`
  )
  const a = yield* PostgresEventStore.make({ schema: definer, migrate: false })
  const b = yield* PostgresEventStore.make({ schema: invoker, migrate: false })
  // Warm both: connections, the function's plans.
  yield* round(a, -1)
  yield* round(b, -2)
  const timesA: Array<number> = []
  const timesB: Array<number> = []
  const ratios: Array<number> = []
  for (let pair = 0; pair < pairs; pair++) {
    const [first, second] = pair % 2 === 0 ? [a, b] : [b, a]
    const x = yield* round(first, 2 * pair)
    const y = yield* round(second, 2 * pair + 1)
    const [ta, tb] = pair % 2 === 0 ? [x, y] : [y, x]
    timesA.push(ta)
    timesB.push(tb)
    ratios.push(ta / tb)
  }
  const ma = median(timesA)
  const mb = median(timesB)
  yield* Effect.log(
    `${pairs} pairs of rounds of ${appendsPerRound} appends (one at a time): median per append ` +
      `security definer ${ma.toFixed(0)} µs, caller's rights ${mb.toFixed(0)} µs; ` +
      `median of the pairs' ratios ${median(ratios).toFixed(3)} ` +
      `(ratios from ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)})`
  )
  // The function alone, server side: calls in a loop, each in a transaction of its own, without
  // waiting for the commit to be flushed (what is left is the function and the commit).
  const loopA: Array<number> = []
  const loopB: Array<number> = []
  const loopRatios: Array<number> = []
  const loop = (schema: string, stream: string) =>
    Effect.gen(function*() {
      const start = performance.now()
      yield* sql.unsafe(`do $$ begin
        set local synchronous_commit = off;
        for i in 1..${loopCalls} loop
          perform ${schema}.append(array['${stream}'], array[-1]::bigint[], array[gen_random_uuid()],
            array['${stream}'], array['Ticked'], array[1], array['{"_tag":"Ticked"}'::jsonb], array['{}'::jsonb], now());
          commit;
          set local synchronous_commit = off;
        end loop;
      end $$`).unprepared
      return ((performance.now() - start) * 1000) / loopCalls
    })
  for (let pair = 0; pair < loopPairs; pair++) {
    const first = pair % 2 === 0 ? definer : invoker
    const second = first === definer ? invoker : definer
    const x = yield* loop(first, `loop-${pair}`)
    const y = yield* loop(second, `loop-${pair}`)
    const [ta, tb] = first === definer ? [x, y] : [y, x]
    loopA.push(ta)
    loopB.push(tb)
    loopRatios.push(ta / tb)
  }
  yield* Effect.log(
    `server-side loop, ${loopPairs} pairs of ${loopCalls} calls: median per call security definer ` +
      `${median(loopA).toFixed(0)} µs, caller's rights ${median(loopB).toFixed(0)} µs; ` +
      `median of the pairs' ratios ${median(loopRatios).toFixed(3)} ` +
      `(ratios from ${Math.min(...loopRatios).toFixed(2)} to ${Math.max(...loopRatios).toFixed(2)})`
  )

  // The same without the library and Node: pgbench calling the function (one event to the
  // client's own stream per transaction), short runs alternating between the variants.
  const p50A: Array<number> = []
  const p50B: Array<number> = []
  const pgRatios: Array<number> = []
  for (let pair = 0; pair < pgbenchPairs; pair++) {
    const order = pair % 2 === 0 ? [definer, invoker] : [invoker, definer]
    const results: Record<string, number> = {}
    for (const schema of order) {
      const result = yield* Effect.promise(() =>
        Pgbench.run({ url, script: pgbenchAppend(schema), clients: 1, threads: 1, seconds: 2 })
      )
      results[schema] = result.latencyMs.p50
    }
    const ta = results[definer] ?? Number.NaN
    const tb = results[invoker] ?? Number.NaN
    p50A.push(ta)
    p50B.push(tb)
    pgRatios.push(ta / tb)
  }
  yield* Effect.log(
    `pgbench, ${pgbenchPairs} pairs of 2 s runs (1 client): median p50 per append security definer ` +
      `${(1000 * median(p50A)).toFixed(0)} µs, caller's rights ${(1000 * median(p50B)).toFixed(0)} µs; ` +
      `median of the pairs' ratios ${median(pgRatios).toFixed(3)} ` +
      `(ratios from ${Math.min(...pgRatios).toFixed(2)} to ${Math.max(...pgRatios).toFixed(2)})`
  )
  for (const schema of [definer, invoker]) yield* sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared
})

program.pipe(
  Effect.scoped,
  Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })),
  Effect.runPromise
).catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
