/**
 * The event store service: what every backend (memory, PostgreSQL, yours) implements, and
 * the stream-shaped reads built on it.
 *
 * @since 0.1.0
 */
import { Context, type DateTime, Effect, Option, Result, Stream } from "effect"
import {
  type ConcurrencyConflict,
  type EventDecodeError,
  type EventStoreError,
  InvalidInput,
  type TransactionAlreadyWritten
} from "./Errors.ts"
import { typeNameIssue } from "./Event.ts"
import type { EventId } from "./EventId.ts"
import * as Metadata from "./Metadata.ts"
import * as Position from "./Position.ts"
import * as Serializer from "./Serializer.ts"
import * as StorableJson from "./StorableJson.ts"
import type { StoredEvent } from "./StoredEvent.ts"
import * as StreamId from "./StreamId.ts"

/**
 * The version a stream must still have for an append to commit: the number of events read
 * (0 for a stream that does not exist), or `"any"` to skip the check.
 *
 * @example
 * ```ts
 * import type { EventStore, StreamId } from "eventcore"
 *
 * declare const account: StreamId.StreamId
 *
 * const created: EventStore.ExpectedVersion = 0 // the stream must not exist yet
 * const blind: EventStore.StreamExpectation = { streamId: account, expected: "any" } // no check
 * ```
 * @since 0.1.0
 */
export type ExpectedVersion = number | "any"

/**
 * One stream of an append's consistency boundary.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, type StreamId } from "eventcore"
 *
 * declare const account: StreamId.StreamId
 *
 * // The boundary of an append: the stream, at the version read.
 * const boundary = Effect.map(EventStore.readStream(account), (read): EventStore.StreamExpectation => ({
 *   streamId: read.streamId,
 *   expected: read.version
 * }))
 * ```
 * @since 0.1.0
 */
export interface StreamExpectation {
  readonly streamId: StreamId.StreamId
  readonly expected: ExpectedVersion
}

/**
 * An event ready to be appended: encoded, identified, with its metadata.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventId, EventStore, type StreamId } from "eventcore"
 *
 * declare const account: StreamId.StreamId
 *
 * const opened = Effect.gen(function*() {
 *   const event: EventStore.EventToAppend = {
 *     streamId: account,
 *     eventId: yield* EventId.make,
 *     type: "Opened",
 *     schemaVersion: 1,
 *     payload: { _tag: "Opened", owner: "Ada" },
 *     metadata: { correlationId: "import-1", causationId: "import-1", custom: {} }
 *   }
 *   return yield* EventStore.append({ streams: [{ streamId: account, expected: 0 }], events: [event] })
 * })
 * ```
 * @since 0.1.0
 */
export interface EventToAppend {
  readonly streamId: StreamId.StreamId
  readonly eventId: EventId
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
  readonly metadata: Metadata.Metadata
}

/**
 * Records an append under an idempotency key. While a record of the key is kept (recorded at
 * or after `notBefore`), another append with the key writes nothing and returns what the
 * first one returned (`replayed: true`) — or fails with `InvalidInput` when its fingerprint
 * differs (the key was reused for another request). The record is written atomically with
 * the append; an expired one is replaced.
 *
 * @example
 * ```ts
 * import type { EventStore } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 * declare const importId: string
 *
 * // An import that may run twice appends once: records of the key are kept for a day.
 * const once: EventStore.AppendRequest = {
 *   ...request,
 *   idempotency: { key: `import/${importId}`, fingerprint: importId, notBefore: Date.now() - 24 * 60 * 60 * 1000 }
 * }
 * ```
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
 * @example
 * ```ts
 * import { EventStore, type StreamId } from "eventcore"
 *
 * declare const from: StreamId.StreamId
 * declare const to: StreamId.StreamId
 * declare const moved: EventStore.EventToAppend // an event to `to`
 *
 * // Both streams are checked, though only `to` is written: the decision read them both.
 * const request: EventStore.AppendRequest = {
 *   streams: [{ streamId: from, expected: 3 }, { streamId: to, expected: 7 }],
 *   events: [moved]
 * }
 * const appended = EventStore.append(request)
 * ```
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
 * @example
 * ```ts
 * import type { EventStore } from "eventcore"
 *
 * const where = (committed: EventStore.Committed) =>
 *   `${committed.type} ${committed.eventId}: ${committed.streamId} v${committed.streamVersion} at ${committed.position}`
 * ```
 * @since 0.1.0
 */
export interface Committed {
  readonly eventId: EventId
  readonly streamId: StreamId.StreamId
  readonly streamVersion: number
  readonly position: Position.Position
  /** The event's type name. */
  readonly type: string
}

/**
 * The outcome of an append: each event's place, and the version every stream of the
 * boundary has after the commit.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 *
 * const versions = Effect.map(EventStore.append(request), (result: EventStore.AppendResult) =>
 *   result.replayed ? "already appended" : result.versions.map((v) => `${v.streamId}@${v.version}`).join(", ")
 * )
 * ```
 * @since 0.1.0
 */
export interface AppendResult {
  readonly events: ReadonlyArray<Committed>
  readonly versions: ReadonlyArray<{ readonly streamId: StreamId.StreamId; readonly version: number }>
  /**
   * True when the request's idempotency key was already recorded: nothing was written, and
   * this is what the first append with that key returned.
   */
  readonly replayed: boolean
}

/**
 * What is recorded under an idempotency key.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 *
 * // Was this import key used within the last day, and what did it write?
 * const lookup = (key: string) =>
 *   EventStore.EventStore.use((store) => store.readIdempotencyKey(key, Date.now() - 24 * 60 * 60 * 1000)).pipe(
 *     Effect.map((record: EventStore.IdempotencyRecord | undefined) => record?.result.events.length ?? 0)
 *   )
 * ```
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
 * @example
 * ```ts
 * import type { EventStore } from "eventcore"
 *
 * // What an operator needs to find the session (and end it).
 * const describe = (holder: EventStore.HorizonHolder) =>
 *   holder.kind === "prepared transaction"
 *     ? `prepared transaction ${holder.transactionId}`
 *     : `pid ${holder.pid ?? "?"} (${holder.user ?? "?"}@${holder.database ?? "?"}, ${holder.state ?? "?"}): ${holder.query ?? ""}`
 * ```
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
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 *
 * const warning = Effect.map(EventStore.horizon(), (horizon: EventStore.Horizon) =>
 *   horizon.pending === 0
 *     ? undefined
 *     : `${horizon.pending} committed events wait ${horizon.pendingMillis} ms behind pid ${horizon.heldBy?.pid ?? "?"}`
 * )
 * ```
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
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, type StreamId } from "eventcore"
 *
 * declare const account: StreamId.StreamId
 *
 * const history = Effect.map(EventStore.readStream(account), (read: EventStore.StreamRead) =>
 *   read.events.map((event) => `v${event.streamVersion} ${event.type}`)
 * )
 * ```
 * @since 0.1.0
 */
export interface StreamRead {
  readonly streamId: StreamId.StreamId
  readonly version: number
  readonly events: ReadonlyArray<StoredEvent>
}

/**
 * Which events a global read wants. Every given condition must hold; within a list, any entry
 * may match. An empty filter matches everything.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { EventStore } from "eventcore"
 *
 * // Deposits and withdrawals of every account.
 * const filter: EventStore.EventFilter = { streamPrefix: "account-", eventTypes: ["Deposited", "Withdrawn"] }
 * const movements = EventStore.readAll({ filter }).pipe(Stream.runCollect)
 * ```
 * @since 0.1.0
 */
export interface EventFilter {
  readonly streamIds?: ReadonlyArray<StreamId.StreamId>
  /** Streams whose id starts with this prefix (a category such as `"account-"`). */
  readonly streamPrefix?: string
  readonly eventTypes?: ReadonlyArray<string>
}

/**
 * A request for one page of the global order.
 *
 * @example
 * ```ts
 * import { EventStore, Position } from "eventcore"
 *
 * const request: EventStore.PageRequest = { after: Position.initial, filter: { streamPrefix: "account-" }, limit: 500 }
 * const firstPage = EventStore.EventStore.use((store) => store.readPage(request))
 * ```
 * @since 0.2.0
 */
export interface PageRequest {
  readonly after: Position.Position
  readonly filter?: EventFilter | undefined
  /** The most events the page may hold: a positive integer. */
  readonly limit: number
}

/**
 * One page of a global read.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, type Position } from "eventcore"
 *
 * // Count the matching events page by page, each read continuing after the last one's `next`.
 * const count = (after: Position.Position, seen = 0): Effect.Effect<number, EventStore.ReadError, EventStore.EventStore> =>
 *   EventStore.EventStore.use((store) => store.readPage({ after, limit: 1_000 })).pipe(
 *     Effect.flatMap((page: EventStore.Page) =>
 *       page.end ? Effect.succeed(seen + page.events.length) : count(page.next, seen + page.events.length)
 *     )
 *   )
 * ```
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
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 *
 * const appended = EventStore.append(request).pipe(
 *   Effect.catchTag("ConcurrencyConflict", (conflict) => Effect.fail(`changed meanwhile: ${conflict.message}`))
 * )
 * const describe = (error: EventStore.AppendError) => `${error._tag}: ${error.message}`
 * ```
 * @since 0.1.0
 */
export type AppendError = ConcurrencyConflict | EventStoreError | InvalidInput | TransactionAlreadyWritten

/**
 * What a read can fail with: the store failed; a stored row cannot be read back (its stream,
 * version and what is wrong); the request itself is malformed (a stream id, a page size, a
 * position or a filter that no store can take).
 *
 * @example
 * ```ts
 * import type { EventStore } from "eventcore"
 *
 * const status = (error: EventStore.ReadError): number =>
 *   error._tag === "InvalidInput" ? 400 : error._tag === "EventStoreError" && error.transient ? 503 : 500
 * ```
 * @since 0.1.0
 */
export type ReadError = EventStoreError | EventDecodeError | InvalidInput

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
    streamIds: ReadonlyArray<StreamId.StreamId>
  ) => Effect.Effect<ReadonlyArray<StreamRead>, ReadError>
  /** Appends atomically, checking every stream of the boundary. */
  readonly append: (request: AppendRequest) => Effect.Effect<AppendResult, AppendError>
  /**
   * Reads one page of the global order after a position: at most `limit` events, a positive
   * integer (anything else is `InvalidInput`, on every store).
   */
  readonly readPage: (options: PageRequest) => Effect.Effect<Page, ReadError>
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
}): Stream.Stream<StoredEvent, ReadError, EventStore> =>
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
export const readStream = (streamId: StreamId.StreamId): Effect.Effect<StreamRead, ReadError, EventStore> =>
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
 * What a store accepts in one request: the size of an append's boundary, and how deep and how
 * large a payload or an event's metadata may be (as JSON). Every store takes them as options
 * and refuses requests past them with an `InvalidInput` naming the limit.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * // The limits in force once a store is configured with `{ maxBoundary: 100 }`.
 * const limits: EventStore.Limits = EventStore.limitsOf({ maxBoundary: 100 })
 * limits.maxJsonBytes // 8388608, the default
 * ```
 * @since 0.2.0
 */
export interface Limits {
  /** Streams in one append's boundary. Default `defaultMaxBoundary` (1,000). */
  readonly maxBoundary: number
  /** Levels of nesting of a payload or metadata, at most `StorableJson.maxDepthLimit`. Default 256. */
  readonly maxJsonDepth: number
  /** UTF-8 bytes of the JSON of one payload, or of one event's metadata. Default 8 MiB. */
  readonly maxJsonBytes: number
}

/**
 * Limits as store options take them: any of them, the others default.
 *
 * @example
 * ```ts
 * import type { EventStore } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const limits: EventStore.LimitOptions = { maxJsonBytes: 64 * 1024 } // the others default
 * const store = MemoryEventStore.makeWith(limits)
 * ```
 * @since 0.2.0
 */
export type LimitOptions = { readonly [K in keyof Limits]?: number | undefined }

/**
 * The limits stores use unless configured otherwise.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * EventStore.defaultLimits // { maxBoundary: 1000, maxJsonDepth: 256, maxJsonBytes: 8388608 }
 * ```
 * @since 0.2.0
 */
export const defaultLimits: Limits = {
  maxBoundary: defaultMaxBoundary,
  maxJsonDepth: StorableJson.defaultLimits.maxDepth,
  maxJsonBytes: StorableJson.defaultLimits.maxBytes
}

/**
 * A store's limits from its options: the defaults, overridden field by field. Throws a
 * `RangeError` for a limit that is not a positive integer (or a depth past
 * `StorableJson.maxDepthLimit`): a configuration error, found when the store is built.
 *
 * @example
 * ```ts
 * import { EventStore } from "eventcore"
 *
 * EventStore.limitsOf({ maxJsonBytes: 1024 * 1024 }) // { maxBoundary: 1000, maxJsonDepth: 256, maxJsonBytes: 1048576 }
 * ```
 * @since 0.2.0
 */
export const limitsOf = (options?: LimitOptions | undefined): Limits => {
  const limits: Limits = {
    maxBoundary: options?.maxBoundary ?? defaultLimits.maxBoundary,
    maxJsonDepth: options?.maxJsonDepth ?? defaultLimits.maxJsonDepth,
    maxJsonBytes: options?.maxJsonBytes ?? defaultLimits.maxJsonBytes
  }
  for (const [name, value] of Object.entries(limits)) {
    if (!(Number.isSafeInteger(value) && value > 0)) {
      throw new RangeError(`eventcore: ${name} must be a positive integer, got ${value}`)
    }
  }
  if (limits.maxJsonDepth > StorableJson.maxDepthLimit) {
    throw new RangeError(
      `eventcore: maxJsonDepth must be at most ${StorableJson.maxDepthLimit}, got ${limits.maxJsonDepth}`
    )
  }
  return limits
}

/** Whether a value is an event id as the library writes it and PostgreSQL gives it back: a lowercase UUID. */
const isCanonicalUuid = (id: unknown): boolean => {
  if (typeof id !== "string" || id.length !== 36) return false
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i)
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false // "-"
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false // 0-9, a-f
  }
  return true
}

/**
 * Checks the shape of an append request the way every store must: the boundary holds at most
 * `maxBoundary` streams, each a valid stream id (`StreamId.issue`) with an expected version that
 * is a non-negative integer or "any", none twice; every event's stream is in the boundary, its
 * id a lowercase UUID found once in the request, its type a valid name (`Event.typeNameIssue`),
 * its schema version a positive integer. Stores call it before touching anything, so a bad
 * request writes nothing and fails the same way on every backend. Linear in the request's
 * size. (Payloads and metadata are checked by `encodeAppend`.)
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
  options?: LimitOptions | undefined
): InvalidInput | undefined => {
  const invalid = (path: ReadonlyArray<string | number>, issue: string) =>
    new InvalidInput({ subject: "append request", path, issue })
  if (typeof request !== "object" || request === null) return invalid([], "an append request must be an object")
  const { events, streams } = request
  if (!Array.isArray(streams)) return invalid(["streams"], "streams must be an array")
  if (!Array.isArray(events)) return invalid(["events"], "events must be an array")
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
    const idIssue = StreamId.issue(streamId)
    if (idIssue !== undefined) return invalid(["streams", i, "streamId"], idIssue)
    if (expected !== "any" && !(Number.isSafeInteger(expected) && expected >= 0)) {
      return invalid(
        ["streams", i, "expected"],
        `expected version must be a non-negative integer or "any", got ${String(expected)}`
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
    if (!isCanonicalUuid(event.eventId)) {
      return invalid(
        ["events", i, "eventId"],
        `an event id must be a lowercase UUID, got ${JSON.stringify(event.eventId)}`
      )
    }
    const duplicate = ids === undefined
      ? events.slice(0, i).some((e) => e.eventId === event.eventId)
      : ids.size === ids.add(event.eventId).size
    if (duplicate) return invalid(["events", i, "eventId"], `event id ${event.eventId} appears twice in the request`)
    const typeIssue = typeNameIssue(event.type)
    if (typeIssue !== undefined) return invalid(["events", i, "type"], typeIssue)
    if (
      !(Number.isSafeInteger(event.schemaVersion) && event.schemaVersion >= 1 && event.schemaVersion <= 2_147_483_647)
    ) {
      return invalid(
        ["events", i, "schemaVersion"],
        `a schema version must be a positive integer, got ${String(event.schemaVersion)}`
      )
    }
  }
  return undefined
}

/**
 * What a store keeps of an append's events: each payload (through the serializer) and each
 * metadata, checked, in the form the store keeps them (JSON text for PostgreSQL, the value
 * `jsonb` would give back for the memory store).
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { EventStore, Serializer, StorableJson } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 *
 * // What a PostgreSQL-like store sends: JSON text for each payload and each metadata.
 * const kept = EventStore.keepAppend(request, Serializer.json, EventStore.defaultLimits, StorableJson.encode)
 * const texts = Result.map(kept, (encoded: EventStore.EncodedEvents<string>) => encoded.payloads)
 * ```
 * @since 0.2.0
 */
export interface EncodedEvents<A> {
  readonly payloads: ReadonlyArray<A>
  readonly metadata: ReadonlyArray<A>
}

/**
 * Validates an append request (`validateAppend`) and checks its payloads
 * (`Serializer.keepPayload`) and metadata (`Metadata.keep`) for storage, within the store's
 * limits, giving them in the form `keep` says — the one place every store checks what it is
 * given, so that every backend refuses the same requests the same way.
 *
 * @example
 * ```ts
 * import { EventStore, Serializer, StorableJson } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 * const kept = EventStore.keepAppend(request, Serializer.json, EventStore.defaultLimits, StorableJson.toStored)
 * ```
 * @since 0.2.0
 */
export const keepAppend = <A>(
  request: AppendRequest,
  serializer: Serializer.Serializer,
  limits: Limits,
  keep: Serializer.Keep<A>
): Result.Result<EncodedEvents<A>, InvalidInput> => {
  const invalid = validateAppend(request, limits)
  if (invalid !== undefined) return Result.fail(invalid)
  const json = { maxDepth: limits.maxJsonDepth, maxBytes: limits.maxJsonBytes }
  const payloads: Array<A> = []
  const metadata: Array<A> = []
  // The events of one command share one metadata object: check it once.
  let lastMetadata: unknown
  let lastKept: A | undefined
  for (let i = 0; i < request.events.length; i++) {
    const event = request.events[i] as EventToAppend
    const payload = Serializer.keepPayload(serializer, event.payload, i, event.type, json, keep)
    if (Result.isFailure(payload)) return Result.fail(payload.failure)
    payloads.push(payload.success)
    if (i === 0 || event.metadata !== lastMetadata) {
      const kept = Metadata.keep(event.metadata, i, json, keep)
      if (Result.isFailure(kept)) return Result.fail(kept.failure)
      lastMetadata = event.metadata
      lastKept = kept.success
    }
    metadata.push(lastKept as A)
  }
  return Result.succeed({ payloads, metadata })
}

/**
 * `keepAppend` with payloads and metadata as JSON text: what the PostgreSQL store sends.
 *
 * @example
 * ```ts
 * import { EventStore, Serializer } from "eventcore"
 *
 * declare const request: EventStore.AppendRequest
 * const encoded = EventStore.encodeAppend(request, Serializer.json, EventStore.defaultLimits)
 * ```
 * @since 0.2.0
 */
export const encodeAppend = (
  request: AppendRequest,
  serializer: Serializer.Serializer,
  limits: Limits
): Result.Result<EncodedEvents<string>, InvalidInput> => keepAppend(request, serializer, limits, StorableJson.encode)

/**
 * Checks a page request the way every store must: `limit` a positive integer, `after` a
 * position, the filter's stream ids, prefix and type names strings a store can hold.
 *
 * @example
 * ```ts
 * import { EventStore, Position } from "eventcore"
 *
 * EventStore.validatePage({ after: Position.initial, limit: 0 }) // InvalidInput at "limit"
 * ```
 * @since 0.2.0
 */
export const validatePage = (request: PageRequest): InvalidInput | undefined => {
  const invalid = (path: ReadonlyArray<string | number>, issue: string) =>
    new InvalidInput({ subject: "page request", path, issue })
  if (!(Number.isSafeInteger(request.limit) && request.limit > 0)) {
    return invalid(["limit"], `the page size must be a positive integer, got ${String(request.limit)}`)
  }
  if (!Position.is(request.after)) {
    return invalid(["after"], `not a position: ${JSON.stringify(request.after)}`)
  }
  const filter = request.filter
  if (filter === undefined) return undefined
  const texts = [
    ...(filter.streamIds ?? []).map((id, i) => [["filter", "streamIds", i], id] as const),
    ...(filter.eventTypes ?? []).map((type, i) => [["filter", "eventTypes", i], type] as const),
    ...(filter.streamPrefix === undefined ? [] : [[["filter", "streamPrefix"], filter.streamPrefix] as const])
  ]
  for (const [path, text] of texts) {
    if (typeof text !== "string") return invalid(path, `must be a string, got ${typeof text}`)
    const issue = StorableJson.textIssue(text)
    if (issue !== undefined) return invalid(path, `the string ${issue}`)
  }
  return undefined
}

/**
 * Checks the stream ids of a read the way every store must (`StreamId.issue`).
 *
 * @example
 * ```ts
 * import { EventStore, type StreamId } from "eventcore"
 *
 * EventStore.validateStreamIds(["\ud800" as StreamId.StreamId]) // InvalidInput at 0
 * ```
 * @since 0.2.0
 */
export const validateStreamIds = (streamIds: ReadonlyArray<StreamId.StreamId>): InvalidInput | undefined => {
  for (let i = 0; i < streamIds.length; i++) {
    const issue = StreamId.issue(streamIds[i])
    if (issue !== undefined) return new InvalidInput({ subject: "stream ids to read", path: [i], issue })
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
