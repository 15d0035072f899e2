/**
 * Read models users query: a projection together with its typed queries, and read-your-writes
 * — `after(result).balance("acc-1")` waits until the read model has applied what a command
 * wrote before it answers. `ReadModel.memory` keeps the state in memory (tests, demos, small
 * caches); `PostgresReadModel` keeps it in tables, updated by a runner or inline, in the
 * transaction of the append.
 *
 * @since 0.3.0
 */
import { Duration, Effect, Ref, type Scope, Semaphore, Stream, SubscriptionRef } from "effect"
import * as BlueGreenModule from "./BlueGreen.ts"
import type { CheckpointStore } from "./CheckpointStore.ts"
import type { DeadLetterStore } from "./DeadLetterStore.ts"
import { type EventStoreError, InvalidInput } from "./Errors.ts"
import type * as Event from "./Event.ts"
import type * as EventStore from "./EventStore.ts"
import * as Position from "./Position.ts"
import * as Projection from "./Projection.ts"
import type { ProjectionLock } from "./ProjectionLock.ts"
import * as ProjectionRunner from "./ProjectionRunner.ts"
import type { StoredEvent } from "./StoredEvent.ts"

/**
 * A read model's queries: functions returning Effects that need nothing more.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { ReadModel } from "eventcore"
 *
 * const queries = {
 *   count: () => Effect.succeed(0),
 *   named: (name: string) => Effect.succeed(name.length)
 * } satisfies ReadModel.Queries
 *
 * const counter = ReadModel.make("counter", queries, () => Effect.void)
 * ```
 * @since 0.3.0
 */
export type Queries = { readonly [name: string]: (...args: never) => Effect.Effect<unknown, unknown> }

/**
 * What a caller wrote, to read it back: a command's result (its `position`), a position, or
 * nothing (no wait).
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { ReadModel } from "eventcore"
 *
 * declare const balances: ReadModel.ReadModel<{ readonly balance: (account: string) => Effect.Effect<number> }>
 *
 * // A command's result, a position, or undefined (answer at once).
 * const balanceAfter = (written: ReadModel.Written) => balances.after(written).balance("acc-1")
 * ```
 * @since 0.3.0
 */
export type Written = Position.Position | { readonly position?: Position.Position | undefined } | undefined

/**
 * A read model: its queries, and read-your-writes.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { CommandExecutor, ReadModel } from "eventcore"
 *
 * type BalanceQueries = { readonly balance: (account: string) => Effect.Effect<number> }
 *
 * const balanceViews = (model: ReadModel.ReadModel<BalanceQueries>, result: CommandExecutor.ExecutionResult) => ({
 *   now: model.query.balance("acc-1"), // what the read model has applied so far
 *   mine: model.after(result).balance("acc-1") // once it has applied what the command wrote
 * })
 * ```
 * @since 0.3.0
 */
export interface ReadModel<Q extends Queries> {
  readonly name: string
  /**
   * Which version of the read model this is (1 unless given). Versions are built beside each
   * other for blue/green rebuilds (`blueGreen`).
   */
  readonly version: number
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
  awaitPositionOf: (position: Position.Position) => Effect.Effect<void>,
  version = 1
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
  return { name, version, query, after, awaitPosition }
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
 * @example
 * ```ts
 * import type { ReadModel } from "eventcore"
 *
 * type Balances = ReadonlyMap<string, number>
 *
 * const queries = {
 *   balance: (state: Balances, account: string) => state.get(account) ?? 0,
 *   accounts: (state: Balances) => state.size
 * } satisfies ReadModel.StateQueries<Balances>
 * ```
 * @since 0.3.0
 */
export type StateQueries<S> = { readonly [name: string]: (state: S, ...args: never) => unknown }

/**
 * The queries of `StateQueries`, as the caller sees them: without the state, as Effects.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { ReadModel } from "eventcore"
 *
 * type Balances = ReadonlyMap<string, number>
 * const queries = { balance: (state: Balances, account: string) => state.get(account) ?? 0 }
 *
 * // What `ReadModel.memory` gives callers: { balance: (account: string) => Effect<number> }
 * declare const balances: ReadModel.ReadModel<ReadModel.QueriesOf<Balances, typeof queries>>
 * const balance: Effect.Effect<number> = balances.query.balance("acc-1")
 * ```
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
    /**
     * The version (default 1): a version other than 1 runs under its own name,
     * `BlueGreen.versionedName(name, version)`, beside the others (see `blueGreen`).
     */
    readonly version?: number | undefined
  }
): Effect.Effect<
  ReadModel<QueriesOf<S, D>> & { readonly runner: ProjectionRunner.Runner<S> },
  InvalidInput,
  EventStore.EventStore | CheckpointStore | DeadLetterStore | ProjectionLock | Scope.Scope
> =>
  Effect.gen(function*() {
    const { queries, version: given, ...projection } = options
    const version = yield* BlueGreenModule.parseVersion(options.name, given ?? 1)
    const runner = yield* ProjectionRunner.start(
      Projection.fold({ ...projection, name: BlueGreenModule.versionedName(options.name, version) })
    )
    const query: Record<string, (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown>> = {}
    for (const key of Object.keys(queries)) {
      const definition = queries[key] as unknown as (state: S, ...args: ReadonlyArray<unknown>) => unknown
      query[key] = (...args) => Effect.map(SubscriptionRef.get(runner.state), (state) => definition(state, ...args))
    }
    const name = BlueGreenModule.versionedName(options.name, version)
    return {
      ...make(options.name, query as unknown as QueriesOf<S, D>, awaitRunner(name, runner), version),
      runner
    }
  })

/**
 * What `blueGreen` needs of a runner: its progress, not its state.
 *
 * @example
 * ```ts
 * import { Effect, SubscriptionRef } from "effect"
 * import type { ReadModel } from "eventcore"
 *
 * // A readiness probe over any read model's runner.
 * const isLive = (runner: ReadModel.Running) =>
 *   Effect.map(SubscriptionRef.get(runner.status), (status) => status._tag === "Live")
 * ```
 * @since 0.3.0
 */
export type Running = Pick<
  ProjectionRunner.Runner<unknown>,
  "name" | "status" | "position" | "lag" | "awaitPosition" | "awaitStatus"
>

/**
 * One version of a read model, kept by a runner in this process (`ReadModel.memory`,
 * `PostgresReadModel.make`).
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import { ReadModel } from "eventcore"
 *
 * type TotalQueries = { readonly total: () => Effect.Effect<number> }
 * declare const v1: ReadModel.WithRunner<TotalQueries> // e.g. from ReadModel.memory({ ..., version: 1 })
 * declare const v2: ReadModel.WithRunner<TotalQueries>
 *
 * const balances = ReadModel.blueGreen({ name: "balances", versions: [v1, v2] })
 * ```
 * @since 0.3.0
 */
export type WithRunner<Q extends Queries> = ReadModel<Q> & { readonly runner: Running }

/**
 * Several versions of a read model served as one (see `blueGreen`).
 *
 * @example
 * ```ts
 * import { Effect, SubscriptionRef } from "effect"
 * import type { ReadModel } from "eventcore"
 *
 * declare const balances: ReadModel.Versioned<{ readonly total: () => Effect.Effect<number> }>
 *
 * const rollBack = Effect.gen(function*() {
 *   const serving = yield* SubscriptionRef.get(balances.active)
 *   if (serving > 1) yield* balances.promote(serving - 1, { force: true }) // no catch-up check going back
 * })
 * ```
 * @since 0.3.0
 */
export interface Versioned<Q extends Queries> extends ReadModel<Q> {
  /**
   * The version this instance answers from: the stored active version, read when it starts,
   * after its own promotions at once, and every `refresh` (other processes' promotions).
   */
  readonly active: SubscriptionRef.SubscriptionRef<number>
  /** The versions, by version. */
  readonly versions: ReadonlyMap<number, WithRunner<Q>>
  /**
   * Makes `version` the active one, for every process. Refused with `NotCaughtUp` unless its
   * runner has processed every event it wants (its `lag` is 0); then, when both run live in
   * this process, it waits until the new version has applied what the serving one has, and
   * after the switch queries on the new version first wait until it has applied what the old
   * version's runner had reported applied at the switch, so readers in this process never go
   * back. When either runner here is not live (e.g. in `Standby`: another process runs it),
   * neither wait applies, and a reader may briefly miss events the old version had shown.
   * `force: true` skips both checks (e.g. to roll back to an older version); the wait after
   * the switch still applies. Refused with `UnknownVersion` for a version this read model does
   * not have.
   */
  readonly promote: (
    version: number,
    options?: { readonly force?: boolean | undefined }
  ) => Effect.Effect<
    void,
    BlueGreenModule.NotCaughtUp | BlueGreenModule.UnknownVersion | EventStore.ReadError | EventStoreError
  >
}

/**
 * Blue/green rebuilds: serves several versions of a read model as one. Each version is its
 * own read model — its own runner, checkpoint and (in PostgreSQL) tables — built beside the
 * others; queries (`query`, `after`, `awaitPosition`) answer from the active version, stored
 * in `BlueGreen.ActiveVersions` so that every process agrees and a restart keeps it (the
 * lowest version given, when none is stored yet). A new version builds while the active one
 * keeps answering; `promote` switches once it has caught up, or, with `promote:
 * "whenCaughtUp"`, the newest version is promoted as soon as its runner here is live and
 * caught up. Each call answers from one version: `after(written)` waits for that version and
 * queries it. Other processes switch within `refresh` (default 1 second). Across a switch,
 * readers in this process never go back when both versions run live here: queries on the new
 * version first wait until it has applied what the old version's runner had reported applied
 * at the switch. Otherwise (a runner here in `Standby`, or a version not run here) a reader
 * may briefly miss events the old version had shown. Once no process serves the old version
 * any more, stop its runner (deploy without it) and drop its tables.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Event, ReadModel } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * // version 2 counts deposits too; it builds beside version 1 and takes over once caught up
 * const balances = (version: number) =>
 *   ReadModel.memory({
 *     name: "balances",
 *     version,
 *     events: Event.catalog(Deposited),
 *     initial: { total: 0, deposits: 0 },
 *     apply: (state, event) => ({ total: state.total + event.amount, deposits: state.deposits + (version === 1 ? 0 : 1) }),
 *     queries: { total: (state) => state.total, deposits: (state) => state.deposits }
 *   })
 *
 * const program = Effect.gen(function*() {
 *   const model = yield* ReadModel.blueGreen({
 *     name: "balances",
 *     versions: [yield* balances(1), yield* balances(2)],
 *     promote: "whenCaughtUp"
 *   })
 *   return yield* model.query.total() // from the active version
 * })
 * ```
 * @since 0.3.0
 */
export const blueGreen = <Q extends Queries>(options: {
  readonly name: string
  readonly versions: ReadonlyArray<WithRunner<Q>>
  /** `"manual"` (default): `promote` switches; `"whenCaughtUp"`: the newest version, once caught up. */
  readonly promote?: "manual" | "whenCaughtUp" | undefined
  /** How often the stored active version is read again (default 1 second). */
  readonly refresh?: Duration.Input | undefined
}): Effect.Effect<Versioned<Q>, InvalidInput | EventStoreError, BlueGreenModule.ActiveVersions | Scope.Scope> =>
  Effect.gen(function*() {
    const { name } = options
    const store = yield* BlueGreenModule.ActiveVersions
    const versions = new Map<number, WithRunner<Q>>()
    for (const model of options.versions) {
      if (model.name !== name || versions.has(model.version)) {
        return yield* new InvalidInput({
          subject: `versions of blue/green read model ${name}`,
          path: [],
          issue: model.name !== name
            ? `version ${model.version} belongs to read model ${model.name}`
            : `version ${model.version} is given twice`
        })
      }
      versions.set(model.version, model)
    }
    const known = [...versions.keys()].toSorted((a, b) => a - b)
    const lowest = known[0]
    const newest = known[known.length - 1]
    const oldest = lowest === undefined ? undefined : versions.get(lowest)
    const candidate = newest === undefined ? undefined : versions.get(newest)
    if (lowest === undefined || newest === undefined || oldest === undefined || candidate === undefined) {
      return yield* new InvalidInput({
        subject: `versions of blue/green read model ${name}`,
        path: [],
        issue: "no version given"
      })
    }
    // A version this process does not have (a newer deployment promoted it): serve the newest
    // one it has below it, which that deployment's runners may still keep, else the oldest.
    const served = (stored: number) => {
      if (versions.has(stored)) return stored
      const below = known.filter((v) => v < stored)
      return below[below.length - 1] ?? lowest
    }
    const warnUnknown = (stored: number) =>
      versions.has(stored) ? Effect.void : Effect.logWarning(
        `eventcore: read model ${name}: the active version is ${stored}, which this process does not have; serving version ${
          served(stored)
        }`
      )
    const initial = yield* store.initialize(name, lowest)
    yield* warnUnknown(initial)
    const active = yield* SubscriptionRef.make(served(initial))
    const serving = Effect.map(SubscriptionRef.get(active), (v) => versions.get(v) ?? oldest)
    const live = (model: WithRunner<Q>) =>
      Effect.map(SubscriptionRef.get(model.runner.status), (status) => status._tag === "Live")

    // Readers must not go back across a switch. Whoever read the old version read what its
    // runner had reported applied at the switch (a runner reports a batch just after it is
    // visible: that moment is not covered); queries on the new version first wait until its
    // runner has got there (at once, usually: it was caught up before the switch). Only when
    // both run live here, as in `reachServing`: a runner in Standby does not move. Until the
    // switch has read that position, the floor reads the old runner's position when asked (no
    // lower). Once reached, the floor is cleared: one look at a Ref per query after that.
    type Floor = { readonly model: WithRunner<Q>; readonly position: Effect.Effect<Position.Position> }
    const floor = yield* Ref.make<Floor | undefined>(undefined)
    const leaves = (model: WithRunner<Q>) =>
      Effect.raceAll([
        model.runner.awaitStatus("Standby"),
        model.runner.awaitStatus("Faulted"),
        model.runner.awaitStatus("Stopped")
      ])
    // A runner's position also moves past events it does not want, to where its last read
    // looked, so the old runner can be further on with no event in between: the new one then
    // has nothing to wait for (no lag), and would not move until the next commit.
    const reach = (model: WithRunner<Q>, position: Position.Position) =>
      Effect.gen(function*() {
        while (true) {
          const at = yield* SubscriptionRef.get(model.runner.position)
          if (!Position.isAfter(position, at)) return
          // A runner that leaves (another process runs it now, or it stopped) will not get
          // there, and one whose lag cannot be read cannot tell: the query answers as it is.
          const status = yield* SubscriptionRef.get(model.runner.status)
          if (status._tag === "Standby" || status._tag === "Faulted" || status._tag === "Stopped") return
          const lag = yield* Effect.exit(model.runner.lag)
          if (lag._tag === "Failure" || lag.value.events === 0) return
          yield* Effect.raceFirst(
            SubscriptionRef.changes(model.runner.position).pipe(
              Stream.filter((p) => p !== at),
              Stream.take(1),
              Stream.runDrain
            ),
            leaves(model)
          )
        }
      })
    const current = Effect.flatMap(serving, (model) =>
      Effect.flatMap(Ref.get(floor), (pending) => {
        if (pending === undefined || pending.model !== model) return Effect.succeed(model)
        return Effect.gen(function*() {
          yield* reach(model, yield* pending.position)
          yield* Ref.update(floor, (f) => f === pending ? undefined : f)
          return model
        })
      }))

    // Readers must not go back. A refresh reads the stored version without holding anything (a
    // slow read must not hold up a promotion), so what it read may predate a promotion made here
    // meanwhile: it serves what it read only if no promotion was served since it started.
    // Promotions store and serve under the same permit, so two of them land in the order stored.
    const switching = yield* Semaphore.make(1)
    let promotions = 0
    // Under the permit.
    const serve = (version: number) =>
      Effect.gen(function*() {
        const from = yield* serving
        const to = versions.get(version) ?? oldest
        if (from === to) return
        const both = (yield* live(from)) && (yield* live(to))
        yield* Ref.set(floor, both ? { model: to, position: SubscriptionRef.get(from.runner.position) } : undefined)
        yield* SubscriptionRef.set(active, version)
        if (both) {
          const position = yield* SubscriptionRef.get(from.runner.position)
          yield* Ref.update(floor, (f) => f?.model === to ? { model: to, position: Effect.succeed(position) } : f)
        }
      })
    const switchTo = <E>(activate: Effect.Effect<number, E>) =>
      switching.withPermits(1)(Effect.gen(function*() {
        const stored = yield* activate
        promotions++
        yield* serve(served(stored))
        return stored
      }))

    // Readers must not go back: a new version first gets as far as the serving one has here
    // (when both run here: a runner in Standby does not move).
    const reachServing = (target: WithRunner<Q>) =>
      Effect.gen(function*() {
        const from = yield* serving
        if (from !== target && (yield* live(from)) && (yield* live(target))) {
          yield* awaitRunner(target.runner.name, target.runner)(yield* SubscriptionRef.get(from.runner.position))
        }
      })

    const promote = (version: number, promoteOptions?: { readonly force?: boolean | undefined }) =>
      Effect.gen(function*() {
        const target = versions.get(version)
        if (target === undefined) return yield* new BlueGreenModule.UnknownVersion({ name, version, known })
        if (promoteOptions?.force !== true) {
          const status = yield* SubscriptionRef.get(target.runner.status)
          if (status._tag === "Faulted" || status._tag === "Stopped" || status._tag === "Retrying") {
            return yield* new BlueGreenModule.NotCaughtUp({ name, version, detail: `its runner is ${status._tag}` })
          }
          const lag = yield* target.runner.lag
          if (lag.events > 0) {
            return yield* new BlueGreenModule.NotCaughtUp({
              name,
              version,
              detail: `${lag.events}${lag.capped ? " or more" : ""} events behind`
            })
          }
          yield* reachServing(target)
        }
        yield* switchTo(Effect.as(store.activate(name, version), version))
        yield* Effect.logInfo(`eventcore: read model ${name}: version ${version} is active`)
      })

    const refreshEvery = Duration.fromInputUnsafe(options.refresh ?? Duration.seconds(1))
    let failing = false
    yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(refreshEvery)
        const seen = promotions
        const exit = yield* Effect.exit(store.get(name))
        if (exit._tag === "Failure") {
          // Queries go on from the version they have; say so once per outage, not every tick.
          if (!failing) {
            yield* Effect.logWarning(`eventcore: read model ${name}: cannot read its active version`, exit.cause)
          }
          failing = true
          continue
        }
        failing = false
        const stored = exit.value ?? 1
        yield* switching.withPermits(1)(Effect.gen(function*() {
          if (promotions !== seen || served(stored) === (yield* SubscriptionRef.get(active))) return
          yield* warnUnknown(stored)
          yield* serve(served(stored))
        }))
      }
    }).pipe(Effect.forkScoped)

    // Automatic promotion only ever moves forward: two processes promoting at once, or one
    // started before an operator's promotion, never take the newer version back.
    const promoteUpward = Effect.gen(function*() {
      const lag = yield* candidate.runner.lag
      if (lag.events > 0) return yield* Effect.fail("behind" as const)
      yield* reachServing(candidate)
      const now = yield* switchTo(store.activate(name, candidate.version, { onlyUpward: true }))
      yield* Effect.logInfo(`eventcore: read model ${name}: version ${now} is active`)
    })
    if (options.promote === "whenCaughtUp") {
      yield* Effect.gen(function*() {
        while ((yield* SubscriptionRef.get(active)) < newest) {
          yield* candidate.runner.awaitStatus("Live")
          const exit = yield* Effect.exit(promoteUpward)
          if (exit._tag === "Success") return
          // Not yet: try again once it has processed more.
          const at = yield* SubscriptionRef.get(candidate.runner.position)
          yield* SubscriptionRef.changes(candidate.runner.position).pipe(
            Stream.filter((p) => p !== at),
            Stream.take(1),
            Stream.runDrain
          )
        }
      }).pipe(Effect.forkScoped)
    }

    const query: Record<string, (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>> = {}
    for (const key of Object.keys(oldest.query)) {
      query[key] = (...args) =>
        Effect.flatMap(
          current,
          (model) => (model.query[key] as (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>)(...args)
        )
    }
    const after = (written: Written): Q => {
      const waiting: Record<string, (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>> = {}
      for (const key of Object.keys(oldest.query)) {
        waiting[key] = (...args) =>
          Effect.flatMap(
            current,
            (model) =>
              (model.after(written)[key] as (...a: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>)(...args)
          )
      }
      return waiting as unknown as Q
    }
    return {
      name,
      get version() {
        return SubscriptionRef.getUnsafe(active)
      },
      query: query as unknown as Q,
      after,
      awaitPosition: (written: Written) => Effect.flatMap(current, (model) => model.awaitPosition(written)),
      active,
      versions,
      promote
    } satisfies Versioned<Q>
  })
