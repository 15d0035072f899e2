/**
 * Subscriptions: the global order as an Effect Stream that catches up from a position and
 * then follows new commits live, with the Stream's backpressure. No committed event is
 * skipped and none is delivered twice: each page continues strictly after the last position
 * the store looked at, and stores only expose positions no later commit can precede.
 *
 * @since 0.1.0
 */
import { Context, Effect, Option, Stream } from "effect"
import type { EventDecodeError } from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventStore from "./EventStore.ts"
import * as Telemetry from "./internal/Telemetry.ts"
import type { Position } from "./Position.ts"
import * as PositionModule from "./Position.ts"
import type { StoredEvent } from "./StoredEvent.ts"

/**
 * Where a subscription starts: before the first event, after the current last event, or
 * after a saved position (a checkpoint).
 *
 * @example
 * ```ts
 * import { type Position, Subscription } from "eventcore"
 *
 * declare const checkpoint: Position.Position | undefined // saved by the consumer
 *
 * const from: Subscription.From = checkpoint ?? "start"
 * const events = Subscription.stream({ from })
 * ```
 * @since 0.1.0
 */
export type From = "start" | "end" | Position

/**
 * What to read: where to start, which events, and whether to follow new commits.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Subscription } from "eventcore"
 *
 * // Count the accounts' events stored so far, then stop.
 * const options: Subscription.Options = { from: "start", filter: { streamPrefix: "account-" }, live: false }
 * const count = Subscription.stream(options).pipe(Stream.runCount)
 * ```
 * @since 0.1.0
 */
export interface Options {
  readonly from: From
  readonly filter?: EventStore.EventFilter | undefined
  /** Events read per page (default `EventStore.defaultPageSize`); also bounds memory held ahead of the consumer. */
  readonly pageSize?: number | undefined
  /**
   * Follow new commits once caught up (default `true`). With `false` the stream ends once it
   * has read everything visible when it got there: a finite catch-up read (replays, rebuilds).
   */
  readonly live?: boolean | undefined
}

const resolveFrom = (store: EventStore.EventStore["Service"], from: From) =>
  from === "start" ? Effect.succeed(PositionModule.initial) : from === "end" ? store.head : Effect.succeed(from)

/**
 * All events matching the filter, in global order: first those already stored, then each new
 * commit as it lands. Never ends on its own.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Subscription } from "eventcore"
 *
 * const firstTen = Subscription.stream({ from: "start", filter: { streamPrefix: "account-" } }).pipe(
 *   Stream.take(10),
 *   Stream.runCollect
 * )
 * ```
 * @since 0.1.0
 */
export const stream = (options: Options): Stream.Stream<StoredEvent, EventStore.ReadError, EventStore.EventStore> =>
  pages(options, (read) => read.events)

/** One read of a subscription: the events, and whether the read reached the end of what is visible. */
interface Read {
  readonly events: ReadonlyArray<StoredEvent>
  readonly next: Position
  /** Set when this read reached the end and its position is new to the consumer. */
  readonly caughtUp: boolean
}

interface ReadState {
  readonly after: Position
  /** The last read reached the end: wait for a commit before reading again. */
  readonly waiting: boolean
  /** The position of the last `CaughtUp` signalled, so idle wake-ups do not repeat it. */
  readonly signalled: Position | undefined
}

/**
 * The subscription's reads, each page emitted as one chunk of `emit(page)`. Each page is read when the consumer pulls,
 * so a slow consumer holds at most one page ahead.
 */
const pages = <A>(
  options: Options,
  emit: (read: Read) => ReadonlyArray<A>
): Stream.Stream<A, EventStore.ReadError, EventStore.EventStore> =>
  Stream.unwrap(
    Effect.map(Effect.context<EventStore.EventStore>(), (context) => {
      const store = Context.get(context, EventStore.EventStore)
      return Stream.unwrap(Effect.map(resolveFrom(store, options.from), (start) => {
        const limit = options.pageSize ?? EventStore.defaultPageSize
        const live = options.live ?? true
        const initialState: ReadState = { after: start, waiting: false, signalled: undefined }
        return Stream.paginate(initialState, (state: ReadState) => {
          // Each page read is a span (when a tracer records them), a child of the subscriber's.
          const read = Telemetry.span("Subscription.page", (span) => {
            span?.attribute("eventcore.page.after", state.after)
            span?.attribute("eventcore.page.live", state.waiting)
            return Effect.map(store.readPage({ after: state.after, filter: options.filter, limit }), (page) => {
              span?.attribute("eventcore.events", page.events.length)
              Telemetry.observePage(page.events.length, context)
              const caughtUp = page.end && (page.events.length > 0 || page.next !== state.signalled)
              const result: Read = { events: page.events, next: page.next, caughtUp }
              const next = page.end && !live
                ? Option.none<ReadState>()
                : Option.some<ReadState>({
                  after: page.next,
                  waiting: page.end,
                  signalled: caughtUp ? page.next : state.signalled
                })
              return [emit(result), next] as const
            })
          })
          // Waiting for a commit polls the store (every `pollInterval` on PostgreSQL): traced, a
          // live subscriber would fill the traces with them. The page it leads to is traced; both
          // stores return from the wait only once something committed after `state.after` is
          // visible, so an idle subscriber makes no span (a page may still hold no event when
          // the filter skips what committed).
          return state.waiting
            ? Effect.andThen(Effect.withTracerEnabled(store.awaitAppend(state.after), false), read)
            : read
        })
      }))
    })
  )

/**
 * A delivered event, in a stream of signals.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { type StoredEvent, Subscription } from "eventcore"
 *
 * const onEvent = (item: Subscription.EventItem<StoredEvent.StoredEvent>) =>
 *   Effect.log(`${item.event.type} at ${item.position}`)
 *
 * const program = Subscription.withSignals({ from: "start" }).pipe(
 *   Stream.runForEach((item) => item._tag === "Event" ? onEvent(item) : Effect.void)
 * )
 * ```
 * @since 0.1.0
 */
export interface EventItem<A> {
  readonly _tag: "Event"
  readonly event: A
  readonly position: Position
}

/**
 * The subscription has delivered everything visible in the store up to `position` (which may
 * lie past the last delivered event when later events did not match the filter). Emitted each
 * time a read reaches the end of what is visible: once at the end of catch-up, then after every
 * live batch. A consumer that saves `position` as its checkpoint never re-reads skipped events.
 *
 * @example
 * ```ts
 * import type { Effect } from "effect"
 * import type { Position, Subscription } from "eventcore"
 *
 * declare const saveCheckpoint: (position: Position.Position) => Effect.Effect<void>
 *
 * // Past the last matching event too: the next start skips what did not match.
 * const onCaughtUp = (signal: Subscription.CaughtUp) => saveCheckpoint(signal.position)
 * ```
 * @since 0.1.0
 */
export interface CaughtUp {
  readonly _tag: "CaughtUp"
  readonly position: Position
}

/**
 * What a stream of signals carries: events, and caught-up markers between them.
 *
 * @example
 * ```ts
 * import type { StoredEvent, Subscription } from "eventcore"
 *
 * const label = (item: Subscription.Item<StoredEvent.StoredEvent>): string =>
 *   item._tag === "CaughtUp" ? `caught up at ${item.position}` : `${item.event.type} at ${item.position}`
 * ```
 * @since 0.1.0
 */
export type Item<A> = EventItem<A> | CaughtUp

/**
 * Like `stream`, with a `CaughtUp` marker each time the subscription reaches the end of what
 * is visible. The first `CaughtUp` is the end of catch-up; the ones after it follow each live
 * batch (idle wake-ups that find nothing new do not repeat it). Backpressure is the Stream's:
 * a page is read only when the consumer pulls.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Subscription } from "eventcore"
 *
 * // Process the backlog, then report when live.
 * const program = Subscription.withSignals({ from: "start" }).pipe(
 *   Stream.runForEach((item) =>
 *     item._tag === "CaughtUp"
 *       ? Effect.log(`caught up at ${item.position}`)
 *       : Effect.log(`event ${item.event.type} at ${item.position}`)
 *   )
 * )
 * ```
 * @since 0.1.0
 */
export const withSignals = (
  options: Options
): Stream.Stream<Item<StoredEvent>, EventStore.ReadError, EventStore.EventStore> =>
  pages(options, (read) => {
    const items: Array<Item<StoredEvent>> = read.events.map((event) => ({
      _tag: "Event" as const,
      event,
      position: event.position
    }))
    if (read.caughtUp) items.push({ _tag: "CaughtUp", position: read.next })
    return items
  })

/**
 * Like `stream`, limited to the catalog's event types and decoded with it (older versions
 * upcast). An event the catalog cannot decode fails the stream with `EventDecodeError`.
 *
 * @example
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Subscription } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const program = Subscription.events(Event.catalog(Deposited), { from: "start" }).pipe(
 *   Stream.runForEach(({ event, stored }) => Effect.log(`${stored.streamId}: +${event.amount}`))
 * )
 * ```
 * @since 0.1.0
 */
export const events = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  options: Options
): Stream.Stream<
  { readonly event: E; readonly stored: StoredEvent },
  EventStore.ReadError | EventDecodeError,
  EventStore.EventStore
> =>
  stream({ ...options, filter: { ...options.filter, eventTypes: options.filter?.eventTypes ?? catalog.types } }).pipe(
    Stream.mapEffect((stored) => {
      const decoded = catalog.decode(stored)
      return decoded._tag === "Success"
        ? Effect.succeed({ event: decoded.success, stored })
        : Effect.fail(decoded.failure)
    })
  )

/**
 * A decoded event with the stored event it came from.
 *
 * @example
 * ```ts
 * import { Schema, Stream } from "effect"
 * import { Event, Subscription } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const line = ({ event, stored }: Subscription.Decoded<typeof Deposited.Type>) => `${stored.streamId}: +${event.amount}`
 * const lines = Subscription.events(Event.catalog(Deposited), { from: "start", live: false }).pipe(
 *   Stream.map(line),
 *   Stream.runCollect
 * )
 * ```
 * @since 0.1.0
 */
export interface Decoded<E> {
  readonly event: E
  readonly stored: StoredEvent
}

/**
 * The filter a catalog reader uses: the given filter, limited to the catalog's event types
 * unless it names types itself.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event, Subscription } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * Subscription.catalogFilter(Event.catalog(Deposited), { streamPrefix: "account-" })
 * // { streamPrefix: "account-", eventTypes: ["Deposited"] }
 * ```
 * @since 0.1.0
 */
export const catalogFilter = (
  catalog: { readonly types: ReadonlyArray<string> },
  filter: EventStore.EventFilter | undefined
): EventStore.EventFilter => ({ ...filter, eventTypes: filter?.eventTypes ?? catalog.types })

/**
 * `events` with `CaughtUp` markers (see `withSignals`): the catalog's events decoded (older
 * versions upcast), and a marker each time the subscription reaches the end of what is
 * visible, so a consumer knows when it has gone live.
 *
 * @example
 * ```ts
 * import { Effect, Schema, Stream } from "effect"
 * import { Event, Subscription } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const program = Subscription.eventsWithSignals(Event.catalog(Deposited), { from: "start" }).pipe(
 *   Stream.runForEach((item) =>
 *     item._tag === "CaughtUp" ? Effect.log("live") : Effect.log(`+${item.event.event.amount}`)
 *   )
 * )
 * ```
 * @since 0.1.0
 */
export const eventsWithSignals = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  options: Options
): Stream.Stream<Item<Decoded<E>>, EventStore.ReadError | EventDecodeError, EventStore.EventStore> =>
  withSignals({ ...options, filter: catalogFilter(catalog, options.filter) }).pipe(
    Stream.mapEffect((item): Effect.Effect<Item<Decoded<E>>, EventDecodeError> => {
      if (item._tag === "CaughtUp") return Effect.succeed(item)
      const decoded = catalog.decode(item.event)
      return decoded._tag === "Success"
        ? Effect.succeed({
          _tag: "Event",
          event: { event: decoded.success, stored: item.event },
          position: item.position
        })
        : Effect.fail(decoded.failure)
    })
  )
