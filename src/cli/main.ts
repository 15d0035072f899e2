#!/usr/bin/env node
/**
 * The `eventcore` operations CLI (the package's `bin`). See docs/cli.md.
 *
 * `@effect/sql-pg` is an optional peer of the library, but the CLI cannot work without it. It
 * is looked for before the commands load (they import it): when it is missing, one line says
 * how to install it, instead of Node's module-not-found stack trace.
 *
 * @internal
 */
import { ExitCode } from "./Output.ts"
import * as Runtime from "./Runtime.ts"

const missing = await Runtime.missingPackage("@effect/sql-pg", () => import("@effect/sql-pg"))
if (missing === undefined) {
  const App = await import("./App.ts")
  App.main()
} else {
  process.stderr.write(`eventcore: ${missing}\n`)
  process.exitCode = ExitCode.notInstalled
}
