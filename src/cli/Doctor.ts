/**
 * `eventcore doctor`: the store's health as `PostgresHealth.check` reports it (round trip,
 * schema version, read horizon, projections, dead letters), and what only an operator asks
 * about: the oldest open transaction (who holds, or would hold, the read horizon), the restore
 * check, the isolation level and what it means for retries, and connection-pool sizing.
 *
 * @internal
 */
import { DateTime, Duration, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import * as Health from "../Health.ts"
import * as Migrations from "../postgres/Migrations.ts"
import * as PostgresHealth from "../postgres/PostgresHealth.ts"
import * as Restore from "../postgres/Restore.ts"
import * as Output from "./Output.ts"
import { withDatabase } from "./Shared.ts"

/** Times one of the doctor's own checks; a failure is reported as the check's, never thrown. */
const timed = (
  name: string,
  body: Effect.Effect<Omit<Health.Check, "name" | "millis">, unknown, SqlClient.SqlClient>
): Effect.Effect<Health.Check, never, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* Effect.result(body)
    const millis = Date.now() - started
    return result._tag === "Success"
      ? { name, millis, ...result.success }
      : {
        name,
        millis,
        status: "unhealthy",
        message: `could not check: ${result.failure instanceof Error ? result.failure.message : String(result.failure)}`
      }
  })

const restore = (schema: string) =>
  timed(
    "restore",
    Restore.check({ schema }).pipe(
      Effect.as({
        status: "healthy" as const,
        message: "the events' transaction ids are behind this cluster's: no logical restore to adopt"
      }),
      Effect.catchTag("RestoredEventsAhead", (error) =>
        Effect.succeed({
          status: "unhealthy" as const,
          message: error.message,
          details: { newestTransaction: error.newestTransaction, nextTransaction: error.nextTransaction }
        }))
    )
  )

/** What the `read-horizon` check found, as far as the doctor's own checks use it. */
interface HorizonSeen {
  /** Committed events waiting behind the horizon (0 when none, or when it was not checked). */
  readonly pending: number
  readonly pendingMillis: number
  /** The session holding it, when one does. */
  readonly holderPid: number | undefined
}

const numberOr0 = (value: unknown) => typeof value === "number" ? value : 0

const horizonSeen = (checks: ReadonlyArray<Health.Check>): HorizonSeen => {
  const details = checks.find((check) => check.name === "read-horizon")?.details
  const heldBy: unknown = details?.["heldBy"]
  const pid: unknown = typeof heldBy === "object" && heldBy !== null ? Reflect.get(heldBy, "pid") : undefined
  return {
    pending: numberOr0(details?.["pending"]),
    pendingMillis: numberOr0(details?.["pendingMillis"]),
    holderPid: typeof pid === "number" ? pid : undefined
  }
}

const hiddenAdvice = "grant pg_read_all_stats to the role running doctor to see them"

const oldestTransaction = (horizonAge: Duration.Duration, horizon: HorizonSeen) =>
  timed(
    "oldest-transaction",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql.unsafe<{
        readonly pid: number
        readonly database: string | null
        readonly user_name: string | null
        readonly application_name: string | null
        readonly state: string | null
        readonly transaction_id: string
        readonly transactions_since: number
        readonly hidden: boolean
        readonly age_ms: number | null
        readonly query: string | null
      }>(
        // The read horizon is the oldest running transaction id: the session holding it. Its
        // pid, database, user, application and transaction id are shown to every role; its
        // state, start and query only to its own role and to pg_read_all_stats (else NULL, and
        // the query "<insufficient privilege>"): nothing here may filter on those.
        `select pid, datname as database, usename as user_name, application_name, state,
           backend_xid::text as transaction_id, age(backend_xid)::int as transactions_since,
           xact_start is null as hidden,
           (extract(epoch from clock_timestamp() - xact_start) * 1000)::float8 as age_ms,
           case when xact_start is null then null else left(query, 120) end as query
         from pg_stat_activity
         where backend_xid is not null
         order by age(backend_xid) desc limit 1`
      )
      const prepared = yield* sql.unsafe<{ readonly n: number }>("select count(*)::int as n from pg_prepared_xacts")
      const preparedCount = Number(prepared[0]?.n ?? 0)
      if (preparedCount > 0) {
        return {
          status: "degraded" as const,
          message: `${preparedCount} prepared transaction(s) are open (select * from pg_prepared_xacts): ` +
            "events committed after the oldest began stay invisible to subscribers until it is committed or " +
            "rolled back (rollback prepared '<gid>')",
          details: { prepared: preparedCount }
        }
      }
      const row = rows[0]
      if (row === undefined) return { status: "healthy" as const, message: "no transaction holds the read horizon" }
      const who = `pid ${row.pid} (database ${row.database ?? "?"}, user ${row.user_name ?? "?"}, application ${
        JSON.stringify(row.application_name ?? "")
      }, transaction ${row.transaction_id}, ${
        row.hidden ? `state, start and query hidden: ${hiddenAdvice}` : (row.state ?? "state unknown")
      })`
      // Hidden, its age is known only from below: the events that have waited behind it.
      const waited = horizon.holderPid === row.pid ? horizon.pendingMillis : 0
      const age = row.age_ms === null ? waited : Number(row.age_ms)
      const ageText = row.age_ms === null
        ? waited > 0 ? `at least ${Output.duration(age)} (committed events have waited that long behind it)` : ""
        : Output.duration(age)
      const details = {
        pid: row.pid,
        database: row.database,
        user: row.user_name,
        applicationName: row.application_name,
        transactionId: row.transaction_id,
        transactionsSince: Number(row.transactions_since),
        state: row.state,
        query: row.query,
        hidden: row.hidden,
        ...(ageText === "" ? {} : { ageMillis: age, ageIsLowerBound: row.age_ms === null })
      }
      return age > Duration.toMillis(horizonAge)
        ? {
          status: "degraded" as const,
          message: `${who} has had a transaction open for ${ageText}: events committed after it ` +
            "began stay invisible to subscribers and projections until it ends " +
            `(select pg_terminate_backend(${row.pid}) if it is abandoned)`,
          details
        }
        : {
          status: "healthy" as const,
          message: `oldest open transaction: ${who}, ${
            ageText === "" ? `begun ${row.transactions_since} transaction(s) ago` : ageText
          }`,
          details
        }
    })
  )

const isolation = timed(
  "isolation",
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ readonly level: string }>(
      "select current_setting('default_transaction_isolation') as level"
    )
    const level = rows[0]?.level ?? "unknown"
    return {
      status: "healthy" as const,
      message: level === "read committed"
        ? "default_transaction_isolation is read committed: an append that meets a concurrent commit to its " +
          "boundary waits for it, then conflicts only if the versions moved"
        : `default_transaction_isolation is ${level}: correct, but an append that meets a concurrent commit to ` +
          "its boundary fails with a serialization error, reported as ConcurrencyConflict and retried by the " +
          "executor: expect more retries under contention than under read committed",
      details: { level }
    }
  })
)

const connections = timed(
  "connections",
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{
      readonly max_connections: number
      readonly reserved: number
      readonly in_use: number
      readonly hidden: number
      readonly by_application: unknown
    }>(
      // Another role's sessions show no backend_type without pg_read_all_stats, but their
      // database and user, which the server's own processes lack, are shown to every role.
      `with clients as (
         select application_name, backend_type is null as hidden from pg_stat_activity
         where coalesce(backend_type = 'client backend', datid is not null and usesysid is not null)
       )
       select current_setting('max_connections')::int as max_connections,
         current_setting('superuser_reserved_connections')::int as reserved,
         (select count(*)::int from clients) as in_use,
         (select count(*)::int from clients where hidden) as hidden,
         (select coalesce(json_agg(t order by t.n desc), '[]'::json) from (
            select coalesce(nullif(application_name, ''), '(unnamed)') as application, count(*)::int as n
            from clients group by 1 order by 2 desc limit 5) t) as by_application`
    )
    const row = rows[0]
    if (row === undefined) return { status: "unhealthy" as const, message: "the server did not say" }
    const available = row.max_connections - row.reserved
    const free = available - row.in_use
    const details = {
      maxConnections: row.max_connections,
      superuserReserved: row.reserved,
      inUse: row.in_use,
      hiddenSessions: row.hidden,
      free,
      byApplication: row.by_application
    }
    // Per process (docs/operations.md, Connections): a pool (its LISTEN connection included)
    // plus one dedicated connection for projection locks.
    const advice = "per process: a pool of commands in flight + runners processing + 1 for LISTEN (at least 2), " +
      "+ 1 for projection locks"
    const summary = `${row.in_use} of ${available} connections in use (max_connections ${row.max_connections}, ` +
      `${row.reserved} reserved for superusers)`
    return free < Math.max(2, Math.ceil(available * 0.1))
      ? {
        status: "degraded" as const,
        message: `${summary}, ${free} free: a new process or a growing pool may be refused (53300); ${advice}`,
        details: { ...details, advice }
      }
      : { status: "healthy" as const, message: `${summary}; ${advice}`, details: { ...details, advice } }
  })
)

const doctor = Command.make("doctor", {
  strict: Flag.Boolean("strict").pipe(
    Flag.withDescription("Exit 1 when degraded too, not only when unhealthy"),
    Flag.withDefault(false)
  )
}, ({ strict }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      // Cannot connect: exit 3 rather than a report of a store that did not answer.
      yield* sql.unsafe("select 1")
      const health = yield* PostgresHealth.check({ schema })
      const schemaReady = health.checks.some((check) => check.name === "schema" && check.status === "healthy")
      const thresholds = Health.defaultThresholds
      const horizon = horizonSeen(health.checks)
      const extra = [
        ...(schemaReady ? [yield* restore(schema)] : []),
        yield* oldestTransaction(Duration.fromInputUnsafe(thresholds.horizonAge), horizon),
        yield* isolation,
        yield* connections
      ]
      const report = Health.combine([...health.checks, ...extra], yield* DateTime.now)
      if (json) {
        yield* Output.json({ schema, ...report })
      } else {
        yield* Output.line(Output.table(
          ["STATUS", "CHECK", "MILLIS", "FINDING"],
          report.checks.map((check) => [check.status, check.name, String(Math.round(check.millis)), check.message])
        ))
        yield* Output.line(
          `\n${report.status.toUpperCase()}: schema ${schema} (library version ${
            Math.max(...Migrations.all.map((m) => m.version))
          }), ${report.live ? "live" : "not live"}, ${
            report.ready ? "ready" : "not ready"
          }, checked ${report.checkedAt}`
        )
      }
      if (report.status === "unhealthy" || (strict && report.status === "degraded")) {
        return yield* Output.fail(
          Output.ExitCode.failed,
          `the store is ${report.status} (${
            report.checks.filter((c) => c.status !== "healthy").map((c) => c.name).join(", ")
          }): see the findings above`
        )
      }
    })
  )).pipe(
    Command.withDescription(
      "Check the store's health: connection, schema version, read horizon and who holds it, projections, dead letters, restore, isolation, connections. Exit 0 healthy or degraded, 1 unhealthy."
    )
  )

/** `doctor`. */
export const command = doctor
