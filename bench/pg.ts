/**
 * `node --import ./scripts/source.mjs bench/pg.ts`: the PostgreSQL scenarios of DESIGN §7, each beside its
 * raw-SQL baseline (pgbench running the same SQL against the same schema, in the same run).
 * Prints throughput and latency percentiles, writes JSON to bench/results/pg-<timestamp>.json
 * and the "PostgreSQL" section of docs/benchmarks.md. Nothing here is asserted.
 *
 * DATABASE_URL selects the server (default postgres://postgres@127.0.0.1:5432/test); the run
 * uses a schema of its own (`eventcore_bench`), dropped at the end.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Fiber, Layer, Random, Redacted, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { CommandExecutor, EventId, EventStore, Position, StreamId, Subscription } from "eventcore"
import { performance } from "node:perf_hooks"
import { AccountEvents, balanceDelta, Deposit, OpenAccount, Transfer } from "../examples/banking/Account.ts"
import { PostgresEventStore, PostgresReadModel } from "../src/postgres/index.ts"
import * as Measure from "./Measure.ts"
import * as Pgbench from "./pg/pgbench.ts"
import * as Scripts from "./pg/scripts.ts"
import { writeSection } from "./Report.ts"

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const schema = "eventcore_bench"
const seconds = Number(process.env["BENCH_SECONDS"] ?? 8)
const fibers = 32
const accountsPerFiber = 50
const metadata = { correlationId: "bench", causationId: "bench", custom: {} }

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** Runs `op` in `workers` fibers until `seconds` elapse; returns operations, time and latencies. */
const runFor = <E, R>(workers: number, op: (worker: number, i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    const start = performance.now()
    const deadline = start + seconds * 1000
    yield* Effect.forEach(range(workers), (w) =>
      Effect.gen(function*() {
        for (let i = 0; performance.now() < deadline; i++) yield* Measure.sampled(samples, op(w, i))
      }), { concurrency: "unbounded", discard: true })
    const elapsed = (performance.now() - start) / 1000
    return { operations: samples.length, seconds: elapsed, latencyMs: Measure.latencies(samples) }
  })

const baseline = async (scenario: string, unit: string, perTransaction: number, script: string, clients: number) => {
  const result = await Pgbench.run({ url, script, clients, threads: Math.min(2, clients), seconds })
  return {
    scenario: `${scenario} — pgbench baseline (same SQL, ${clients} clients)`,
    unit,
    operations: result.transactions * perTransaction,
    seconds: result.seconds,
    perSecond: result.tps * perTransaction,
    latencyMs: result.latencyMs,
    ...(result.failed > 0 ? { note: `${result.failed} failed transactions` } : {})
  } satisfies Measure.Result
}

const share = (ours: Measure.Result, theirs: Measure.Result, ceiling?: Measure.Result): Measure.Result => ({
  ...ours,
  note: `${Math.round((100 * ours.perSecond) / theirs.perSecond)}% of baseline` +
    (ceiling === undefined ? "" : `, ${Math.round((100 * ours.perSecond) / ceiling.perSecond)}% of ceiling`)
})

/**
 * pgbench running only the append (one round trip, "any version"): the ceiling of a command
 * that would not have to read before deciding (issue 12's hot state). Where the baseline is
 * already one statement (batch appends, catch-up pages) it is its own ceiling.
 */
const ceiling = async (scenario: string, script: string, clients: number) => {
  const result = await Pgbench.run({ url, script, clients, threads: Math.min(2, clients), seconds })
  return {
    scenario: `${scenario} — pgbench ceiling (the append alone, one round trip, ${clients} clients)`,
    unit: "commands",
    operations: result.transactions,
    seconds: result.seconds,
    perSecond: result.tps,
    latencyMs: result.latencyMs,
    ...(result.failed > 0 ? { note: `${result.failed} failed transactions` } : {})
  } satisfies Measure.Result
}

/** Accounts for both sides (ours and pgbench's), opened once whichever scenario runs first. */
let accountsOpened = false
const ensureAccounts = Effect.gen(function*() {
  if (accountsOpened) return
  accountsOpened = true
  yield* openAccounts("ec-acct-")
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe(Scripts.seedBaselineAccounts(schema, fibers, accountsPerFiber)).unprepared
})

const batchAppends = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const random = yield* Random.Random
  const workers = 4
  const batch = 1_000
  const payload = { _tag: "Ticked", n: 1 }
  const ours = yield* runFor(workers, (w, i) => {
    const streamId = StreamId.makeUnsafe(`bulk-${w}`)
    const events = range(batch).map(() => ({
      streamId,
      eventId: EventId.generate(Date.now(), random),
      type: "Ticked",
      schemaVersion: 1,
      payload,
      metadata
    }))
    return store.append({ streams: [{ streamId, expected: i * batch }], events })
  })
  const result: Measure.Result = {
    scenario: `PostgreSQL: appends in batches of ${batch} (${workers} fibers)`,
    unit: "events",
    operations: ours.operations * batch,
    seconds: ours.seconds,
    perSecond: (ours.operations * batch) / ours.seconds,
    latencyMs: ours.latencyMs,
    target: 100_000
  }
  const raw = yield* Effect.promise(() =>
    baseline("PostgreSQL: appends in batches of 1000", "events", batch, Scripts.batchAppend(schema, batch), workers)
  )
  return [share(result, raw), raw]
})

const catchUp = Effect.gen(function*() {
  const pageSize = 1_000
  const samples: Array<number> = []
  const store = yield* EventStore.EventStore
  const start = performance.now()
  const deadline = start + seconds * 1000
  let after = Position.initial
  let events = 0
  while (performance.now() < deadline) {
    const page = yield* Measure.sampled(samples, store.readPage({ after, limit: pageSize }))
    events += page.events.length
    after = page.next
    if (page.end) after = Position.initial
  }
  const elapsed = (performance.now() - start) / 1000
  const result: Measure.Result = {
    scenario: `PostgreSQL: catch-up read (pages of ${pageSize}, 1 reader)`,
    unit: "events",
    operations: events,
    seconds: elapsed,
    perSecond: events / elapsed,
    latencyMs: Measure.latencies(samples),
    target: 200_000
  }
  const sql = yield* SqlClient.SqlClient
  const [{ max }] = (yield* sql.unsafe<{ max: bigint }>(`select max(position) as max from ${schema}.events`)) as [
    { max: bigint }
  ]
  const raw = yield* Effect.promise(() =>
    baseline("PostgreSQL: catch-up read", "events", pageSize, Scripts.catchUpPage(schema, Number(max), pageSize), 1)
  )
  return [share(result, raw), raw]
})

/** Opens and funds this run's accounts; returns their ids per fiber. */
const openAccounts = (prefix: string) =>
  Effect.forEach(range(fibers * accountsPerFiber), (n) =>
    Effect.gen(function*() {
      const account = `${prefix}${n}`
      yield* CommandExecutor.execute(OpenAccount, { account, owner: "bench" })
      yield* CommandExecutor.execute(Deposit, { account, amount: 1_000_000_000 })
    }), { concurrency: fibers, discard: true })

const account = (prefix: string, worker: number, i: number) => `${prefix}${worker * accountsPerFiber + i}`

const transfers = Effect.gen(function*() {
  const prefix = "ec-acct-"
  yield* ensureAccounts
  const ours = yield* runFor(fibers, (w, i) => {
    const from = i % accountsPerFiber
    const to = (from + 1 + ((i * 7) % (accountsPerFiber - 1))) % accountsPerFiber
    return CommandExecutor.execute(Transfer, { from: account(prefix, w, from), to: account(prefix, w, to), amount: 1 })
  })
  const result: Measure.Result = {
    scenario: `PostgreSQL: 2-stream transfer commands via CommandExecutor (${fibers} fibers)`,
    unit: "commands",
    operations: ours.operations,
    seconds: ours.seconds,
    perSecond: ours.operations / ours.seconds,
    latencyMs: ours.latencyMs,
    target: 5_000
  }
  const raw = yield* Effect.promise(() =>
    baseline("PostgreSQL: 2-stream transfers", "commands", 1, Scripts.transfer(schema, accountsPerFiber), fibers)
  )
  const top = yield* Effect.promise(() =>
    ceiling("PostgreSQL: 2-stream transfers", Scripts.transferAppendOnly(schema, accountsPerFiber), fibers)
  )
  plainTransfers = result
  return [share(result, raw, top), raw, top]
})

/** What the plain transfers reached in this run, for the inline scenario's ratio. */
let plainTransfers: Measure.Result | undefined

/**
 * The same transfers with an inline read model (a balance row per account, upserted in the
 * append's transaction): what consistency at commit costs against the plain transfers.
 */
const inlineTransfers = Effect.gen(function*() {
  const Balances = PostgresReadModel.inline({
    name: "bench_balances",
    events: AccountEvents,
    migrationsTable: `${schema}.bench_balances_migrations`,
    migrations: {
      "1_create": Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql.unsafe(`create table ${schema}.bench_balances (account text primary key, balance bigint not null)`)
      )
    },
    handle: (event, stored) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe(
          `insert into ${schema}.bench_balances values ($1, $2)
           on conflict (account) do update set balance = bench_balances.balance + excluded.balance`,
          [stored.streamId, balanceDelta(event)]
        )),
    queries: {}
  })
  const prefix = "ec-inline-"
  const inlineExecutor = CommandExecutor.layer().pipe(
    Layer.provideMerge(Balances.layer),
    Layer.provideMerge(PostgresEventStore.layer({ schema }))
  )
  const ours = yield* Effect.gen(function*() {
    yield* openAccounts(prefix)
    return yield* runFor(fibers, (w, i) => {
      const from = i % accountsPerFiber
      const to = (from + 1 + ((i * 7) % (accountsPerFiber - 1))) % accountsPerFiber
      return CommandExecutor.execute(Transfer, {
        from: account(prefix, w, from),
        to: account(prefix, w, to),
        amount: 1
      })
    })
  }).pipe(Effect.provide(inlineExecutor))
  const result: Measure.Result = {
    scenario: `PostgreSQL: 2-stream transfers with an inline read model (${fibers} fibers)`,
    unit: "commands",
    operations: ours.operations,
    seconds: ours.seconds,
    perSecond: ours.operations / ours.seconds,
    latencyMs: ours.latencyMs
  }
  return [
    plainTransfers === undefined ? result : {
      ...result,
      note: `${Math.round((100 * result.perSecond) / plainTransfers.perSecond)}% of the plain transfers`
    }
  ]
})

const singleStream = Effect.gen(function*() {
  const prefix = "ec-acct-"
  yield* ensureAccounts
  const ours = yield* runFor(
    fibers,
    (w, i) => CommandExecutor.execute(Deposit, { account: account(prefix, w, i % accountsPerFiber), amount: 1 })
  )
  const result: Measure.Result = {
    scenario: `PostgreSQL: 1-stream commands (read, decide, append) via CommandExecutor (${fibers} fibers)`,
    unit: "commands",
    operations: ours.operations,
    seconds: ours.seconds,
    perSecond: ours.operations / ours.seconds,
    latencyMs: ours.latencyMs,
    target: 6_000
  }
  const raw = yield* Effect.promise(() =>
    baseline("PostgreSQL: 1-stream commands", "commands", 1, Scripts.deposit(schema, accountsPerFiber), fibers)
  )
  const top = yield* Effect.promise(() =>
    ceiling("PostgreSQL: 1-stream commands", Scripts.depositAppendOnly(schema, accountsPerFiber), fibers)
  )
  return [share(result, raw, top), raw, top]
})

/** Time from calling append to the live subscriber receiving the event. */
const liveLatency = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const random = yield* Random.Random
  const count = 1_000
  const sentAt = new Map<string, number>()
  const samples: Array<number> = []
  const streamId = StreamId.makeUnsafe("live-1")
  // Resolve the start now: a forked subscriber resolving "end" later could miss the first appends.
  const from = yield* store.head
  const subscriber = yield* Subscription.stream({ from, filter: { streamPrefix: "live-" } }).pipe(
    Stream.take(count),
    Stream.runForEach((event) =>
      Effect.sync(() => {
        const sent = sentAt.get(event.eventId)
        if (sent !== undefined) samples.push(performance.now() - sent)
      })
    ),
    Effect.forkChild
  )
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    const eventId = EventId.generate(Date.now(), random)
    sentAt.set(eventId, performance.now())
    yield* store.append({
      streams: [{ streamId, expected: i }],
      events: [{ streamId, eventId, type: "Ticked", schemaVersion: 1, payload: { n: i }, metadata }]
    })
    yield* Effect.sleep("2 millis")
  }
  yield* Fiber.join(subscriber)
  const elapsed = (performance.now() - start) / 1000
  return [
    {
      scenario: "PostgreSQL: commit → live subscriber (1 writer, ~400 appends/s)",
      unit: "events",
      operations: samples.length,
      seconds: elapsed,
      perSecond: samples.length / elapsed,
      latencyMs: Measure.latencies(samples),
      note: "target p99 <= 50 ms"
    } satisfies Measure.Result
  ]
})

const dropSchema = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared
)

/** Flushes what the previous scenario left dirty, so each starts from a quiet database. */
const settle = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe("checkpoint").unprepared).pipe(
  Effect.catch((error) => Effect.logWarning("could not run CHECKPOINT (needs superuser); continuing", error))
)

const main = Effect.gen(function*() {
  const results: Array<Measure.Result> = []
  const only = process.env["BENCH_ONLY"]?.split(",")
  // Commands first: the bulk appends leave a large table and a backlog of WAL and dirty pages
  // behind them, which would otherwise be flushed during (and charged to) the next scenario.
  const scenarios = {
    transfer: transfers,
    inline: inlineTransfers,
    single: singleStream,
    live: liveLatency,
    batch: batchAppends,
    catchup: catchUp
  }
  for (const [name, scenario] of Object.entries(scenarios)) {
    if (only !== undefined && !only.includes(name)) continue
    yield* settle
    for (const r of yield* scenario) {
      console.log(Measure.format(r))
      results.push(r)
    }
  }
  const file = Measure.writeJson("pg", results)
  console.log(`results written to ${file}`)
  writeSection("PostgreSQL", results, `npm run bench:pg (${seconds} s per measurement)`, [
    "Durable commits (fsync and synchronous_commit on). Each baseline is pgbench running the store's own SQL " +
    "against the same schema in the same run; \"% of baseline\" is our throughput over pgbench's. " +
    "For commands, the ceiling is pgbench running only the append (one round trip, any version): what a " +
    "command that need not read before deciding could reach; \"% of ceiling\" is our throughput over it. " +
    "Batch appends and catch-up pages are one statement already: their baseline is their ceiling. " +
    "Node and PostgreSQL share the machine's cores. pgbench keeps values only from one-row results, so its read " +
    "of a boundary folds the rows into one (every column rendered as text and shipped, as our read makes the " +
    "server do) beside the versions it passes to the append."
  ])
})

const multiplex = process.env["PG_MULTIPLEX"] === "1"
const client = PgClient.layer({ url: Redacted.make(url), maxConnections: fibers, multiplex })
const store = PostgresEventStore.layer({ schema })
const layer = CommandExecutor.layer().pipe(Layer.provideMerge(store), Layer.provideMerge(client))

await Effect.runPromise(
  dropSchema.pipe(
    Effect.andThen(main.pipe(Effect.provide(layer), Effect.scoped)),
    Effect.ensuring(Effect.orDie(dropSchema)),
    Effect.provide(client)
  )
)
