/**
 * The CLI as a whole: help for every command, the version, usage errors and their exit codes,
 * what it says when it cannot connect or finds no store, and `migrate` (dry run, apply, status).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Migrations } from "eventcore/postgres"
import { createServer } from "node:net"
import * as Runtime from "../../src/cli/Runtime.ts"
import * as Harness from "../postgres/harness.ts"
import { cli, databaseUrl, dropSchema, json, query } from "./harness.ts"

const commands = [
  [],
  ["migrate"],
  ["migrate", "status"],
  ["streams"],
  ["streams", "list"],
  ["streams", "show"],
  ["events"],
  ["events", "tail"],
  ["projections"],
  ["projections", "list"],
  ["projections", "status"],
  ["projections", "lag"],
  ["projections", "rebuild"],
  ["projections", "reset"],
  ["dead-letters"],
  ["dead-letters", "list"],
  ["dead-letters", "show"],
  ["dead-letters", "retry"],
  ["dead-letters", "discard"],
  ["read-models"],
  ["read-models", "versions"],
  ["read-models", "promote"],
  ["read-models", "retire"],
  ["doctor"]
] as const

/** A port nothing listens on (taken, then released). */
const deadPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const schema = Harness.freshSchemaName()
let url = ""
const latest = Math.max(...Migrations.all.map((m) => m.version))

beforeAll(async () => {
  url = await databaseUrl()
})
afterAll(() => dropSchema(schema))

describe("eventcore CLI", () => {
  it("--help works on every command and subcommand, exit 0, without a database", async () => {
    // Four at a time: each is a Node start.
    const outcomes: Array<readonly [string, Awaited<ReturnType<typeof cli>>]> = []
    for (let i = 0; i < commands.length; i += 4) {
      const batch = commands.slice(i, i + 4)
      outcomes.push(
        ...await Promise.all(batch.map(async (path) => [path.join(" "), await cli([...path, "--help"])] as const))
      )
    }
    for (const [path, outcome] of outcomes) {
      assert.strictEqual(outcome.code, 0, `${path}: ${outcome.stderr}`)
      assert.include(outcome.stdout, "USAGE", path)
      assert.include(outcome.stdout, `eventcore${path === "" ? "" : ` ${path}`}`, path)
    }
    const byPath = new Map(outcomes)
    assert.include(byPath.get("")?.stdout, "--database-url")
    assert.include(byPath.get("")?.stdout, "dead-letters")
    assert.include(byPath.get("migrate")?.stdout, "--dry-run")
    assert.include(byPath.get("migrate")?.stdout, "--grant-to")
    assert.include(byPath.get("projections rebuild")?.stdout, "--yes")
    assert.include(byPath.get("projections rebuild")?.stdout, "--timeout")
    assert.include(byPath.get("events tail")?.stdout, "--limit")
    assert.notInclude(byPath.get("")?.stdout, "--wizard")
  })

  it("--version prints the package's version", async () => {
    const outcome = await cli(["--version"])
    assert.strictEqual(outcome.code, 0)
    assert.match(outcome.stdout, /eventcore v\d+\.\d+\.\d+/)
  })

  it("usage errors exit 2: no command, an unknown one, an unknown flag, a missing argument, no database, a bad schema name, no --yes", async () => {
    const [noCommand, unknownCommand, unknownFlag, missingArgument, noDatabase, badSchema, noYes] = await Promise.all([
      cli([]),
      cli(["projections", "frobnicate"]),
      cli(["streams", "list", "--bogus", "--json"], { DATABASE_URL: url }),
      cli(["streams", "show"], { DATABASE_URL: url }),
      cli(["streams", "list"]),
      cli(["streams", "list", "--schema", "Bad-Name"], { DATABASE_URL: url }),
      cli(["projections", "rebuild", "balances", "--schema", schema], { DATABASE_URL: url })
    ])
    for (const outcome of [noCommand, unknownCommand, unknownFlag, missingArgument, noDatabase, badSchema, noYes]) {
      assert.strictEqual(outcome.code, 2, outcome.stderr)
    }
    // The help that answers a mistake goes to standard error with what was wrong: standard
    // output stays empty, so a script reading --json output never parses a help text.
    assert.include(noCommand.stderr, "SUBCOMMANDS")
    assert.include(unknownCommand.stderr, "frobnicate")
    assert.include(unknownFlag.stderr, "Unrecognized flag: --bogus")
    assert.include(unknownFlag.stderr, "USAGE")
    for (const outcome of [noCommand, unknownCommand, unknownFlag, missingArgument]) {
      assert.strictEqual(outcome.stdout, "", outcome.stdout)
    }
    assert.include(noDatabase.stderr, "set DATABASE_URL")
    assert.include(badSchema.stderr, "--schema: Invalid PostgreSQL schema name")
    assert.include(noYes.stderr, "pass --yes to confirm")
    // One clear line, no stack trace.
    for (const outcome of [noDatabase, badSchema, noYes]) {
      assert.notMatch(outcome.stderr, /\n\s+at /)
      assert.strictEqual(outcome.stderr.trim().split("\n").length, 1, outcome.stderr)
    }
  })

  it("every count, limit, cap, interval and timeout must be a positive integer: exit 2 naming the flag, before connecting", async () => {
    const bad = [
      [["streams", "list", "--limit", "-5"], "--limit", "-5"],
      [["streams", "list", "--limit", "0"], "--limit", "0"],
      [["streams", "show", "account-1", "--limit", "0"], "--limit", "0"],
      [["streams", "show", "account-1", "--from-version", "0"], "--from-version", "0"],
      [["events", "tail", "--limit", "0"], "--limit", "0"],
      [["events", "tail", "--poll-ms", "0"], "--poll-ms", "0"],
      [["events", "tail", "--poll-ms", "9"], "--poll-ms", "9"],
      [["projections", "lag", "--cap", "0"], "--cap", "0"],
      [["projections", "rebuild", "balances", "--yes", "--timeout", "0"], "--timeout", "0"],
      [["projections", "reset", "balances", "--yes", "--timeout", "-1"], "--timeout", "-1"],
      [["dead-letters", "retry", "balances", "--yes", "--timeout", "0"], "--timeout", "0"],
      [["read-models", "versions", "orders", "--cap", "0"], "--cap", "0"]
    ] as const
    // No database: a value that got past the parser would fail with "set DATABASE_URL" instead.
    const outcomes: Array<Awaited<ReturnType<typeof cli>>> = []
    for (let i = 0; i < bad.length; i += 4) {
      outcomes.push(...await Promise.all(bad.slice(i, i + 4).map(([args]) => cli([...args, "--json"]))))
    }
    bad.forEach(([args, flag, value], i) => {
      const outcome = outcomes[i]
      assert.isDefined(outcome)
      assert.strictEqual(outcome?.code, 2, `${args.join(" ")}: ${outcome?.stderr}`)
      assert.include(outcome?.stderr, `Invalid value for flag ${flag}: "${value}"`, args.join(" "))
      assert.strictEqual(outcome?.stdout, "", args.join(" "))
    })
    assert.include(outcomes[6]?.stderr, "Expected an integer of at least 10")
  })

  it("a missing @effect/sql-pg is one line saying how to install it; any other failure to load propagates", async () => {
    const absent = "@effect/sql-pg-not-installed-here"
    assert.strictEqual(
      await Runtime.missingPackage(absent, () => import(absent)),
      `${absent} is not installed, and the CLI needs it to reach PostgreSQL: npm install ${absent}`
    )
    assert.isUndefined(await Runtime.missingPackage("@effect/sql-pg", () => import("@effect/sql-pg")))
    const broken = new Error("boom")
    const other = await Runtime.missingPackage("@effect/sql-pg", () => Promise.reject(broken)).catch((e: unknown) => e)
    assert.strictEqual(other, broken)
  })

  it("cannot connect: exit 3 and one line naming the server; a missing database too", async () => {
    const port = await deadPort()
    const nothing = `postgres://postgres@127.0.0.1:${port}/test`
    const missing = new URL(url)
    missing.pathname = "/no_such_database_for_eventcore"
    const [refused, noDatabase, doctor] = await Promise.all([
      cli(["streams", "list"], { DATABASE_URL: nothing }),
      cli(["migrate", "status", "--database-url", missing.toString()]),
      cli(["doctor", "--json"], { DATABASE_URL: nothing })
    ])
    assert.strictEqual(refused.code, 3, refused.stderr)
    assert.include(refused.stderr, `Cannot connect to PostgreSQL at 127.0.0.1:${port}/test`)
    assert.include(refused.stderr, "ECONNREFUSED")
    assert.strictEqual(noDatabase.code, 3, noDatabase.stderr)
    assert.include(noDatabase.stderr, "no such database")
    assert.strictEqual(doctor.code, 3, doctor.stderr)
    assert.strictEqual(doctor.stdout, "")
  })

  it("a schema without a store: exit 4, saying to migrate", async () => {
    const outcome = await cli(["streams", "list", "--schema", schema], { DATABASE_URL: url })
    assert.strictEqual(outcome.code, 4, outcome.stderr)
    assert.include(
      outcome.stderr,
      `No EventCore store in schema ${schema}: run \`eventcore migrate --schema ${schema}\``
    )
  })

  it("migrate --dry-run prints the SQL and changes nothing; migrate applies it; status and a second run agree", async () => {
    const env = { DATABASE_URL: url }
    const dryRun = await cli(["migrate", "--dry-run", "--schema", schema], env)
    assert.strictEqual(dryRun.code, 0, dryRun.stderr)
    assert.include(dryRun.stdout, `create schema ${schema};`)
    assert.include(dryRun.stdout, `create table ${schema}.events (`)
    for (const migration of Migrations.all) {
      assert.include(dryRun.stdout, `-- migration ${migration.version}: ${migration.name}`)
    }
    const dryJson = await cli(["migrate", "--dry-run", "--json", "--schema", schema], env)
    assert.deepStrictEqual(
      json<{ pending: Array<{ version: number }> }>(dryJson).pending.map((m) => m.version),
      Migrations.all.map((m) => m.version)
    )
    const exists = await query<{ found: boolean }>("select to_regnamespace($1) is not null as found", [schema])
    assert.isFalse(exists[0]?.found, "the dry run created the schema")

    const before = await cli(["migrate", "status", "--schema", schema], env)
    assert.strictEqual(before.code, 0, before.stderr)
    assert.include(before.stdout, `is at version 0; the library is at ${latest}: run \`eventcore migrate\``)

    const applied = await cli(["migrate", "--schema", schema], env)
    assert.strictEqual(applied.code, 0, applied.stderr)
    assert.include(
      applied.stdout,
      `Migrated schema ${schema}: applied ${Migrations.all.map((m) => m.version).join(", ")}`
    )

    const [again, status, statusJson, dryAfter] = await Promise.all([
      cli(["migrate", "--json", "--schema", schema], env),
      cli(["migrate", "status", "--schema", schema], env),
      cli(["migrate", "status", "--json", "--schema", schema], env),
      cli(["migrate", "--dry-run", "--schema", schema], env)
    ])
    assert.deepStrictEqual(json(again), { schema, applied: [] })
    assert.match(status.stdout, /VERSION\s+NAME\s+APPLIED/)
    assert.include(status.stdout, `Schema ${schema} is up to date (version ${latest}).`)
    const parsed = json<{ current: number; upToDate: boolean; pending: Array<unknown>; applied: Array<unknown> }>(
      statusJson
    )
    assert.strictEqual(parsed.current, latest)
    assert.isTrue(parsed.upToDate)
    assert.lengthOf(parsed.applied, Migrations.all.length)
    assert.include(dryAfter.stdout, "is up to date: nothing to run")
  })
})
