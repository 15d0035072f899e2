/**
 * Every program in examples/ run as a user runs it: its own process, importing the library by
 * its package name (resolved to the sources by scripts/source.mjs, ADR 12), checked on what it
 * prints and how it exits. A new example directory without an entry here fails the suite.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { execFile } from "node:child_process"
import { readdirSync } from "node:fs"
import * as Harness from "./postgres/harness.ts"

const root = new URL("..", import.meta.url)

interface Outcome {
  readonly code: number
  readonly output: string
}

/** Runs an example to its end (waits on the process's exit, not on time). */
const run = (example: string, env: Readonly<Record<string, string>> = {}) =>
  Effect.callback<Outcome>((resume) => {
    const { DATABASE_URL: _ignored, ...inherited } = process.env
    const child = execFile(
      process.execPath,
      ["--import", "./scripts/source.mjs", `examples/${example}/main.ts`],
      { cwd: root, env: { ...inherited, ...env, NO_COLOR: "1" }, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        resume(Effect.succeed({ code, output: `${stdout}${stderr}` }))
      }
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Runs an example on PostgreSQL in a schema of its own, dropped afterwards. */
const onPostgres = (example: string, env: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function*() {
    const url = yield* Harness.databaseUrl
    const schema = Harness.freshSchemaName()
    const dropSchema = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })), Effect.orDie)
    const outcome = yield* run(example, { ...env, DATABASE_URL: url, EVENTCORE_DEMO_SCHEMA: schema }).pipe(
      Effect.ensuring(dropSchema)
    )
    return { outcome, schema }
  })

const succeeded = (outcome: Outcome, ...expected: ReadonlyArray<string>) => {
  assert.strictEqual(outcome.code, 0, outcome.output)
  for (const line of expected) assert.include(outcome.output, line)
}

const covered = ["banking", "ecommerce", "health", "observability", "quickstart", "saga"]

describe("examples", () => {
  it("every example directory is run below", () => {
    const directories = readdirSync(new URL("examples", root), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .toSorted()
    assert.deepStrictEqual(directories, covered)
  })

  it.effect("quickstart (npm run quickstart): the README's example", () =>
    Effect.map(run("quickstart"), (outcome) =>
      succeeded(
        outcome,
        "transferred 30: 2 events written, alice at version 2, bob at version 1",
        "refused: balance is 70"
      )))

  it.effect("banking (npm start) on the in-memory store conserves money", () =>
    Effect.map(
      run("banking"),
      (outcome) => succeeded(outcome, "EventCore banking demo on the in-memory store", "money conserved: yes")
    ))

  it.effect("banking (DATABASE_URL=… npm start) on PostgreSQL conserves money, read models included", () =>
    Effect.map(onPostgres("banking"), ({ outcome, schema }) =>
      succeeded(
        outcome,
        "EventCore banking demo on the PostgreSQL store",
        "money conserved: yes",
        `(table ${schema}.banking_history)`
      )))

  const shopHolds = [
    "orders placed:        10",
    "orders refused:       cart-too-large 1, credit-limit 1, out-of-stock 30",
    "truffles sold / left: 10 / 0",
    "revenue (read model): 52400",
    "invariants: hold"
  ]

  it.effect("ecommerce (npm run ecommerce) on the in-memory store: nothing oversold, the read model agrees", () =>
    Effect.map(
      run("ecommerce"),
      (outcome) => succeeded(outcome, "EventCore shop on the in-memory store", ...shopHolds)
    ))

  it.effect("ecommerce (DATABASE_URL=… npm run ecommerce) on PostgreSQL: the same under real contention", () =>
    Effect.map(
      onPostgres("ecommerce"),
      ({ outcome }) => succeeded(outcome, "EventCore shop on the PostgreSQL store", ...shopHolds)
    ))

  const healthAnswers = [
    "GET /health/live -> 200 (status healthy, live true, ready true)",
    "GET /health/ready -> 200 (status healthy, live true, ready true)",
    "GET /health -> 200 (status healthy, live true, ready true)",
    "projection:audit: healthy (live; caught up",
    // a faulted projection: unhealthy, still live and ready
    "GET /health/live -> 200 (status unhealthy, live true, ready true)",
    "GET /health/ready -> 200 (status unhealthy, live true, ready true)",
    "GET /health -> 503 (status unhealthy, live true, ready true)",
    "projection:audit: unhealthy (faulted: Error: deposit"
  ]

  it.effect("health (npm run health) on the in-memory store: the endpoints answer for liveness, readiness, status", () =>
    Effect.map(
      run("health", { EVENTCORE_HEALTH_SELF_TEST: "1" }),
      (outcome) => succeeded(outcome, "EventCore health endpoints on the in-memory store", ...healthAnswers)
    ))

  it.effect("health (DATABASE_URL=… npm run health) on PostgreSQL: the schema version checked too", () =>
    Effect.map(onPostgres("health", { EVENTCORE_HEALTH_SELF_TEST: "1" }), ({ outcome, schema }) =>
      succeeded(
        outcome,
        `EventCore health endpoints on PostgreSQL (schema ${schema})`,
        `schema: healthy (schema ${schema} at version`,
        ...healthAnswers
      )))

  it.effect("observability (npm run observability): exports spans and metrics, serves a Prometheus scrape, and stops", () =>
    // No collector listens at the OTLP endpoint (a port nothing binds): the example still ends.
    Effect.map(
      run("observability", { PROMETHEUS_PORT: "0", OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" }),
      (outcome) =>
        succeeded(
          outcome,
          "commands: 4 ok, 1 refused (BusinessRuleViolation)",
          "projection balances: alice 70, bob 30",
          `eventcore_commands{command="Withdraw",outcome="refused"} 1`,
          "done: the exporters send the rest as the application stops"
        )
    ))

  it.effect("saga: fulfilment confirms what stock allows and compensates the rest", () =>
    Effect.map(run("saga"), (outcome) =>
      succeeded(
        outcome,
        "order o-1: confirmed",
        "order o-2: rejected (product plum has 1, order o-2 needs 2)",
        "order o-3: confirmed",
        "product plum: 0 available, 1 reserved"
      )))
})
