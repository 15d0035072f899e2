/**
 * How database failures become the store's typed errors.
 *
 * @internal
 */
import { Schema } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import {
  ConcurrencyConflict,
  EventStoreError,
  type InvalidInput,
  TransactionAlreadyWritten,
  VersionMismatch
} from "../Errors.ts"
import { idempotencyKeyReused, type StreamExpectation } from "../EventStore.ts"
import { idempotencyKeyReusedState, transactionHasWrittenState, versionMismatchState } from "./appendFunction.ts"

/** The PostgreSQL error fields `@effect/sql-pg` attaches to the cause of a server error. */
const field = (error: SqlError, name: "code" | "detail"): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null || !(name in cause)) return undefined
  const value: unknown = (cause as Record<string, unknown>)[name]
  return typeof value === "string" ? value : undefined
}

/** Lock and serialization failures: another transaction got in the way; re-deciding helps. */
const contentionStates = new Set(["40P01", "40001", "55P03", "23505"])

/**
 * Server states that mean the session is gone, going, or could not be had for now: the backend
 * was terminated or the server is shutting down or starting (57P01..57P03), the connection
 * failed (class 08), or the server has no connection slot free (53300, "too many clients").
 * All may pass on a retry. Other resource errors of class 53 (out of memory, of shared memory
 * for locks, of disk space; a configuration limit) say the same request will fail the same way.
 */
const isConnectionLoss = (error: SqlError, state: string | undefined): boolean =>
  error.reason._tag === "ConnectionError" ||
  (state !== undefined &&
    (state.startsWith("08") || state === "53300" || state === "57P01" || state === "57P02" || state === "57P03"))

const isDeterministic = (state: string | undefined): boolean =>
  state !== undefined && state.startsWith("53") && state !== "53300"

const decodeMismatches = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Array(VersionMismatch)))

/** Where a statement ran: on its own (autocommit), or inside a caller's transaction. */
export interface Context {
  /**
   * Inside a caller's transaction a lost connection lost the transaction too: retrying in it
   * cannot succeed, so nothing is transient there.
   */
  readonly inTransaction: boolean
}

const standalone: Context = { inTransaction: false }

/**
 * An append failure: version mismatches and lock contention become `ConcurrencyConflict`,
 * an append inside a transaction that has already written `TransactionAlreadyWritten`, a
 * reused idempotency key `InvalidInput`, connection loss a transient `EventStoreError`,
 * anything else a permanent one.
 *
 * Contention the database detected itself (deadlock, lock timeout, serialization failure,
 * unique violation) does not say which stream's version moved; each stream of the boundary is
 * reported with `actual: null`, meaning "unknown".
 */
export const fromAppendError = (
  error: SqlError,
  streams: ReadonlyArray<StreamExpectation>,
  context: Context = standalone
): ConcurrencyConflict | EventStoreError | InvalidInput | TransactionAlreadyWritten => {
  const state = field(error, "code")
  if (state === versionMismatchState) {
    const mismatches = decodeMismatches(field(error, "detail") ?? "")
    if (mismatches._tag === "Some") {
      return new ConcurrencyConflict({
        conflicts: mismatches.value.map((m) => ({ ...m, expected: m.expected === -1 ? "any" : m.expected }))
      })
    }
  }
  if (state === transactionHasWrittenState) {
    return new TransactionAlreadyWritten({ transactionId: field(error, "detail") ?? "unknown" })
  }
  if (state === idempotencyKeyReusedState) return idempotencyKeyReused(field(error, "detail") ?? "")
  if (state !== undefined && contentionStates.has(state)) {
    return new ConcurrencyConflict({
      conflicts: streams.map((s) => ({ streamId: s.streamId, expected: s.expected, actual: null }))
    })
  }
  return fromSqlError("append", error, context)
}

/**
 * Any other failure: transient when the connection was lost or the database says a retry
 * may succeed (timeouts, contention), permanent otherwise — and always permanent inside a
 * caller's transaction, or when the server says the request cannot fit (class 53 but for
 * connection slots).
 */
export const fromSqlError = (operation: string, error: SqlError, context: Context = standalone): EventStoreError => {
  const state = field(error, "code")
  return new EventStoreError({
    operation,
    transient: !context.inTransaction && !isDeterministic(state) &&
      (isConnectionLoss(error, state) || error.isRetryable),
    cause: error
  })
}
