/**
 * Projections: named consumers of the global order that build read models.
 *
 * A projection is a name, the events it wants (an event catalog, decoded with upcasting), and
 * what it does with each event: a pure fold into in-memory state (`Projection.fold`) or an
 * Effect per event (`Projection.make`), e.g. an upsert into a read-model table. Run it with
 * `ProjectionRunner.start`: it catches up from its checkpoint, goes live, and records its
 * checkpoint as it goes (every N events or T ms, and always on shutdown).
 *
 * Delivery is at-least-once: after a crash, events after the last saved checkpoint are
 * delivered again, so effects must be idempotent — or transactional: a projection whose
 * `transaction` writes the read model and the checkpoint in one database transaction
 * (`PostgresProjection.transactional`) gets exactly-once effects.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Schedule } from "effect"
import type * as Event from "./Event.ts"
import type * as EventStore from "./EventStore.ts"
import type { StoredEvent } from "./StoredEvent.ts"

/**
 * What a runner does with an event whose decoding or processing fails.
 *
 * - `Fail`: stop; the runner's status becomes `Faulted` with the error and the event.
 * - `Retry`: retry processing under the schedule (each attempt in its own savepoint for a
 *   transactional projection); when the schedule gives up, `exhausted` decides (fail or skip).
 *   Decode errors are not retried: the same bytes decode the same way.
 * - `Skip`: record the event and its error in the `DeadLetterStore`, and go on.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { Projection } from "eventcore"
 *
 * // Retry a failing event 3 times, then dead-letter it and go on.
 * const onFailure: Projection.FailurePolicy = Projection.retry(Schedule.recurs(3), { exhausted: "skip" })
 * const describe = (policy: Projection.FailurePolicy) =>
 *   policy._tag === "Retry" ? `retry, then ${policy.exhausted}` : policy._tag.toLowerCase()
 * ```
 * @since 0.1.0
 */
export type FailurePolicy =
  | { readonly _tag: "Fail" }
  | { readonly _tag: "Skip" }
  | {
    readonly _tag: "Retry"
    readonly schedule: Schedule.Schedule<unknown, unknown>
    readonly exhausted: "fail" | "skip"
  }

/**
 * Stop at the first failing event (the default).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Event, Projection } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Audit = Projection.make({
 *   name: "audit",
 *   events: Event.catalog(Deposited),
 *   handle: (event) => Effect.log(`deposit of ${event.amount}`),
 *   onFailure: Projection.failFast
 * })
 * ```
 * @since 0.1.0
 */
export const failFast: FailurePolicy = { _tag: "Fail" }

/**
 * Record a failing event as a dead letter and go on.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Event, Projection } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Audit = Projection.make({
 *   name: "audit",
 *   events: Event.catalog(Deposited),
 *   handle: (event) => event.amount < 0 ? Effect.fail("negative deposit") : Effect.log(`deposit of ${event.amount}`),
 *   onFailure: Projection.skip // failing events end up in DeadLetterStore.list("audit")
 * })
 * ```
 * @since 0.1.0
 */
export const skip: FailurePolicy = { _tag: "Skip" }

/**
 * Retry a failing event under a schedule; when it gives up, fail (default) or skip.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { Projection } from "eventcore"
 *
 * const policy = Projection.retry(Schedule.exponential("100 millis").pipe(Schedule.upTo({ times: 5 })), { exhausted: "skip" })
 * ```
 * @since 0.1.0
 */
export const retry = (
  schedule: Schedule.Schedule<unknown, unknown>,
  options?: { readonly exhausted?: "fail" | "skip" | undefined }
): FailurePolicy => ({ _tag: "Retry", schedule, exhausted: options?.exhausted ?? "fail" })

/**
 * When a runner saves its checkpoint (outside a transactional projection's own batches):
 * after `everyEvents` events or `every` time since the last save, whichever first (an idle
 * runner included: a timer saves its last position); also when it first catches up, and
 * always on shutdown.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Projection } from "eventcore"
 *
 * // Fewer saves for a busy projection that can re-apply a few seconds of events.
 * const checkpoint: Projection.CheckpointPolicy = { everyEvents: 10_000, every: Duration.seconds(10) }
 * const relaxed: Partial<Projection.CheckpointPolicy> = { every: Duration.seconds(10) } // as projections take it
 * ```
 * @since 0.1.0
 */
export interface CheckpointPolicy {
  readonly everyEvents: number
  readonly every: Duration.Duration
}

/**
 * Every 1,000 events or every second.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Projection } from "eventcore"
 *
 * const checkpoint = { ...Projection.defaultCheckpointPolicy, every: Duration.seconds(5) } // for Projection.make
 * ```
 * @since 0.1.0
 */
export const defaultCheckpointPolicy: CheckpointPolicy = { everyEvents: 1_000, every: Duration.seconds(1) }

/**
 * Runs an effect atomically with the checkpoint save that follows it: a transactional
 * projection's runner wraps each batch (events and checkpoint) in it, and each event in a
 * nested call (a savepoint), so a failing event's partial writes roll back on their own.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { SqlClient } from "effect/sql"
 * import type { SqlError } from "effect/sql/SqlError"
 * import { Event, Projection } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * // Each batch in a SQL transaction (what `PostgresProjection.transactional` sets up for you).
 * declare const sql: SqlClient.SqlClient
 * const transaction: Projection.Transaction<SqlError, never> = (self) => sql.withTransaction(self)
 *
 * const audit = Projection.make({
 *   name: "audit",
 *   events: Event.catalog(Deposited),
 *   handle: (event) => sql`insert into audit (amount) values (${event.amount})`,
 *   transaction
 * })
 * ```
 * @since 0.1.0
 */
export interface Transaction<TxErr, TxR> {
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | TxErr, R | TxR>
}

/**
 * A projection, as the runner sees it. Build one with `make` or `fold`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Event, type Projection, ProjectionRunner } from "eventcore"
 *
 * // Start any projection, logging its name.
 * const startLogged = <E extends Event.Tagged, S, Err, R>(projection: Projection.Projection<E, S, Err, R>) =>
 *   Effect.andThen(Effect.log(`starting projection ${projection.name}`), ProjectionRunner.start(projection))
 * ```
 * @since 0.1.0
 */
export interface Projection<E extends Event.Tagged, S, Err, R> {
  readonly _tag: "eventcore/Projection"
  /** Unique among projections: names the checkpoint, the lock and dead letters. */
  readonly name: string
  /** The events it wants, decoded (and upcast) with this catalog. */
  readonly events: Event.Catalog<E>
  /** Narrows the events further (stream ids or a stream prefix); types come from the catalog. */
  readonly filter: Omit<EventStore.EventFilter, "eventTypes"> | undefined
  readonly initial: S
  /** Processes one event. */
  readonly step: (state: S, event: E, stored: StoredEvent) => Effect.Effect<S, Err, R>
  /** The same step as a pure function, when it is one (folds): the runner's fast path. */
  readonly pure: ((state: S, event: E, stored: StoredEvent) => S) | undefined
  /** Clears the read model, before a rebuild replays everything. */
  readonly reset: Effect.Effect<void, Err, R>
  /**
   * Durable projections (`make`) load and save checkpoints and take the projection lock;
   * in-memory folds (`fold`) replay from the start on every run and take no lock.
   */
  readonly durable: boolean
  /** Set for transactional projections: the checkpoint is saved inside it, with each batch. */
  readonly transaction: Transaction<Err, R> | undefined
  readonly checkpoint: CheckpointPolicy
  readonly onFailure: FailurePolicy
  /**
   * Where a projection with no checkpoint starts: `"start"` (default) or `"end"` (new events
   * only). A rebuild goes back here: to the beginning, or to the head at the time of the rebuild.
   */
  readonly startFrom: "start" | "end"
}

/**
 * Settings every kind of projection shares.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event, Projection } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * // What every projection states, shared by two of them.
 * const deposits: Projection.CommonOptions<typeof Deposited.Type> = {
 *   name: "deposits",
 *   events: Event.catalog(Deposited),
 *   filter: { streamPrefix: "account-" },
 *   onFailure: Projection.skip
 * }
 * const count = Projection.fold({ ...deposits, initial: 0, apply: (n) => n + 1 })
 * const total = Projection.fold({ ...deposits, name: "deposit-total", initial: 0, apply: (sum, event) => sum + event.amount })
 * ```
 * @since 0.1.0
 */
export interface CommonOptions<E extends Event.Tagged> {
  readonly name: string
  readonly events: Event.Catalog<E>
  readonly filter?: Omit<EventStore.EventFilter, "eventTypes"> | undefined
  readonly onFailure?: FailurePolicy | undefined
  readonly checkpoint?: Partial<CheckpointPolicy> | undefined
  readonly startFrom?: "start" | "end" | undefined
}

const checkpointPolicy = (policy: Partial<CheckpointPolicy> | undefined): CheckpointPolicy => ({
  everyEvents: Math.max(1, policy?.everyEvents ?? defaultCheckpointPolicy.everyEvents),
  every: policy?.every ?? defaultCheckpointPolicy.every
})

/**
 * A durable projection: an Effect per event (write a row, send a message, call a service),
 * with checkpoints in the `CheckpointStore`. Effects run at least once: make them idempotent
 * (upserts keyed by event id or stream version), or use `PostgresProjection.transactional`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Event, Projection } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const totals = new Map<string, number>()
 *
 * const Totals = Projection.make({
 *   name: "totals",
 *   events: Event.catalog(Deposited),
 *   handle: (event, stored) =>
 *     Effect.sync(() => totals.set(`${stored.streamId}@${stored.streamVersion}`, event.amount)), // idempotent
 *   reset: Effect.sync(() => totals.clear()),
 *   onFailure: Projection.skip
 * })
 * ```
 * @since 0.1.0
 */
export const make = <E extends Event.Tagged, Err = never, R = never>(
  options: CommonOptions<E> & {
    readonly handle: (event: E, stored: StoredEvent) => Effect.Effect<void, Err, R>
    readonly reset?: Effect.Effect<void, Err, R> | undefined
    readonly transaction?: Transaction<Err, R> | undefined
  }
): Projection<E, void, Err, R> => ({
  _tag: "eventcore/Projection",
  name: options.name,
  events: options.events,
  filter: options.filter,
  initial: undefined,
  step: (_, event, stored) => options.handle(event, stored),
  pure: undefined,
  reset: options.reset ?? Effect.void,
  durable: true,
  transaction: options.transaction,
  checkpoint: checkpointPolicy(options.checkpoint),
  onFailure: options.onFailure ?? failFast,
  startFrom: options.startFrom ?? "start"
})

/**
 * An in-memory read model: a pure fold of the events into state, which the runner exposes
 * as a `SubscriptionRef`. It replays from the start each time it runs (no checkpoint, no lock).
 *
 * @example
 * ```ts
 * import { Effect, Schema, SubscriptionRef } from "effect"
 * import { Event, Projection, ProjectionRunner } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const Total = Projection.fold({
 *   name: "total",
 *   events: Event.catalog(Deposited),
 *   initial: 0,
 *   apply: (total, event) => total + event.amount
 * })
 * const current = Effect.scoped(
 *   Effect.flatMap(ProjectionRunner.start(Total), (runner) => SubscriptionRef.get(runner.state))
 * )
 * ```
 * @since 0.1.0
 */
export const fold = <E extends Event.Tagged, S>(
  options: CommonOptions<E> & {
    readonly initial: S
    readonly apply: (state: S, event: E, stored: StoredEvent) => S
  }
): Projection<E, S, never, never> => ({
  _tag: "eventcore/Projection",
  name: options.name,
  events: options.events,
  filter: options.filter,
  initial: options.initial,
  step: (state, event, stored) => Effect.sync(() => options.apply(state, event, stored)),
  pure: options.apply,
  reset: Effect.void,
  durable: false,
  transaction: undefined,
  checkpoint: checkpointPolicy(options.checkpoint),
  onFailure: options.onFailure ?? failFast,
  startFrom: options.startFrom ?? "start"
})
