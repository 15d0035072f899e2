/**
 * Event types are Effect Schemas. A catalog groups the event types a command, projection or
 * subscription understands, encodes events for the store and decodes stored ones, upcasting
 * events written with older schema versions to the current type.
 *
 * @since 0.1.0
 */
import { Exit, Result, Schema, SchemaAST } from "effect"
import { EventDecodeError, InvalidInput } from "./Errors.ts"
import { memoOf, type StoredEvent } from "./StoredEvent.ts"

/**
 * The shape every event has: a `_tag` that is its stored type name.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Event } from "eventcore"
 *
 * // Anything a catalog decodes has a `_tag`: its stored type name.
 * const logType = <E extends Event.Tagged>(event: E) => Effect.log(`handling ${event._tag}`)
 * ```
 * @since 0.1.0
 */
export interface Tagged {
  readonly _tag: string
}

/**
 * A schema for one event type: a tagged struct (or any schema whose type carries `_tag`)
 * whose decoding and encoding need no services.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited: Event.EventSchema<{ readonly _tag: "Deposited"; readonly amount: number }> = Schema.TaggedStruct(
 *   "Deposited",
 *   { amount: Schema.Number }
 * )
 * const catalog = Event.catalog(Deposited)
 * ```
 * @since 0.1.0
 */
export type EventSchema<A extends Tagged = Tagged> = Schema.Codec<A, unknown, never, never>

/**
 * One step of an event type's history: how a payload written with an older schema version
 * becomes the encoded payload of the next version.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, currency: Schema.String })
 * const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
 *
 * // Version 1 to version 2: cents became an amount with a currency.
 * const fromV1: Event.Upcast = Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents, currency: "EUR" }))
 * const catalog = Event.catalog(Event.versioned(Deposited, [fromV1]))
 * ```
 * @since 0.1.0
 */
export interface Upcast {
  readonly from: Schema.Codec<unknown, unknown, never, never>
  readonly to: (value: unknown) => unknown
}

/**
 * Declares how a payload of an older version becomes the next version's encoded payload.
 * The result is decoded with the next version's schema, so a wrong upcast is caught there.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
 * const step = Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents, currency: "EUR" }))
 * ```
 * @since 0.1.0
 */
export const upcast = <From extends Schema.Codec<unknown, unknown, never, never>>(
  from: From,
  to: (value: From["Type"]) => unknown
): Upcast => ({ from, to: to as (value: unknown) => unknown })

/**
 * An event type with a history: its current schema is version `upcasts.length + 1`, and
 * `upcasts[i]` reads version `i + 1`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, currency: Schema.String })
 * const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
 *
 * const DepositedVersions: Event.Versioned<typeof Deposited> = Event.versioned(Deposited, [
 *   Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents, currency: "EUR" }))
 * ])
 * DepositedVersions.version // 2: new events are written as version 2
 * ```
 * @since 0.1.0
 */
export interface Versioned<S extends EventSchema> {
  readonly _tag: "eventcore/Event/Versioned"
  readonly schema: S
  readonly version: number
  readonly upcasts: ReadonlyArray<Upcast>
}

/**
 * Declares older versions of an event type. Reading an old event yields the current type;
 * writing always writes the current version.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, currency: Schema.String })
 * const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
 *
 * const catalog = Event.catalog(
 *   Event.versioned(Deposited, [Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents, currency: "EUR" }))])
 * )
 * ```
 * @since 0.1.0
 */
export const versioned = <S extends EventSchema>(schema: S, upcasts: ReadonlyArray<Upcast>): Versioned<S> => ({
  _tag: "eventcore/Event/Versioned",
  schema,
  version: upcasts.length + 1,
  upcasts
})

/**
 * A member of a catalog: a plain event schema (version 1) or a versioned one.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Opened = Schema.TaggedStruct("Opened", {})
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const DepositedV1 = Schema.Struct({ _tag: Schema.Literal("Deposited"), cents: Schema.Number })
 *
 * // A plain schema and a versioned one, side by side in one catalog.
 * const members = [
 *   Opened,
 *   Event.versioned(Deposited, [Event.upcast(DepositedV1, (v1) => ({ _tag: "Deposited", amount: v1.cents }))])
 * ] as const satisfies ReadonlyArray<Event.Member>
 * const AccountEvents = Event.catalog(...members)
 * ```
 * @since 0.1.0
 */
export type Member = EventSchema | Versioned<EventSchema>

/**
 * The event type a catalog member describes.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const DepositedVersions = Event.versioned(Deposited, [])
 *
 * // The current type, whether the member is versioned or not.
 * const event: Event.TypeOf<typeof DepositedVersions> = Deposited.make({ amount: 5 })
 * ```
 * @since 0.1.0
 */
export type TypeOf<M> = M extends Versioned<infer S> ? S["Type"] : M extends EventSchema ? M["Type"] : never

/**
 * An event encoded for the store.
 *
 * @example
 * ```ts
 * import { Result, Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const describe = (encoded: Event.Encoded) => `${encoded.type} v${encoded.schemaVersion}: ${JSON.stringify(encoded.payload)}`
 * const line = Result.map(Event.catalog(Deposited).encode(Deposited.make({ amount: 5 })), describe)
 * ```
 * @since 0.1.0
 */
export interface Encoded {
  readonly type: string
  readonly schemaVersion: number
  readonly payload: unknown
}

/**
 * The event types a reader or writer understands.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import type { Event, StoredEvent } from "eventcore"
 *
 * // Which stored events a catalog understands, and decodes without error.
 * const readable = <E extends Event.Tagged>(catalog: Event.Catalog<E>, events: ReadonlyArray<StoredEvent.StoredEvent>) =>
 *   events.filter((stored) => catalog.has(stored.type) && Result.isSuccess(catalog.decode(stored)))
 * ```
 * @since 0.1.0
 */
export interface Catalog<E extends Tagged> {
  /** The stored type names of the catalog's events, for store-side filters. */
  readonly types: ReadonlyArray<string>
  /** The current schema of every member, as a union. */
  readonly schema: Schema.Codec<E, unknown, never, never>
  /** Encodes an event at its current version. */
  readonly encode: (event: E) => Result.Result<Encoded, InvalidInput>
  /** Decodes a stored event, upcasting older versions (memoized for stores that support it). */
  readonly decode: (event: StoredEvent) => Result.Result<E, EventDecodeError>
  /** Whether the catalog knows a stored type. */
  readonly has: (type: string) => boolean
}

// oxlint-disable-next-line no-control-regex
const unfitForTypeName = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u

/**
 * What is wrong with a string as a stored event type name, or undefined: it must be 1–255
 * characters, trimmed, without control characters, and well-formed Unicode (no unpaired
 * surrogates, which PostgreSQL would store as U+FFFD). Catalogs check their tags with it, and
 * stores the type of every event appended.
 *
 * @example
 * ```ts
 * import { Event } from "eventcore"
 *
 * Event.typeNameIssue("MoneyDeposited") // undefined
 * Event.typeNameIssue("")               // "an event type name must not be empty"
 * ```
 * @since 0.2.0
 */
export const typeNameIssue = (name: unknown): string | undefined => {
  if (typeof name !== "string") {
    return `an event type name must be a string, got ${name === null ? "null" : typeof name}`
  }
  if (knownGood.has(name)) return undefined
  const issue = typeNameIssueOf(name)
  if (issue === undefined) {
    // Stores check the type of every event appended: remember the (few) names that passed.
    if (knownGood.size >= 4_096) knownGood.clear()
    knownGood.add(name)
  }
  return issue
}

const knownGood = new Set<string>()

const typeNameIssueOf = (name: string): string | undefined => {
  if (name.length === 0) return "an event type name must not be empty"
  if (name.trim() !== name) return "an event type name must not start or end with whitespace"
  if (unfitForTypeName.test(name)) {
    return "an event type name must not contain control characters or unpaired surrogates"
  }
  if (name.length > 255 && [...name].length > 255) return "an event type name must be at most 255 characters long"
  return undefined
}

const tagOf = (schema: EventSchema): string => {
  const ast = SchemaAST.toType(schema.ast)
  if (SchemaAST.isObjects(ast)) {
    const tag = ast.propertySignatures.find((p) => p.name === "_tag")
    if (tag !== undefined && SchemaAST.isLiteral(tag.type) && typeof tag.type.literal === "string") {
      const issue = typeNameIssue(tag.type.literal)
      if (issue !== undefined) throw new Error(`eventcore: ${JSON.stringify(tag.type.literal)}: ${issue}`)
      return tag.type.literal
    }
  }
  throw new Error("eventcore: an event schema must be a struct with a string literal `_tag` (Schema.TaggedStruct)")
}

interface Entry {
  readonly version: number
  readonly decodeCurrent: (u: unknown) => Exit.Exit<Tagged, Schema.SchemaError>
  readonly encode: (a: Tagged) => Exit.Exit<unknown, Schema.SchemaError>
  readonly upcasts: ReadonlyArray<{
    readonly decode: (u: unknown) => Exit.Exit<unknown, Schema.SchemaError>
    readonly to: (value: unknown) => unknown
  }>
}

const issueOf = (exit: Exit.Failure<unknown, Schema.SchemaError>): string => {
  const error = exit.cause.reasons.find((r) => r._tag === "Fail")
  return error !== undefined && error._tag === "Fail" ? error.error.message : String(exit.cause)
}

/**
 * Builds a catalog from event schemas (version 1) and versioned event types.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const AccountEvents = Event.catalog(Opened, Deposited)
 * type AccountEvent = Event.Type<typeof AccountEvents> // Opened | Deposited
 * ```
 * @since 0.1.0
 */
export const catalog = <const Members extends ReadonlyArray<Member>>(
  ...members: Members
): Catalog<TypeOf<Members[number]>> => {
  type E = TypeOf<Members[number]>
  const entries = new Map<string, Entry>()
  const schemas: Array<EventSchema> = []
  for (const member of members) {
    const isVersioned = "_tag" in member && member._tag === "eventcore/Event/Versioned"
    const schema: EventSchema = isVersioned ? (member as Versioned<EventSchema>).schema : member as EventSchema
    const upcasts = isVersioned ? (member as Versioned<EventSchema>).upcasts : []
    const type = tagOf(schema)
    if (entries.has(type)) throw new Error(`eventcore: event type ${JSON.stringify(type)} appears twice in a catalog`)
    schemas.push(schema)
    entries.set(type, {
      version: upcasts.length + 1,
      decodeCurrent: Schema.decodeUnknownExit(schema),
      encode: Schema.encodeUnknownExit(schema),
      upcasts: upcasts.map((u) => ({ decode: Schema.decodeUnknownExit(u.from), to: u.to }))
    })
  }
  const owner = {}

  const fail = (event: StoredEvent, reason: string) =>
    Result.fail(
      new EventDecodeError({
        streamId: event.streamId,
        streamVersion: event.streamVersion,
        type: event.type,
        schemaVersion: event.schemaVersion,
        reason
      })
    )

  const decode = (event: StoredEvent): Result.Result<E, EventDecodeError> => {
    const memo = memoOf(event)
    if (memo !== undefined && memo.owner === owner) return memo.result as Result.Result<E, EventDecodeError>
    const result = decodeUncached(event)
    if (memo !== undefined && Result.isSuccess(result)) {
      memo.owner = owner
      memo.result = result
    }
    return result
  }

  const decodeUncached = (event: StoredEvent): Result.Result<E, EventDecodeError> => {
    const entry = entries.get(event.type)
    if (entry === undefined) {
      return fail(event, `unknown event type (this reader knows ${[...entries.keys()].join(", ")})`)
    }
    if (!Number.isInteger(event.schemaVersion) || event.schemaVersion < 1 || event.schemaVersion > entry.version) {
      return fail(event, `unknown schema version (this reader knows versions 1..${entry.version})`)
    }
    let payload = event.payload
    for (let v = event.schemaVersion; v < entry.version; v++) {
      const step = entry.upcasts[v - 1]
      if (step === undefined) return fail(event, `no upcast from version ${v}`)
      const old = step.decode(payload)
      if (old._tag === "Failure") return fail(event, `payload does not match schema version ${v}: ${issueOf(old)}`)
      try {
        payload = step.to(old.value)
      } catch (cause) {
        return fail(event, `upcast from version ${v} threw: ${cause instanceof Error ? cause.message : String(cause)}`)
      }
    }
    const current = entry.decodeCurrent(payload)
    if (current._tag === "Failure") {
      return fail(event, `payload does not match schema version ${entry.version}: ${issueOf(current)}`)
    }
    return Result.succeed(current.value as E)
  }

  const encode = (event: E): Result.Result<Encoded, InvalidInput> => {
    const entry = entries.get(event._tag)
    if (entry === undefined) {
      return Result.fail(
        new InvalidInput({
          subject: "event",
          path: ["_tag"],
          issue: `unknown event type ${JSON.stringify(event._tag)}`
        })
      )
    }
    const exit = entry.encode(event)
    if (exit._tag === "Failure") {
      const error = exit.cause.reasons.find((r) => r._tag === "Fail")
      return Result.fail(
        error !== undefined && error._tag === "Fail"
          ? InvalidInput.fromIssue(`event ${event._tag}`, error.error.issue)
          : new InvalidInput({ subject: `event ${event._tag}`, path: [], issue: String(exit.cause) })
      )
    }
    return Result.succeed({ type: event._tag, schemaVersion: entry.version, payload: exit.value })
  }

  return {
    types: [...entries.keys()],
    schema: Schema.Union(schemas) as unknown as Schema.Codec<E, unknown, never, never>,
    encode,
    decode,
    has: (type) => entries.has(type)
  }
}

/**
 * The event type of a catalog.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 * const AccountEvents = Event.catalog(Deposited, Withdrawn)
 *
 * type AccountEvent = Event.Type<typeof AccountEvents> // Deposited | Withdrawn
 * const change = (event: AccountEvent) => event._tag === "Deposited" ? event.amount : -event.amount
 * ```
 * @since 0.1.0
 */
export type Type<C> = C extends Catalog<infer E> ? E : never
