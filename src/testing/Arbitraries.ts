/**
 * Generators for property tests: valid and invalid stream ids, and events of a catalog derived
 * from its Schemas. Each comes as a fast-check arbitrary (for `fc.assert`) and, where Effect's
 * own `Arbitrary` applies, as one of those too (for `it.effect.prop` and `Arbitrary.checkEffect`).
 *
 * `fast-check` (4.x) must be installed to use this module.
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { StreamId } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * fc.assert(fc.property(Arbitraries.streamId, (id) => StreamId.makeUnsafe(id) === id))
 * fc.assert(fc.property(Arbitraries.invalidStreamId, (id) => {
 *   try { StreamId.makeUnsafe(id); return false } catch { return true }
 * }))
 * ```
 * @since 0.1.0
 */
import { Arbitrary, Effect, Schema } from "effect"
import * as fc from "fast-check"
import type * as Event from "../Event.ts"
import * as StreamId from "../StreamId.ts"

const isValidStreamId = Schema.is(StreamId.StreamId)

// oxlint-disable-next-line no-control-regex
const controlOrSpace = /[\s\u0000-\u001f\u007f-\u009f]/g
// oxlint-disable-next-line no-control-regex
const control = /[\u0000-\u001f\u007f-\u009f]/g

/**
 * Stream ids in the usual `category-id` shape: `account-3f`, `order-17`, …
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { Arbitraries } from "eventcore/testing"
 *
 * fc.assert(fc.property(Arbitraries.categoryStreamId, (id) => /^[a-z]+-/.test(id)))
 * ```
 * @since 0.1.0
 */
export const categoryStreamId: fc.Arbitrary<StreamId.StreamId> = fc
  .tuple(
    fc.constantFrom("account", "order", "product", "customer", "saga"),
    fc.string({ unit: "binary-ascii", minLength: 1, maxLength: 24 }).map((s) => s.replace(controlOrSpace, "x"))
  )
  .map(([category, id]) => `${category}-${id}` as StreamId.StreamId)

/**
 * Any valid stream id: `category-id` shapes, arbitrary Unicode (1–255 code points, trimmed, no
 * control characters) and the longest allowed. Every value is already a `StreamId`.
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { Arbitraries } from "eventcore/testing"
 *
 * fc.assert(fc.property(Arbitraries.streamId, (id) => id === id.trim()))
 * ```
 * @since 0.1.0
 */
export const streamId: fc.Arbitrary<StreamId.StreamId> = fc.oneof(
  categoryStreamId,
  fc.string({ unit: "binary", minLength: 1, maxLength: StreamId.maxLength })
    .map((s) => s.trim())
    .filter(isValidStreamId),
  fc.string({ unit: "grapheme-ascii", minLength: StreamId.maxLength, maxLength: StreamId.maxLength })
    .map((s) => s.replace(controlOrSpace, "a"))
    .filter(isValidStreamId)
) as fc.Arbitrary<StreamId.StreamId>

/**
 * Why a generated stream id is invalid.
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { Arbitraries } from "eventcore/testing"
 *
 * // Only the ids that are too long.
 * const reason: Arbitraries.InvalidReason = "too-long"
 * const tooLong = Arbitraries.invalidStreamIdCase.filter((c) => c.reason === reason)
 * fc.assert(fc.property(tooLong, (c) => c.value.length > 255))
 * ```
 * @since 0.1.0
 */
export type InvalidReason = "empty" | "too-long" | "control-character"

/**
 * An invalid stream id and why it is invalid.
 *
 * @example
 * ```ts
 * import { Effect, Exit } from "effect"
 * import * as fc from "fast-check"
 * import { StreamId } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * const refused = (c: Arbitraries.InvalidStreamId) => Exit.isFailure(Effect.runSyncExit(StreamId.make(c.value)))
 * fc.assert(fc.property(Arbitraries.invalidStreamIdCase, refused))
 * ```
 * @since 0.1.0
 */
export interface InvalidStreamId {
  readonly value: string
  readonly reason: InvalidReason
}

const controlCharacter = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }),
  fc.integer({ min: 0x7f, max: 0x9f })
).map((code) => String.fromCharCode(code))

/**
 * Invalid stream ids with the reason: empty or whitespace only, longer than 255 code points
 * (after trimming), or containing a control character (inside, not at an end trimming removes).
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { Arbitraries } from "eventcore/testing"
 *
 * fc.assert(fc.property(Arbitraries.invalidStreamIdCase, (c) => c.reason !== "empty" || c.value.trim() === ""))
 * ```
 * @since 0.1.0
 */
export const invalidStreamIdCase: fc.Arbitrary<InvalidStreamId> = fc.oneof(
  fc.constantFrom("", " ", "   ", "\t", "\n", " \r\n ").map((value) => ({ value, reason: "empty" as const })),
  fc.string({ unit: "grapheme-ascii", minLength: StreamId.maxLength + 1, maxLength: StreamId.maxLength + 300 })
    .map((s) => ({ value: `x${s.replace(controlOrSpace, "a")}x`, reason: "too-long" as const })),
  fc.tuple(
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 20 }),
    controlCharacter,
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 20 })
  ).map(([a, c, b]) => ({ value: `a${a.trim()}${c}${b.trim()}b`, reason: "control-character" as const }))
)

/**
 * Invalid stream ids (see `invalidStreamIdCase`).
 *
 * @example
 * ```ts
 * import { Effect, Exit } from "effect"
 * import * as fc from "fast-check"
 * import { StreamId } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * fc.assert(fc.property(Arbitraries.invalidStreamId, (id) => Exit.isFailure(Effect.runSyncExit(StreamId.make(id)))))
 * ```
 * @since 0.1.0
 */
export const invalidStreamId: fc.Arbitrary<string> = invalidStreamIdCase.map((c) => c.value)

/**
 * Effect's own `Arbitrary` of the events of a catalog, derived from its current schemas, with
 * strings a store cannot keep (NUL, unpaired surrogates) made storable. Use it with
 * `it.effect.prop` or `Arbitrary.checkEffect`.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 * import { Event } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * const AccountEvents = Event.catalog(Schema.TaggedStruct("Deposited", { amount: Schema.Number }))
 *
 * it.effect.prop("every event encodes", [Arbitraries.eventArbitrary(AccountEvents)], ([event]) =>
 *   Effect.sync(() => assert.strictEqual(AccountEvents.encode(event)._tag, "Success")))
 * ```
 * @since 0.1.0
 */
export const eventArbitrary = <E extends Event.Tagged>(catalog: Event.Catalog<E>): Arbitrary.Arbitrary<E> =>
  Arbitrary.schema(catalog.schema).pipe(
    Arbitrary.map((event) => storable(event)),
    Arbitrary.filter(Schema.is(catalog.schema))
  )

// NUL and unpaired surrogates: strings a schema may allow but no store can keep.
// oxlint-disable-next-line no-control-regex
const unstorable = /\u0000|\p{Cs}/gu

/** The value with every unstorable character of its strings (keys too) replaced by U+FFFD. */
const storable = <A>(value: A): A => {
  if (typeof value === "string") return value.replace(unstorable, "\ufffd") as A
  if (Array.isArray(value)) return value.map(storable) as A
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [key, inner] of Object.entries(value)) out[storable(key)] = storable(inner)
    return out as A
  }
  return value
}

/**
 * A fast-check arbitrary of the events of a catalog, derived from its current schemas. Each
 * value is sampled from the Schema-derived generator with a seed fast-check chooses, so runs
 * are reproducible under fast-check's seed; shrinking moves towards small seeds and sizes.
 *
 * @example
 * ```ts
 * import * as fc from "fast-check"
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * const AccountEvents = Event.catalog(Schema.TaggedStruct("Deposited", { amount: Schema.Number }))
 *
 * fc.assert(fc.property(Arbitraries.event(AccountEvents), (event) => AccountEvents.encode(event)._tag === "Success"))
 * ```
 * @since 0.1.0
 */
export const event = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  options?: { readonly size?: number | undefined }
): fc.Arbitrary<E> => {
  const arbitrary = eventArbitrary(catalog)
  const maxSize = options?.size ?? 10
  return fc.tuple(fc.integer({ min: 0, max: 0x7fffffff }), fc.integer({ min: 0, max: maxSize })).map(([seed, size]) => {
    const [value] = Effect.runSync(Arbitrary.sampleEffect(arbitrary, { count: 1, seed, size }))
    if (value === undefined) throw new Error("eventcore/testing: the catalog's schema generated no event")
    return value
  })
}

/**
 * A fast-check arbitrary of event histories: lists of events of a catalog.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import * as fc from "fast-check"
 * import { Event } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const histories = Arbitraries.events(Event.catalog(Deposited), { maxLength: 5 })
 * fc.assert(fc.property(histories, (history) => history.every((event) => event._tag === "Deposited")))
 * ```
 * @since 0.1.0
 */
export const events = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  options?: { readonly minLength?: number | undefined; readonly maxLength?: number | undefined }
): fc.Arbitrary<Array<E>> =>
  fc.array(event(catalog), { minLength: options?.minLength ?? 0, maxLength: options?.maxLength ?? 20 })

/**
 * Effect's own `Arbitrary` of valid stream ids (1–255 characters, trimmed, no control
 * characters), for `it.effect.prop`.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { StreamId } from "eventcore"
 * import { Arbitraries } from "eventcore/testing"
 *
 * it.effect.prop("stream ids parse", [Arbitraries.streamIdArbitrary], ([id]) =>
 *   Effect.map(StreamId.make(id), (parsed) => parsed === id))
 * ```
 * @since 0.1.0
 */
export const streamIdArbitrary: Arbitrary.Arbitrary<StreamId.StreamId> = Arbitrary.schema(
  Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(StreamId.maxLength))
).pipe(
  Arbitrary.map((s) => {
    const cleaned = s.replace(control, "-").replace(unstorable, "-").trim()
    return (cleaned.length === 0 ? "stream" : cleaned) as StreamId.StreamId
  })
)
