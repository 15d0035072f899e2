/**
 * The read horizon of the PostgreSQL store: how far global readers trail the last commit and
 * who holds them back, and a monitor that warns while it stalls live subscribers.
 *
 * @internal
 */
import { Clock, DateTime, Duration, Effect, type Scope } from "effect"
import type { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { EventStoreError } from "../Errors.ts"
import type { EventFilter, Horizon, HorizonHolder } from "../EventStore.ts"
import * as Position from "../Position.ts"
import * as Statements from "./statements.ts"
import { sleepReal } from "./Wakeups.ts"

interface Row {
  readonly xmin: string
  readonly xmax: string
  readonly tx_offset: string
  readonly pending: bigint | string | number
  readonly oldest_pending_at: Date | null
  readonly visible_tx_id: string | null
  readonly visible_position: bigint | null
  readonly committed_tx_id: string | null
  readonly committed_position: bigint | null
  readonly session_xid: string | null
  readonly pid: number | null
  readonly database: string | null
  readonly state: string | null
  readonly user_name: string | null
  readonly application_name: string | null
  readonly xact_start: Date | null
  readonly query: string | null
  readonly prepared_xid: string | null
  readonly prepared_gid: string | null
  readonly prepared_database: string | null
  readonly prepared_owner: string | null
  readonly prepared_at: Date | null
}

const position = (tx: string | null, seq: bigint | null) =>
  tx === null || seq === null ? Position.initial : Position.make(BigInt(tx), seq)

const utc = (date: Date | null) => date === null ? undefined : DateTime.fromDateUnsafe(date)
const orUndefined = <A>(value: A | null): A | undefined => value ?? undefined

/**
 * A 32-bit transaction id (as the statistics views show it) as the 64-bit one, given a 64-bit
 * id close to it (the snapshot's next id): the one within 2^31 of it.
 */
const fullTransactionId = (xid: string, near: bigint): bigint => {
  const full = ((near >> 32n) << 32n) + BigInt(xid)
  const half = 1n << 31n
  return full > near + half ? full - (1n << 32n) : full < near - half ? full + (1n << 32n) : full
}

/** The default cap of `pending`. */
export const defaultCap = 10_000

/**
 * Runs the horizon report (`filters`: extra conditions on the events, their parameters after
 * the cap) and reads it as of now. Fails with the statement's error, or with an `Error` should
 * the report return no row.
 */
export const read = (
  sql: SqlClient.SqlClient,
  schema: string,
  cap: number,
  filters: { readonly sql: string; readonly params: ReadonlyArray<unknown> } = { sql: "", params: [] }
): Effect.Effect<Horizon, SqlError | Error> =>
  Effect.gen(function*() {
    const rows = yield* sql.unsafe<Row>(Statements.horizonReport(schema, filters.sql), [
      Math.max(1, Math.floor(cap)),
      ...filters.params
    ])
    const row = rows[0]
    if (row === undefined) return yield* Effect.fail(new Error("the horizon report returned no row"))
    return fromRow(row, cap, yield* Clock.currentTimeMillis)
  })

/** Turns the report's row into a `Horizon`, as of `now` (epoch milliseconds). */
export const fromRow = (row: Row, cap: number, now: number): Horizon => {
  const pending = Number(row.pending)
  const committed = position(row.committed_tx_id, row.committed_position)
  const xmin = BigInt(row.xmin) + BigInt(row.tx_offset)
  const next = BigInt(row.xmax)
  const sessionXid = row.session_xid === null ? undefined : fullTransactionId(row.session_xid, next)
  const preparedXid = row.prepared_xid === null ? undefined : fullTransactionId(row.prepared_xid, next)
  // The older of the two holds the horizon.
  const session = sessionXid !== undefined && (preparedXid === undefined || sessionXid <= preparedXid)
  const heldBy: HorizonHolder | undefined = pending === 0 ? undefined : session && sessionXid !== undefined
    ? {
      kind: "session",
      transactionId: sessionXid.toString(),
      pid: row.pid ?? undefined,
      database: orUndefined(row.database),
      user: orUndefined(row.user_name),
      applicationName: orUndefined(row.application_name),
      state: orUndefined(row.state),
      since: utc(row.xact_start),
      query: orUndefined(row.query)
    }
    : preparedXid !== undefined
    ? {
      kind: "prepared transaction",
      transactionId: preparedXid.toString(),
      pid: undefined,
      database: orUndefined(row.prepared_database),
      user: orUndefined(row.prepared_owner),
      applicationName: undefined,
      state: "prepared",
      since: utc(row.prepared_at),
      query: `prepared transaction ${row.prepared_gid}`
    }
    : undefined
  return {
    visible: position(row.visible_tx_id, row.visible_position),
    committed,
    pending,
    pendingCapped: pending >= cap,
    pendingMillis: row.oldest_pending_at === null ? 0 : Math.max(0, now - row.oldest_pending_at.getTime()),
    trailingTransactions: pending === 0 ? 0 : Math.max(0, Number(Position.transaction(committed) - xmin) + 1),
    heldBy
  }
}

/** One line for a log: who holds the horizon and since when. */
export const describeHolder = (holder: HorizonHolder | undefined): string => {
  if (holder === undefined) return "a transaction this role cannot see (grant pg_read_all_stats to see it)"
  const since = holder.since === undefined ? "" : ` since ${DateTime.formatIso(holder.since)}`
  return holder.kind === "prepared transaction"
    ? `${holder.query ?? "a prepared transaction"} in database ${holder.database ?? "?"}${since}`
    : `backend pid ${holder.pid ?? "?"} (database ${holder.database ?? "?"}, user ${holder.user ?? "?"}, ` +
      `application ${JSON.stringify(holder.applicationName ?? "")}, ${holder.state ?? "state hidden"})${since}`
}

/**
 * Watches the horizon while live subscribers wait on this store (`waiting() > 0`): every
 * `interval`, and when events have waited behind it longer than `threshold`, logs a warning
 * naming who holds it — again only when the holder changes or a minute has passed.
 */
export const monitor = (options: {
  readonly read: (filter: EventFilter | undefined, cap: number) => Effect.Effect<Horizon, EventStoreError>
  readonly waiting: () => number
  readonly threshold: Duration.Duration
  readonly interval: Duration.Duration
  readonly schema: string
}): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    let warnedAbout: string | undefined
    let warnedAt = 0
    const check = Effect.gen(function*() {
      if (options.waiting() === 0) return
      const horizon = yield* options.read(undefined, defaultCap)
      if (horizon.pendingMillis < Duration.toMillis(options.threshold)) {
        warnedAbout = undefined
        return
      }
      const holder = describeHolder(horizon.heldBy)
      const now = yield* Clock.currentTimeMillis
      if (holder === warnedAbout && now - warnedAt < 60_000) return
      warnedAbout = holder
      warnedAt = now
      yield* Effect.logWarning(
        `eventcore: global readers of schema ${options.schema} are held back: ` +
          `${horizon.pending}${horizon.pendingCapped ? "+" : ""} committed events have waited up to ` +
          `${Duration.format(Duration.millis(horizon.pendingMillis))} for ${holder} to end its transaction ` +
          "(see docs/operations.md, read horizon)"
      )
    }).pipe(Effect.catchCause((cause) => Effect.logDebug("eventcore: horizon check failed", cause)))
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(sleepReal(options.interval), check)))
  })
