/**
 * Turning `events` rows into `StoredEvent`s.
 *
 * Payloads come back exactly as stored (decoding them is the reader's schema's job, which
 * reports `EventDecodeError`). Metadata is written only by this store and rows are immutable,
 * so it is checked only for its shape: a row whose metadata is not a metadata object (someone
 * wrote to the table by hand) fails the read with an `EventStoreError` whose cause is an
 * `EventDecodeError` naming the row, rather than handing the core a value that lies about its
 * type or skipping the event.
 *
 * @internal
 */
import { DateTime, Result, type Schema } from "effect"
import { EventDecodeError, EventStoreError } from "../Errors.ts"
import type { EventId } from "../EventId.ts"
import type { Metadata } from "../Metadata.ts"
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

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const isMetadata = (u: unknown): u is Metadata =>
  isRecord(u) && typeof u["correlationId"] === "string" && typeof u["causationId"] === "string" &&
  isRecord(u["custom"]) && (u["userId"] === undefined || typeof u["userId"] === "string")

/**
 * Converts one row, or returns the error that names it.
 */
export const toStoredEvent = (
  row: EventRow,
  operation: string,
  serializer: Serializer.Serializer
): StoredEvent | EventStoreError => {
  const unreadable = (reason: string) =>
    new EventStoreError({
      operation,
      transient: false,
      cause: new EventDecodeError({
        streamId: row.stream_id,
        streamVersion: Number(row.stream_version),
        type: row.type,
        schemaVersion: row.schema_version,
        reason
      })
    })
  if (!isMetadata(row.metadata)) {
    return unreadable(`stored metadata is not an EventCore metadata object: ${JSON.stringify(row.metadata)}`)
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
