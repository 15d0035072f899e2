/**
 * `eventcore migrate`: bring the schema up to the library's version, show where it is, or
 * print the SQL a migration would run.
 *
 * @internal
 */
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as Migrations from "../postgres/Migrations.ts"
import * as Output from "./Output.ts"
import { withDatabase } from "./Shared.ts"

const apply = Command.make("migrate", {
  dryRun: Flag.Boolean("dry-run").pipe(
    Flag.withDescription("Print the SQL that would run, and change nothing"),
    Flag.withDefault(false)
  )
}, ({ dryRun }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      if (dryRun) {
        const { pending } = yield* Migrations.plan({ schema })
        if (json) {
          return yield* Output.json({ schema, dryRun: true, pending })
        }
        if (pending.length === 0) return yield* Output.line(`-- schema ${schema} is up to date: nothing to run`)
        yield* Output.line(`-- eventcore migrate --schema ${schema}: would run, in one transaction:`)
        for (const migration of pending) {
          yield* Output.line(`\n-- migration ${migration.version}: ${migration.name}`)
          for (const statement of migration.statements) yield* Output.line(`${statement};`)
        }
        return
      }
      const applied = yield* Migrations.run({ schema })
      if (json) return yield* Output.json({ schema, applied })
      yield* Output.line(
        applied.length === 0
          ? `Schema ${schema} is up to date (version ${latest}).`
          : `Migrated schema ${schema}: applied ${applied.join(", ")}; now at version ${latest}.`
      )
    })
  )).pipe(
    Command.withDescription(
      "Apply the store's pending migrations to --schema (idempotent, one transaction, safe to run concurrently)."
    ),
    Command.withExamples([
      { command: "eventcore migrate", description: "Apply what is pending" },
      { command: "eventcore migrate --dry-run > migrate.sql", description: "Print the SQL for review" },
      { command: "eventcore migrate status", description: "Applied versions vs the library's" }
    ])
  )

const latest = Math.max(...Migrations.all.map((migration) => migration.version))

const status = Command.make("status", {}, () =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      const { applied, pending } = yield* Migrations.plan({ schema })
      const current = applied.length === 0 ? 0 : Math.max(...applied.map((m) => m.version))
      const unknown = applied.filter((m) => !Migrations.all.some((known) => known.version === m.version))
      if (json) {
        return yield* Output.json({
          schema,
          current,
          latest,
          upToDate: pending.length === 0,
          applied: applied.map((m) => ({ version: m.version, name: m.name, appliedAt: m.appliedAt.toISOString() })),
          pending: pending.map((m) => ({ version: m.version, name: m.name })),
          // Versions a newer library applied: this one is older than the schema.
          newer: unknown.map((m) => m.version)
        })
      }
      const rows = [
        ...applied.map((m) => [String(m.version), m.name, m.appliedAt.toISOString()]),
        ...pending.map((m) => [String(m.version), m.name, "pending"])
      ]
      yield* Output.line(Output.table(["VERSION", "NAME", "APPLIED"], rows))
      yield* Output.line(
        pending.length === 0
          ? `\nSchema ${schema} is up to date (version ${current}).`
          : `\nSchema ${schema} is at version ${current}; the library is at ${latest}: run \`eventcore migrate\`.`
      )
      if (unknown.length > 0) {
        yield* Output.line(
          `Versions ${unknown.map((m) => m.version).join(", ")} were applied by a newer EventCore than this CLI.`
        )
      }
    })
  )).pipe(Command.withDescription("Show the applied migrations and those the library has that are pending."))

/** `migrate` and `migrate status`. */
export const command = apply.pipe(Command.withSubcommands([status]))
