/**
 * A projection process killed with SIGKILL during catch-up and restarted ends with a read
 * model equal to a full replay: the transactional kind applies no event twice, the
 * at-least-once kind receives some events twice and stays correct because it is idempotent.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { raw } from "./fixtures.ts"
import * as Harness from "./harness.ts"
import { createReadModels, lastCommitted, replay, seed } from "./projectionFixtures.ts"

const total = 2_000

const startChild = (mode: "tx" | "idem") =>
  Effect.gen(function*() {
    const { schema, url } = yield* Harness.TestDatabase
    const output: Array<string> = []
    const child = spawn(
      "node_modules/.bin/node",
      ["--import", "./scripts/source.mjs", "test/postgres/projection-child.ts", mode, schema],
      { env: { ...process.env, DATABASE_URL: url }, stdio: ["ignore", "pipe", "pipe"] }
    )
    child.stdout?.on("data", (chunk) => output.push(String(chunk)))
    child.stderr?.on("data", (chunk) => output.push(String(chunk)))
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    return { child, output }
  })

const killed = (child: ChildProcess) =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })

/**
 * Bounded polling (a cross-process wait): up to ~90 s, 50 ms apart. A bound against a hang,
 * not a speed check: a child process starting on a loaded machine can take tens of seconds.
 */
const until = <E, R>(condition: Effect.Effect<boolean, E, R>, what: string) =>
  condition.pipe(
    Effect.flatMap((ok) => ok ? Effect.void : Effect.fail(`still waiting: ${what}`)),
    Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 1800 })
  )

const checkpoint = (name: string) =>
  Effect.map(
    raw<{ position: string }>("select position from ${s}.checkpoints where name = $1", [name]),
    (rows) => rows[0]?.position
  )

const count = (table: string) =>
  Effect.map(raw<{ n: string }>(`select count(*)::text as n from \${s}.${table}`), (rows) => Number(rows[0]?.n ?? 0))

layer(Harness.layer(), { excludeTestServices: true })("projection process killed with SIGKILL", (it) => {
  it.effect(
    "transactional: restarted after SIGKILL mid catch-up, equals a replay, no event applied twice",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema } = yield* Harness.TestDatabase
        yield* createReadModels(schema)
        yield* seed({ count: total, accounts: 7 })
        const head = yield* lastCommitted

        const first = yield* startChild("tx")
        yield* until(Effect.map(count("rm_applied"), (n) => n >= 300), "first run applied 300 events")
        yield* killed(first.child)
        const atKill = yield* checkpoint("balances-tx")
        const appliedAtKill = yield* count("rm_applied")
        assert.isDefined(atKill)
        assert.isBelow(appliedAtKill, total, `killed during catch-up:\n${first.output.join("")}`)

        const second = yield* startChild("tx")
        yield* until(
          Effect.map(checkpoint("balances-tx"), (p) => p !== undefined && p >= head),
          "caught up after restart"
        )
        yield* killed(second.child)

        const expected = yield* replay
        const rows = yield* raw<{ account: string; balance: string; events: string }>(
          "select account, balance::text, events::text from ${s}.rm_balances"
        )
        const actual = new Map(rows.map((r) => [r.account, Number(r.balance)]))
        assert.deepStrictEqual(actual, expected.balances)
        // exactly once: one applied row per event (a duplicate would have failed the unique key),
        // and the per-account event counters add up to the number of events
        assert.strictEqual(yield* count("rm_applied"), total)
        assert.strictEqual(rows.reduce((n, r) => n + Number(r.events), 0), total)
      })),
    { timeout: 240_000 }
  )

  it.effect(
    "at-least-once: restarted after SIGKILL, redelivered events are absorbed by idempotent writes",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { schema } = yield* Harness.TestDatabase
        yield* createReadModels(schema)
        const head = yield* lastCommitted
        const deliveries = Effect.map(
          raw<{ count: string }>("select count::text from ${s}.rm_deliveries where id = 1"),
          (rows) => Number(rows[0]?.count ?? 0)
        )

        const first = yield* startChild("idem")
        yield* until(Effect.map(checkpoint("history-idem"), (p) => p !== undefined), "first checkpoint")
        yield* until(Effect.map(deliveries, (n) => n >= 350), "first run handled 350 events")
        yield* killed(first.child)
        const atKill = yield* count("rm_history")
        assert.isBelow(atKill, total, `killed during catch-up:\n${first.output.join("")}`)

        const second = yield* startChild("idem")
        yield* until(
          Effect.map(checkpoint("history-idem"), (p) => p !== undefined && p >= head),
          "caught up after restart"
        )
        yield* killed(second.child)

        const expected = yield* replay
        const rows = yield* raw<{ account: string; balance: string }>(
          "select account, sum(amount)::text as balance from ${s}.rm_history group by account"
        )
        assert.deepStrictEqual(new Map(rows.map((r) => [r.account, Number(r.balance)])), expected.balances)
        assert.strictEqual(yield* count("rm_history"), total)
        // at least once: the work after the last checkpoint before the kill was delivered again
        assert.isAtLeast(yield* deliveries, total + 1)
      })),
    { timeout: 240_000 }
  )
})
