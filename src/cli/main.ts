#!/usr/bin/env node
/**
 * The `eventcore` operations CLI (the package's `bin`). See docs/cli.md.
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

// src/cli/main.ts and dist/cli/main.js both sit two levels below package.json.
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

Runtime.runMain(
  Command.run(app, { version }).pipe(
    Effect.provide(Runtime.layer),
    Effect.provide(Runtime.config)
  )
)
