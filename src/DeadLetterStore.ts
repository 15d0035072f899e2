/**
 * Dead letters: events a projection could not process and skipped, with the error, so a
 * person can look at them, fix the cause, and replay (rebuild) when ready.
 *
 * Backends: `MemoryDeadLetterStore` (`eventcore/memory`), `PostgresDeadLetterStore`
 * (`eventcore/postgres`, the `dead_letters` table).
 *
 * @since 0.1.0
 */
import { Context, type DateTime, Effect } from "effect"
import type { EventStoreError } from "./Errors.ts"
import type { Position } from "./Position.ts"

/**
 * One skipped event.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeadLetterStore } from "eventcore"
 *
 * const line = (letter: DeadLetterStore.DeadLetter) =>
 *   `${letter.projection}: ${letter.type} ${letter.eventId} (${letter.streamId} v${letter.streamVersion}) ` +
 *   `after ${letter.attempts} attempts: ${letter.error}`
 *
 * const report = Effect.map(DeadLetterStore.list("balances"), (letters) => letters.map(line))
 * ```
 * @since 0.1.0
 */
export interface DeadLetter {
  /** The projection that skipped it. */
  readonly projection: string
  readonly eventId: string
  readonly streamId: string
  readonly streamVersion: number
  readonly position: Position
  readonly type: string
  /** The error, rendered for a person (the failure's message, or the cause pretty-printed). */
  readonly error: string
  /** How many times processing was attempted (retries included). */
  readonly attempts: number
  readonly recordedAt: DateTime.Utc
}

/**
 * The dead-letter service. Recording is idempotent per (projection, event): recording the
 * same event again (a redelivery after a crash) replaces the earlier record.
 *
 * @example
 * ```ts
 * import { DeadLetterStore } from "eventcore"
 *
 * const poison = DeadLetterStore.list("balances")
 * ```
 * @since 0.1.0
 */
export class DeadLetterStore extends Context.Service<DeadLetterStore, {
  readonly record: (letter: DeadLetter) => Effect.Effect<void, EventStoreError>
  /** The dead letters of one projection (all projections when omitted), in global order. */
  readonly list: (projection?: string) => Effect.Effect<ReadonlyArray<DeadLetter>, EventStoreError>
  /** Forgets the dead letters of one projection (after a fix and a rebuild). */
  readonly clear: (projection: string) => Effect.Effect<void, EventStoreError>
  /**
   * Forgets one dead letter: the operator accepts that the projection skips that event for
   * good. True when there was one to forget.
   *
   * Added in 0.3.0: a custom implementation of this service must add it.
   *
   * @since 0.3.0
   */
  readonly discard: (projection: string, eventId: string) => Effect.Effect<boolean, EventStoreError>
  /**
   * How many dead letters each projection has (projections without any are absent), counted
   * by the store without loading them: what a health check reads on every probe.
   *
   * Added in 0.3.0: a custom implementation of this service must add it.
   *
   * @since 0.3.0
   */
  readonly counts: Effect.Effect<Readonly<Record<string, number>>, EventStoreError>
}>()("eventcore/DeadLetterStore") {}

/**
 * The dead letters recorded for a projection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeadLetterStore } from "eventcore"
 *
 * const report = Effect.flatMap(DeadLetterStore.list("balances"), (letters) =>
 *   Effect.forEach(letters, (l) => Effect.log(`${l.streamId}@${l.streamVersion} (${l.type}): ${l.error}`)))
 * ```
 * @since 0.1.0
 */
export const list = (projection?: string): Effect.Effect<ReadonlyArray<DeadLetter>, EventStoreError, DeadLetterStore> =>
  DeadLetterStore.use((store) => store.list(projection))

/**
 * Forgets one dead letter (the projection skips that event for good); true when there was
 * one. To process skipped events after a fix instead, rebuild the projection (ADR 16).
 *
 * @example
 * ```ts
 * import { DeadLetterStore } from "eventcore"
 *
 * const forgotten = DeadLetterStore.discard("balances", "01890a5d-ac96-774b-bcce-b302099a8057")
 * ```
 * @since 0.3.0
 */
export const discard = (
  projection: string,
  eventId: string
): Effect.Effect<boolean, EventStoreError, DeadLetterStore> =>
  DeadLetterStore.use((store) => store.discard(projection, eventId))

/**
 * How many dead letters each projection has (projections without any are absent), without
 * loading them.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeadLetterStore } from "eventcore"
 *
 * const total = Effect.map(DeadLetterStore.counts, (byProjection) =>
 *   Object.values(byProjection).reduce((sum, n) => sum + n, 0))
 * ```
 * @since 0.3.0
 */
export const counts: Effect.Effect<Readonly<Record<string, number>>, EventStoreError, DeadLetterStore> = DeadLetterStore
  .use((store) => store.counts)
