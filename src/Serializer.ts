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
import { Context, Predicate, Result, type Schema } from "effect"
import { InvalidInput } from "./Errors.ts"

/**
 * A payload the serializer refused: the path inside the payload and why.
 *
 * @since 0.1.0
 */
export interface Refusal {
  readonly path: ReadonlyArray<string | number>
  readonly reason: string
}

/**
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

const refuse = (path: ReadonlyArray<string | number>, reason: string) => Result.fail<Refusal>({ path, reason })

/**
 * Checks that `value` is plain JSON. Succeeds with whether it holds object properties whose
 * value is `undefined`: JSON has no such thing and drops them, so such a value is stored
 * without them.
 */
const checkJson = (
  value: unknown,
  path: Array<string | number>,
  ancestors: Array<object>
): Result.Result<boolean, Refusal> => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return Result.succeed(false)
    case "number":
      return Number.isFinite(value) ? Result.succeed(false) : refuse(path, `${value} is not a JSON number`)
    case "object": {
      if (value === null) return Result.succeed(false)
      if (ancestors.includes(value)) return refuse(path, "the value contains itself (a cycle)")
      ancestors.push(value)
      let dropsUndefined = false
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          path.push(i)
          const inner = checkJson(value[i], path, ancestors)
          if (Result.isFailure(inner)) return inner
          dropsUndefined ||= inner.success
          path.pop()
        }
      } else {
        const proto = Object.getPrototypeOf(value)
        if (proto !== Object.prototype && proto !== null) {
          return refuse(path, `${value.constructor?.name ?? "an object"} is not plain JSON (encode it in the schema)`)
        }
        for (const key of Object.keys(value)) {
          const property = (value as Record<string, unknown>)[key]
          if (property === undefined) {
            dropsUndefined = true
            continue
          }
          path.push(key)
          const inner = checkJson(property, path, ancestors)
          if (Result.isFailure(inner)) return inner
          dropsUndefined ||= inner.success
          path.pop()
        }
      }
      ancestors.pop()
      return Result.succeed(dropsUndefined)
    }
    default:
      return refuse(path, `${Predicate.isUndefined(value) ? "undefined" : typeof value} is not JSON`)
  }
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
  serialize: (payload) =>
    Result.map(
      checkJson(payload, [], []),
      (dropsUndefined) => (dropsUndefined ? JSON.parse(JSON.stringify(payload)) : payload) as Schema.Json
    ),
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
 * Serializes the payload of event `index` of an append, as an `InvalidInput` naming the event
 * and the place in its payload when the serializer refuses it. For store implementations.
 *
 * @example
 * ```ts
 * import { Serializer } from "eventcore"
 *
 * Serializer.serializePayload(Serializer.json, { amount: Number.NaN }, 0, "Deposited")
 * // Failure: InvalidInput, "Invalid payload of event 0 (Deposited) for the json serializer at "amount": ..."
 * ```
 * @since 0.1.0
 */
export const serializePayload = (
  serializer: Serializer,
  payload: unknown,
  index: number,
  type: string
): Result.Result<Schema.Json, InvalidInput> =>
  Result.mapError(serializer.serialize(payload), (refusal) =>
    new InvalidInput({
      subject: `payload of event ${index} (${type}) for the ${serializer.name} serializer`,
      path: refusal.path,
      issue: refusal.reason
    }))
