/**
 * What EventCore's spans cost an in-memory command: this tree against another checkout (a
 * `git worktree` of an earlier commit, sharing this node_modules), in one process, rounds
 * alternating so that the load of a shared machine falls on both alike. Commands per
 * CPU-second, one-stream deposits, one fiber. docs/observability.md reports its numbers.
 *
 *   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules
 *   node --import ./scripts/source.mjs bench/spanCost.ts /tmp/before native 9   # or: tracer
 */
import { Effect, Layer, Schema, Tracer } from "effect"
import * as After from "../src/index.ts"
import * as AfterMemory from "../src/memory/index.ts"

const beforeRoot = process.argv[2] ?? "/tmp/before"
const mode = process.argv[3] ?? "native"
const Before = (await import(`${beforeRoot}/src/index.ts`)) as typeof After
const BeforeMemory = (await import(`${beforeRoot}/src/memory/index.ts`)) as typeof AfterMemory
const count = 20_000
const accounts = 1_000
const discarding = Tracer.make({ span: (options) => new Tracer.NativeSpan(options) })
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })

const roundOf = (lib: typeof After, memory: typeof AfterMemory) => {
  const Deposit = lib.Command.make("Deposit", {
    input: Schema.Struct({ account: Schema.String, amount: Schema.Int }),
    events: lib.Event.catalog(Deposited),
    streams: ({ account }) => ({ account: lib.StreamId.makeUnsafe(account) }),
    initial: 0,
    apply: (balance, event) => balance + event.amount,
    decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
  })
  const round = Effect.gen(function*() {
    const inputs = Array.from({ length: count }, (_, i) => ({ account: `account-${i % accounts}`, amount: 1 }))
    const started = process.cpuUsage()
    yield* Effect.forEach(inputs, (input) => lib.CommandExecutor.execute(Deposit, input), { discard: true })
    const used = process.cpuUsage(started)
    return count / ((used.user + used.system) / 1e6)
  }).pipe(Effect.provide(lib.CommandExecutor.layer().pipe(Layer.provideMerge(memory.MemoryEventStore.layer))))
  return mode === "tracer" ? Effect.withTracer(round, discarding) : round
}
const before = roundOf(Before, BeforeMemory)
const after = roundOf(After, AfterMemory)
await Effect.runPromise(before)
await Effect.runPromise(after)
const rates = { before: [] as Array<number>, after: [] as Array<number> }
const rounds = Number(process.argv[4] ?? 9)
for (let i = 0; i < rounds; i++) {
  // alternate which goes first
  if (i % 2 === 0) {
    rates.before.push(await Effect.runPromise(before))
    rates.after.push(await Effect.runPromise(after))
  } else {
    rates.after.push(await Effect.runPromise(after))
    rates.before.push(await Effect.runPromise(before))
  }
}
const median = (xs: Array<number>) => Math.round(xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0)
const sum = (xs: Array<number>) => xs.reduce((a, b) => a + b, 0)
const ratios = rates.after.map((a, i) => a / (rates.before[i] ?? a)).toSorted((a, b) => a - b)
console.log(JSON.stringify({
  mode,
  before: { median: median(rates.before), mean: Math.round(sum(rates.before) / rounds) },
  after: { median: median(rates.after), mean: Math.round(sum(rates.after) / rounds) },
  pairedRatioMedian: Number((ratios[Math.floor(ratios.length / 2)] ?? 0).toFixed(3))
}))
