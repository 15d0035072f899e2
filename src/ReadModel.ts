/**
 * Read models users query: a projection together with its typed queries, and read-your-writes
 * — `after(result).balance("acc-1")` waits until the read model has applied what a command
 * wrote before it answers. `ReadModel.memory` keeps the state in memory (tests, demos, small
 * caches); `PostgresReadModel` keeps it in tables, updated by a runner or inline, in the
 * transaction of the append.
 *
 * @since 0.3.0
 */
import { Effect, type Scope, SubscriptionRef } from "effect"
import type { CheckpointStore } from "./CheckpointStore.ts"
import type { DeadLetterStore } from "./DeadLetterStore.ts"
import type * as Event from "./Event.ts"
import type * as EventStore from "./EventStore.ts"
import type * as Position from "./Position.ts"
import * as Projection from "./Projection.ts"
import type { ProjectionLock } from "./ProjectionLock.ts"
import * as ProjectionRunner from "./ProjectionRunner.ts"
import type { StoredEvent } from "./StoredEvent.ts"

/**
 * A read model's queries: functions returning Effects that need nothing more.
 *
 * @since 0.3.0
 */
export type Queries = { readonly [name: string]: (...args: never) => Effect.Effect<unknown, unknown> }

/**
 * What a caller wrote, to read it back: a command's result (its `position`), a position, or
 * nothing (no wait).
 *
 * @since 0.3.0
 */
export type Written = Position.Position | { readonly position?: Position.Position | undefined } | undefined

/**
 * A read model: its queries, and read-your-writes.
 *
 * @since 0.3.0
 */
export interface ReadModel<Q extends Queries> {
  readonly name: string
  /** The queries, answering from what the read model has applied so far. */
  readonly query: Q
  /** The queries, each first waiting until the read model has applied `written`. */
  readonly after: (written: Written) => Q
  /** Completes once the read model has applied everything up to `written`. */
  readonly awaitPosition: (written: Written) => Effect.Effect<void>
}

/**
 * The position a `Written` names, if any.
 *
 * @example
 * ```ts
 * import { Position, ReadModel } from "eventcore"
 *
 * ReadModel.positionOf({ position: Position.make(7, 1) }) // the position
 * ReadModel.positionOf(undefined) // undefined
 * ```
 * @since 0.3.0
 */
export const positionOf = (written: Written): Position.Position | undefined =>
  written === undefined ? undefined : typeof written === "string" ? written : written.position

/**
 * A read model from its queries and a way to wait for a position: what a backend builds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReadModel } from "eventcore"
 *
 * const counter = ReadModel.make("counter", { count: () => Effect.succeed(0) }, () => Effect.void)
 * ```
 * @since 0.3.0
 */
export const make = <Q extends Queries>(
  name: string,
  query: Q,
  awaitPositionOf: (position: Position.Position) => Effect.Effect<void>
): ReadModel<Q> => {
  const awaitPosition = (written: Written): Effect.Effect<void> => {
    const position = positionOf(written)
    return position === undefined ? Effect.void : awaitPositionOf(position)
  }
  const after = (written: Written): Q => {
    const wait = awaitPosition(written)
    const waiting: Record<string, (...args: never) => Effect.Effect<unknown, unknown>> = {}
    for (const key of Object.keys(query)) {
      const run = query[key]
      if (run !== undefined) waiting[key] = (...args: never) => Effect.andThen(wait, run(...args))
    }
    return waiting as unknown as Q
  }
  return { name, query, after, awaitPosition }
}

/**
 * A runner's `awaitPosition` that gives up when the runner cannot get there: once it is
 * `Faulted` or `Stopped` it will not move until restarted, so a read-your-writes query dies
 * saying so instead of waiting forever.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReadModel, type ProjectionRunner, type Position } from "eventcore"
 *
 * declare const runner: ProjectionRunner.Runner<unknown>
 * declare const position: Position.Position
 *
 * const waited: Effect.Effect<void> = ReadModel.awaitRunner("balances", runner)(position)
 * ```
 * @since 0.3.0
 */
export const awaitRunner = (
  name: string,
  runner: Pick<ProjectionRunner.Runner<unknown>, "awaitPosition" | "awaitStatus">
) =>
(position: Position.Position): Effect.Effect<void> => {
  const stuck = (tag: "Faulted" | "Stopped") =>
    Effect.flatMap(runner.awaitStatus(tag), (status: ProjectionRunner.Status) =>
      Effect.die(
        new Error(
          `eventcore: read model ${name} cannot reach position ${position}: its runner is ${tag}` +
            (status._tag === "Faulted" ? ` (${String(status.error)}); restart it (runner.restart)` : "")
        )
      ))
  return Effect.raceFirst(runner.awaitPosition(position), Effect.raceFirst(stuck("Faulted"), stuck("Stopped")))
}

/**
 * Query definitions over a state `S`: each takes the state first.
 *
 * @since 0.3.0
 */
export type StateQueries<S> = { readonly [name: string]: (state: S, ...args: never) => unknown }

/**
 * The queries of `StateQueries`, as the caller sees them: without the state, as Effects.
 *
 * @since 0.3.0
 */
export type QueriesOf<S, D extends StateQueries<S>> = {
  readonly [K in keyof D]: D[K] extends (state: S, ...args: infer A) => infer B ? (...args: A) => Effect.Effect<B>
    : never
}

/**
 * A read model kept in memory: a fold over the events (a runner from the start of the store,
 * in this process) and queries over its state. Scoped: the runner stops with the scope.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { CommandExecutor, Event, ReadModel, type Command } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * declare const Deposit: Command.Command<{ account: string; amount: number }, { account: string; amount: number }, typeof Deposited.Type, number, "account", never, never>
 *
 * const program = Effect.gen(function*() {
 *   const balances = yield* ReadModel.memory({
 *     name: "balances",
 *     events: Event.catalog(Deposited),
 *     initial: new Map<string, number>(),
 *     apply: (state, event, stored) => new Map(state).set(stored.streamId, (state.get(stored.streamId) ?? 0) + event.amount),
 *     queries: {
 *       balance: (state, account: string) => state.get(account) ?? 0,
 *       accounts: (state) => state.size
 *     }
 *   })
 *   const result = yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 })
 *   return yield* balances.after(result).balance("acc-1") // 5: waits until the read model has it
 * })
 * ```
 * @since 0.3.0
 */
export const memory = <E extends Event.Tagged, S, D extends StateQueries<S>>(
  options: Projection.CommonOptions<E> & {
    readonly initial: S
    readonly apply: (state: S, event: E, stored: StoredEvent) => S
    readonly queries: D
  }
): Effect.Effect<
  ReadModel<QueriesOf<S, D>>,
  never,
  EventStore.EventStore | CheckpointStore | DeadLetterStore | ProjectionLock | Scope.Scope
> =>
  Effect.gen(function*() {
    const { queries, ...projection } = options
    const runner = yield* ProjectionRunner.start(Projection.fold(projection))
    const query: Record<string, (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown>> = {}
    for (const key of Object.keys(queries)) {
      const definition = queries[key] as unknown as (state: S, ...args: ReadonlyArray<unknown>) => unknown
      query[key] = (...args) => Effect.map(SubscriptionRef.get(runner.state), (state) => definition(state, ...args))
    }
    return make(options.name, query as unknown as QueriesOf<S, D>, awaitRunner(options.name, runner))
  })
