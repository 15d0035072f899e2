/**
 * `eventcore migrate`: bring the schema up to the library's version, show where it is, or
 * print the SQL a migration would run.
 *
 * @internal
 */
import { Effect, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as Migrations from "../postgres/Migrations.ts"
import * as Output from "./Output.ts"
import { withDatabase } from "./Shared.ts"

/**
 * The roles given with `--grant-to`, each a valid role name. Repeated rather than
 * comma-separated: a role name may hold a comma.
 */
const parseRoles = (roles: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>, Output.CliFailure> =>
  Effect.forEach(roles, (role) =>
    Schema.decodeUnknownEffect(Migrations.RoleName)(role).pipe(
      Effect.mapError(() =>
        new Output.CliFailure({
          exitCode: Output.ExitCode.usage,
          message: `--grant-to: ${JSON.stringify(role)} is not a role name: 1-63 printable ASCII characters, ` +
            `as \`select current_user\` shows it`
        })
      )
    ))

const apply = Command.make(
  "migrate",
  {
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Print the SQL that would run, and change nothing"),
      Flag.withDefault(false)
    ),
    grantTo: Flag.String("grant-to").pipe(
      Flag.withDescription(
        "After migrating, give this role the application's privileges (Migrations.grants); repeat for more roles"
      ),
      Flag.atLeast(0)
    )
  },
  ({ dryRun, grantTo }) =>
    Effect.flatMap(parseRoles(grantTo), (roles) =>
      withDatabase(({ json, schema }) =>
        Effect.gen(function*() {
          const granted = roles.length > 0 ? { grantedTo: roles } : {}
          if (dryRun) {
            const { pending, grants } = yield* Migrations.plan({ schema, grantTo: roles })
            if (json) {
              return yield* Output.json({ schema, dryRun: true, pending, ...(roles.length > 0 ? { grants } : {}) })
            }
            if (pending.length === 0 && grants.length === 0) {
              return yield* Output.line(`-- schema ${schema} is up to date: nothing to run`)
            }
            yield* Output.line(
              `-- eventcore migrate --schema ${schema}${
                roles.map((role) => ` --grant-to ${JSON.stringify(role)}`).join("")
              }: would run, in one transaction:`
            )
            if (pending.length === 0) yield* Output.line(`\n-- schema ${schema} is up to date: no migration to run`)
            for (const migration of pending) {
              yield* Output.line(`\n-- migration ${migration.version}: ${migration.name}`)
              for (const statement of migration.statements) yield* Output.line(`${statement};`)
            }
            if (grants.length > 0) {
              yield* Output.line(`\n-- the application's privileges (run as the migration role)`)
              for (const statement of grants) yield* Output.line(`${statement};`)
            }
            return
          }
          const applied = yield* Migrations.run({ schema, grantTo: roles })
          if (json) return yield* Output.json({ schema, applied, ...granted })
          yield* Output.line(
            applied.length === 0
              ? `Schema ${schema} is up to date (version ${latest}).`
              : `Migrated schema ${schema}: applied ${applied.join(", ")}; now at version ${latest}.`
          )
          if (roles.length > 0) {
            yield* Output.line(`Granted the application's privileges on schema ${schema} to ${roles.join(", ")}.`)
          }
        })
      ))
).pipe(
  Command.withDescription(
    "Apply the store's pending migrations to --schema (idempotent, one transaction, safe to run concurrently)."
  ),
  Command.withExamples([
    { command: "eventcore migrate", description: "Apply what is pending" },
    { command: "eventcore migrate --dry-run > migrate.sql", description: "Print the SQL for review" },
    {
      command: "eventcore migrate --grant-to billing_app",
      description: "Apply what is pending, then grant the application role its privileges"
    },
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
