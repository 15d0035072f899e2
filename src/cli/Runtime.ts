/**
 * Runs the CLI on Node with nothing but `effect`: the services `effect/cli` asks for, and a
 * main that turns the outcome into an exit code.
 *
 * The CLI reads only its arguments from the platform: it has no prompts (`--wizard` is not
 * offered; destructive actions take `--yes`), reads no files and spawns nothing. So instead of
 * requiring `@effect/platform-node` (one more peer for users to install, and it needs a newer
 * Node than this package), the few services are provided here; the ones the CLI never uses
 * die if called.
 *
 * @internal
 */
import { Cause, Effect, Exit, Fiber, FileSystem, Layer, Path, Sink, Stdio, Stream, Terminal } from "effect"
import { CliConfig, CliError, GlobalFlag } from "effect/cli"
import { ChildProcessSpawner } from "effect/process"
import { CliFailure, ExitCode } from "./Output.ts"

const unused = (what: string) => Effect.die(`eventcore: ${what} is not available in the CLI`)

const writeTo = (stream: NodeJS.WriteStream) =>
  Sink.forEach((chunk: string | Uint8Array) => Effect.sync(() => void stream.write(chunk)))

/** Command-line arguments and standard streams from the process; the rest unused. */
export const layer: Layer.Layer<
  Stdio.Stdio | Terminal.Terminal | FileSystem.FileSystem | Path.Path | ChildProcessSpawner.ChildProcessSpawner
> = Layer.mergeAll(
  Layer.succeed(
    Stdio.Stdio,
    Stdio.make({
      args: Effect.sync(() => process.argv.slice(2)),
      stdinIsTerminal: Effect.sync(() => process.stdin.isTTY === true),
      stdoutIsTerminal: Effect.sync(() => process.stdout.isTTY === true),
      stderrIsTerminal: Effect.sync(() => process.stderr.isTTY === true),
      stdout: () => writeTo(process.stdout),
      stderr: () => writeTo(process.stderr),
      stdin: Stream.die("eventcore: standard input is not read by the CLI")
    })
  ),
  Layer.succeed(
    Terminal.Terminal,
    Terminal.make({
      columns: Effect.sync(() => process.stdout.columns ?? 80),
      rows: Effect.sync(() => process.stdout.rows ?? 24),
      size: unused("terminal resizing"),
      readInput: unused("terminal input"),
      readLine: unused("terminal input"),
      display: (text) => Effect.sync(() => void process.stdout.write(text))
    })
  ),
  FileSystem.layerNoop({}),
  Path.layer,
  Layer.succeed(ChildProcessSpawner.ChildProcessSpawner, ChildProcessSpawner.make(() => unused("spawning")))
)

/** The built-in flags, less `--wizard` (it prompts, and the CLI never asks interactively). */
export const config = CliConfig.layer({
  builtIns: GlobalFlag.BuiltIns.filter((flag) => flag !== GlobalFlag.Wizard)
})

/** The exit code of an outcome; prints the line an expected failure carries. */
const exitCode = (exit: Exit.Exit<void, unknown>): number => {
  if (Exit.isSuccess(exit)) return ExitCode.ok
  if (Cause.hasInterruptsOnly(exit.cause)) return ExitCode.interrupted
  const error = Cause.squash(exit.cause)
  if (error instanceof CliFailure) {
    process.stderr.write(`eventcore: ${error.message}\n`)
    return error.exitCode
  }
  // Usage errors: effect/cli has already printed the help and what was wrong.
  if (CliError.isCliError(error)) return ExitCode.usage
  process.stderr.write(`eventcore: unexpected failure (please report it):\n${Cause.pretty(exit.cause)}\n`)
  return ExitCode.failed
}

/**
 * Runs the program; Ctrl-C or SIGTERM interrupts it (closing connections); sets the exit
 * code, letting standard output drain before the process ends.
 */
export const runMain = (program: Effect.Effect<void, unknown>): void => {
  const fiber = Effect.runFork(program)
  const interrupt = () => Effect.runFork(Fiber.interrupt(fiber))
  process.once("SIGINT", interrupt)
  process.once("SIGTERM", interrupt)
  fiber.addObserver((exit) => {
    process.removeListener("SIGINT", interrupt)
    process.removeListener("SIGTERM", interrupt)
    process.exitCode = exitCode(exit)
  })
}
