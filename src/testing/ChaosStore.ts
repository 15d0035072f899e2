/**
 * A chaotic `EventStore`: wraps any store and, with seeded (reproducible) probabilities per
 * operation, injects failures (`EventStoreError`, transient or not), concurrency conflicts
 * (a `ConcurrencyConflict` before the real append runs) and latency (`Effect.sleep`, which
 * waits on the `TestClock` in tests, or scheduler yields, which interleave fibers without
 * any clock).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { CommandExecutor } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const Chaotic = ChaosStore.layer({ seed: "chaos", faults: { yield: 0.5 }, operations: { append: { conflict: 0.1 } } })
 *   .pipe(Layer.provide(MemoryEventStore.layer))
 * const Live = CommandExecutor.layer().pipe(Layer.provideMerge(Chaotic))
 *
 * const injected = Effect.map(ChaosStore.stats, (stats) => ChaosStore.total(stats, "conflicts")) // after a run
 * ```
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Random } from "effect"
import { ConcurrencyConflict, EventStoreError } from "../Errors.ts"
import * as EventStore from "../EventStore.ts"

/**
 * The store operations chaos can target.
 *
 * @example
 * ```ts
 * import { ChaosStore } from "eventcore/testing"
 *
 * // Chaos on the reads only.
 * const reads: ReadonlyArray<ChaosStore.Operation> = ["readStreams", "readPage"]
 * const options: ChaosStore.Options = {
 *   operations: Object.fromEntries(reads.map((operation) => [operation, { transient: 0.2 }]))
 * }
 * ```
 * @since 0.1.0
 */
export type Operation = "readStreams" | "append" | "readPage" | "head" | "awaitAppend"

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const calls = Effect.map(ChaosStore.stats, (stats) => ChaosStore.operations.map((op) => `${op}: ${stats[op].calls}`))
 * ```
 * @since 0.1.0
 */
export const operations: ReadonlyArray<Operation> = ["readStreams", "append", "readPage", "head", "awaitAppend"]

/**
 * Probabilities (0..1) of each fault on one call of an operation. Each call draws one number
 * per kind, so a seed reproduces the same faults for the same sequence of calls.
 *
 * - `failure`: a non-transient `EventStoreError` instead of the operation;
 * - `transient`: a transient `EventStoreError` instead of the operation;
 * - `conflict` (append only): a `ConcurrencyConflict` instead of the append, as if another
 *   writer had committed to the first stream of the boundary;
 * - `lostAck` (append only): the append runs and commits, then its acknowledgement is lost —
 *   a transient `EventStoreError`, as when a connection drops during the round trip;
 * - `latency`: an `Effect.sleep` of `Options.latency` (advance the `TestClock` to release it);
 * - `yield`: 1..`Options.maxYields` scheduler yields, so other fibers run in between.
 *
 * Latency and yields happen before `append`, `head` and `awaitAppend`, and *after* the read of
 * `readStreams` and `readPage`, so what a reader holds is as stale as possible.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 * import { ChaosStore } from "eventcore/testing"
 *
 * // One call in ten fails transiently; appends also lose their acknowledgement now and then.
 * const flaky: ChaosStore.Faults = { transient: 0.1, yield: 0.5 }
 * const Chaotic = ChaosStore.layer({ faults: flaky, operations: { append: { ...flaky, lostAck: 0.05 } } }).pipe(
 *   Layer.provideMerge(MemoryEventStore.layer)
 * )
 * ```
 * @since 0.1.0
 */
export interface Faults {
  readonly failure?: number | undefined
  readonly transient?: number | undefined
  readonly conflict?: number | undefined
  readonly lostAck?: number | undefined
  readonly latency?: number | undefined
  readonly yield?: number | undefined
}

/**
 * How a chaos store misbehaves: which faults, how often, reproducibly from a seed.
 *
 * @example
 * ```ts
 * import { ChaosStore } from "eventcore/testing"
 *
 * const options: ChaosStore.Options = {
 *   seed: 7, // the same seed and the same calls give the same faults
 *   faults: { latency: 0.3 },
 *   latency: "50 millis",
 *   maxYields: 5
 * }
 * const Chaos = ChaosStore.layer(options) // wraps the EventStore below it
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** Seeds the chaos; the same seed and the same calls give the same faults. Default "chaos". */
  readonly seed?: string | number | undefined
  /** Faults for every operation. */
  readonly faults?: Faults | undefined
  /** Faults for single operations; they replace `faults` field by field. */
  readonly operations?: { readonly [K in Operation]?: Faults | undefined } | undefined
  /** How long an injected latency sleeps. Default 10 millis. */
  readonly latency?: Duration.Input | undefined
  /** The most yields one injection makes. Default 3. */
  readonly maxYields?: number | undefined
}

/**
 * What was injected, per operation.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const line = (stats: ChaosStore.OperationStats) =>
 *   `${stats.calls} calls: ${stats.failures + stats.transientFailures} failed, ${stats.conflicts} conflicts, ${stats.lostAcks} lost acks`
 * const appends = Effect.map(ChaosStore.stats, (stats) => line(stats.append))
 * ```
 * @since 0.1.0
 */
export interface OperationStats {
  readonly calls: number
  readonly failures: number
  readonly transientFailures: number
  readonly conflicts: number
  readonly lostAcks: number
  readonly latencies: number
  readonly yields: number
}

/**
 * What was injected, for every operation.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * // Assert that the test really met some chaos.
 * const sawFaults = Effect.map(ChaosStore.stats, (stats: ChaosStore.Stats) =>
 *   ChaosStore.total(stats, "transientFailures") + stats.append.conflicts > 0
 * )
 * ```
 * @since 0.1.0
 */
export type Stats = { readonly [K in Operation]: OperationStats }

/**
 * Inspects and resets a chaos store's counters.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const conflictsSoFar = Effect.gen(function*() {
 *   const chaos = yield* ChaosStore.ChaosStore
 *   const stats = yield* chaos.stats
 *   yield* chaos.reset
 *   return ChaosStore.total(stats, "conflicts")
 * })
 * ```
 * @since 0.1.0
 */
export class ChaosStore extends Context.Service<ChaosStore, {
  readonly stats: Effect.Effect<Stats>
  readonly reset: Effect.Effect<void>
}>()("eventcore/testing/ChaosStore") {}

/**
 * When true for a fiber, the chaos store passes its calls straight through (and counts
 * nothing). Set it with `calm`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 * import { ChaosStore } from "eventcore/testing"
 *
 * // What `ChaosStore.calm` does:
 * const head = EventStore.EventStore.use((store) => store.head).pipe(Effect.provideService(ChaosStore.Calm, true))
 * ```
 * @since 0.1.0
 */
export const Calm: Context.Reference<boolean> = Context.Reference<boolean>("eventcore/testing/ChaosStore/Calm", {
  defaultValue: () => false
})

/**
 * Runs an effect without chaos: for setting up data before the chaotic part of a test.
 *
 * @example
 * ```ts
 * import { EventStore, StreamId } from "eventcore"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const history = ChaosStore.calm(EventStore.readStream(StreamId.makeUnsafe("acc-1"))) // no injected faults
 * ```
 * @since 0.1.0
 */
export const calm = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Calm, true)

/**
 * The counters of the current chaos store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const injectedConflicts = Effect.map(ChaosStore.stats, (stats) => stats.append.conflicts)
 * ```
 * @since 0.1.0
 */
export const stats: Effect.Effect<Stats, never, ChaosStore> = ChaosStore.use((chaos) => chaos.stats)

/**
 * Resets the counters of the current chaos store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * // Counts only the calls of `test`, not those of the setup before it.
 * const measured = <A, E, R>(test: Effect.Effect<A, E, R>) =>
 *   ChaosStore.reset.pipe(Effect.andThen(test), Effect.andThen(ChaosStore.stats))
 * ```
 * @since 0.1.0
 */
export const reset: Effect.Effect<void, never, ChaosStore> = ChaosStore.use((chaos) => chaos.reset)

/**
 * The sum of one counter over all operations.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const failures = Effect.map(ChaosStore.stats, (stats) => ChaosStore.total(stats, "failures"))
 * ```
 * @since 0.1.0
 */
export const total = (s: Stats, counter: keyof OperationStats): number =>
  operations.reduce((sum, op) => sum + s[op][counter], 0)

interface MutableStats {
  calls: number
  failures: number
  transientFailures: number
  conflicts: number
  lostAcks: number
  latencies: number
  yields: number
}

const emptyStats = (): MutableStats => ({
  calls: 0,
  failures: 0,
  transientFailures: 0,
  conflicts: 0,
  lostAcks: 0,
  latencies: 0,
  yields: 0
})

const seededGenerator = (seed: string | number): Random.Random =>
  Effect.runSync(
    Effect.gen(function*() {
      return yield* Random.Random
    }).pipe(Random.withSeed(seed))
  )

const checkProbability = (name: string, p: number | undefined): number => {
  const value = p ?? 0
  if (!(value >= 0 && value <= 1)) {
    throw new RangeError(`eventcore/testing: chaos ${name} must be in 0..1, got ${value}`)
  }
  return value
}

// As if another writer had committed to the first stream of the boundary.
const injectedConflict = (request: EventStore.AppendRequest): ConcurrencyConflict => {
  const first = request.streams[0]
  return new ConcurrencyConflict({
    conflicts: first === undefined ? [] : [{
      streamId: first.streamId,
      expected: first.expected,
      actual: typeof first.expected === "number" ? first.expected + 1 : 1
    }]
  })
}

/**
 * Builds a chaotic store around `underlying`, and its controller.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const underlying = Effect.runSync(MemoryEventStore.make)
 * const { chaos, store } = ChaosStore.make(underlying, { seed: 1, faults: { transient: 0.1 } })
 * ```
 * @since 0.1.0
 */
export const make = (underlying: EventStore.EventStore["Service"], options?: Options): {
  readonly store: EventStore.EventStore["Service"]
  readonly chaos: ChaosStore["Service"]
} => {
  const random = seededGenerator(options?.seed ?? "chaos")
  const latency = Duration.fromInputUnsafe(options?.latency ?? "10 millis")
  const maxYields = Math.max(1, Math.floor(options?.maxYields ?? 3))
  const faults = {} as Record<Operation, Required<{ [K in keyof Faults]: number }>>
  for (const op of operations) {
    const f = { ...options?.faults, ...options?.operations?.[op] }
    faults[op] = {
      failure: checkProbability("failure", f.failure),
      transient: checkProbability("transient", f.transient),
      conflict: checkProbability("conflict", op === "append" ? f.conflict : 0),
      lostAck: checkProbability("lostAck", op === "append" ? f.lostAck : 0),
      latency: checkProbability("latency", f.latency),
      yield: checkProbability("yield", f.yield)
    }
  }
  let counters = {} as Record<Operation, MutableStats>
  const resetCounters = () => {
    counters = {} as Record<Operation, MutableStats>
    for (const op of operations) counters[op] = emptyStats()
  }
  resetCounters()

  interface Plan {
    readonly delay: Effect.Effect<void>
    readonly failure: EventStoreError | undefined
    readonly conflict: boolean
    readonly lostAck: EventStoreError | undefined
  }
  const calmPlan: Plan = { delay: Effect.void, failure: undefined, conflict: false, lostAck: undefined }

  // Draws every number of one call up front, in a fixed order, so the sequence is reproducible.
  const plan = (op: Operation): Plan => {
    const f = faults[op]
    const c = counters[op]
    c.calls++
    const sleepDraw = random.nextDoubleUnsafe()
    const yieldDraw = random.nextDoubleUnsafe()
    const yieldCount = 1 + Math.floor(random.nextDoubleUnsafe() * maxYields)
    const faultDraw = random.nextDoubleUnsafe()
    const effects: Array<Effect.Effect<void>> = []
    if (sleepDraw < f.latency) {
      c.latencies++
      effects.push(Effect.sleep(latency))
    }
    if (yieldDraw < f.yield) {
      c.yields++
      for (let i = 0; i < yieldCount; i++) effects.push(Effect.yieldNow)
    }
    let failure: EventStoreError | undefined
    let conflict = false
    let lostAck: EventStoreError | undefined
    if (faultDraw < f.failure) {
      c.failures++
      failure = new EventStoreError({
        operation: op,
        transient: false,
        cause: new Error(`chaos: injected failure of ${op} (call ${c.calls})`)
      })
    } else if (faultDraw < f.failure + f.transient) {
      c.transientFailures++
      failure = new EventStoreError({
        operation: op,
        transient: true,
        cause: new Error(`chaos: injected transient failure of ${op} (call ${c.calls})`)
      })
    } else if (faultDraw < f.failure + f.transient + f.conflict) {
      c.conflicts++
      conflict = true
    } else if (faultDraw < f.failure + f.transient + f.conflict + f.lostAck) {
      c.lostAcks++
      lostAck = new EventStoreError({
        operation: op,
        transient: true,
        cause: new Error(`chaos: the append committed but its acknowledgement was lost (call ${c.calls})`)
      })
    }
    return {
      delay: effects.length === 0 ? Effect.void : Effect.asVoid(Effect.all(effects)),
      failure,
      conflict,
      lostAck
    }
  }

  const planned = (op: Operation): Effect.Effect<Plan> =>
    Effect.flatMap(Effect.service(Calm), (isCalm) => Effect.sync(() => isCalm ? calmPlan : plan(op)))

  const before = <A, E>(op: Operation, run: Effect.Effect<A, E>): Effect.Effect<A, E | EventStoreError> =>
    Effect.flatMap(
      planned(op),
      (p) => Effect.andThen(p.delay, p.failure !== undefined ? Effect.fail<E | EventStoreError>(p.failure) : run)
    )

  const after = <A, E>(op: Operation, run: Effect.Effect<A, E>): Effect.Effect<A, E | EventStoreError> =>
    Effect.flatMap(planned(op), (p) =>
      p.failure !== undefined
        ? Effect.andThen(p.delay, Effect.fail<E | EventStoreError>(p.failure))
        : Effect.tap(run, () => p.delay))

  const store = EventStore.EventStore.of({
    readStreams: (streamIds) => after("readStreams", underlying.readStreams(streamIds)),
    append: (request) =>
      Effect.flatMap(planned("append"), (p) =>
        Effect.andThen(
          p.delay,
          p.failure !== undefined
            ? Effect.fail(p.failure)
            : p.conflict
            ? Effect.fail(injectedConflict(request))
            : p.lostAck !== undefined
            ? Effect.andThen(underlying.append(request), Effect.fail(p.lostAck))
            : underlying.append(request)
        )),
    readPage: (options) => after("readPage", underlying.readPage(options)),
    head: before("head", underlying.head),
    awaitAppend: (position) => before("awaitAppend", underlying.awaitAppend(position)),
    // Not targeted: they pass straight through.
    readIdempotencyKey: underlying.readIdempotencyKey,
    horizon: underlying.horizon
  })

  const chaos = ChaosStore.of({
    stats: Effect.sync(() => {
      const copy = {} as Record<Operation, OperationStats>
      for (const op of operations) copy[op] = { ...counters[op] }
      return copy
    }),
    reset: Effect.sync(resetCounters)
  })

  return { store, chaos }
}

/**
 * A layer that takes the `EventStore` provided to it and provides a chaotic one in its place,
 * together with the `ChaosStore` controller.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 * import { ChaosStore } from "eventcore/testing"
 *
 * const Chaotic = ChaosStore.layer({ seed: 7, operations: { append: { transient: 0.2 } } }).pipe(
 *   Layer.provide(MemoryEventStore.layer)
 * )
 * ```
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<EventStore.EventStore | ChaosStore, never, EventStore.EventStore> =>
  Layer.effectContext(
    Effect.map(Effect.service(EventStore.EventStore), (underlying) => {
      const { chaos, store } = make(underlying, options)
      return Context.make(EventStore.EventStore, store).pipe(Context.add(ChaosStore, chaos))
    })
  )
