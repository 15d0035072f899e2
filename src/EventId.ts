/**
 * Event identifiers: UUIDv7, generated from Effect's `Clock` and `Random` services so that a
 * `TestClock` and a seeded `Random` make them reproducible.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Random, Schema } from "effect"

/**
 * The schema of an event id: any UUID (ids generated here are version 7).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { EventId } from "eventcore"
 *
 * Schema.decodeUnknownSync(EventId.EventId)("01890a5d-ac96-774b-bcce-b302099a8057")
 * ```
 * @since 0.1.0
 */
export const EventId = Schema.String.check(Schema.isUUID()).pipe(Schema.brand("eventcore/EventId"))

/**
 * An event's id: a UUID (version 7 when eventcore makes it), branded.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventId } from "eventcore"
 *
 * const id: Effect.Effect<EventId.EventId> = EventId.make
 * const isOurs = (stored: { readonly eventId: EventId.EventId }, expected: EventId.EventId) => stored.eventId === expected
 * ```
 * @since 0.1.0
 */
export type EventId = typeof EventId.Type

const hexDigits = Array.from({ length: 16 }, (_, i) => i.toString(16).charCodeAt(0))
const dash = 45
const buffer = new Uint16Array(36)
const random16 = (random: Random.Random): number => Math.floor(random.nextDoubleUnsafe() * 0x10000)

// Writes 16 bits as 4 hex digits at `at`. Building the id in a buffer and converting it once
// yields a flat string: template concatenation would leave a tree of string fragments per id,
// which the store then keeps alive for every event.
const put16 = (at: number, n: number): void => {
  buffer[at] = hexDigits[(n >>> 12) & 15] as number
  buffer[at + 1] = hexDigits[(n >>> 8) & 15] as number
  buffer[at + 2] = hexDigits[(n >>> 4) & 15] as number
  buffer[at + 3] = hexDigits[n & 15] as number
}

/**
 * Builds a UUIDv7 from a timestamp in milliseconds and a random source. Pure given its
 * inputs; `make` is the effectful form.
 *
 * @example
 * ```ts
 * import { Effect, Random } from "effect"
 * import { EventId } from "eventcore"
 *
 * const id = Effect.runSync(Random.Random.useSync((random) => EventId.generate(Date.now(), random)))
 * ```
 * @since 0.1.0
 */
export const generate = (millis: number, random: Random.Random): EventId => {
  const ms = Math.max(0, Math.floor(millis))
  // 48 bits of milliseconds, version 7, 12 random bits, variant 0b10, 62 random bits.
  put16(0, Math.floor(ms / 0x100000000) & 0xffff)
  put16(4, Math.floor(ms / 0x10000) & 0xffff)
  buffer[8] = dash
  put16(9, ms & 0xffff)
  buffer[13] = dash
  put16(14, 0x7000 | (random16(random) & 0xfff))
  buffer[18] = dash
  put16(19, 0x8000 | (random16(random) & 0x3fff))
  buffer[23] = dash
  put16(24, random16(random))
  put16(28, random16(random))
  put16(32, random16(random))
  return String.fromCharCode.apply(null, buffer as unknown as Array<number>) as EventId
}

/**
 * A fresh UUIDv7 from the current `Clock` and `Random`.
 *
 * @example
 * ```ts
 * import { Effect, Random } from "effect"
 * import { EventId } from "eventcore"
 *
 * const id = Effect.runSync(EventId.make.pipe(Random.withSeed("demo")))
 * ```
 * @since 0.1.0
 */
export const make: Effect.Effect<EventId> = Effect.flatMap(
  Clock.currentTimeMillis,
  (millis) => Random.Random.useSync((random) => generate(millis, random))
)
