/**
 * The health check of a PostgreSQL store from a bare connection (a `SqlClient`, no event
 * store layer), so that an operations tool can run it as well as the application: the
 * server's round trip, the schema's version against the library's, the read horizon, every
 * projection that has a checkpoint in the store, and dead letters — plus the status and lag of
 * the projection runners of this process, when given. Statuses, liveness and readiness are
 * `Health`'s (ADR 17).
 *
 * @since 0.3.0
 */
import { Clock, DateTime, Duration, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { InvalidInput } from "../Errors.ts"
import * as Health from "../Health.ts"
import * as Checks from "../internal/HealthChecks.ts"
import * as Position from "../Position.ts"
import * as Horizon from "./horizon.ts"
import * as Migrations from "./Migrations.ts"
import * as Statements from "./statements.ts"

/**
 * `Health.Options`, and the store's schema.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 * import { PostgresHealth } from "eventcore/postgres"
 *
 * declare const balances: Health.Watched
 *
 * const options: PostgresHealth.Options = { schema: "billing", projections: [balances], mode: "readiness" }
 * const report = PostgresHealth.check(options) // needs a SqlClient
 * ```
 * @since 0.3.0
 */
export interface Options extends Health.Options {
  /** The PostgreSQL schema of the store (default `"eventcore"`). */
  readonly schema?: string | undefined
}

interface CheckpointRow {
  readonly name: string
  readonly position: string | null
  readonly updated_at: Date
  readonly rebuild_pending: boolean
}

/** What a checkpoint says: where it is, and how much of the store comes after it. */
interface CheckpointState {
  readonly position: Position.Position
  readonly updatedAt: string
  readonly rebuildPending: boolean
  /** Visible events after the checkpoint, of every stream (counted up to the cap). */
  readonly eventsAfter: number
  readonly capped: boolean
  /** Age of the oldest of them; 0 when there is none. */
  readonly oldestMillis: number
  readonly deadLetters: number
}

const lagCap = 10_000

/**
 * Checks the store behind the `SqlClient` in context (see the module's description):
 *
 * - `store` (gates readiness): a round trip; fails or times out -> unhealthy (then nothing
 *   else is asked of the server); slower than `storeLatency` -> degraded.
 * - `schema` (gates readiness): the versions in `<schema>.migrations` against
 *   `Migrations.all`: missing ones -> unhealthy, "run the migrations"; unknown ones (a newer
 *   library migrated it) -> unhealthy, "upgrade". Until it is healthy the checks below are not
 *   run (they would fail on the missing tables and columns).
 * - `read-horizon`: committed events waiting longer than `horizonAge` -> degraded.
 * - `projection:<name>` for every checkpoint and every given runner: a runner's status and
 *   lag as in `Health.check`; for a checkpoint without a runner here, an oldest event after
 *   it older than `lagAge`, or a rebuild begun and not finished, -> degraded. (The events
 *   after a checkpoint are counted over all streams, since the store does not know a
 *   projection's filter: only the age is held against a threshold.)
 * - `dead-letters`: more than `deadLetters` in all -> degraded.
 *
 * Fails only on a malformed schema name; what cannot be checked is reported as such.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import { PostgresHealth } from "eventcore/postgres"
 *
 * const report = PostgresHealth.check({ schema: "eventcore" }).pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@localhost/app"), maxConnections: 1 }))
 * )
 * // report.ready is false (and the schema check says "run the migrations") until the schema is migrated
 * ```
 * @since 0.3.0
 */
export const check = Effect.fn("PostgresHealth.check")(function*(
  options?: Options
): Effect.fn.Return<Health.Report, InvalidInput, SqlClient.SqlClient> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const thresholds = Checks.resolve(options?.thresholds)
  const mode = options?.mode ?? "full"
  const runners = options?.projections ?? []
  const bounded = { timeout: thresholds.timeout }
  const checks: Array<Health.Check> = []
  let projectionsChecked = false
  let storeAnswered = false

  if (mode !== "liveness") {
    const store = yield* Checks.probe(
      "store",
      Effect.map(
        sql.unsafe<{ readonly version: string; readonly database: string }>(
          "select current_setting('server_version') as version, current_database() as database"
        ),
        (rows): Checks.Outcome => ({
          status: "healthy",
          message: "answered",
          details: { serverVersion: rows[0]?.version, database: rows[0]?.database }
        })
      ),
      { ...bounded, gate: "readiness" }
    ).pipe(Effect.map(Checks.storeLatency(thresholds)))
    checks.push(store)
    storeAnswered = store.status !== "unhealthy"
    if (storeAnswered) {
      const version = yield* Checks.probe("schema", schemaVersion(sql, schema, mode === "full"), {
        ...bounded,
        gate: "readiness"
      })
      checks.push(version)
      if (mode === "full" && version.status === "healthy") {
        // Kept for the projections: events held back are not "after" any checkpoint yet.
        let held = 0
        checks.push(
          yield* Checks.probe(
            "read-horizon",
            Effect.map(Horizon.read(sql, schema, Horizon.defaultCap), (horizon) => {
              held = horizon.pending
              return Checks.horizon(horizon, thresholds)
            }),
            bounded
          )
        )
        // Counted first: each projection's details carry its own count.
        let counts: Readonly<Record<string, number>> = {}
        const letters = yield* Checks.probe(
          "dead-letters",
          Effect.map(deadLetterCounts(sql, schema), (found) => {
            counts = found
            return Checks.deadLetters(found, thresholds)
          }),
          bounded
        )
        checks.push(...yield* projections(sql, schema, runners, counts, held, thresholds), letters)
        projectionsChecked = true
      }
    }
  }
  if (!projectionsChecked) {
    // A store that does not answer would only make each lag read wait for its timeout.
    const withLag = mode === "full" && storeAnswered
    checks.push(
      ...yield* Effect.forEach(runners, (runner) => Checks.runner(runner, thresholds, withLag), {
        concurrency: "unbounded"
      })
    )
  }
  return Health.combine(checks, yield* DateTime.now)
})

/** The schema's migrations against the library's. */
const schemaVersion = (sql: SqlClient.SqlClient, schema: string, full: boolean) =>
  Effect.gen(function*() {
    const latest = Migrations.all.reduce((max, migration) => Math.max(max, migration.version), 0)
    const skipped = full ? "; the read horizon, projections and dead letters are not checked until then" : ""
    const found = yield* sql.unsafe<{ readonly found: boolean }>("select to_regclass($1) is not null as found", [
      `${schema}.migrations`
    ])
    if (found[0]?.found !== true) {
      return {
        status: "unhealthy",
        message: `schema ${schema} has no migrations table: run the migrations (Migrations.run)${skipped}`,
        details: { schema, version: 0, expected: latest }
      } satisfies Checks.Outcome
    }
    const rows = yield* sql.unsafe<{ readonly version: number }>(`select version from ${schema}.migrations`)
    const applied = new Set(rows.map((row) => Number(row.version)))
    const known = new Set(Migrations.all.map((migration) => migration.version))
    const version = Math.max(0, ...applied)
    const missing = [...known].filter((v) => !applied.has(v)).toSorted((a, b) => a - b)
    const unknown = [...applied].filter((v) => !known.has(v)).toSorted((a, b) => a - b)
    const details = { schema, version, expected: latest, missing, unknown }
    if (unknown.length > 0) {
      return {
        status: "unhealthy",
        message: `schema ${schema} has migrations this library does not know (${
          unknown.join(", ")
        }; it knows up to ${latest}): a newer version of the library migrated it; upgrade this one${skipped}`,
        details
      } satisfies Checks.Outcome
    }
    if (missing.length > 0) {
      return {
        status: "unhealthy",
        message: `schema ${schema} lacks migrations ${missing.join(", ")} (the library is at ${latest}): ` +
          `run the migrations (Migrations.run)${skipped}`,
        details
      } satisfies Checks.Outcome
    }
    return { status: "healthy", message: `schema ${schema} at version ${version}`, details } satisfies Checks.Outcome
  })

/** Dead letters per projection. */
const deadLetterCounts = (sql: SqlClient.SqlClient, schema: string) =>
  Effect.map(
    sql.unsafe<{ readonly projection: string; readonly n: number }>(
      `select projection, count(*)::int as n from ${schema}.dead_letters group by projection order by projection`
    ),
    (rows) => Object.fromEntries(rows.map((row) => [row.projection, Number(row.n)])) as Record<string, number>
  )

/** Where each checkpoint stands and how much of the store comes after it. */
const checkpointStates = (
  sql: SqlClient.SqlClient,
  schema: string,
  deadLetters: Readonly<Record<string, number>>
) =>
  Effect.gen(function*() {
    const rows = yield* sql.unsafe<CheckpointRow>(
      `select name, position, updated_at, rebuild_pending from ${schema}.checkpoints order by name`
    )
    const afterSql = Statements.visibleAfter(schema)
    const states = new Map<string, CheckpointState>()
    for (const row of rows) {
      const position = row.position !== null && Position.is(row.position) ? row.position : Position.initial
      const after = yield* sql.unsafe<{ readonly events: number; readonly oldest: Date | null }>(afterSql, [
        Position.transaction(position).toString(),
        Position.sequence(position).toString(),
        lagCap
      ])
      const now = yield* Clock.currentTimeMillis
      const n = Number(after[0]?.events ?? 0)
      const oldest = after[0]?.oldest ?? null
      states.set(row.name, {
        position,
        updatedAt: row.updated_at.toISOString(),
        rebuildPending: row.rebuild_pending,
        eventsAfter: n,
        capped: n >= lagCap,
        oldestMillis: oldest === null ? 0 : Math.max(0, now - oldest.getTime()),
        deadLetters: deadLetters[row.name] ?? 0
      })
    }
    return states
  })

/** A check per projection: each checkpoint, with its runner here when there is one. */
const projections = (
  sql: SqlClient.SqlClient,
  schema: string,
  runners: ReadonlyArray<Health.Watched>,
  deadLetters: Readonly<Record<string, number>>,
  held: number,
  thresholds: Checks.Resolved
) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const listed = yield* Effect.exit(
      Effect.timeoutOption(checkpointStates(sql, schema, deadLetters), thresholds.timeout)
    )
    const listMillis = (yield* Clock.currentTimeMillis) - start
    const checks: Array<Health.Check> = []
    let states = new Map<string, CheckpointState>()
    if (Exit.isFailure(listed) || listed.value._tag === "None") {
      checks.push({
        name: "projections",
        status: "unhealthy",
        message: `could not read the checkpoints: ${
          Exit.isFailure(listed)
            ? Checks.failure(listed.cause)
            : `no answer within ${Duration.format(thresholds.timeout)}`
        }`,
        millis: listMillis
      })
    } else {
      states = listed.value.value
    }
    const byName = new Map(runners.map((runner) => [runner.name, runner]))
    const names = [...new Set([...states.keys(), ...byName.keys()])].toSorted()
    const found = yield* Effect.forEach(names, (name) => {
      const state = states.get(name)
      const runner = byName.get(name)
      return runner === undefined
        ? Effect.succeed(
          state === undefined ? [] : [{ ...checkpointOnly(name, state, held, thresholds), millis: listMillis }]
        )
        : Effect.map(
          Checks.runner(runner, thresholds, true),
          (own) => [state === undefined ? own : withCheckpoint(own, state)]
        )
    }, { concurrency: "unbounded" })
    return [...checks, ...found.flat()]
  })

const checkpointDetails = (state: CheckpointState) => ({
  position: state.position,
  updatedAt: state.updatedAt,
  rebuildPending: state.rebuildPending,
  eventsAfter: state.eventsAfter,
  capped: state.capped,
  oldestMillis: state.oldestMillis,
  deadLetters: state.deadLetters
})

const rebuildMessage = "a rebuild began and has not finished (the next runner finishes it before processing)"

/** A projection known only by its checkpoint (its runner, if any, is in another process). */
const checkpointOnly = (name: string, state: CheckpointState, held: number, thresholds: Checks.Resolved) => {
  // The count covers every stream, and a running projection's checkpoint trails its progress
  // by design (its checkpoint policy): only the age says it is stuck.
  const verdict = Checks.lag(
    { events: state.eventsAfter, capped: state.capped, millis: state.oldestMillis },
    { ...thresholds, lagEvents: Number.POSITIVE_INFINITY },
    "of all streams after it"
  )
  const heldBack = held === 0
    ? ""
    : `; ${held} more committed event${
      held === 1 ? "" : "s"
    } wait behind the read horizon, not counted here (see read-horizon)`
  const message = `checkpoint updated ${state.updatedAt}; ${
    state.eventsAfter === 0 ? "no visible event after it" : verdict.message
  }${heldBack}${state.rebuildPending ? `; ${rebuildMessage}` : ""}`
  return {
    name: `projection:${name}`,
    status: Checks.worst([verdict.status, state.rebuildPending ? "degraded" : "healthy"]),
    message,
    details: { runner: undefined, checkpoint: checkpointDetails(state) }
  }
}

/** A runner's check with what its checkpoint says added. */
const withCheckpoint = (own: Health.Check, state: CheckpointState): Health.Check => ({
  ...own,
  status: Checks.worst([own.status, state.rebuildPending ? "degraded" : "healthy"]),
  message: state.rebuildPending ? `${own.message}; ${rebuildMessage}` : own.message,
  details: { ...own.details, checkpoint: checkpointDetails(state) }
})

/**
 * The `Health` service on PostgreSQL: `check(mode)` runs `check` with these options.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Health } from "eventcore"
 * import { PostgresHealth } from "eventcore/postgres"
 *
 * declare const balances: Health.Watched // a runner of this process (ProjectionRunner.start)
 *
 * // The runner must outlive the service: build it in the same scope.
 * const HealthLive = Layer.effect(
 *   Health.Health,
 *   PostgresHealth.make({ schema: "eventcore", projections: [balances] }) // needs a SqlClient
 * )
 * ```
 * @since 0.3.0
 */
export const make = (
  options?: Options
): Effect.Effect<Health.Health["Service"], InvalidInput, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    // A malformed schema name fails here, once, rather than on every check.
    yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
    const sql = yield* SqlClient.SqlClient
    return Health.Health.of({
      check: (mode) =>
        check({ ...options, mode: mode ?? options?.mode }).pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.orDie
        )
    })
  })

/**
 * `make` as a layer.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { PostgresHealth } from "eventcore/postgres"
 *
 * const HealthLive = PostgresHealth.layer({ schema: "eventcore" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@localhost/app") }))
 * )
 * ```
 * @since 0.3.0
 */
export const layer = (options?: Options): Layer.Layer<Health.Health, InvalidInput, SqlClient.SqlClient> =>
  Layer.effect(Health.Health, make(options))
