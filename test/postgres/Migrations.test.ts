import { PgClient } from "@effect/sql-pg"
import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import * as Migrations from "../../src/postgres/Migrations.ts"
import * as Harness from "./harness.ts"

const withSchema = <A, E>(body: (schema: string) => Effect.Effect<A, E, SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const url = yield* Harness.databaseUrl
    const schema = Harness.freshSchemaName()
    return yield* Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* body(schema).pipe(
        Effect.ensuring(sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared.pipe(Effect.orDie))
      )
    }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 8 })))
  })

it.live("migrations are idempotent: a second run applies nothing", () =>
  withSchema((schema) =>
    Effect.gen(function*() {
      const first = yield* Migrations.run({ schema })
      const second = yield* Migrations.run({ schema })
      assert.deepStrictEqual(first, Migrations.all.map((m) => m.version))
      assert.deepStrictEqual(second, [])
      const sql = yield* SqlClient.SqlClient
      const recorded = yield* sql.unsafe<{ version: number }>(
        `select version from ${schema}.migrations order by version`
      )
      assert.deepStrictEqual(recorded.map((r) => r.version), Migrations.all.map((m) => m.version))
    })
  ))

it.live("concurrent migrators serialize on the advisory lock and apply each version once", () =>
  withSchema((schema) =>
    Effect.gen(function*() {
      const runs = yield* Effect.all(Array.from({ length: 4 }, () => Migrations.run({ schema })), {
        concurrency: "unbounded"
      })
      assert.strictEqual(runs.filter((applied) => applied.length > 0).length, 1)
    })
  ))

it.live("a schema name that would need quoting is InvalidInput", () =>
  Effect.gen(function*() {
    const error = yield* Migrations.parseSchemaName(`x"; drop table y; --`).pipe(Effect.flip)
    assert.strictEqual(error._tag, "InvalidInput")
  }))
