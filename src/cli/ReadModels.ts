/**
 * `eventcore read-models versions | promote | retire`: the versions of a blue/green read model
 * (`ReadModel.blueGreen`) as the store sees them, and switching or retiring one, through
 * `PostgresBlueGreen` — without the application's code.
 *
 * @internal
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as PostgresBlueGreen from "../postgres/PostgresBlueGreen.ts"
import * as Output from "./Output.ts"
import { countFlag, requireStore, requireYes, showPosition, withDatabase, yesFlag } from "./Shared.ts"

const nameArgument = Argument.String("name").pipe(Argument.withDescription("The read model's name (its version 1's)"))
const versionArgument = Argument.Int("version").pipe(Argument.withDescription("The version (1, 2, …)"))

const versions = Command.make("versions", {
  name: nameArgument,
  cap: countFlag("cap").pipe(
    Flag.withDescription("Stop counting events behind at this many (default 10000)"),
    Flag.withDefault(10_000)
  )
}, ({ cap, name }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const listed = yield* PostgresBlueGreen.versions(name, { schema, cap })
      const shown = listed.map((v) => ({
        version: v.version,
        name: v.name,
        active: v.active,
        checkpoint: v.checkpoint === undefined ? null : showPosition(v.checkpoint),
        rebuildPending: v.rebuildPending,
        behind: v.behind,
        capped: v.capped,
        running: v.running
      }))
      if (json) return yield* Output.json({ schema, readModel: name, versions: shown })
      yield* Output.line(Output.table(
        ["VERSION", "NAME", "ACTIVE", "CHECKPOINT", "EVENTS BEHIND", "RUNNING", "REBUILD"],
        shown.map((v) => [
          String(v.version),
          v.name,
          v.active ? "yes" : "",
          v.checkpoint ?? "-",
          `${v.behind}${v.capped ? "+" : ""}`,
          v.running ? "yes" : "no",
          v.rebuildPending ? "pending" : ""
        ])
      ))
    })
  )).pipe(
    Command.withDescription(
      "List a blue/green read model's versions: which one serves readers, their checkpoints, how far behind, whether a runner runs each."
    )
  )

const promote = Command.make("promote", {
  name: nameArgument,
  version: versionArgument,
  force: Flag.Boolean("force").pipe(
    Flag.withDescription("Promote even if it has not caught up (e.g. to roll back to an older version)"),
    Flag.withDefault(false)
  )
}, ({ force, name, version }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const result = yield* PostgresBlueGreen.promote(name, version, { schema, force }).pipe(
        Effect.catchTags({
          UnknownVersion: (error) => Output.fail(Output.ExitCode.notFound, error.message),
          NotCaughtUp: (error) => Output.fail(Output.ExitCode.failed, error.message)
        })
      )
      if (json) return yield* Output.json({ schema, readModel: name, ...result })
      yield* Output.line(
        result.previous === result.active
          ? `Version ${result.active} of ${name} was already active.`
          : `Version ${result.active} of ${name} is active (was ${result.previous}); every process switches within its refresh interval.`
      )
    })
  )).pipe(
    Command.withDescription(
      "Make a version serve readers, in every process. Refused (exit 1) until it has caught up with the active one, unless --force."
    )
  )

const retire = Command.make("retire", { name: nameArgument, version: versionArgument, yes: yesFlag }, ({
  name,
  version,
  yes
}) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireYes(yes, `retire deletes the checkpoint and dead letters of version ${version} of ${name}`)
      yield* requireStore(schema)
      yield* PostgresBlueGreen.retire(name, version, { schema }).pipe(
        Effect.catchTags({
          UnknownVersion: (error) => Output.fail(Output.ExitCode.notFound, error.message),
          RetireRefused: (error) => Output.fail(Output.ExitCode.failed, error.message)
        })
      )
      if (json) return yield* Output.json({ schema, readModel: name, retired: version })
      yield* Output.line(
        `Retired version ${version} of ${name}: its checkpoint and dead letters are gone; drop its tables yourself.`
      )
    })
  )).pipe(
    Command.withDescription(
      "Forget a version no process serves or runs: its checkpoint and dead letters (its tables are yours to drop). Requires --yes."
    )
  )

/** `read-models versions | promote | retire`. */
export const command = Command.make("read-models").pipe(
  Command.withDescription("Blue/green read models: list versions, promote one, retire an old one."),
  Command.withSubcommands([versions, promote, retire])
)
