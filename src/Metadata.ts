/**
 * Event metadata: set once by the caller of a command and carried into every event the
 * command writes.
 *
 * @since 0.1.0
 */
import { Context, Effect, Result, Schema } from "effect"
import { dual } from "effect/Function"
import { InvalidInput } from "./Errors.ts"
import * as Causation from "./internal/Causation.ts"
import * as StorableJson from "./StorableJson.ts"

/**
 * The metadata stored with every event.
 *
 * - `correlationId` ties together everything one request caused;
 * - `causationId` names what directly caused this command (a request id, or the event a
 *   process manager reacted to);
 * - `userId` who asked, when known;
 * - `custom` anything else, as JSON.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Metadata } from "eventcore"
 *
 * Schema.decodeUnknownSync(Metadata.Metadata)({ correlationId: "c", causationId: "c", custom: {} })
 * ```
 * @since 0.1.0
 */
export const Metadata = Schema.Struct({
  correlationId: Schema.String,
  causationId: Schema.String,
  userId: Schema.optionalKey(Schema.String),
  custom: Schema.Record(Schema.String, Schema.Json)
})

/**
 * The metadata every stored event carries.
 *
 * @example
 * ```ts
 * import type { Metadata, StoredEvent } from "eventcore"
 *
 * const traceOf = (event: StoredEvent.StoredEvent) => {
 *   const metadata: Metadata.Metadata = event.metadata
 *   return `correlation ${metadata.correlationId}, caused by ${metadata.causationId}, user ${metadata.userId ?? "none"}`
 * }
 * ```
 * @since 0.1.0
 */
export type Metadata = typeof Metadata.Type

/**
 * What a caller may set when executing a command. Missing ids default to the execution's
 * own id, so every command's events are correlated even when the caller sets nothing.
 *
 * @example
 * ```ts
 * import type { Metadata } from "eventcore"
 *
 * const metadata: Metadata.Input = { correlationId: "req-7", userId: "alice", custom: { ip: "10.0.0.1" } }
 * ```
 * @since 0.1.0
 */
export interface Input {
  readonly correlationId?: string
  readonly causationId?: string
  readonly userId?: string
  readonly custom?: Readonly<Record<string, Schema.Json>>
}

/**
 * Completes caller-supplied metadata with defaults.
 *
 * @example
 * ```ts
 * import { Metadata } from "eventcore"
 *
 * Metadata.fromInput({ userId: "alice" }, "exec-1")
 * // { custom: {}, userId: "alice", causationId: "exec-1", correlationId: "exec-1" }
 * ```
 * @since 0.1.0
 */
export const fromInput = (input: Input | undefined, executionId: string): Metadata => {
  const correlationId = input?.correlationId ?? executionId
  const custom = input?.custom ?? {}
  const causationId = input?.causationId ?? correlationId
  // Built in the order `jsonb` keeps keys (by length, then bytes), so that a store has nothing
  // to reorder.
  return input?.userId === undefined
    ? { custom, causationId, correlationId }
    : { custom, userId: input.userId, causationId, correlationId }
}

/**
 * Metadata for everything executed within an effect: HTTP middleware sets the request's
 * correlation id and user once (`Metadata.withAmbient`), and every command executed while
 * handling the request carries them, merged with what each call passes (`execute(..., {
 * metadata })` wins field by field; `custom` is merged key by key). A projection runner sets it
 * to the event it is processing (`causedBy`), so a command a handler executes in reaction is
 * caused by that event and keeps its correlation, with nothing to pass by hand.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Metadata } from "eventcore"
 *
 * const current = Effect.gen(function*() {
 *   return yield* Metadata.Ambient // {} unless someone set it
 * })
 * ```
 * @since 0.3.0
 */
export const Ambient: Context.Reference<Input> = Context.Reference<Input>("eventcore/Metadata/Ambient", {
  defaultValue: () => ({})
})

/**
 * `inner` over `outer`, field by field; `custom` merged key by key (`inner`'s keys win).
 *
 * @example
 * ```ts
 * import { Metadata } from "eventcore"
 *
 * Metadata.merge({ correlationId: "req-1", custom: { tenant: "a" } }, { userId: "ann", custom: { ip: "10.0.0.1" } })
 * // { correlationId: "req-1", userId: "ann", custom: { tenant: "a", ip: "10.0.0.1" } }
 * ```
 * @since 0.3.0
 */
export const merge = (outer: Input, inner: Input | undefined): Input => {
  if (inner === undefined) return outer
  const correlationId = inner.correlationId ?? outer.correlationId
  const causationId = inner.causationId ?? outer.causationId
  const userId = inner.userId ?? outer.userId
  const custom = outer.custom === undefined
    ? inner.custom
    : inner.custom === undefined
    ? outer.custom
    : { ...outer.custom, ...inner.custom }
  return {
    ...(correlationId === undefined ? {} : { correlationId }),
    ...(causationId === undefined ? {} : { causationId }),
    ...(userId === undefined ? {} : { userId }),
    ...(custom === undefined ? {} : { custom })
  }
}

/**
 * Runs `self` with `metadata` merged over the ambient metadata already set.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor, Metadata } from "eventcore"
 *
 * declare const PlaceOrder: Command.Any
 *
 * // e.g. in HTTP middleware: every command of the request carries these
 * const handleRequest = (requestId: string, userId: string) =>
 *   Effect.gen(function*() {
 *     yield* CommandExecutor.execute(PlaceOrder, { cart: "c-1" })
 *   }).pipe(Metadata.withAmbient({ correlationId: requestId, causationId: requestId, userId }))
 * ```
 * @since 0.3.0
 */
export const withAmbient: {
  (metadata: Input): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: Input): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: Input): Effect.Effect<A, E, R> =>
    Effect.withFiber((fiber) => Effect.provideService(self, Ambient, merge(current(fiber), metadata)))
)

/**
 * The ambient metadata in effect for a fiber: what `withAmbient` set, over the cause of the event
 * a projection runner is processing, if any.
 *
 * @internal
 */
export const current = (fiber: { getRef<A>(ref: Context.Reference<A>): A }): Input => {
  const ambient = fiber.getRef(Ambient)
  const cell = fiber.getRef(Causation.Current)
  // A handler's own `withAmbient` made a new object, which already includes the cause.
  if (cell === undefined || cell.event === undefined || ambient !== cell.outer) return ambient
  return merge(ambient, causedBy(cell.event))
}

/**
 * The metadata of a command executed in reaction to `event`: caused by the event, in its
 * correlation, on behalf of its user. Projection runners set it as the ambient metadata around
 * every event they process.
 *
 * @example
 * ```ts
 * import { Metadata } from "eventcore"
 *
 * Metadata.causedBy({ eventId: "e-1", metadata: { correlationId: "req-1", causationId: "req-1", custom: {} } })
 * // { correlationId: "req-1", causationId: "e-1" }
 * ```
 * @since 0.3.0
 */
export const causedBy = (event: { readonly eventId: string; readonly metadata: Metadata }): Input =>
  event.metadata.userId === undefined
    ? { correlationId: event.metadata.correlationId, causationId: event.eventId }
    : { correlationId: event.metadata.correlationId, causationId: event.eventId, userId: event.metadata.userId }

const fields = new Set(["correlationId", "causationId", "userId", "custom"])

const isPlainObject = (u: unknown): u is Record<string, unknown> => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

/** Where metadata breaks its shape, or undefined. */
const shapeIssue = (metadata: unknown): StorableJson.Refusal | undefined => {
  if (!isPlainObject(metadata)) return { path: [], reason: "metadata must be an object" }
  for (const id of ["correlationId", "causationId"] as const) {
    if (typeof metadata[id] !== "string") return { path: [id], reason: `${id} must be a string` }
  }
  if (metadata["userId"] !== undefined && typeof metadata["userId"] !== "string") {
    return { path: ["userId"], reason: "userId must be a string when set" }
  }
  if (!isPlainObject(metadata["custom"])) return { path: ["custom"], reason: "custom must be an object" }
  for (const key of Object.keys(metadata)) {
    if (!fields.has(key)) return { path: [key], reason: `${key} is not a metadata field` }
  }
  return undefined
}

/**
 * What a store keeps for the metadata of event `index` of an append: checked for its shape
 * (string ids, an optional string `userId`, `custom` an object, nothing else) and against
 * `StorableJson` (JSON values, no NUL or unpaired surrogates, within `limits`), in the form
 * `keep` gives — or an `InvalidInput` naming the event and the field. Every store calls it (or
 * `encode`), so bad metadata fails the same way everywhere and never reaches storage.
 *
 * @example
 * ```ts
 * import { Metadata, StorableJson } from "eventcore"
 *
 * Metadata.keep({ correlationId: "c", causationId: "c", custom: {} }, 0, StorableJson.defaultLimits, StorableJson.toStored)
 * ```
 * @since 0.2.0
 */
export const keep = <A>(
  metadata: unknown,
  index: number,
  limits: StorableJson.Limits,
  keeping: (value: unknown, limits: StorableJson.Limits) => Result.Result<A, StorableJson.Refusal>
): Result.Result<A, InvalidInput> => {
  const refused = (refusal: StorableJson.Refusal) =>
    Result.fail(new InvalidInput({ subject: `metadata of event ${index}`, path: refusal.path, issue: refusal.reason }))
  const shape = shapeIssue(metadata)
  if (shape !== undefined) return refused(shape)
  const kept = keeping(metadata, limits)
  return Result.isSuccess(kept) ? Result.succeed(kept.success) : refused(kept.failure)
}

/**
 * What a store keeps for the metadata of event `index` of an append, as JSON text: `keep` with
 * `StorableJson.encode`.
 *
 * @example
 * ```ts
 * import { Metadata } from "eventcore"
 *
 * Metadata.encode({ correlationId: "c", causationId: "c", custom: { n: Number.NaN } }, 0)
 * // Failure: InvalidInput at "custom"."n": NaN is not a JSON number
 * ```
 * @since 0.2.0
 */
export const encode = (
  metadata: unknown,
  index: number,
  limits: StorableJson.Limits = StorableJson.defaultLimits
): Result.Result<string, InvalidInput> => keep(metadata, index, limits, StorableJson.encode)

/**
 * Whether a value read back from a store is metadata: the shape `encode` checks.
 *
 * @example
 * ```ts
 * import { Metadata } from "eventcore"
 *
 * Metadata.is({ correlationId: "c", causationId: "c", custom: {} }) // true
 * Metadata.is({ correlationId: "c", causationId: "c", userId: 42, custom: {} }) // false
 * ```
 * @since 0.2.0
 */
export const is = (value: unknown): value is Metadata => shapeIssue(value) === undefined
