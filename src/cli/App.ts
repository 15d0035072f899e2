/**
 * The `eventcore` commands and their run on Node; loaded by main.ts once the packages they
 * need are found.
 *
 * @internal
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { readFileSync } from "node:fs"
import * as DeadLetters from "./DeadLetters.ts"
import * as Doctor from "./Doctor.ts"
import * as Events from "./Events.ts"
import * as Migrate from "./Migrate.ts"
import * as Projections from "./Projections.ts"
import * as ReadModels from "./ReadModels.ts"
import * as Runtime from "./Runtime.ts"
import { root } from "./Shared.ts"
import * as Streams from "./Streams.ts"

// src/cli/App.ts and dist/cli/App.js both sit two levels below package.json.
const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  readonly version: string
}).version

const app = root.pipe(
  Command.withSubcommands([
    Migrate.command,
    Streams.command,
    Events.command,
    Projections.command,
    ReadModels.command,
    DeadLetters.command,
    Doctor.command
  ])
)

/** Runs the CLI on the process's arguments and sets its exit code. */
export const main = (): void =>
  Runtime.runMain(
    Command.run(app, { version }).pipe(
      Effect.provide(Runtime.layer),
      Effect.provide(Runtime.config),
      Effect.provide(Runtime.presenter)
    )
  )
