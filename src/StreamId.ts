/**
 * Stream identifiers, parsed at the boundary: trimmed, 1–255 characters (code points),
 * no control characters, well-formed Unicode (no unpaired surrogates). Inside the library a `StreamId` is always valid.
 *
 * @since 0.1.0
 */
import { Cause, Effect, type Exit, Schema } from "effect"
import { InvalidInput } from "./Errors.ts"

/**
 * The longest stream id, in code points.
 *
 * @example
 * ```ts
 * import { StreamId } from "eventcore"
 *
 * const tooLong = StreamId.make("x".repeat(StreamId.maxLength + 1)) // fails with InvalidInput
 * ```
 * @since 0.1.0
 */
export const maxLength = 255

// oxlint-disable-next-line no-control-regex
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/

// An unpaired surrogate: ill-formed UTF-16, which has no UTF-8 form. PostgreSQL would store
// U+FFFD in its place, so two different ids would name one stream.
const loneSurrogate = /\p{Cs}/u

const codePointLength = (s: string): number => {
  let n = 0
  for (const _ of s) n++
  return n
}

/**
 * What is wrong with a string as an already parsed stream id, or undefined: the rules of the
 * schema, and trimmed. Stores check the ids of every request with it, so that a caller that
 * bypasses the schema (JavaScript, a cast) gets the same `InvalidInput` on every backend.
 *
 * @example
 * ```ts
 * import { StreamId } from "eventcore"
 *
 * StreamId.issue("account-1") // undefined
 * StreamId.issue("\ud800")   // "a stream id must be well-formed Unicode (it holds an unpaired surrogate)"
 * ```
 * @since 0.2.0
 */
export const issue = (id: unknown): string | undefined => {
  if (typeof id !== "string") return `a stream id must be a string, got ${id === null ? "null" : typeof id}`
  // One pass over the code units: control characters, surrogates, and the code point count.
  let codePoints = 0
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    codePoints++
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return "a stream id must not contain control characters"
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = id.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) {
        return "a stream id must be well-formed Unicode (it holds an unpaired surrogate)"
      }
      i++
    }
  }
  if (codePoints === 0 || id.trim().length === 0) return "a stream id must not be empty"
  if (id.trim() !== id) return "a stream id must not start or end with whitespace"
  if (codePoints > maxLength) return `a stream id must be at most ${maxLength} characters long`
  return undefined
}

/**
 * The schema of a stream id: decodes any string by trimming it and checking its length and
 * characters. Use it inside command input schemas.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { StreamId } from "eventcore"
 *
 * const Input = Schema.Struct({ account: StreamId.StreamId })
 * ```
 * @since 0.1.0
 */
export const StreamId = Schema.Trim.pipe(
  Schema.check(
    Schema.makeFilter((s: string) => s.length > 0 || "a stream id must not be empty"),
    Schema.makeFilter((s: string) =>
      codePointLength(s) <= maxLength || `a stream id must be at most ${maxLength} characters long`
    ),
    Schema.makeFilter((s: string) => !controlCharacter.test(s) || "a stream id must not contain control characters"),
    Schema.makeFilter((s: string) =>
      !loneSurrogate.test(s) || "a stream id must be well-formed Unicode (it holds an unpaired surrogate)"
    )
  ),
  Schema.brand("eventcore/StreamId")
)

/**
 * A valid stream id (trimmed, 1..255 code points, no control characters), branded.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { EventStore, StreamId } from "eventcore"
 *
 * const history = (raw: string) =>
 *   Effect.flatMap(StreamId.make(raw), (streamId: StreamId.StreamId) => EventStore.readStream(streamId))
 * ```
 * @since 0.1.0
 */
export type StreamId = typeof StreamId.Type

const decode = Schema.decodeUnknownExit(StreamId)

/**
 * Parses a stream id, failing with `InvalidInput` that says what is wrong.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { StreamId } from "eventcore"
 *
 * const id = Effect.runSync(StreamId.make("account-42"))
 * ```
 * @since 0.1.0
 */
export const make = (input: string): Effect.Effect<StreamId, InvalidInput> => {
  const exit = decode(input)
  if (exit._tag === "Success") return Effect.succeed(exit.value)
  return Effect.fail(toInvalidInput(exit))
}

/**
 * Parses a stream id and throws on bad input; for constants and tests.
 *
 * @example
 * ```ts
 * import { StreamId } from "eventcore"
 *
 * const id = StreamId.makeUnsafe("account-42")
 * ```
 * @since 0.1.0
 */
export const makeUnsafe = (input: string): StreamId => {
  const exit = decode(input)
  if (exit._tag === "Success") return exit.value
  throw toInvalidInput(exit)
}

const toInvalidInput = (exit: Exit.Failure<StreamId, Schema.SchemaError>): InvalidInput => {
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  return failure !== undefined
    ? InvalidInput.fromIssue("stream id", failure.error.issue)
    : new InvalidInput({ subject: "stream id", path: [], issue: Cause.pretty(exit.cause) })
}
