/**
 * The in-memory event store: the embedded default, for tests and demos. Every operation runs
 * synchronously inside one fiber step, so an append is atomic without locks.
 *
 * @since 0.1.0
 */
import { Clock, DateTime, Effect, Layer, Result, type Schema } from "effect"
import { ConcurrencyConflict, InvalidInput, type VersionMismatch } from "../Errors.ts"
import * as EventStore from "../EventStore.ts"
import * as Telemetry from "../internal/Telemetry.ts"
import type * as Metadata from "../Metadata.ts"
import * as Position from "../Position.ts"
import * as Serializer from "../Serializer.ts"
import * as StorableJson from "../StorableJson.ts"
import { type StoredEvent, withMemo } from "../StoredEvent.ts"
import type { StreamId } from "../StreamId.ts"

// Positions in memory: the transaction part is the commit number, the sequence part the
// event's index in the global log plus one, so `sequence(position)` indexes the log directly.
const logIndexAfter = (after: Position.Position): number => Number(Position.sequence(after))

const deepFreeze = <A>(value: A): A => {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key])
  }
  return value
}

/**
 * The in-memory store's limits, as the PostgreSQL store's (`EventStore.LimitOptions`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * // The limits production uses, so tests refuse what production would.
 * const options: MemoryEventStore.Options = { maxBoundary: 100, maxJsonBytes: 1024 * 1024 }
 * const store = Effect.runSync(MemoryEventStore.makeWith(options))
 * ```
 * @since 0.2.0
 */
export interface Options extends EventStore.LimitOptions {}

interface KeyRecord extends EventStore.IdempotencyRecord {
  readonly recordedAt: number
}

/**
 * Builds a fresh, empty in-memory store with options.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const store = Effect.runSync(MemoryEventStore.makeWith({ maxBoundary: 100 }))
 * ```
 * @since 0.2.0
 */
export const makeWith = (
  options?: Options
): Effect.Effect<EventStore.EventStore["Service"]> =>
  Serializer.Serializer.useSync((serializer) => {
    const limits = EventStore.limitsOf(options)
    const log: Array<StoredEvent> = []
    // Idempotency keys in the order they were recorded, so expired ones are cleared from the front.
    const keys = new Map<string, KeyRecord>()
    const streams = new Map<StreamId, Array<StoredEvent>>()
    const eventIds = new Set<string>()
    let commits = 0
    let recordedMillis = Number.NaN
    let recordedAt = DateTime.makeUnsafe(0)
    let waiters: Array<() => void> = []

    const versionOf = (streamId: StreamId): number => streams.get(streamId)?.length ?? 0

    const wake = () => {
      if (waiters.length === 0) return
      const woken = waiters
      waiters = []
      for (const resume of woken) resume()
    }

    const versionConflict = (request: EventStore.AppendRequest): ConcurrencyConflict | undefined => {
      let conflicts: Array<VersionMismatch> | undefined
      for (const { expected, streamId } of request.streams) {
        const actual = versionOf(streamId)
        if (expected !== "any" && expected !== actual) (conflicts ??= []).push({ streamId, expected, actual })
      }
      return conflicts === undefined ? undefined : new ConcurrencyConflict({ conflicts })
    }

    // An event id already stored means this event was appended before: as in PostgreSQL (whose
    // unique constraint reports it as contention), the append conflicts and writes nothing.
    // Claiming adds the request's ids to the index, or, if one is already there, takes back the
    // ones it added: one hash lookup per event, where a `has` and an `add` would cost two (with
    // millions of ids, each is a cache miss). It runs last, when nothing else can fail.
    const claimEventIds = (request: EventStore.AppendRequest): ConcurrencyConflict | undefined => {
      const events = request.events
      for (let i = 0; i < events.length; i++) {
        const before = eventIds.size
        eventIds.add((events[i] as EventStore.EventToAppend).eventId)
        if (eventIds.size === before) {
          for (let j = 0; j < i; j++) eventIds.delete((events[j] as EventStore.EventToAppend).eventId)
          return new ConcurrencyConflict({
            conflicts: request.streams.map(({ expected, streamId }) => ({
              streamId,
              expected,
              actual: versionOf(streamId)
            }))
          })
        }
      }
      return undefined
    }

    // The last two objects checked and kept (a payload and a metadata, say), and what was kept
    // for them: the store freezes both (as it always froze what it keeps), so neither can
    // change, and the same object appended again is not checked again.
    const given: [object | undefined, object | undefined] = [undefined, undefined]
    const kept: [Schema.Json, Schema.Json] = [null, null]
    const keep: Serializer.Keep<Schema.Json> = (value, limits) => {
      if (value === given[0]) return Result.succeed(kept[0])
      if (value === given[1]) return Result.succeed(kept[1])
      const stored = StorableJson.toStored(value, limits)
      if (Result.isFailure(stored)) return stored
      if (typeof value === "object" && value !== null) {
        given[1] = given[0]
        kept[1] = kept[0]
        given[0] = deepFreeze(value)
        kept[0] = deepFreeze(stored.success)
      }
      return stored
    }

    // What a reader gets back is what PostgreSQL would give it: each payload and metadata as
    // a `jsonb` column returns it (`-0` is `0`, keys in `jsonb`'s order), the payload through
    // the serializer (`encodeAppend` has checked that it reads its own output back).
    const storedPayloads = (kept: ReadonlyArray<Schema.Json>): Array<unknown> => {
      if (serializer === Serializer.json) return kept as Array<unknown>
      const payloads: Array<unknown> = []
      for (const stored of kept) {
        const payload = serializer.deserialize(stored)
        payloads.push(Result.isSuccess(payload) ? deepFreeze(payload.success) : undefined)
      }
      return payloads
    }

    /** What an earlier append recorded under the request's key, if that record still holds. */
    const recorded = (claim: EventStore.IdempotencyClaim): KeyRecord | undefined => {
      const record = keys.get(claim.key)
      return record !== undefined && record.recordedAt >= claim.notBefore ? record : undefined
    }

    const record = (claim: EventStore.IdempotencyClaim, result: EventStore.AppendResult, now: number) => {
      keys.delete(claim.key) // re-inserted at the end: the map stays in recording order
      keys.set(claim.key, { fingerprint: claim.fingerprint, result: { ...result, replayed: true }, recordedAt: now })
      for (const [key, earlier] of keys) {
        if (earlier.recordedAt >= claim.notBefore) break
        keys.delete(key)
      }
    }

    // The same checks, in the same order, as the PostgreSQL store: the request's shape and
    // payloads, then its idempotency key, then the versions, then the event ids.
    const append = (request: EventStore.AppendRequest) =>
      Telemetry.span(
        "EventStore.append",
        (span, fiber): Effect.Effect<EventStore.AppendResult, EventStore.AppendError> => {
          span?.attribute("eventcore.streams", request.streams.length)
          span?.attribute("eventcore.events", request.events.length)
          const clock = fiber.getRef(Clock.Clock)
          const encoded = EventStore.keepAppend(request, serializer, limits, keep)
          if (Result.isFailure(encoded)) return Effect.fail(encoded.failure)
          const claim = request.idempotency
          const earlier = claim === undefined ? undefined : recorded(claim)
          if (claim !== undefined && earlier !== undefined) {
            return earlier.fingerprint === claim.fingerprint
              ? Effect.succeed(earlier.result)
              : Effect.fail(EventStore.idempotencyKeyReused(claim.key))
          }
          const conflict = versionConflict(request)
          if (conflict !== undefined) return Effect.fail(conflict)
          const payloads = storedPayloads(encoded.success.payloads)
          // `keepAppend` checked each metadata's shape.
          const metadata = encoded.success.metadata as unknown as ReadonlyArray<Metadata.Metadata>
          const duplicate = claimEventIds(request)
          if (duplicate !== undefined) return Effect.fail(duplicate)
          const millis = clock.currentTimeMillisUnsafe()
          if (millis !== recordedMillis) {
            // DateTime values are immutable: appends within one millisecond share one.
            recordedMillis = millis
            recordedAt = DateTime.makeUnsafe(millis)
          }
          const commit = ++commits
          const committed: Array<EventStore.Committed> = []
          for (let i = 0; i < request.events.length; i++) {
            const event = request.events[i] as EventStore.EventToAppend
            let stream = streams.get(event.streamId)
            if (stream === undefined) {
              stream = []
              streams.set(event.streamId, stream)
            }
            const stored: StoredEvent = Object.freeze(withMemo({
              eventId: event.eventId,
              streamId: event.streamId,
              streamVersion: stream.length + 1,
              position: Position.make(commit, log.length + 1),
              type: event.type,
              schemaVersion: event.schemaVersion,
              payload: payloads[i],
              metadata: metadata[i] as Metadata.Metadata,
              recordedAt
            }))
            stream.push(stored)
            log.push(stored)
            committed.push({
              eventId: stored.eventId,
              streamId: stored.streamId,
              streamVersion: stored.streamVersion,
              position: stored.position,
              type: stored.type
            })
          }
          if (committed.length > 0) wake()
          const result: EventStore.AppendResult = {
            events: committed,
            versions: request.streams.map(({ streamId }) => ({ streamId, version: versionOf(streamId) })),
            replayed: false
          }
          if (claim !== undefined) record(claim, result, millis)
          return Effect.succeed(result)
        }
      )

    const readStreams = (streamIds: ReadonlyArray<StreamId>) =>
      Telemetry.span("EventStore.readStreams", (span) => {
        span?.attribute("eventcore.streams", streamIds.length)
        const invalid = EventStore.validateStreamIds(streamIds)
        if (invalid !== undefined) return Effect.fail(invalid)
        return Effect.succeed(streamIds.map((streamId): EventStore.StreamRead => {
          const events = streams.get(streamId)
          return events === undefined
            ? { streamId, version: 0, events: [] }
            : { streamId, version: events.length, events: events.slice() }
        }))
      })

    const readPage = (options: EventStore.PageRequest) =>
      Telemetry.span("EventStore.readPage", (span): Effect.Effect<EventStore.Page, InvalidInput> => {
        const invalid = EventStore.validatePage(options)
        if (invalid !== undefined) return Effect.fail(invalid)
        const events: Array<StoredEvent> = []
        let index = logIndexAfter(options.after)
        while (index < log.length && events.length < options.limit) {
          const event = log[index++] as StoredEvent
          if (EventStore.matches(options.filter, event)) events.push(event)
        }
        const last = log[index - 1]
        const next = last !== undefined && Position.isAfter(last.position, options.after)
          ? last.position
          : options.after
        span?.attribute("eventcore.page.after", options.after)
        span?.attribute("eventcore.events", events.length)
        return Effect.succeed({ events, next, end: index >= log.length })
      })

    const head = Telemetry.span(
      "EventStore.head",
      () => Effect.succeed(log.length === 0 ? Position.initial : (log[log.length - 1] as StoredEvent).position)
    )

    const awaitAppend = (after: Position.Position) =>
      Effect.callback<void>((resume) => {
        if (log.length > logIndexAfter(after)) return resume(Effect.void)
        const waiter = () => resume(Effect.void)
        waiters.push(waiter)
        return Effect.sync(() => {
          waiters = waiters.filter((w) => w !== waiter)
        })
      })

    const readIdempotencyKey = (key: string, notBefore: number) =>
      Telemetry.span("EventStore.readIdempotencyKey", () => {
        const found = recorded({ key, fingerprint: "", notBefore })
        return Effect.succeed<EventStore.IdempotencyRecord | undefined>(
          found === undefined ? undefined : { fingerprint: found.fingerprint, result: found.result }
        )
      })

    // Every commit is visible at once: nothing ever waits behind a horizon here.
    const horizon = () =>
      Effect.map(head, (position): EventStore.Horizon => ({
        visible: position,
        committed: position,
        pending: 0,
        pendingCapped: false,
        pendingMillis: 0,
        trailingTransactions: 0,
        heldBy: undefined
      }))

    return EventStore.EventStore.of({
      append,
      readStreams,
      readPage,
      head,
      awaitAppend,
      readIdempotencyKey,
      horizon
    })
  })

/**
 * Builds a fresh, empty in-memory store.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const store = Effect.runSync(MemoryEventStore.make)
 * ```
 * @since 0.1.0
 */
export const make: Effect.Effect<EventStore.EventStore["Service"]> = makeWith()

/**
 * A layer providing a fresh in-memory `EventStore`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { CommandExecutor } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const AppLayer = CommandExecutor.layer().pipe(Layer.provide(MemoryEventStore.layer))
 * ```
 * @since 0.1.0
 */
export const layer: Layer.Layer<EventStore.EventStore> = Layer.effect(EventStore.EventStore, make)

/**
 * A layer providing a fresh in-memory `EventStore` with options.
 *
 * @example
 * ```ts
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const Small = MemoryEventStore.layerWith({ maxBoundary: 50 })
 * ```
 * @since 0.2.0
 */
export const layerWith = (options?: Options): Layer.Layer<EventStore.EventStore> =>
  Layer.effect(EventStore.EventStore, makeWith(options))
