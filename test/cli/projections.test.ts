/**
 * `projections`, `dead-letters` and `doctor` against a store with a real runner in this process
 * (the application), and a projection without one: what the operator sees, and what the
 * runner does with what the CLI asks (a rebuild, a retry, a reset).
 */
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type Context, Duration, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { CheckpointStore, CommandExecutor, Position, Projection, ProjectionRunner } from "eventcore"
import { PostgresEventStore, PostgresProjection } from "eventcore/postgres"
import * as Harness from "../postgres/harness.ts"
import { Account, cli, databaseUrl, Deposit, dropSchema, Events, json, query, start } from "./harness.ts"

const schema = Harness.freshSchemaName()
let url = ""
const env = () => ({ DATABASE_URL: url })
const inSchema = (...args: ReadonlyArray<string>) => [...args, "--schema", schema]

/** The read model: the last amount per event, and accounts whose events the handler refuses. */
const totals = new Map<string, number>()
const broken = new Set<string>()
let resets = 0

const Balances = Projection.make({
  name: "cli_balances",
  events: Events,
  filter: Account.filter,
  handle: (event, stored): Effect.Effect<void, Error> =>
    broken.has(stored.streamId)
      ? Effect.fail(new Error(`boom on ${stored.streamId}`))
      : Effect.sync(() => void totals.set(`${stored.streamId}@${stored.streamVersion}`, event.amount)),
  reset: Effect.sync(() => {
    resets++
    totals.clear()
  }),
  onFailure: Projection.skip,
  checkpoint: { every: Duration.millis(100) }
})

const scope = Effect.runSync(Scope.make())
type Services = Layer.Success<ReturnType<typeof live>>
let context: Context.Context<Services>
let runner: ProjectionRunner.Runner<void>

const live = (database: string) =>
  Layer.mergeAll(CommandExecutor.layer(), PostgresProjection.layer({ schema })).pipe(
    Layer.provideMerge(PostgresEventStore.layer({ schema })),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(database), maxConnections: 4 }))
  )

const run = <A, E>(effect: Effect.Effect<A, E, Services>): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, context))

const deposit = (account: string, amount: number) => run(CommandExecutor.execute(Deposit, { account, amount }))

/** Waits (on the runner, not on time) until it has processed everything committed so far. */
const settled = async () => {
  const last = await query<{ tx_id: string; position: string }>(
    `select tx_id::text, position::text from ${schema}.events order by tx_id desc, position desc limit 1`
  )
  const row = last[0]
  if (row === undefined) return
  await run(runner.awaitPosition(Position.make(BigInt(row.tx_id), BigInt(row.position))))
}

const letters = async () =>
  json<{ deadLetters: Array<{ eventId: string; streamId: string; error: string }> }>(
    await cli(inSchema("dead-letters", "list", "cli_balances", "--json"), env())
  ).deadLetters

beforeAll(async () => {
  url = await databaseUrl()
  context = await Effect.runPromise(Layer.buildWithScope(live(url), scope))
  broken.add("account-2")
  await deposit("1", 1)
  await deposit("2", 20)
  await deposit("1", 2)
  runner = await run(
    ProjectionRunner.start(Balances, { rebuildCheck: "200 millis" }).pipe(Effect.provideService(Scope.Scope, scope))
  )
  await run(runner.awaitStatus("Live"))
  await settled()
  // A projection whose runner is elsewhere (not running): its checkpoint at the first event.
  await query(
    `insert into ${schema}.checkpoints (name, position)
     select 'cli_idle', lpad(tx_id::text, 20, '0') || '.' || lpad(position::text, 20, '0')
     from ${schema}.events order by tx_id, position limit 1`
  )
})

afterAll(async () => {
  await Effect.runPromise(Scope.close(scope, Exit.void))
  await dropSchema(schema)
})

describe("projections", () => {
  it("list, status (with the session running each) and lag; an unknown projection exits 4", async () => {
    const [list, listJson, status, statusJson, lag, unknown] = await Promise.all([
      cli(inSchema("projections", "list"), env()),
      cli(inSchema("projections", "list", "--json"), env()),
      cli(inSchema("projections", "status"), env()),
      cli(inSchema("projections", "status", "cli_balances", "--json"), env()),
      cli(inSchema("projections", "lag", "--json"), env()),
      cli(inSchema("projections", "status", "nope"), env())
    ])
    assert.strictEqual(list.code, 0, list.stderr)
    assert.match(list.stdout, /^NAME\s+CHECKPOINT\s+UPDATED\s+STATUS\n/)
    assert.match(list.stdout, /cli_balances\s+\d+\.\d+\s+\S+\s+ok/)
    assert.deepStrictEqual(
      json<{ projections: Array<{ name: string }> }>(listJson).projections.map((p) => p.name),
      ["cli_balances", "cli_idle"]
    )
    assert.match(status.stdout, /cli_balances\s+ok\s+\S+\s+\S+\s+1\s+pid \d+/)
    assert.match(status.stdout, /cli_idle\s+ok\s+\S+\s+\S+\s+0\s+none/)
    const balances = json<{ projections: Array<{ deadLetters: number; runner: { pid: number } | null }> }>(
      statusJson
    ).projections[0]
    assert.strictEqual(balances?.deadLetters, 1)
    assert.isNumber(balances?.runner?.pid)
    const lags = json<{ projections: Array<{ name: string; events: number }> }>(lag).projections
    // Three events; the idle projection's checkpoint is at the first.
    assert.strictEqual(lags.find((l) => l.name === "cli_idle")?.events, 2)
    assert.strictEqual(unknown.code, 4)
    assert.include(unknown.stderr, `No projection "nope" in schema ${schema}`)
    assert.include(unknown.stderr, "known: cli_balances, cli_idle")
  })
})

describe("dead letters", () => {
  it("list and show: the skipped event, its error, and the event as stored", async () => {
    const [list, found] = await Promise.all([cli(inSchema("dead-letters", "list"), env()), letters()])
    assert.strictEqual(list.code, 0, list.stderr)
    assert.match(
      list.stdout,
      /cli_balances\s+[0-9a-f-]{36}\s+account-2@1\s+Deposited\s+1\s+\S+\s+Error: boom on account-2/
    )
    assert.lengthOf(found, 1)
    const eventId = found[0]?.eventId ?? ""
    const [shown, shownJson, missing] = await Promise.all([
      cli(inSchema("dead-letters", "show", "cli_balances", eventId), env()),
      cli(inSchema("dead-letters", "show", "cli_balances", eventId, "--json"), env()),
      cli(inSchema("dead-letters", "show", "cli_balances", "00000000-0000-0000-0000-000000000000"), env())
    ])
    assert.strictEqual(shown.code, 0, shown.stderr)
    assert.include(shown.stdout, "error:\nError: boom on account-2")
    assert.include(shown.stdout, `payload:  {"_tag":"Deposited","amount":20}`)
    const parsed = json<{ deadLetter: { streamId: string }; event: { payload: unknown } }>(shownJson)
    assert.strictEqual(parsed.deadLetter.streamId, "account-2")
    assert.deepStrictEqual(parsed.event.payload, { _tag: "Deposited", amount: 20 })
    assert.strictEqual(missing.code, 4)
  })

  it("doctor reports them (degraded, exit 0; --strict exits 1) beside every other check", async () => {
    const [report, strict] = await Promise.all([
      cli(inSchema("doctor", "--json"), env()),
      cli(inSchema("doctor", "--strict"), env())
    ])
    assert.strictEqual(report.code, 0, report.stderr)
    const parsed = json<{ status: string; checks: Array<{ name: string; status: string }> }>(report)
    const byName = new Map(parsed.checks.map((c) => [c.name, c.status]))
    for (
      const name of [
        "store",
        "schema",
        "read-horizon",
        "projection:cli_balances",
        "projection:cli_idle",
        "dead-letters",
        "restore",
        "oldest-transaction",
        "isolation",
        "connections"
      ]
    ) assert.isTrue(byName.has(name), `no ${name} check`)
    assert.strictEqual(byName.get("schema"), "healthy")
    assert.strictEqual(byName.get("restore"), "healthy")
    assert.strictEqual(byName.get("dead-letters"), "degraded")
    assert.notStrictEqual(parsed.status, "unhealthy")
    assert.strictEqual(strict.code, 1, strict.stderr)
    assert.match(strict.stdout, /degraded\s+dead-letters/)
    assert.include(strict.stderr, "the store is degraded")
  })

  it("retry rebuilds the projection: a letter that fails again comes back (exit 1); after the fix none does", async () => {
    const refused = await cli(inSchema("dead-letters", "retry", "cli_balances"), env())
    assert.strictEqual(refused.code, 2)
    const resetsBefore = resets
    const again = await cli(inSchema("dead-letters", "retry", "cli_balances", "--yes"), env())
    assert.strictEqual(again.code, 1, again.stderr)
    assert.include(again.stdout, "1 dead letter(s) retried, 1 failed again")
    assert.include(again.stderr, "1 event(s) failed again")
    assert.strictEqual(resets, resetsBefore + 1)

    broken.clear()
    const fixed = await cli(inSchema("dead-letters", "retry", "cli_balances", "--yes", "--json"), env())
    assert.strictEqual(fixed.code, 0, fixed.stderr)
    assert.deepStrictEqual(json(fixed), { schema, projection: "cli_balances", retried: 1, remaining: 0 })
    assert.strictEqual(totals.get("account-2@1"), 20)
    assert.deepStrictEqual(await letters(), [])
    const nothing = await cli(inSchema("dead-letters", "retry", "cli_balances", "--yes"), env())
    assert.strictEqual(nothing.code, 0)
    assert.include(nothing.stdout, "no dead letters: nothing to retry")
  })

  it("projections rebuild: the runner clears and replays; the CLI follows it to the end", async () => {
    broken.add("account-2")
    const resetsBefore = resets
    const rebuilt = await cli(inSchema("projections", "rebuild", "cli_balances", "--yes"), env())
    assert.strictEqual(rebuilt.code, 0, rebuilt.stderr)
    assert.match(rebuilt.stdout, /Rebuilt cli_balances: caught up with \d+\.\d+ in /)
    assert.strictEqual(resets, resetsBefore + 1)
    assert.isFalse(totals.has("account-2@1"))
    assert.lengthOf(await letters(), 1)
  })

  it("discard forgets one letter (--yes required); a second discard finds nothing (exit 4)", async () => {
    const eventId = (await letters())[0]?.eventId ?? ""
    const refused = await cli(inSchema("dead-letters", "discard", "cli_balances", eventId), env())
    assert.strictEqual(refused.code, 2)
    assert.include(refused.stderr, "skips event")
    const discarded = await cli(inSchema("dead-letters", "discard", "cli_balances", eventId, "--yes"), env())
    assert.strictEqual(discarded.code, 0, discarded.stderr)
    assert.include(discarded.stdout, `Discarded the dead letter of cli_balances for event ${eventId}.`)
    const [again, list] = await Promise.all([
      cli(inSchema("dead-letters", "discard", "cli_balances", eventId, "--yes"), env()),
      cli(inSchema("dead-letters", "list"), env())
    ])
    assert.strictEqual(again.code, 4)
    assert.include(list.stdout, "No dead letters.")
    broken.clear()
  })
})

describe("reset and rebuild without waiting", () => {
  it("reset moves the checkpoint back without clearing the read model; the runner replays on top when it next saves", async () => {
    const resetsBefore = resets
    const reset = start(inSchema("projections", "reset", "cli_balances", "--yes", "--timeout", "100"), env())
    await reset.printed(/waiting for a runner of cli_balances/)
    // The runner finds its checkpoint gone when it next saves, after this event.
    await deposit("5", 5)
    const outcome = await reset.done
    assert.strictEqual(outcome.code, 0, outcome.stderr)
    assert.match(outcome.stdout, /Checkpoint of cli_balances moved to the start; caught up with \d+\.\d+ in /)
    assert.strictEqual(resets, resetsBefore, "a reset does not clear the read model")
    await settled()
    assert.strictEqual(totals.get("account-5@1"), 5)
  })

  it("rebuild --no-wait marks it pending for a runner elsewhere; reset is refused meanwhile; --to moves the checkpoint", async () => {
    const requested = await cli(inSchema("projections", "rebuild", "cli_idle", "--yes", "--no-wait", "--json"), env())
    assert.strictEqual(requested.code, 0, requested.stderr)
    assert.deepStrictEqual(json(requested), { schema, projection: "cli_idle", rebuild: "pending" })
    const [status, refused, timedOut] = await Promise.all([
      cli(inSchema("projections", "status", "cli_idle"), env()),
      cli(inSchema("projections", "reset", "cli_idle", "--yes"), env()),
      cli(inSchema("projections", "rebuild", "cli_idle", "--yes", "--timeout", "1"), env())
    ])
    assert.match(status.stdout, /cli_idle\s+rebuild pending/)
    assert.strictEqual(refused.code, 1)
    assert.include(refused.stderr, "A rebuild of cli_idle is pending")
    assert.strictEqual(timedOut.code, 1)
    assert.include(timedOut.stderr, "not caught up after 1s (waiting for a runner of cli_idle to take the rebuild")

    await query(`update ${schema}.checkpoints set rebuild_pending = false where name = 'cli_idle'`)
    const moved = await cli(inSchema("projections", "reset", "cli_idle", "--yes", "--to", "1.1", "--no-wait"), env())
    assert.strictEqual(moved.code, 0, moved.stderr)
    assert.include(moved.stdout, "Checkpoint of cli_idle moved to 1.1.")
    const gone = await cli(inSchema("projections", "reset", "cli_idle", "--yes", "--no-wait", "--json"), env())
    assert.deepStrictEqual(json(gone), { schema, projection: "cli_idle", reset: "the start", following: false })
    const after = await cli(inSchema("projections", "status", "cli_idle"), env())
    assert.strictEqual(after.code, 4)
  })
})

describe("read-models (blue/green versions)", () => {
  it("versions lists them; promote switches (refused while behind, unless --force); retire forgets an old one", async () => {
    // Version 1 at the first event, version 2 at the second: as two runners would have saved them.
    await run(CheckpointStore.save("cli_orders", Position.make(1, 1)))
    await run(CheckpointStore.save("cli_orders@v2", Position.make(1, 2)))
    const listed = await cli(inSchema("read-models", "versions", "cli_orders"), env())
    assert.strictEqual(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, /^VERSION\s+NAME\s+ACTIVE\s+CHECKPOINT\s+EVENTS BEHIND\s+RUNNING\s+REBUILD\n/)
    assert.match(listed.stdout, /\n1\s+cli_orders\s+yes\s+1\.1\s+\d+\s+no/)
    assert.match(listed.stdout, /\n2\s+cli_orders@v2\s+1\.2\s+\d+\s+no/)

    const promoted = await cli(inSchema("read-models", "promote", "cli_orders", "2", "--json"), env())
    assert.strictEqual(promoted.code, 0, promoted.stderr)
    assert.deepStrictEqual(json(promoted), { schema, readModel: "cli_orders", previous: 1, active: 2 })
    const [back, unknown, retireActive, retireNoYes] = await Promise.all([
      cli(inSchema("read-models", "promote", "cli_orders", "1"), env()),
      cli(inSchema("read-models", "promote", "cli_orders", "3"), env()),
      cli(inSchema("read-models", "retire", "cli_orders", "2", "--yes"), env()),
      cli(inSchema("read-models", "retire", "cli_orders", "1"), env())
    ])
    assert.strictEqual(back.code, 1, back.stderr)
    assert.include(back.stderr, "has not caught up")
    assert.strictEqual(unknown.code, 4)
    assert.include(unknown.stderr, "has no version 3 (known: 1, 2)")
    assert.strictEqual(retireActive.code, 1)
    assert.include(retireActive.stderr, "it is the active version")
    assert.strictEqual(retireNoYes.code, 2)
    const forced = await cli(inSchema("read-models", "promote", "cli_orders", "1", "--force"), env())
    assert.strictEqual(forced.code, 0, forced.stderr)
    assert.include(forced.stdout, "Version 1 of cli_orders is active (was 2)")
    const retired = await cli(inSchema("read-models", "retire", "cli_orders", "2", "--yes"), env())
    assert.strictEqual(retired.code, 0, retired.stderr)
    const after = json<{ versions: Array<{ version: number; active: boolean }> }>(
      await cli(inSchema("read-models", "versions", "cli_orders", "--json"), env())
    )
    assert.deepStrictEqual(after.versions.map((v) => [v.version, v.active]), [[1, true]])
  })

  it("a read model with no checkpoint yet: versions lists version 1 as active; retire and promote agree", async () => {
    const listed = await cli(inSchema("read-models", "versions", "cli_fresh"), env())
    assert.strictEqual(listed.code, 0, listed.stderr)
    assert.match(listed.stdout, /\n1\s+cli_fresh\s+yes\s+-\s/)
    const [retireActive, promoteOther, promoteActive] = await Promise.all([
      cli(inSchema("read-models", "retire", "cli_fresh", "1", "--yes"), env()),
      cli(inSchema("read-models", "promote", "cli_fresh", "2"), env()),
      cli(inSchema("read-models", "promote", "cli_fresh", "1"), env())
    ])
    assert.strictEqual(retireActive.code, 1, retireActive.stderr)
    assert.include(retireActive.stderr, "it is the active version")
    assert.strictEqual(promoteOther.code, 4, promoteOther.stderr)
    assert.include(promoteOther.stderr, "has no version 2 (known: 1)")
    assert.strictEqual(promoteActive.code, 0, promoteActive.stderr)
    assert.include(promoteActive.stdout, "Version 1 of cli_fresh was already active.")
  })
})

describe("doctor", () => {
  it("on a schema without a store: unhealthy, exit 1, saying to migrate", async () => {
    const outcome = await cli(["doctor", "--schema", Harness.freshSchemaName()], env())
    assert.strictEqual(outcome.code, 1, outcome.stderr)
    assert.match(outcome.stdout, /unhealthy\s+schema\s+\d+\s+schema \S+ has no migrations table: run the migrations/)
    assert.include(outcome.stdout, "UNHEALTHY")
  })
})
