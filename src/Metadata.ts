/**
 * Event metadata: set once by the caller of a command and carried into every event the
 * command writes.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

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
 * // { correlationId: "exec-1", causationId: "exec-1", custom: {}, userId: "alice" }
 * ```
 * @since 0.1.0
 */
export const fromInput = (input: Input | undefined, executionId: string): Metadata => {
  const correlationId = input?.correlationId ?? executionId
  const base = {
    correlationId,
    causationId: input?.causationId ?? correlationId,
    custom: input?.custom ?? {}
  }
  return input?.userId === undefined ? base : { ...base, userId: input.userId }
}
