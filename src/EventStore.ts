/**
 * The event store service: what every backend (memory, PostgreSQL, yours) implements, and
 * the stream-shaped reads built on it.
 *
 * @since 0.1.0
 */
import { Context, type DateTime, Effect, Option, Stream } from "effect"
import {
  type ConcurrencyConflict,
  type EventStoreError,
  InvalidInput,
  type TransactionAlreadyWritten
} from "./Errors.ts"
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
 * Records an append under an idempotency key. While a record of the key is kept (recorded at
 * or after `notBefore`), another append with the key writes nothing and returns what the
 * first one returned (`replayed: true`) — or fails with `InvalidInput` when its fingerprint
 * differs (the key was reused for another request). The record is written atomically with
 * the append; an expired one is replaced.
 *
 * @since 0.2.0
 */
export interface IdempotencyClaim {
  readonly key: string
  /** What the key stands for (the executor uses the command's name and input). */
  readonly fingerprint: string
  /** Records made before this instant (epoch milliseconds) have expired. */
  readonly notBefore: number
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
  /** Makes the append idempotent under a key (see `IdempotencyClaim`). */
  readonly idempotency?: IdempotencyClaim | undefined
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
  /** The event's type name. */
  readonly type: string
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
  /**
   * True when the request's idempotency key was already recorded: nothing was written, and
   * this is what the first append with that key returned.
   */
  readonly replayed: boolean
}

/**
 * What is recorded under an idempotency key.
 *
 * @since 0.2.0
 */
export interface IdempotencyRecord {
  readonly fingerprint: string
  /** What the append that recorded the key returned (with `replayed: true`). */
  readonly result: AppendResult
}

/**
 * The session or prepared transaction holding the read horizon back: the oldest transaction
 * still running in the database cluster (in any database). Fields the database would not
 * show this role (another user's session without `pg_read_all_stats`) are undefined.
 *
 * @since 0.2.0
 */
export interface HorizonHolder {
  readonly kind: "session" | "prepared transaction"
  /** Its transaction id. */
  readonly transactionId: string
  readonly pid: number | undefined
  readonly database: string | undefined
  readonly user: string | undefined
  readonly applicationName: string | undefined
  /** `"idle in transaction"`, `"active"`, … (`"prepared"` for a prepared transaction). */
  readonly state: string | undefined
  /** When its transaction began (or was prepared). */
  readonly since: DateTime.Utc | undefined
  /** The start of its current or last statement. */
  readonly query: string | undefined
}

/**
 * Where the read horizon stands. Global reads (`readPage`, `readAll`, subscriptions,
 * projections) see an event only once every transaction that could still commit before it in
 * the global order has ended; in PostgreSQL that is every transaction older than the event's,
 * in any database of the cluster. A session left idle in a transaction therefore stalls
 * every global reader, however unrelated its work: this says so, and who it is.
 *
 * @since 0.2.0
 */
export interface Horizon {
  /** The last event global readers can see (`Position.initial` when none). */
  readonly visible: Position.Position
  /** The last committed event, visible or not (`Position.initial` when none). */
  readonly committed: Position.Position
  /** Committed events (matching the filter asked for) global readers cannot see yet, counted up to the cap. */
  readonly pending: number
  /** True when there are at least `pending` (the count stopped at the cap). */
  readonly pendingCapped: boolean
  /** How long the oldest pending event has waited since it was recorded; 0 when none waits. */
  readonly pendingMillis: number
  /** How many transaction ids the horizon trails the newest commit by; 0 when nothing waits. */
  readonly trailingTransactions: number
  /** Who holds the horizon back, when events wait behind it and the database says. */
  readonly heldBy: HorizonHolder | undefined
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
export type AppendError = ConcurrencyConflict | EventStoreError | InvalidInput | TransactionAlreadyWritten

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
  readonly append: (request: AppendRequest) => Effect.Effect<AppendResult, AppendError>
  /** Reads one page of the global order after a position. */
  readonly readPage: (options: {
    readonly after: Position.Position
    readonly filter?: EventFilter | undefined
    readonly limit: number
  }) => Effect.Effect<Page, EventStoreError>
  /**
   * The position of the last event visible to global readers (`Position.initial` when there
   * is none). An event just committed may not be visible yet (see `Horizon`); wait for it with
   * `awaitVisible`.
   */
  readonly head: Effect.Effect<Position.Position, EventStoreError>
  /**
   * Completes when events after `after` may be visible: at once if they are, else on the next
   * commit (or, for stores that poll, after their polling interval). May complete spuriously;
   * callers read again.
   */
  readonly awaitAppend: (after: Position.Position) => Effect.Effect<void, EventStoreError>
  /** The record of an idempotency key made at or after `notBefore` (epoch milliseconds), if any. */
  readonly readIdempotencyKey: (
    key: string,
    notBefore: number
  ) => Effect.Effect<IdempotencyRecord | undefined, EventStoreError>
  /**
   * Where the read horizon stands: how far global readers trail the last commit, and who
   * holds them back. `filter` narrows what `pending` counts; `cap` bounds the count (default
   * 10,000).
   */
  readonly horizon: (options?: {
    readonly filter?: EventFilter | undefined
    readonly cap?: number | undefined
  }) => Effect.Effect<Horizon, EventStoreError>
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
 * "Visible" is the read horizon's (see `Horizon`): in PostgreSQL, events of a transaction
 * that committed while an older one is still open somewhere in the cluster are not read yet,
 * so right after `CommandExecutor.execute` returns its events may not be there. To read your
 * own writes, first `awaitVisible(result.position)`.
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
 * Completes once global readers (`readAll`, `readPage`, `head`, subscriptions) can see the
 * event at `position` and everything before it — at once on the memory store; in PostgreSQL
 * when every transaction that could still commit before it has ended. For reading your own
 * writes: `awaitVisible(result.position)` after `CommandExecutor.execute`. It waits as long as
 * the horizon is held (see `Horizon`): bound it with `Effect.timeout` where that matters.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { type Command, CommandExecutor, EventStore } from "eventcore"
 *
 * declare const Deposit: Command.Any // a command of your domain
 *
 * const depositAndList = Effect.gen(function*() {
 *   const result = yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 10 })
 *   if (result.position !== undefined) yield* EventStore.awaitVisible(result.position)
 *   return yield* Stream.runCollect(EventStore.readAll()) // includes the deposit
 * })
 * ```
 * @since 0.2.0
 */
export const awaitVisible = (position: Position.Position): Effect.Effect<void, EventStoreError, EventStore> =>
  EventStore.use((store) =>
    Effect.gen(function*() {
      while (true) {
        const head = yield* store.head
        if (!Position.isAfter(position, head)) return
        yield* store.awaitAppend(head)
      }
    })
  )

/**
 * Where the read horizon stands in the current store (see `Horizon`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 *
 * const report = Effect.flatMap(EventStore.horizon(), (h) =>
 *   h.heldBy === undefined
 *     ? Effect.log(`${h.pending} events wait`)
 *     : Effect.logWarning(`${h.pending} events wait for pid ${h.heldBy.pid} (${h.heldBy.state})`))
 * ```
 * @since 0.2.0
 */
export const horizon = (options?: {
  readonly filter?: EventFilter | undefined
  readonly cap?: number | undefined
}): Effect.Effect<Horizon, EventStoreError, EventStore> => EventStore.use((store) => store.horizon(options))

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
export const append = (request: AppendRequest): Effect.Effect<AppendResult, AppendError, EventStore> =>
  EventStore.use((store) => store.append(request))

/**
 * The most streams one append's boundary may hold unless a store is configured otherwise.
 * PostgreSQL locks every stream of a boundary, and its lock table is shared by the whole
 * server (`max_locks_per_transaction` × connections, 6,400 by default): a boundary of tens of
 * thousands of streams fails there, so every store refuses it up front.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * EventStore.defaultMaxBoundary // 1000
 * ```
 * @since 0.2.0
 */
export const defaultMaxBoundary = 1_000

/**
 * Checks an append request the way every store must: the boundary holds at most
 * `maxBoundary` streams (default `defaultMaxBoundary`), expected versions are non-negative
 * integers or "any", no stream appears twice in the boundary, every event's stream is in the
 * boundary, and no event id appears twice. Stores call it before touching anything, so a bad
 * request writes nothing and fails the same way on every backend. Linear in the request's
 * size.
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
export const validateAppend = (
  request: AppendRequest,
  options?: { readonly maxBoundary?: number | undefined }
): InvalidInput | undefined => {
  const { events, streams } = request
  const invalid = (path: ReadonlyArray<string | number>, issue: string) =>
    new InvalidInput({ subject: "append request", path, issue })
  const maxBoundary = options?.maxBoundary ?? defaultMaxBoundary
  if (streams.length > maxBoundary) {
    return invalid(
      ["streams"],
      `the boundary holds ${streams.length} streams; this store accepts at most ${maxBoundary} (its maxBoundary option)`
    )
  }
  // Small requests, the common case, are checked by scanning; past a few entries, with sets,
  // so that no request costs more than linear time.
  const boundary = streams.length > 8 ? new Set<string>() : undefined
  for (let i = 0; i < streams.length; i++) {
    const { expected, streamId } = streams[i] as StreamExpectation
    if (expected !== "any" && !(Number.isSafeInteger(expected) && expected >= 0)) {
      return invalid(
        ["streams", i, "expected"],
        `expected version must be a non-negative integer or "any", got ${expected}`
      )
    }
    const twice = boundary === undefined
      ? streams.slice(0, i).some((s) => s.streamId === streamId)
      : boundary.size === boundary.add(streamId).size
    if (twice) {
      return invalid(["streams", i, "streamId"], `stream ${JSON.stringify(streamId)} appears twice in the boundary`)
    }
  }
  const ids = events.length > 8 ? new Set<string>() : undefined
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as EventToAppend
    const inBoundary = boundary === undefined
      ? streams.some((s) => s.streamId === event.streamId)
      : boundary.has(event.streamId)
    if (!inBoundary) {
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
 * The error every store fails with when an idempotency key that is still recorded comes with
 * another request (another fingerprint): the caller reused a key for something else.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * EventStore.idempotencyKeyReused("order-7/pay").message
 * // 'Invalid idempotency key: "order-7/pay" was already used for another request ...'
 * ```
 * @since 0.2.0
 */
export const idempotencyKeyReused = (key: string): InvalidInput =>
  new InvalidInput({
    subject: "idempotency key",
    path: [],
    issue: `${
      JSON.stringify(key)
    } was already used for another request (another command or input); a new request needs a new key`
  })

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
