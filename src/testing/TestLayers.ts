/**
 * Deterministic layers for tests: a `TestClock`, a seeded `Random`, a store and an executor
 * whose retries never sleep. Under them event ids and timestamps are the same on every run.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 * import { TestLayers } from "eventcore/testing"
 *
 * declare const Deposit: Command.Any // a command of your domain
 *
 * it.effect("deposits", () =>
 *   Effect.gen(function*() {
 *     const result = yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 10 })
 *     assert.strictEqual(result.events.length, 1)
 *   }).pipe(Effect.provide(TestLayers.memory({ seed: "deposits" }))))
 * ```
 * @since 0.1.0
 */
import { Effect, Layer, Random, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as CommandExecutor from "../CommandExecutor.ts"
import type { ConcurrencyConflict, EventStoreError } from "../Errors.ts"
import type * as EventStore from "../EventStore.ts"
import * as MemoryEventStore from "../memory/MemoryEventStore.ts"
import * as ChaosStore from "./ChaosStore.ts"

/**
 * The default seed of the deterministic layers.
 *
 * @example
 * ```ts
 * import { TestLayers } from "eventcore/testing"
 *
 * const Test = TestLayers.memory({ seed: TestLayers.defaultSeed }) // the same as TestLayers.memory()
 * ```
 * @since 0.1.0
 */
export const defaultSeed = "eventcore"

/**
 * The default conflict retry of the deterministic layers: up to 100 retries, none of them
 * sleeping, so tests never wait on the `TestClock`.
 *
 * @example
 * ```ts
 * import { CommandExecutor } from "eventcore"
 * import { TestLayers } from "eventcore/testing"
 *
 * // An executor whose conflict retries never wait on the TestClock, for a store layer of your own.
 * const Executor = CommandExecutor.layer({ retry: TestLayers.defaultRetry })
 * ```
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, ConcurrencyConflict> = Schedule.recurs(100)

/**
 * A layer providing `Random` seeded with `seed`: each build of the layer starts the same
 * sequence again.
 *
 * @example
 * ```ts
 * import { Effect, Random } from "effect"
 * import { TestLayers } from "eventcore/testing"
 *
 * const n = Random.next.pipe(Effect.provide(TestLayers.random("seed")))
 * ```
 * @since 0.1.0
 */
export const random = (seed: string | number = defaultSeed): Layer.Layer<never> =>
  Layer.effect(
    Random.Random,
    Effect.suspend(() => Random.withSeed(Effect.service(Random.Random), seed))
  )

/**
 * A layer providing a fresh `TestClock` (time starts at `startTime`, default 0; it moves only
 * when the test adjusts it).
 *
 * @example
 * ```ts
 * import { Clock, Effect } from "effect"
 * import { TestLayers } from "eventcore/testing"
 *
 * const now = Clock.currentTimeMillis.pipe(Effect.provide(TestLayers.clock(1_700_000_000_000))) // 1_700_000_000_000
 * ```
 * @since 0.1.0
 */
export const clock = (startTime?: number): Layer.Layer<TestClock.TestClock> =>
  startTime === undefined || startTime === 0
    ? TestClock.layer()
    : Layer.effectDiscard(TestClock.setTime(startTime)).pipe(Layer.provideMerge(TestClock.layer()))

/**
 * Options of the deterministic layers.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { TestLayers } from "eventcore/testing"
 *
 * const options: TestLayers.Options = {
 *   seed: "transfers", // the same event ids every run
 *   startTime: Date.UTC(2026, 0, 1),
 *   retry: Schedule.recurs(10)
 * }
 * const Test = TestLayers.memory(options)
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** Seeds `Random` (event ids, execution ids). Default `"eventcore"`. */
  readonly seed?: string | number | undefined
  /** The `TestClock`'s start, in epoch milliseconds. Default 0. */
  readonly startTime?: number | undefined
  /** Conflict retries; should not sleep. Default `Schedule.recurs(100)`. */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyConflict> | undefined
  /** Transient-error retries; off by default, as in production. */
  readonly transientRetry?: Schedule.Schedule<unknown, EventStoreError> | undefined
}

/**
 * The services every deterministic layer provides.
 *
 * @example
 * ```ts
 * import { Effect, type Layer } from "effect"
 * import { EventStore } from "eventcore"
 * import { TestLayers } from "eventcore/testing"
 *
 * const Test: Layer.Layer<TestLayers.Services> = TestLayers.memory()
 * const head = EventStore.EventStore.use((store) => store.head).pipe(Effect.provide(Test))
 * ```
 * @since 0.1.0
 */
export type Services = CommandExecutor.CommandExecutor | EventStore.EventStore | TestClock.TestClock

/**
 * Deterministic layers around any store layer: the executor (with non-sleeping retries)
 * and the store, on a `TestClock` and a seeded `Random`.
 *
 * @example
 * ```ts
 * import { MemoryEventStore } from "eventcore/memory"
 * import { TestLayers } from "eventcore/testing"
 *
 * const Test = TestLayers.make(MemoryEventStore.layer, { seed: 42 })
 * ```
 * @since 0.1.0
 */
export const make = <ROut, E, RIn>(
  store: Layer.Layer<ROut, E, RIn>,
  options?: Options
): Layer.Layer<
  ROut | CommandExecutor.CommandExecutor | TestClock.TestClock,
  E,
  RIn | Exclude<EventStore.EventStore, ROut>
> =>
  CommandExecutor.layer({ retry: options?.retry ?? defaultRetry, transientRetry: options?.transientRetry }).pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(random(options?.seed)),
    Layer.provideMerge(clock(options?.startTime))
  )

/**
 * Deterministic layers on a fresh in-memory store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 * import { TestLayers } from "eventcore/testing"
 *
 * const head = EventStore.EventStore.use((store) => store.head).pipe(Effect.provide(TestLayers.memory()))
 * ```
 * @since 0.1.0
 */
export const memory = (options?: Options): Layer.Layer<Services> => make(MemoryEventStore.layer, options)

/**
 * Deterministic layers on a fresh in-memory store wrapped in a seeded `ChaosStore`.
 *
 * @example
 * ```ts
 * import { TestLayers } from "eventcore/testing"
 *
 * const Chaotic = TestLayers.chaos({ seed: 1, chaos: { faults: { yield: 0.5 } } })
 * ```
 * @since 0.1.0
 */
export const chaos = (
  options?: Options & { readonly chaos?: ChaosStore.Options | undefined }
): Layer.Layer<Services | ChaosStore.ChaosStore> =>
  make(
    ChaosStore.layer({ seed: options?.seed, ...options?.chaos }).pipe(Layer.provide(MemoryEventStore.layer)),
    options
  )
