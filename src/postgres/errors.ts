/**
 * How database failures become the store's typed errors.
 *
 * @internal
 */
import { Schema } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { ConcurrencyConflict, EventStoreError, VersionMismatch } from "../Errors.ts"
import type { StreamExpectation } from "../EventStore.ts"
import { versionMismatchState } from "./appendFunction.ts"

/** The PostgreSQL error fields `@effect/sql-pg` attaches to the cause of a server error. */
const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return undefined
  return typeof cause.code === "string" ? cause.code : undefined
}

const detailOf = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null || !("detail" in cause)) return undefined
  return typeof cause.detail === "string" ? cause.detail : undefined
}

/** Lock and serialization failures: another transaction got in the way; re-deciding helps. */
const contentionStates = new Set(["40P01", "40001", "55P03", "23505"])

/**
 * Server states that mean the session is gone, going, or could not be had for now: the backend
 * was terminated (57P01..57P03), the connection failed (class 08), or the server is out of
 * resources such as connection slots (class 53, "too many clients"). All may pass on a retry.
 */
const isConnectionLoss = (error: SqlError, state: string | undefined): boolean =>
  error.reason._tag === "ConnectionError" ||
  (state !== undefined &&
    (state.startsWith("08") || state.startsWith("53") || state === "57P01" || state === "57P02" ||
      state === "57P03"))

const decodeMismatches = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Array(VersionMismatch)))

/**
 * An append failure: version mismatches and lock contention become `ConcurrencyConflict`,
 * connection loss a transient `EventStoreError`, anything else a permanent one.
 *
 * Contention the database detected itself (deadlock, lock timeout, serialization failure,
 * unique violation) does not say which stream's version moved; each stream of the boundary is
 * reported with `actual: null`, meaning "unknown".
 */
export const fromAppendError = (
  error: SqlError,
  streams: ReadonlyArray<StreamExpectation>
): ConcurrencyConflict | EventStoreError => {
  const state = sqlState(error)
  if (state === versionMismatchState) {
    const mismatches = decodeMismatches(detailOf(error) ?? "")
    if (mismatches._tag === "Some") {
      return new ConcurrencyConflict({
        conflicts: mismatches.value.map((m) => ({ ...m, expected: m.expected === -1 ? "any" : m.expected }))
      })
    }
  }
  if (state !== undefined && contentionStates.has(state)) {
    return new ConcurrencyConflict({
      conflicts: streams.map((s) => ({ streamId: s.streamId, expected: s.expected, actual: null }))
    })
  }
  return fromSqlError("append", error)
}

/**
 * Any other failure: transient when the connection was lost or the database says a retry
 * may succeed (timeouts, contention), permanent otherwise.
 */
export const fromSqlError = (operation: string, error: SqlError): EventStoreError =>
  new EventStoreError({
    operation,
    transient: isConnectionLoss(error, sqlState(error)) || error.isRetryable,
    cause: error
  })
