/**
 * `eventcore migrate --grant-to`: the migrations, then the application's privileges for a role
 * (`Migrations.run({ grantTo })`), and the dry run printing exactly that. The role is a
 * throwaway of this file's own (roles are cluster-wide: a random name), dropped at the end
 * with everything granted to it.
 */
import { PgClient } from "@effect/sql-pg"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { Migrations } from "eventcore/postgres"
import * as Harness from "../postgres/harness.ts"
import { cli, databaseUrl, dropSchema, json, query } from "./harness.ts"

const schema = Harness.freshSchemaName()
const emptySchema = Harness.freshSchemaName()
const role = `ec_cli_app_${Math.random().toString(36).slice(2, 10)}`
let url = ""

beforeAll(async () => {
  url = await databaseUrl()
  await query(`create role ${role} login`)
  await query(`create schema ${emptySchema}`)
})
afterAll(async () => {
  await dropSchema(schema)
  await dropSchema(emptySchema)
  // Whatever happened above: the role's privileges, then the role.
  await query(`drop owned by ${role}`)
  await query(`drop role ${role}`)
})

/** Runs a statement connected as `role`; its outcome (a SQLSTATE when refused). */
const asRole = async (statement: string): Promise<string> => {
  const exit = await Effect.runPromise(
    Effect.exit(Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement).unprepared)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), username: role, maxConnections: 1 }))
    )
  )
  if (Exit.isSuccess(exit)) return "ok"
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  const cause: unknown = reason?._tag === "Fail" ? reason.error.reason.cause : undefined
  return typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : "failed"
}

describe("eventcore migrate --grant-to", () => {
  it("a bad role name is a usage error (exit 2), before connecting", async () => {
    // Nothing listens on port 1: connecting first would exit 3.
    const outcome = await cli(["migrate", "--grant-to", "x".repeat(64)], {
      DATABASE_URL: "postgres://postgres@127.0.0.1:1/test"
    })
    assert.strictEqual(outcome.code, 2, outcome.stderr)
    assert.include(outcome.stderr, "--grant-to:")
    assert.include(outcome.stderr, "is not a role name")
  })

  it("the dry run prints what run sends: the schema only when missing, then the grants", async () => {
    const env = { DATABASE_URL: url }
    const [fresh, existing, freshJson] = await Promise.all([
      cli(["migrate", "--dry-run", "--schema", schema, "--grant-to", role], env),
      cli(["migrate", "--dry-run", "--schema", emptySchema], env),
      cli(["migrate", "--dry-run", "--json", "--schema", schema, "--grant-to", role], env)
    ])
    assert.strictEqual(fresh.code, 0, fresh.stderr)
    const grants = await Effect.runPromise(Migrations.grants({ schema, role }))
    const lines = fresh.stdout.split("\n")
    assert.include(lines, `create schema ${schema};`)
    // The grants come last, after every migration, each as a statement of its own.
    const firstGrant = lines.indexOf(`${grants[0]};`)
    assert.isAbove(firstGrant, lines.findLastIndex((l) => l.startsWith("insert into")))
    assert.deepStrictEqual(lines.slice(firstGrant, firstGrant + grants.length), grants.map((g) => `${g};`))
    assert.deepStrictEqual(json<{ grants: Array<string> }>(freshJson).grants, [...grants])

    // The schema exists (empty): run creates only the migrations table in it, and so says the plan.
    assert.strictEqual(existing.code, 0, existing.stderr)
    assert.notInclude(existing.stdout, "create schema")
    assert.include(existing.stdout, `create table if not exists ${emptySchema}.migrations (`)
  })

  it("applies the migrations and the grants: the role reads events and cannot change them", async () => {
    const env = { DATABASE_URL: url }
    const applied = await cli(["migrate", "--schema", schema, "--grant-to", role], env)
    assert.strictEqual(applied.code, 0, applied.stderr)
    assert.include(
      applied.stdout,
      `Migrated schema ${schema}: applied ${Migrations.all.map((m) => m.version).join(", ")}`
    )
    assert.include(applied.stdout, `Granted the application's privileges on schema ${schema} to ${role}.`)

    assert.strictEqual(await asRole(`select count(*) from ${schema}.events`), "ok")
    assert.strictEqual(await asRole(`select count(*) from ${schema}.migrations`), "ok")
    assert.strictEqual(await asRole(`update ${schema}.events set type = 'Forged'`), "42501")
    assert.strictEqual(await asRole(`delete from ${schema}.events`), "42501")
    assert.strictEqual(await asRole(`create table ${schema}.forged (x int)`), "42501")

    // Up to date: the grants alone (idempotent), and the dry run lists only them.
    const [again, dryRun] = await Promise.all([
      cli(["migrate", "--json", "--schema", schema, "--grant-to", role], env),
      cli(["migrate", "--dry-run", "--schema", schema, "--grant-to", role], env)
    ])
    assert.deepStrictEqual(json(again), { schema, applied: [], grantedTo: [role] })
    assert.notInclude(dryRun.stdout, "-- migration ")
    assert.include(dryRun.stdout, `no migration to run`)
    assert.include(dryRun.stdout, `grant usage on schema ${schema} to "${role}";`)
  })
})
