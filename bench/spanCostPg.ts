/**
 * What EventCore's fine-grained spans cost a PostgreSQL command: the same deposits with Effect's
 * native tracer (no spans below the command) and with a tracer that records every span and
 * drops it (attempt, store and statement spans made), rounds alternating in one process so
 * that a shared machine's load falls on both alike. 8 fibers, 3,000 one-stream deposits per
 * round over 500 accounts; commands per second and client CPU per command, medians of 6
 * rounds each. docs/observability.md reports its numbers.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node --import ./scripts/source.mjs bench/spanCostPg.ts
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema, Tracer } from "effect"
import { Command, CommandExecutor, Event, StreamId } from "eventcore"
import { PostgresEventStore } from "eventcore/postgres"

const url = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const schema = "bench_span_cost"
const count = 3_000
const rounds = 6
const recording = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Schema.String, amount: Schema.Int }),
  events: Event.catalog(Deposited),
  streams: ({ account }) => ({ account: StreamId.makeUnsafe(account) }),
  initial: 0,
  apply: (balance, event) => balance + event.amount,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

interface Round {
  readonly perSecond: number
  readonly cpuMicros: number
}

const round = (traced: boolean): Effect.Effect<Round, unknown, CommandExecutor.CommandExecutor> => {
  const measured = Effect.gen(function*() {
    const inputs = Array.from({ length: count }, (_, i) => ({ account: `account-${i % 500}`, amount: 1 }))
    const cpu = process.cpuUsage()
    const started = performance.now()
    yield* Effect.forEach(inputs, (input) => CommandExecutor.execute(Deposit, input), {
      discard: true,
      concurrency: 8
    })
    const used = process.cpuUsage(cpu)
    return {
      perSecond: count / ((performance.now() - started) / 1000),
      cpuMicros: (used.user + used.system) / count
    }
  })
  return traced ? Effect.withTracer(measured, recording) : measured
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.toSorted((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

const compare = Effect.gen(function*() {
  const native: Array<Round> = []
  const traced: Array<Round> = []
  yield* round(false) // warm-up
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? [false, true] : [true, false]
    for (const tracing of order) (tracing ? traced : native).push(yield* round(tracing))
  }
  for (const [name, rows] of [["native tracer", native], ["recording tracer", traced]] as const) {
    console.log(
      `${name}: ${median(rows.map((r) => r.perSecond)).toFixed(0)} commands/s, ` +
        `${median(rows.map((r) => r.cpuMicros)).toFixed(0)} µs client CPU per command (medians of ${rounds})`
    )
  }
})

const Pg = PgClient.layer({ url: Redacted.make(url), maxConnections: 8 })
const dropSchema = PgClient.PgClient.use((sql) => sql.unsafe(`drop schema if exists ${schema} cascade`))

await Effect.runPromise(
  Effect.gen(function*() {
    yield* dropSchema
    yield* compare.pipe(
      Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(PostgresEventStore.layer({ schema }))))
    )
    yield* dropSchema
  }).pipe(Effect.provide(Pg))
)
