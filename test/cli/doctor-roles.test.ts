/**
 * `eventcore doctor` as docs/roles.md sets roles up: a login role with the application's
 * privileges (`migrate --grant-to`) and without pg_read_all_stats, so that PostgreSQL hides the
 * state, start and query of every other role's session. A superuser's transaction holds the
 * read horizon: the doctor must still name it (pid, database, user, application), count it
 * among the connections, and say which privilege shows the rest. Also: an unexpected SQL
 * failure prints the server's message and SQLSTATE.
 */
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import * as Harness from "../postgres/harness.ts"
import { cli, databaseUrl, deposit, dropSchema, json, query } from "./harness.ts"

const schema = Harness.freshSchemaName()
const foreign = Harness.freshSchemaName()
const suffix = Math.random().toString(36).slice(2, 10)
const role = `ec_cli_doctor_${suffix}`
const application = `ec-doctor-holder-${suffix}`
let url = ""

/** The test database's URL, logged in as `role`. */
const roleUrl = () => {
  const parsed = new URL(url)
  parsed.username = role
  parsed.password = ""
  return parsed.toString()
}

beforeAll(async () => {
  url = await databaseUrl()
  await query(`create role ${role} login`)
  const migrated = await cli(["migrate", "--schema", schema, "--grant-to", role], { DATABASE_URL: url })
  assert.strictEqual(migrated.code, 0, migrated.stderr)
  // A projection known by its checkpoint only (its runner would be in another process).
  await query(`insert into ${schema}.checkpoints (name, position) values ('doctor_idle', null)`)
})
afterAll(async () => {
  await dropSchema(schema)
  await dropSchema(foreign)
  await query(`drop owned by ${role}`)
  await query(`drop role ${role}`)
})

interface Check {
  readonly name: string
  readonly status: string
  readonly message: string
  readonly details?: Record<string, unknown>
}

interface Session {
  readonly pid: number
  readonly database: string
}

/**
 * `sessions` transactions as the superuser, each on a connection of its own named
 * `application`, that then sit idle until released; the first draws a transaction id (it holds
 * the read horizon), the others do not.
 */
const holdTransactions = (sessions: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const release = yield* Deferred.make<void>()
    const opened = yield* Effect.forEach(Array.from({ length: sessions }, (_, i) => i), (i) =>
      Effect.gen(function*() {
        const ready = yield* Deferred.make<Session, unknown>()
        const fiber = yield* sql.withTransaction(Effect.gen(function*() {
          const rows = yield* sql.unsafe<Session>(
            i === 0
              ? "select pg_backend_pid() as pid, current_database() as database, pg_current_xact_id()::text as xid"
              : "select pg_backend_pid() as pid, current_database() as database"
          )
          const row = rows[0]
          if (row === undefined) return yield* Effect.die(new Error("no row"))
          yield* Deferred.succeed(ready, row)
          yield* Deferred.await(release)
        })).pipe(Effect.onError((cause) => Deferred.failCause(ready, cause)), Effect.forkChild)
        return { session: yield* Deferred.await(ready), fiber }
      }))
    yield* Effect.addFinalizer(() =>
      Effect.andThen(Deferred.succeed(release, undefined), Effect.forEach(opened, ({ fiber }) => Fiber.join(fiber)))
        .pipe(Effect.ignore)
    )
    const first = opened[0]
    if (first === undefined) return yield* Effect.die(new Error("no session"))
    return first.session
  })

/**
 * The superuser's pool for `holdTransactions` (it must outlive the transactions' scope), with
 * one connection more for the test's own queries.
 */
const holderPool = (sessions: number) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections: sessions + 1, applicationName: application })

interface Report {
  readonly checks: ReadonlyArray<Check>
}

const named = (report: Report, name: string): Check => {
  const found = report.checks.find((check) => check.name === name)
  assert.isDefined(found, `no ${name} check`)
  return found as Check
}

describe("doctor as a role without pg_read_all_stats", () => {
  it.live(
    "names the superuser's session holding the horizon, and counts the connections it cannot see",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const holder = yield* holdTransactions(3)
        yield* Effect.promise(() => deposit(url, schema, [["doctor-1", 1], ["doctor-2", 2]]))

        // The horizon is the cluster's oldest transaction: another test's may be older, for a
        // moment. Once this one is the oldest, it stays so (later ones draw newer ids).
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql.unsafe<{ readonly pid: number }>(
            "select pid from pg_stat_activity where backend_xid is not null order by age(backend_xid) desc limit 1"
          )).pipe(
            Effect.filterOrFail((rows) => rows[0]?.pid === holder.pid),
            Effect.retry(Schedule.spaced("50 millis"))
          )
        const outcome = yield* Effect.promise(() =>
          cli(["doctor", "--json", "--schema", schema], { DATABASE_URL: roleUrl() })
        )
        assert.strictEqual(outcome.code, 0, outcome.stderr)
        const report = json<Report>(outcome)

        const who = `(database ${holder.database}, user postgres, application "${application}", transaction `
        const horizon = named(report, "read-horizon")
        assert.isAtLeast(horizon.details?.["pending"] as number, 2)
        assert.include(horizon.message, `backend pid ${holder.pid} ${who}`)
        assert.include(horizon.message, "state hidden: grant pg_read_all_stats to see its state and query")

        const oldest = named(report, "oldest-transaction")
        assert.include(oldest.message, `pid ${holder.pid} ${who}`)
        assert.include(oldest.message, "state, start and query hidden: grant pg_read_all_stats")
        assert.strictEqual(oldest.details?.["hidden"], true)
        assert.strictEqual(oldest.details?.["user"], "postgres")
        assert.strictEqual(oldest.details?.["query"], null)

        // Three of the superuser's sessions, and the doctor's own.
        const connections = named(report, "connections")
        assert.isAtLeast(connections.details?.["hiddenSessions"] as number, 3)
        assert.isAtLeast(connections.details?.["inUse"] as number, 4)
        assert.match(connections.message, /^\d+ of \d+ connections in use/)

        // The checkpoint's count sees no event yet: the message says that some wait.
        const projection = named(report, "projection:doctor_idle")
        assert.include(projection.message, "wait behind the read horizon, not counted here")
      })).pipe(Effect.provide(holderPool(3))),
    { timeout: 120_000 }
  )
})

describe("an unexpected SQL failure", () => {
  it("prints the server's message and SQLSTATE", async () => {
    // Tables of another application under the store's names: the store's query meets a column
    // that is not there.
    await query(`create schema ${foreign}`)
    await query(`create table ${foreign}.migrations (version int)`)
    await query(`create table ${foreign}.events (id int)`)
    const outcome = await cli(["events", "tail", "--schema", foreign], { DATABASE_URL: url })
    assert.strictEqual(outcome.code, 1, outcome.stderr)
    assert.strictEqual(outcome.stderr.trim(), "eventcore: PostgreSQL: column e.tx_id does not exist (SQLSTATE 42703)")
  })
})
