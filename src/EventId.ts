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

const hex = (n: number, digits: number): string => n.toString(16).padStart(digits, "0")
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
  const high = Math.floor(ms / 0x10000)
  const low = ms % 0x10000
  return `${hex(high, 8)}-${hex(low, 4)}-7${hex(random16(random) & 0xfff, 3)}-${
    hex(0x8000 | (random16(random) & 0x3fff), 4)
  }-${hex(random16(random), 4)}${hex(random16(random), 4)}${hex(random16(random), 4)}` as EventId
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
