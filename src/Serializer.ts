/**
 * The serializer: how an event's encoded payload becomes what the store keeps, and back.
 *
 * Stores keep payloads as JSON (PostgreSQL in `jsonb`). The default serializer checks that a
 * payload really is JSON — no `NaN`, `Date`, `bigint`, class instances, functions or cycles
 * (object properties set to `undefined` are dropped, as JSON does) —
 * so a schema whose encoded form would not survive the store fails at append with an
 * `InvalidInput` naming where, instead of reading back as something else later (or only on
 * one backend). Replace it to transform payloads on their way in and out (encrypting fields,
 * compressing, renaming), by providing another value for the `Serializer` reference to the
 * store's layer.
 *
 * @since 0.1.0
 */
import { Context, Result, type Schema } from "effect"
import { InvalidInput } from "./Errors.ts"
import * as StorableJson from "./StorableJson.ts"

/**
 * A payload the serializer refused: the path inside the payload and why.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Serializer } from "eventcore"
 *
 * const explain = (refusal: Serializer.Refusal) => `at ${refusal.path.join(".") || "the top"}: ${refusal.reason}`
 * const why = Result.match(Serializer.json.serialize({ at: new Date() }), { onFailure: explain, onSuccess: () => "ok" })
 * ```
 * @since 0.1.0
 */
export type Refusal = StorableJson.Refusal

/**
 * A payload format: what the store keeps of an encoded payload, and back.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { Serializer } from "eventcore"
 *
 * // Refuses payloads larger than 64 KiB of JSON before the store sees them.
 * const bounded: Serializer.Serializer = {
 *   name: "bounded-json",
 *   serialize: (payload) =>
 *     Result.flatMap(Serializer.json.serialize(payload), (json) =>
 *       JSON.stringify(json).length > 64 * 1024
 *         ? Result.fail({ path: [], reason: "payload over 64 KiB" })
 *         : Result.succeed(json)),
 *   deserialize: Serializer.json.deserialize
 * }
 * ```
 * @since 0.1.0
 */
export interface Serializer {
  /** Names the format, for error messages and diagnostics. */
  readonly name: string
  /** The encoded payload to what the store keeps. */
  readonly serialize: (payload: unknown) => Result.Result<Schema.Json, Refusal>
  /** What the store kept back to the encoded payload the event schema decodes. */
  readonly deserialize: (stored: Schema.Json) => Result.Result<unknown, Refusal>
}

/**
 * The default: payloads are stored as the JSON they are, after checking that they are JSON.
 *
 * @example
 * ```ts
 * import { Serializer } from "eventcore"
 *
 * Serializer.json.serialize({ amount: 10 })          // Success
 * Serializer.json.serialize({ at: new Date() })      // Failure: Date is not plain JSON, at ["at"]
 * ```
 * @since 0.1.0
 */
export const json: Serializer = {
  name: "json",
  serialize: (payload) => {
    const refusal = StorableJson.check(payload)
    return refusal === undefined ? Result.succeed(payload as Schema.Json) : Result.fail(refusal)
  },
  deserialize: Result.succeed
}

/**
 * The serializer stores use; JSON unless another is provided.
 *
 * @example
 * ```ts
 * import { Layer, Result } from "effect"
 * import { Serializer } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * // Keeps every payload inside an envelope.
 * const Enveloped: Serializer.Serializer = {
 *   name: "enveloped-json",
 *   serialize: (payload) => Result.map(Serializer.json.serialize(payload), (data) => ({ data })),
 *   deserialize: (stored) => Result.succeed((stored as { readonly data: unknown }).data)
 * }
 * const Store = MemoryEventStore.layer.pipe(Layer.provide(Layer.succeed(Serializer.Serializer, Enveloped)))
 * ```
 * @since 0.1.0
 */
export const Serializer: Context.Reference<Serializer> = Context.Reference<Serializer>("eventcore/Serializer", {
  defaultValue: () => json
})

/**
 * How a store keeps checked JSON: as text (`StorableJson.encode`, what PostgreSQL receives) or
 * as the value a `jsonb` column gives back (`StorableJson.toStored`, what the memory store
 * keeps).
 *
 * @example
 * ```ts
 * import { Result, type Schema } from "effect"
 * import { type Serializer, StorableJson } from "eventcore"
 *
 * // The two ways stores keep checked JSON: as text, or as the value `jsonb` gives back.
 * const asText: Serializer.Keep<string> = StorableJson.encode
 * const asValue: Serializer.Keep<Schema.Json> = StorableJson.toStored
 * const size = Result.map(asText({ amount: 10 }, StorableJson.defaultLimits), (text) => text.length)
 * ```
 * @since 0.2.0
 */
export type Keep<A> = (value: unknown, limits: StorableJson.Limits) => Result.Result<A, StorableJson.Refusal>

/**
 * What a store keeps for the payload of event `index` of an append: the serializer's output,
 * checked against `StorableJson` (within `limits`), in the form `keep` gives — or an
 * `InvalidInput` naming the event and the place in its payload. Every store calls it (or
 * `encodePayload`), so every store refuses the same payloads the same way.
 *
 * @example
 * ```ts
 * import { Serializer, StorableJson } from "eventcore"
 *
 * // what the memory store keeps: the value a jsonb column would give back
 * Serializer.keepPayload(Serializer.json, { b: 1, a: -0 }, 0, "Noted", StorableJson.defaultLimits, StorableJson.toStored)
 * // Success: { a: 0, b: 1 }
 * ```
 * @since 0.2.0
 */
export const keepPayload = <A>(
  serializer: Serializer,
  payload: unknown,
  index: number,
  type: string,
  limits: StorableJson.Limits,
  keep: Keep<A>
): Result.Result<A, InvalidInput> => {
  const refused = (refusal: StorableJson.Refusal) =>
    Result.fail(
      new InvalidInput({
        subject: `payload of event ${index} (${type}) for the ${serializer.name} serializer`,
        path: refusal.path,
        issue: refusal.reason
      })
    )
  // The default serializer's output is its input, once checked: `keep` checks it once.
  let stored: unknown = payload
  if (serializer !== json) {
    const serialized = serializer.serialize(payload)
    if (Result.isFailure(serialized)) return refused(serialized.failure)
    stored = serialized.success
  }
  const kept = keep(stored, limits)
  if (Result.isFailure(kept)) return refused(kept.failure)
  // A serializer must read back what it wrote: found here, on every store alike, rather than
  // by the first reader.
  if (serializer !== json) {
    const back = serializer.deserialize(
      typeof kept.success === "string" ? StorableJson.asStored(kept.success) : kept.success as Schema.Json
    )
    if (Result.isFailure(back)) {
      return refused({ path: back.failure.path, reason: `it does not read back: ${back.failure.reason}` })
    }
  }
  return Result.succeed(kept.success)
}

/**
 * What a store keeps for the payload of event `index` of an append, as JSON text (what
 * PostgreSQL receives): `keepPayload` with `StorableJson.encode`.
 *
 * @example
 * ```ts
 * import { Serializer } from "eventcore"
 *
 * Serializer.encodePayload(Serializer.json, { amount: Number.NaN }, 0, "Deposited")
 * // Failure: InvalidInput, "Invalid payload of event 0 (Deposited) for the json serializer at "amount": ..."
 * ```
 * @since 0.2.0
 */
export const encodePayload = (
  serializer: Serializer,
  payload: unknown,
  index: number,
  type: string,
  limits: StorableJson.Limits = StorableJson.defaultLimits
): Result.Result<string, InvalidInput> => keepPayload(serializer, payload, index, type, limits, StorableJson.encode)
