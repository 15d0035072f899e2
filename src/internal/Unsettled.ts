/**
 * Appends whose outcome is unknown: they failed with a transient error, and may have committed
 * (the acknowledgement was lost) or may still commit (the request is in flight). The attempts
 * after one read their boundary first, then look here for its events in what they read
 * (ADR 9).
 *
 * @internal
 */
import type * as EventStore from "../EventStore.ts"
import type { StreamId } from "../StreamId.ts"
import type * as Attempt from "./Attempt.ts"

/**
 * Whether an unsettled append committed, judged from streams read *after* its failure: its
 * events are there (it committed: this is its outcome), or they are not (it had not committed
 * when they were read, so it expected versions those reads have seen pass, or will fail
 * against the versions this attempt expects; at most one of the two can commit).
 */
export const outcomeOf = (
  request: EventStore.AppendRequest,
  reads: ReadonlyMap<StreamId, EventStore.StreamRead>
): Attempt.Outcome | undefined => {
  const first = request.events[0]
  if (first === undefined) return undefined
  const stored = reads.get(first.streamId)?.events.find((e) => e.eventId === first.eventId)
  if (stored === undefined) return undefined
  const byId = new Map<string, EventStore.Committed>()
  for (const { streamId } of request.streams) {
    for (const event of reads.get(streamId)?.events ?? []) byId.set(event.eventId, event)
  }
  const events: Array<EventStore.Committed> = []
  const written = new Map<StreamId, number>()
  for (const event of request.events) {
    const found = byId.get(event.eventId)
    // An append is atomic: its events are all there or none is. Anything else is a broken store.
    if (found === undefined) return undefined
    events.push({
      eventId: found.eventId,
      streamId: found.streamId,
      streamVersion: found.streamVersion,
      position: found.position,
      type: found.type
    })
    written.set(found.streamId, found.streamVersion)
  }
  return {
    events,
    versions: request.streams.map(({ expected, streamId }) => ({
      streamId,
      version: written.get(streamId) ?? (typeof expected === "number" ? expected : 0)
    })),
    replayed: false
  }
}

/** The outcome of the first unsettled append whose events are in `reads`, if any. */
export const committed = (
  unsettled: ReadonlyArray<EventStore.AppendRequest>,
  reads: ReadonlyMap<StreamId, EventStore.StreamRead>
): Attempt.Outcome | undefined => {
  for (const request of unsettled) {
    const outcome = outcomeOf(request, reads)
    if (outcome !== undefined) return outcome
  }
  return undefined
}

/** Streams the unsettled appends wrote that are not in `reads` yet. */
export const unreadStreams = (
  unsettled: ReadonlyArray<EventStore.AppendRequest>,
  reads: ReadonlyMap<StreamId, EventStore.StreamRead>
): Array<StreamId> => {
  const unread: Array<StreamId> = []
  for (const request of unsettled) {
    for (const { streamId } of request.events) {
      if (!reads.has(streamId) && !unread.includes(streamId)) unread.push(streamId)
    }
  }
  return unread
}
