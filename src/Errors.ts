/**
 * The typed errors of EventCore. Every error names what was wrong and where, so a
 * person reading a log line can act on it without a debugger.
 *
 * @since 0.1.0
 */
import { Predicate, Schema, SchemaIssue } from "effect"

const PathSegment = Schema.Union([Schema.String, Schema.Number])

/**
 * Input (a command's input, a stream id, a position) did not parse. Nothing was read or written.
 *
 * @example
 * ```ts
 * import { StreamId } from "eventcore"
 *
 * const blank = StreamId.make("   ") // fails with InvalidInput { subject: "stream id", path: [], issue: "..." }
 * ```
 * @since 0.1.0
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  /** What was being parsed: "stream id", "input of command Transfer", … */
  subject: Schema.String,
  /** Where in the input the first problem is; empty for the input as a whole. */
  path: Schema.Array(PathSegment),
  /** The Schema issue, formatted. */
  issue: Schema.String
}) {
  override get message(): string {
    const where = this.path.length === 0 ? "" : ` at ${this.path.map((p) => JSON.stringify(p)).join(".")}`
    return `Invalid ${this.subject}${where}: ${this.issue}`
  }

  /** Builds an InvalidInput from a Schema issue, keeping the path of its first leaf. */
  static fromIssue(subject: string, issue: SchemaIssue.Issue): InvalidInput {
    const formatted = standardFormatter(issue)
    const first = formatted.issues[0]
    const path = (first?.path ?? []).map(toSegment)
    const text = formatted.issues.map((i) => i.message).join("; ")
    return new InvalidInput({ subject, path, issue: text.length > 0 ? text : String(issue) })
  }
}

const standardFormatter = SchemaIssue.makeFormatterStandardSchemaV1()
const toSegment = (segment: unknown): string | number => {
  const key = typeof segment === "object" && segment !== null && "key" in segment ? segment.key : segment
  return typeof key === "number" ? key : String(key)
}

/**
 * A command's decision refused the input given the current state. Never retried.
 *
 * @example
 * ```ts
 * import { BusinessRuleViolation } from "eventcore"
 *
 * new BusinessRuleViolation({
 *   rule: "insufficient-funds",
 *   message: "account acc-1 holds 10, cannot withdraw 50",
 *   details: { balance: 10, amount: 50 }
 * })
 * ```
 * @since 0.1.0
 */
export class BusinessRuleViolation extends Schema.TaggedError<BusinessRuleViolation>()("BusinessRuleViolation", {
  rule: Schema.String,
  message: Schema.String,
  details: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
}) {}

/**
 * One stream whose version differed from the version a command read.
 *
 * @example
 * ```ts
 * import { ConcurrencyConflict, type VersionMismatch } from "eventcore"
 *
 * const mismatch: VersionMismatch = { streamId: "account-1", expected: 3, actual: 4 }
 * new ConcurrencyConflict({ conflicts: [mismatch] })
 * ```
 * @since 0.1.0
 */
export const VersionMismatch = Schema.Struct({
  streamId: Schema.String,
  /** The version the command read (or "any"). */
  expected: Schema.Union([Schema.Number, Schema.Literal("any")]),
  /**
   * The version the store holds now; null when the store detected contention (a deadlock, a
   * lock timeout) without learning which version moved.
   */
  actual: Schema.NullOr(Schema.Number)
})

/**
 * One stream whose version was not the expected one (the type of the `VersionMismatch` schema).
 *
 * @example
 * ```ts
 * import type { VersionMismatch } from "eventcore"
 *
 * const explain = (mismatch: VersionMismatch) =>
 *   `${mismatch.streamId}: read at ${mismatch.expected}, now ${mismatch.actual ?? "contended"}`
 * ```
 * @since 0.1.0
 */
export type VersionMismatch = typeof VersionMismatch.Type

/**
 * A stream in the command's boundary changed between read and append. The executor retries
 * these under its Schedule and surfaces this error only once retries are exhausted.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const Transfer: Command.Any // a command of your domain
 *
 * const program = CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 10 }).pipe(
 *   Effect.catchTag("ConcurrencyConflict", (e) => Effect.log(e.message)) // retries were exhausted
 * )
 * ```
 * @since 0.1.0
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>()("ConcurrencyConflict", {
  conflicts: Schema.Array(VersionMismatch),
  /** The command that gave up, when the executor surfaces the conflict after its retries. */
  command: Schema.optionalKey(Schema.String),
  /** How many attempts the executor made (each one re-read and re-decided). */
  attempts: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    const streams = this.conflicts.map((c) =>
      `stream ${JSON.stringify(c.streamId)} expected version ${c.expected}, ${
        c.actual === null ? "contended" : `found ${c.actual}`
      }`
    ).join("; ")
    if (this.command === undefined) {
      return `Concurrency conflict: ${streams}. Nothing was written; read the streams again and decide again.`
    }
    const attempts = this.attempts ?? 1
    return `Command ${this.command} gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${streams}. ` +
      "Each attempt re-read its streams and decided again, and another writer changed them first every time; " +
      "nothing was written. Under expected contention allow more attempts or longer backoff: " +
      "CommandExecutor.layer({ retry }) or execute(command, input, { retry }) with a Schedule."
  }
}

/**
 * A command tried to write to a stream it did not read. Nothing was written.
 *
 * @example
 * ```ts
 * import { UndeclaredStream } from "eventcore"
 *
 * new UndeclaredStream({ command: "Transfer", streamId: "account-9", boundary: ["account-1", "account-2"] })
 * ```
 * @since 0.1.0
 */
export class UndeclaredStream extends Schema.TaggedError<UndeclaredStream>()("UndeclaredStream", {
  command: Schema.String,
  streamId: Schema.String,
  boundary: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Command ${this.command} tried to write to stream ${
      JSON.stringify(this.streamId)
    }, which is outside its boundary [${this.boundary.map((s) => JSON.stringify(s)).join(", ")}]. ` +
      "A command may write only to streams it read: name the stream in `streams` (a role), or return it from " +
      "`discover` so it is read before the decision. Nothing was written."
  }
}

/**
 * A stored event could not be decoded by the reader's schema: unknown type, unknown
 * schema version, or a payload the schema rejects. Never skipped silently.
 *
 * @example
 * ```ts
 * import { EventDecodeError } from "eventcore"
 *
 * new EventDecodeError({ streamId: "account-1", streamVersion: 3, type: "Renamed", schemaVersion: 1, reason: "unknown event type" })
 * ```
 * @since 0.1.0
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamId: Schema.String,
  streamVersion: Schema.Number,
  type: Schema.String,
  schemaVersion: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `Cannot decode event ${JSON.stringify(this.type)} v${this.schemaVersion} at ${
      JSON.stringify(this.streamId)
    }@${this.streamVersion}: ${this.reason}. Add the type to the reader's catalog, or an upcaster for this ` +
      "schema version (Event.upcast); docs/operations.md shows how to inspect and get past an unreadable row."
  }
}

/**
 * The event store failed. `transient` errors (connection loss, serialization failure of the
 * database) may succeed when retried; the executor retries them only when configured to.
 *
 * @example
 * ```ts
 * import { EventStoreError } from "eventcore"
 *
 * new EventStoreError({ operation: "append", transient: true, cause: new Error("connection reset") })
 * ```
 * @since 0.1.0
 */
export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  operation: Schema.String,
  transient: Schema.Boolean,
  cause: Schema.Defect()
}) {
  override get message(): string {
    return `Event store ${this.operation} failed${this.transient ? " (transient)" : ""}: ${describe(this.cause)}${
      !this.transient
        ? ""
        : executorOperations.has(this.operation)
        ? ". It may succeed if tried again: a command's executor retries such failures when given `transientRetry`"
        : ". It may succeed if tried again"
    }`
  }
}

// The store operations a command execution performs (and its `transientRetry` retries).
const executorOperations = new Set(["append", "readStreams", "readIdempotencyKey"])

// A cause can be anything a driver throws, including objects without a usable toString.
const describe = (cause: unknown): string => {
  if (Predicate.hasProperty(cause, "message") && typeof cause.message === "string") return cause.message
  try {
    return typeof cause === "object" && cause !== null ? JSON.stringify(cause) : String(cause)
  } catch {
    return Object.prototype.toString.call(cause)
  }
}

/**
 * An append was refused because it ran inside a database transaction that had already
 * written something (and so already held a transaction id). The events would be ordered by an
 * id drawn before their streams were locked, and could land before an earlier commit of the
 * same stream in the global order. Nothing was written; the caller's transaction is still
 * usable. Execute the command before the transaction writes anything, or outside it — for a
 * process manager reacting inside a transactional projection, see docs/projections.md.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const Deposit: Command.Any // a command of your domain
 *
 * const program = CommandExecutor.execute(Deposit, { account: "acc-1", amount: 10 }).pipe(
 *   Effect.catchTag("TransactionAlreadyWritten", (e) => Effect.logError(e.message))
 * )
 * ```
 * @since 0.2.0
 */
export class TransactionAlreadyWritten extends Schema.TaggedError<TransactionAlreadyWritten>()(
  "TransactionAlreadyWritten",
  {
    /** The id the surrounding transaction already had. */
    transactionId: Schema.String
  }
) {
  override get message(): string {
    return `Cannot append inside a database transaction that has already written (transaction ${this.transactionId}): ` +
      "its id predates the locks on the command's streams, so its events could be ordered before earlier events of " +
      "those streams. Execute the command before the transaction writes anything, or outside it. Nothing was written."
  }
}

/**
 * A command kept discovering new streams past its limit of discovery rounds.
 *
 * @example
 * ```ts
 * import { DiscoveryLimitExceeded } from "eventcore"
 *
 * new DiscoveryLimitExceeded({ command: "PlaceOrder", limit: 10, streams: ["product-1"] })
 * ```
 * @since 0.1.0
 */
export class DiscoveryLimitExceeded extends Schema.TaggedError<DiscoveryLimitExceeded>()("DiscoveryLimitExceeded", {
  command: Schema.String,
  limit: Schema.Number,
  /** Every stream read when the limit was hit. */
  streams: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Command ${this.command} was still discovering streams after ${this.limit} rounds (read ${this.streams.length} streams). ` +
      "`discover` is called after every round of reads until it names no new stream: make it stop once it has what " +
      "it needs, or raise the command's `discoveryLimit` if the chain is meant to be this long. Nothing was written."
  }
}
