/**
 * Turning `events` rows into `StoredEvent`s.
 *
 * Payloads come back exactly as stored (decoding them is the reader's schema's job, which
 * reports `EventDecodeError`). Metadata is validated at append, so only a row written by hand
 * (or by a version before 0.2.0, which did not validate it) can hold something else: such a
 * row fails the read with an `EventDecodeError` naming its stream, version and what is wrong —
 * rather than handing the core a value that lies about its type, or skipping the event.
 * docs/operations.md says how to look at and get past such a row.
 *
 * @internal
 */
import { DateTime, Result, type Schema } from "effect"
import { EventDecodeError } from "../Errors.ts"
import type { EventId } from "../EventId.ts"
import * as Metadata from "../Metadata.ts"
import * as Position from "../Position.ts"
import type * as Serializer from "../Serializer.ts"
import type { StoredEvent } from "../StoredEvent.ts"
import type { StreamId } from "../StreamId.ts"

/**
 * The columns every event query selects, in the shape `toStoredEvent` reads.
 * `tx_id` is an `xid8`, which the driver has no binary codec for, so it travels as text.
 */
export const eventColumns =
  "e.tx_id::text as tx_id, e.position, e.event_id, e.stream_id, e.stream_version, e.type, e.schema_version, e.payload, e.metadata, e.recorded_at"

/** A row as the driver decodes it: int8 as bigint, uuid and text as string, jsonb parsed. */
export interface EventRow {
  readonly tx_id: string
  readonly position: bigint
  readonly event_id: string
  readonly stream_id: string
  readonly stream_version: bigint
  readonly type: string
  readonly schema_version: number
  readonly payload: unknown
  readonly metadata: unknown
  readonly recorded_at: Date
}

/**
 * Converts one row, or returns the error that names it.
 */
export const toStoredEvent = (
  row: EventRow,
  serializer: Serializer.Serializer
): StoredEvent | EventDecodeError => {
  const unreadable = (reason: string) =>
    new EventDecodeError({
      streamId: row.stream_id,
      streamVersion: Number(row.stream_version),
      type: row.type,
      schemaVersion: row.schema_version,
      reason
    })
  if (!Metadata.is(row.metadata)) {
    return unreadable(`the stored metadata is not EventCore metadata: ${JSON.stringify(row.metadata)}`)
  }
  const payload = serializer.deserialize(row.payload as Schema.Json)
  if (Result.isFailure(payload)) {
    return unreadable(
      `the ${serializer.name} serializer cannot read the stored payload at ${
        JSON.stringify(payload.failure.path)
      }: ${payload.failure.reason}`
    )
  }
  return {
    eventId: row.event_id as EventId,
    streamId: row.stream_id as StreamId,
    streamVersion: Number(row.stream_version),
    position: Position.make(BigInt(row.tx_id), row.position),
    type: row.type,
    schemaVersion: row.schema_version,
    payload: payload.success,
    metadata: row.metadata,
    recordedAt: DateTime.fromDateUnsafe(row.recorded_at)
  }
}
