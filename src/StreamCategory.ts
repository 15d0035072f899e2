/**
 * Stream categories: the naming convention `<category>-<id>` (`account-42`) in one place,
 * shared by commands, subscription filters and tests, instead of string concatenation
 * scattered through them.
 *
 * @since 0.3.0
 */
import { type Effect, Schema, SchemaTransformation } from "effect"
import type { InvalidInput } from "./Errors.ts"
import type { EventFilter } from "./EventStore.ts"
import * as StreamIdModule from "./StreamId.ts"

/**
 * One category of streams.
 *
 * @example
 * ```ts
 * import { Stream } from "effect"
 * import { EventStore, StreamCategory } from "eventcore"
 *
 * const Account: StreamCategory.StreamCategory<"account"> = StreamCategory.make("account")
 *
 * // Every event of one category, whatever the category.
 * const eventsOf = (category: StreamCategory.StreamCategory) => EventStore.readAll({ filter: category.filter })
 * const accountEvents = Stream.runCount(eventsOf(Account))
 * ```
 * @since 0.3.0
 */
export interface StreamCategory<Name extends string = string> {
  readonly name: Name
  /** What joins the category and the id (default `"-"`). */
  readonly separator: string
  /** `name + separator`: every stream id of the category starts with it. */
  readonly prefix: string
  /** The stream id of `id` in this category, failing with `InvalidInput` if it is not a valid stream id. */
  readonly make: (id: string | number | bigint) => Effect.Effect<StreamIdModule.StreamId, InvalidInput>
  /** As `make`, throwing `InvalidInput`; for constants and tests. */
  readonly makeUnsafe: (id: string | number | bigint) => StreamIdModule.StreamId
  /** The id part of a stream id of this category (`"42"` from `"account-42"`), or undefined. */
  readonly idOf: (streamId: string) => string | undefined
  /** Whether a stream id belongs to this category. */
  readonly is: (streamId: string) => boolean
  /** The subscription filter for this category; spread it to add event types. */
  readonly filter: EventFilter & { readonly streamPrefix: string }
  /**
   * A schema for command inputs that carry the bare id (`"42"`): decodes it to the category's
   * stream id (`account-42`), encodes it back, and fails with `InvalidInput` on an empty id or
   * one that makes no valid stream id.
   */
  readonly Id: Schema.Codec<StreamIdModule.StreamId, string>
  /** A schema for a whole stream id that must belong to this category. */
  readonly StreamId: Schema.Codec<StreamIdModule.StreamId, string>
}

/**
 * Defines a category. The name must not contain the separator, so that one category's
 * prefix is never the start of another's (`order-` would also match `order-line-7`).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, Event, StreamCategory } from "eventcore"
 *
 * const Account = StreamCategory.make("account")
 *
 * Account.makeUnsafe(42) // "account-42"
 * Account.idOf("account-42") // "42"
 * Account.is("order-1") // false
 *
 * const Opened = Schema.TaggedStruct("Opened", { owner: Schema.String })
 *
 * const Open = Command.make("Open", {
 *   input: Schema.Struct({ account: Account.Id, owner: Schema.String }), // { account: "42" } parses to account-42
 *   events: Event.catalog(Opened),
 *   streams: ({ account }) => ({ account }),
 *   initial: false,
 *   apply: () => true,
 *   handle: ({ input, state, streams }) =>
 *     state ? Effect.succeed([]) : Effect.succeed([streams.account.append(Opened.make({ owner: input.owner }))])
 * })
 *
 * // a subscription or projection over accounts only
 * const filter = { ...Account.filter, eventTypes: ["Opened"] }
 * ```
 * @since 0.3.0
 */
export const make = <const Name extends string>(
  name: Name,
  options?: { readonly separator?: string | undefined }
): StreamCategory<Name> => {
  const separator = options?.separator ?? "-"
  if (separator.length === 0) throw new Error("StreamCategory: the separator must not be empty")
  if (name.length === 0) throw new Error("StreamCategory: the name must not be empty")
  if (name.includes(separator)) {
    throw new Error(
      `StreamCategory: the name ${JSON.stringify(name)} contains the separator ${JSON.stringify(separator)}, ` +
        `so its prefix would also match another category's streams`
    )
  }
  const prefix = name + separator
  const nameIssue = StreamIdModule.issue(prefix + "x")
  if (nameIssue !== undefined) throw new Error(`StreamCategory ${JSON.stringify(name)}: ${nameIssue}`)

  const text = (id: string | number | bigint) => prefix + String(id)
  const idOf = (streamId: string) =>
    streamId.length > prefix.length && streamId.startsWith(prefix) ? streamId.slice(prefix.length) : undefined

  const Id = Schema.String.pipe(
    Schema.check(Schema.makeFilter((id: string) => id.length > 0 || `a ${name} id must not be empty`)),
    Schema.decodeTo(
      StreamIdModule.StreamId,
      SchemaTransformation.transform({
        decode: (id: string) => prefix + id,
        encode: (streamId: string) => streamId.startsWith(prefix) ? streamId.slice(prefix.length) : streamId
      })
    )
  )
  const StreamId = StreamIdModule.StreamId.pipe(
    Schema.check(
      Schema.makeFilter((streamId: string) =>
        idOf(streamId) !== undefined || `a ${name} stream id must start with ${JSON.stringify(prefix)}`
      )
    )
  )

  return {
    name,
    separator,
    prefix,
    make: (id) => StreamIdModule.make(text(id)),
    makeUnsafe: (id) => StreamIdModule.makeUnsafe(text(id)),
    idOf,
    is: (streamId) => idOf(streamId) !== undefined,
    filter: { streamPrefix: prefix },
    Id,
    StreamId
  }
}

/**
 * The category of a stream id under the `<category><separator><id>` convention: the part
 * before the first separator, or undefined when there is none.
 *
 * @example
 * ```ts
 * import { StreamCategory } from "eventcore"
 *
 * StreamCategory.of("account-42") // "account"
 * StreamCategory.of("singleton") // undefined
 * ```
 * @since 0.3.0
 */
export const of = (streamId: string, separator = "-"): string | undefined => {
  const at = streamId.indexOf(separator)
  return at > 0 ? streamId.slice(0, at) : undefined
}
