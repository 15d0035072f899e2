/**
 * The event store service: what every backend (memory, PostgreSQL, yours) implements, and
 * the stream-shaped reads built on it.
 *
 * @since 0.1.0
 */
import { Context, Effect, Option, Stream } from "effect"
import { type ConcurrencyConflict, type EventStoreError, InvalidInput } from "./Errors.ts"
import type { EventId } from "./EventId.ts"
import type { Metadata } from "./Metadata.ts"
import * as Position from "./Position.ts"
import type { StoredEvent } from "./StoredEvent.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * The version a stream must still have for an append to commit: the number of events read
 * (0 for a stream that does not exist), or `"any"` to skip the check.
 *
 * @since 0.1.0
 */
export type ExpectedVersion = number | "any"

/**
 * One stream of an append's consistency boundary.
 *
 * @since 0.1.0
 */
export interface StreamExpectation {
  readonly streamId: StreamId
  readonly expected: ExpectedVersion
}

/**
 * An event ready to be appended: encoded, identified, with its metadata.
 *
 * @since 0.1.0
 */
export interface EventToAppend {
  readonly streamId: StreamId
  readonly eventId: EventId
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
  readonly metadata: Metadata
}

/**
 * An atomic append. `streams` is the whole boundary: every stream the decision read, written
 * or not, each with the version read. The append commits all events or none, and only if
 * every stream still has its expected version. Each event's stream must be in `streams`.
 *
 * @since 0.1.0
 */
export interface AppendRequest {
  readonly streams: ReadonlyArray<StreamExpectation>
  readonly events: ReadonlyArray<EventToAppend>
}

/**
 * Where an appended event landed.
 *
 * @since 0.1.0
 */
export interface Committed {
  readonly eventId: EventId
  readonly streamId: StreamId
  readonly streamVersion: number
  readonly position: Position.Position
}

/**
 * The outcome of an append: each event's place, and the version every stream of the
 * boundary has after the commit.
 *
 * @since 0.1.0
 */
export interface AppendResult {
  readonly events: ReadonlyArray<Committed>
  readonly versions: ReadonlyArray<{ readonly streamId: StreamId; readonly version: number }>
}

/**
 * A stream as read: its version and all its events in order.
 *
 * @since 0.1.0
 */
export interface StreamRead {
  readonly streamId: StreamId
  readonly version: number
  readonly events: ReadonlyArray<StoredEvent>
}

/**
 * Which events a global read wants. Every given condition must hold; within a list, any entry
 * may match. An empty filter matches everything.
 *
 * @since 0.1.0
 */
export interface EventFilter {
  readonly streamIds?: ReadonlyArray<StreamId>
  /** Streams whose id starts with this prefix (a category such as `"account-"`). */
  readonly streamPrefix?: string
  readonly eventTypes?: ReadonlyArray<string>
}

/**
 * One page of a global read.
 *
 * @since 0.1.0
 */
export interface Page {
  /** Matching events after `after`, in global order. */
  readonly events: ReadonlyArray<StoredEvent>
  /** Where the next page starts: the last position this read looked at (matching or not). */
  readonly next: Position.Position
  /** True when the read reached the end of what is visible now. */
  readonly end: boolean
}

/**
 * What an append can fail with.
 *
 * @since 0.1.0
 */
export type AppendError = ConcurrencyConflict | EventStoreError | InvalidInput

/**
 * What a read can fail with.
 *
 * @since 0.1.0
 */
export type ReadError = EventStoreError

/**
 * The service every backend implements.
 *
 * Global reads only ever return events of committed transactions, in an order no later commit
 * can insert into: a reader that continues after a page's `next` never misses an event.
 *
 * @example
 * ```ts
 * import { EventStore, Position } from "eventcore"
 *
 * const firstPage = EventStore.EventStore.use((store) => store.readPage({ after: Position.initial, limit: 100 }))
 * ```
 * @since 0.1.0
 */
export class EventStore extends Context.Service<EventStore, {
  /** Reads several streams in one call, each whole, in the order asked. */
  readonly readStreams: (
    streamIds: ReadonlyArray<StreamId>
  ) => Effect.Effect<ReadonlyArray<StreamRead>, EventStoreError>
  /** Appends atomically, checking every stream of the boundary. */
  readonly append: (
    request: AppendRequest
  ) => Effect.Effect<AppendResult, ConcurrencyConflict | EventStoreError | InvalidInput>
  /** Reads one page of the global order after a position. */
  readonly readPage: (options: {
    readonly after: Position.Position
    readonly filter?: EventFilter | undefined
    readonly limit: number
  }) => Effect.Effect<Page, EventStoreError>
  /** The position of the last visible event (`Position.initial` when there is none). */
  readonly head: Effect.Effect<Position.Position, EventStoreError>
  /**
   * Completes when events after `after` may be visible: at once if they are, else on the next
   * commit (or, for stores that poll, after their polling interval). May complete spuriously;
   * callers read again.
   */
  readonly awaitAppend: (after: Position.Position) => Effect.Effect<void, EventStoreError>
}>()("eventcore/EventStore") {}

/**
 * The default page size of global reads.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * const everything = EventStore.readAll({ pageSize: EventStore.defaultPageSize * 10 })
 * ```
 * @since 0.1.0
 */
export const defaultPageSize = 1_000

/**
 * Reads the global order after a position up to what is visible now, page by page, as a
 * finite stream.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { EventStore } from "eventcore"
 *
 * const deposits = EventStore.readAll({ filter: { eventTypes: ["MoneyDeposited"] } }).pipe(Stream.runCollect)
 * ```
 * @since 0.1.0
 */
export const readAll = (options?: {
  readonly after?: Position.Position | undefined
  readonly filter?: EventFilter | undefined
  readonly pageSize?: number | undefined
}): Stream.Stream<StoredEvent, EventStoreError, EventStore> =>
  Stream.unwrap(EventStore.useSync((store) =>
    Stream.paginate(options?.after ?? Position.initial, (after) =>
      Effect.map(
        store.readPage({ after, filter: options?.filter, limit: options?.pageSize ?? defaultPageSize }),
        (page) => [page.events, page.end ? Option.none() : Option.some(page.next)] as const
      ))
  ))

/**
 * Reads one stream whole.
 *
 * @example
 * ```ts
 * import { EventStore, StreamId } from "eventcore"
 *
 * const history = EventStore.readStream(StreamId.makeUnsafe("account-1"))
 * ```
 * @since 0.1.0
 */
export const readStream = (streamId: StreamId): Effect.Effect<StreamRead, EventStoreError, EventStore> =>
  EventStore.use((store) =>
    Effect.map(store.readStreams([streamId]), (reads) => reads[0] ?? { streamId, version: 0, events: [] })
  )

/**
 * Appends atomically through the current store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventId, EventStore, StreamId } from "eventcore"
 *
 * const streamId = StreamId.makeUnsafe("account-1")
 * const metadata = { correlationId: "req-1", causationId: "req-1", custom: {} }
 * const opened = Effect.flatMap(EventId.make, (eventId) =>
 *   EventStore.append({
 *     streams: [{ streamId, expected: 0 }], // the stream must still be empty
 *     events: [{ streamId, eventId, type: "AccountOpened", schemaVersion: 1, payload: { owner: "ann" }, metadata }]
 *   }))
 * ```
 * @since 0.1.0
 */
export const append = (
  request: AppendRequest
): Effect.Effect<AppendResult, ConcurrencyConflict | EventStoreError | InvalidInput, EventStore> =>
  EventStore.use((store) => store.append(request))

/**
 * Checks an append request the way every store must: expected versions are non-negative
 * integers or "any", no stream appears twice in the boundary, every event's stream is in the
 * boundary, and no event id appears twice. Stores call it before touching anything, so a bad
 * request writes nothing and fails the same way on every backend.
 *
 * @example
 * ```ts
 * import { EventStore, StreamId } from "eventcore"
 *
 * const account = StreamId.makeUnsafe("account-1")
 * EventStore.validateAppend({
 *   streams: [{ streamId: account, expected: 0 }, { streamId: account, expected: 1 }],
 *   events: []
 * }) // InvalidInput: stream "account-1" appears twice in the boundary
 * ```
 * @since 0.1.0
 */
export const validateAppend = (request: AppendRequest): InvalidInput | undefined => {
  const { events, streams } = request
  const invalid = (path: ReadonlyArray<string | number>, issue: string) =>
    new InvalidInput({ subject: "append request", path, issue })
  for (let i = 0; i < streams.length; i++) {
    const { expected, streamId } = streams[i] as StreamExpectation
    if (expected !== "any" && !(Number.isSafeInteger(expected) && expected >= 0)) {
      return invalid(
        ["streams", i, "expected"],
        `expected version must be a non-negative integer or "any", got ${expected}`
      )
    }
    for (let j = 0; j < i; j++) {
      if ((streams[j] as StreamExpectation).streamId === streamId) {
        return invalid(["streams", i, "streamId"], `stream ${JSON.stringify(streamId)} appears twice in the boundary`)
      }
    }
  }
  // Boundaries are small: a linear scan beats building a set. Batches can be large: past a few
  // events, duplicate ids are found with a set rather than by comparing every pair.
  const ids = events.length > 8 ? new Set<string>() : undefined
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as EventToAppend
    if (!streams.some((s) => s.streamId === event.streamId)) {
      return invalid(
        ["events", i, "streamId"],
        `stream ${JSON.stringify(event.streamId)} is not in the request's boundary`
      )
    }
    const duplicate = ids === undefined
      ? events.slice(0, i).some((e) => e.eventId === event.eventId)
      : ids.size === ids.add(event.eventId).size
    if (duplicate) return invalid(["events", i, "eventId"], `event id ${event.eventId} appears twice in the request`)
  }
  return undefined
}

/**
 * Whether a stored event matches a filter. Stores that filter in memory use this, so every
 * backend means the same thing by a filter.
 *
 * @example
 * ```ts
 * import { EventStore, type StoredEvent } from "eventcore"
 *
 * const deposits = (events: ReadonlyArray<StoredEvent.StoredEvent>) =>
 *   events.filter((event) => EventStore.matches({ streamPrefix: "account-", eventTypes: ["Deposited"] }, event))
 * ```
 * @since 0.1.0
 */
export const matches = (filter: EventFilter | undefined, event: StoredEvent): boolean => {
  if (filter === undefined) return true
  if (filter.streamIds !== undefined && !filter.streamIds.includes(event.streamId)) return false
  if (filter.streamPrefix !== undefined && !event.streamId.startsWith(filter.streamPrefix)) return false
  if (filter.eventTypes !== undefined && !filter.eventTypes.includes(event.type)) return false
  return true
}
