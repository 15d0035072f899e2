/**
 * What the `eventcore` CLI prints and how it exits: aligned tables for people, JSON for
 * scripts (`--json`), one clear line on standard error for an expected failure, and the exit
 * codes docs/cli.md documents.
 *
 * @internal
 */
import { Console, Effect, Schema } from "effect"

/**
 * The exit codes, documented in docs/cli.md. Scripts rely on them: never renumber.
 */
export const ExitCode = {
  /** Done; for `doctor`, the store is healthy or degraded. */
  ok: 0,
  /** The command ran and failed: `doctor` found the store unhealthy, a wait timed out, a query failed. */
  failed: 1,
  /** Bad invocation: an unknown command or flag, a bad value, a destructive action without `--yes`. */
  usage: 2,
  /** The database could not be reached or refused the login. */
  cannotConnect: 3,
  /** What was asked for does not exist: no store in the schema, an unknown stream, projection or dead letter. */
  notFound: 4,
  /** A package the CLI needs is not installed (`@effect/sql-pg`): the line says what to install. */
  notInstalled: 5,
  /** Interrupted (Ctrl-C, SIGTERM): 128 + SIGINT, as shells report it. */
  interrupted: 130
} as const

/**
 * An expected failure: one line for the person, and the exit code. No stack trace is printed.
 */
export class CliFailure extends Schema.TaggedError<CliFailure>()("CliFailure", {
  message: Schema.String,
  exitCode: Schema.Number
}) {}

/** Fails with an expected failure. */
export const fail = (exitCode: number, message: string): Effect.Effect<never, CliFailure> =>
  Effect.fail(new CliFailure({ exitCode, message }))

/** JSON for scripts: bigints as strings (positions and counts can exceed 2^53). */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) => typeof v === "bigint" ? v.toString() : v)

/** Prints one JSON document (one line, so `--json` output of a follower is JSON Lines). */
export const json = (value: unknown): Effect.Effect<void> => Console.log(toJson(value))

/** Prints a line for a person. */
export const line = (text: string): Effect.Effect<void> => Console.log(text)

/** Prints a line on standard error (progress, notices), keeping standard output for results. */
export const notice = (text: string): Effect.Effect<void> => Console.error(text)

/**
 * Renders rows as a table with aligned columns and a header, or `empty` when there are none.
 * Cells are single-line: newlines and tabs are shown escaped.
 */
export const table = (
  headers: ReadonlyArray<string>,
  rows: ReadonlyArray<ReadonlyArray<string>>,
  empty = "(none)"
): string => {
  if (rows.length === 0) return empty
  const clean = rows.map((row) => row.map((cell) => cell.replace(/\n/g, "\\n").replace(/\t/g, "\\t")))
  const widths = headers.map((header, i) => Math.max(header.length, ...clean.map((row) => (row[i] ?? "").length)))
  const render = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()
  return [render(headers), ...clean.map(render)].join("\n")
}

/** Key/value lines, keys aligned: for one record (a status, a dead letter). */
export const record = (entries: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...entries.map(([key]) => key.length))
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width + 1)} ${value}`).join("\n")
}

/** A duration for a person: 850ms, 12s, 3m 20s, 2h 05m. */
export const duration = (millis: number): string => {
  if (!Number.isFinite(millis)) return "?"
  if (millis < 1_000) return `${Math.round(millis)}ms`
  const seconds = Math.round(millis / 1_000)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, "0")}s`
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, "0")}m`
}

/**
 * A progress line on standard error: redrawn in place on a terminal, else printed when
 * `changed` (so a log gets one line per change, not one per poll).
 */
export const progress = (text: string, options: { readonly tty: boolean; readonly changed: boolean }) =>
  Effect.sync(() => {
    if (options.tty) process.stderr.write(`\r\u001b[2K${text}`)
    else if (options.changed) process.stderr.write(`${text}\n`)
  })

/** Ends a progress line drawn in place. */
export const endProgress = (tty: boolean, newline: boolean) =>
  Effect.sync(() => {
    if (tty) process.stderr.write(newline ? "\n" : "\r\u001b[2K")
  })
