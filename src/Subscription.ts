/**
 * Subscriptions: the global order as an Effect Stream that catches up from a position and
 * then follows new commits live, with the Stream's backpressure. No committed event is
 * skipped and none is delivered twice: each page continues strictly after the last position
 * the store looked at, and stores only expose positions no later commit can precede.
 *
 * @since 0.1.0
 */
import { Effect, Option, Stream } from "effect"
import type { EventDecodeError, EventStoreError } from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventStore from "./EventStore.ts"
import type { Position } from "./Position.ts"
import * as PositionModule from "./Position.ts"
import type { StoredEvent } from "./StoredEvent.ts"

/**
 * Where a subscription starts: before the first event, after the current last event, or
 * after a saved position (a checkpoint).
 *
 * @since 0.1.0
 */
export type From = "start" | "end" | Position

/**
 * @since 0.1.0
 */
export interface Options {
  readonly from: From
  readonly filter?: EventStore.EventFilter | undefined
  readonly pageSize?: number | undefined
}

const resolveFrom = (store: EventStore.EventStore["Service"], from: From) =>
  from === "start" ? Effect.succeed(PositionModule.initial) : from === "end" ? store.head : Effect.succeed(from)

/**
 * All events matching the filter, in global order: first those already stored, then each new
 * commit as it lands. Never ends on its own.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { Subscription } from "eventcore"
 *
 * const firstTen = Subscription.stream({ from: "start", filter: { streamPrefix: "account-" } }).pipe(
 *   Stream.take(10),
 *   Stream.runCollect
 * )
 * ```
 * @since 0.1.0
 */
export const stream = (options: Options): Stream.Stream<StoredEvent, EventStoreError, EventStore.EventStore> =>
  Stream.unwrap(
    EventStore.EventStore.useSync((store) =>
      Stream.unwrap(Effect.map(resolveFrom(store, options.from), (start) =>
        Stream.paginate(start, (after: Position) =>
          Effect.flatMap(
            store.readPage({ after, filter: options.filter, limit: options.pageSize ?? EventStore.defaultPageSize }),
            (page) =>
              page.events.length === 0 && page.end
                ? Effect.as(store.awaitAppend(page.next), [page.events, Option.some(page.next)] as const)
                : Effect.succeed([page.events, Option.some(page.next)] as const)
          ))))
    )
  )

/**
 * Like `stream`, limited to the catalog's event types and decoded with it (older versions
 * upcast). An event the catalog cannot decode fails the stream with `EventDecodeError`.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { Subscription } from "eventcore"
 *
 * // Subscription.events(AccountEvents, { from: "start" }).pipe(Stream.runForEach(({ event }) => ...))
 * ```
 * @since 0.1.0
 */
export const events = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  options: Options
): Stream.Stream<{ readonly event: E; readonly stored: StoredEvent }, EventStoreError | EventDecodeError, EventStore.EventStore> =>
  stream({ ...options, filter: { ...options.filter, eventTypes: options.filter?.eventTypes ?? catalog.types } }).pipe(
    Stream.mapEffect((stored) => {
      const decoded = catalog.decode(stored)
      return decoded._tag === "Success" ? Effect.succeed({ event: decoded.success, stored }) : Effect.fail(decoded.failure)
    })
  )
