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
 * @since 0.1.0
 */
export type EventId = typeof EventId.Type

const byteHex = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"))
const hex16 = (n: number): string => (byteHex[(n >>> 8) & 0xff] as string) + (byteHex[n & 0xff] as string)
const random16 = (random: Random.Random): number => Math.floor(random.nextDoubleUnsafe() * 0x10000)

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
  const high = Math.floor(ms / 0x100000000)
  const mid = Math.floor(ms / 0x10000) & 0xffff
  const low = ms & 0xffff
  return `${hex16(high)}${hex16(mid)}-${hex16(low)}-${hex16(0x7000 | (random16(random) & 0xfff))}-${
    hex16(0x8000 | (random16(random) & 0x3fff))
  }-${hex16(random16(random))}${hex16(random16(random))}${hex16(random16(random))}` as EventId
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
