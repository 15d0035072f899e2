/**
 * An event as the store holds it: its payload still encoded, so each reader decodes it with
 * its own schema.
 *
 * @since 0.1.0
 */
import type { DateTime } from "effect"
import type { EventId } from "./EventId.ts"
import type { Metadata } from "./Metadata.ts"
import type { Position } from "./Position.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * A committed event.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { EventStore, type StoredEvent } from "eventcore"
 *
 * const types = EventStore.readAll().pipe(Stream.map((event: StoredEvent.StoredEvent) => event.type))
 * ```
 * @since 0.1.0
 */
export interface StoredEvent {
  readonly eventId: EventId
  readonly streamId: StreamId
  /** 1 for a stream's first event. */
  readonly streamVersion: number
  readonly position: Position
  /** The event's tag. */
  readonly type: string
  /** The version of the event's schema it was written with. */
  readonly schemaVersion: number
  /** The encoded payload (JSON). */
  readonly payload: unknown
  readonly metadata: Metadata
  readonly recordedAt: DateTime.Utc
}

/**
 * A store whose stored events keep their identity across reads (the memory store) gives each
 * one a memo cell under this key, so a catalog decodes each event once instead of on every
 * read. Events are immutable, so the memo is never stale; the cell holds the last catalog's
 * result only, which is all a fold needs.
 *
 * @example
 * ```ts
 * import { StoredEvent } from "eventcore"
 *
 * const keepsIdentity = (event: StoredEvent.StoredEvent) => StoredEvent.DecodeMemo in event
 * ```
 * @since 0.1.0
 */
export const DecodeMemo: unique symbol = Symbol.for("eventcore/StoredEvent/DecodeMemo")

/**
 * The memo cell a store may attach under `DecodeMemo`.
 *
 * @example
 * ```ts
 * import { StoredEvent } from "eventcore"
 *
 * // Whether a catalog has decoded this event and kept the result (the last decoder owns the cell).
 * const decodedOnce = (event: StoredEvent.StoredEvent) => {
 *   const memo: StoredEvent.Memo | undefined = StoredEvent.memoOf(event)
 *   return memo !== undefined && memo.owner !== undefined
 * }
 * ```
 * @since 0.1.0
 */
export interface Memo {
  owner: unknown
  result: unknown
}

/**
 * Attaches an empty memo cell to a stored event, for stores that keep event identity.
 *
 * @example
 * ```ts
 * import { StoredEvent } from "eventcore"
 *
 * // In a store that keeps its events in memory, before keeping one:
 * const keep = (event: StoredEvent.StoredEvent) => Object.freeze(StoredEvent.withMemo(event))
 * ```
 * @since 0.1.0
 */
export const withMemo = <A extends StoredEvent>(event: A): A => {
  Object.defineProperty(event, DecodeMemo, { value: { owner: undefined, result: undefined } satisfies Memo })
  return event
}

/**
 * The memo cell of a stored event, when its store attached one.
 *
 * @example
 * ```ts
 * import { StoredEvent } from "eventcore"
 *
 * const lastDecoded = (event: StoredEvent.StoredEvent) => StoredEvent.memoOf(event)?.result // undefined: no memo
 * ```
 * @since 0.1.0
 */
export const memoOf = (event: StoredEvent): Memo | undefined => (event as { readonly [DecodeMemo]?: Memo })[DecodeMemo]
