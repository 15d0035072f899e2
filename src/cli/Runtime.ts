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
import {
  Cause,
  Console,
  Context,
  Effect,
  Exit,
  Fiber,
  FileSystem,
  Layer,
  Path,
  Sink,
  Stdio,
  Stream,
  Terminal
} from "effect"
import { CliConfig, CliError, CliOutput, GlobalFlag, TerminalCapabilities } from "effect/cli"
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

/**
 * Help that answers a mistake goes to standard error, with what was wrong: standard output
 * holds only what was asked for, so `eventcore … --json | jq` never parses a help text.
 * effect/cli's default prints that help on standard output; `--help` and `--version` still do.
 */
export const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "Help" && event.reason === "Requested" || event._tag === "Version"
      ? CliOutput.defaultPresenter.present(event)
      : Effect.gen(function*() {
        const context = yield* Effect.context<never>()
        const formatter = Context.getOrUndefined(context, CliOutput.Formatter) ??
          CliOutput.defaultFormatter({
            colors: Context.get(context, TerminalCapabilities.TerminalCapabilities).canColor
          })
        yield* Console.error(formatter.formatHelpDoc(event.helpDoc))
        if (event._tag === "InvalidInvocation") yield* Console.error(formatter.formatErrors(event.errors))
      })
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
  // Usage errors: effect/cli has already printed the help and what was wrong (`presenter`).
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

/**
 * Whether a package loads: `undefined` if it does, else the line saying to install it. Only
 * the package itself being absent is reported so; any other failure to load it (a broken
 * install, a missing dependency of its own) propagates with its stack trace.
 */
export const missingPackage = (name: string, load: () => Promise<unknown>): Promise<string | undefined> =>
  load().then(
    () => undefined,
    (error: unknown) => {
      if (
        error instanceof Error && "code" in error && error.code === "ERR_MODULE_NOT_FOUND" &&
        error.message.includes(`'${name}'`)
      ) {
        return `${name} is not installed, and the CLI needs it to reach PostgreSQL: npm install ${name}`
      }
      throw error
    }
  )
