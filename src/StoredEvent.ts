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
