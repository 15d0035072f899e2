/**
 * What every `eventcore` command shares: the root command and its flags (`--database-url`,
 * `--schema`, `--json`), the connection to the store's database, and the translation of
 * failures into one line and an exit code.
 *
 * The CLI works on the store's tables through a `SqlClient` of its own (a pool of 2), without
 * the application's code: payloads are shown as stored.
 *
 * @internal
 */
import { PgClient } from "@effect/sql-pg"
import { Cause, Config, Effect, Option, Redacted } from "effect"
import { Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import { SqlError } from "effect/sql/SqlError"
import { EventStoreError, InvalidInput } from "../Errors.ts"
import * as Position from "../Position.ts"
import * as Migrations from "../postgres/Migrations.ts"
import * as Statements from "../postgres/statements.ts"
import { CliFailure, ExitCode, fail } from "./Output.ts"

/**
 * The root command with the flags every subcommand accepts, before or after its name.
 * Subcommands read them with `yield* root`.
 */
export const root = Command.make("eventcore").pipe(
  Command.withDescription(
    "Operate an EventCore store in PostgreSQL: migrations, streams, events, projections, dead letters, read models, health."
  ),
  Command.withSharedFlags({
    databaseUrl: Flag.String("database-url").pipe(
      Flag.withDescription("PostgreSQL connection URL (default: the DATABASE_URL environment variable)"),
      Flag.optional
    ),
    schema: Flag.String("schema").pipe(
      Flag.withDescription("The schema holding the store's tables (default eventcore)"),
      Flag.withDefault(Migrations.defaultSchema)
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print JSON for scripts instead of tables"),
      Flag.withDefault(false)
    )
  })
)

/** The shared flags, parsed. */
export interface Settings {
  readonly url: string
  readonly schema: string
  readonly json: boolean
}

/** Where a URL points, without its password, for messages. */
const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "the configured database"
  }
}

/** The shared flags, validated: a URL is given, the schema name is one the store accepts. */
const settings: Effect.Effect<Settings, CliFailure, Command.CommandContext<"eventcore">> = Effect.gen(
  function*() {
    const flags = yield* root
    const fromEnv = yield* Config.option(Config.String("DATABASE_URL")).pipe(
      Effect.orElseSucceed(() => Option.none<string>())
    )
    const url = Option.getOrUndefined(Option.orElse(flags.databaseUrl, () => fromEnv))
    if (url === undefined || url.trim() === "") {
      return yield* fail(
        ExitCode.usage,
        "No database: set DATABASE_URL (e.g. postgres://user@localhost:5432/app) or pass --database-url"
      )
    }
    const schema = yield* Migrations.parseSchemaName(flags.schema).pipe(
      Effect.mapError((error) => new CliFailure({ exitCode: ExitCode.usage, message: `--schema: ${error.message}` }))
    )
    return { url, schema, json: flags.json }
  }
)

/** The PostgreSQL error code a failure carries, if any. */
const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
}

/**
 * What the server said about a failed statement (postgres.js puts it on the cause): its
 * message, and its detail and hint when it gave them. The `SqlError`'s own message only says
 * that a query failed.
 */
const serverMessage = (error: SqlError): string | undefined => {
  const cause: unknown = error.reason.cause
  if (typeof cause !== "object" || cause === null || !("message" in cause) || typeof cause.message !== "string") {
    return undefined
  }
  const extra = (key: "detail" | "hint"): string => {
    const value: unknown = Reflect.get(cause, key)
    return typeof value === "string" && value !== "" ? ` (${key}: ${value})` : ""
  }
  return `${cause.message}${extra("detail")}${extra("hint")}`
}

/** The `SqlError` at the bottom of a failure (an `EventStoreError` wraps one). */
const findSqlError = (error: unknown): SqlError | undefined => {
  for (let current = error, depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    if (current instanceof SqlError) return current
    current = "cause" in current ? current.cause : undefined
  }
  return undefined
}

/**
 * Turns a failure into the line a person reads and its exit code: a connection that could
 * not be made (3), a store that is not there (4), bad input (2), anything else (1).
 */
const explain = (error: unknown, current: Settings): CliFailure => {
  if (error instanceof CliFailure) return error
  if (error instanceof InvalidInput) return new CliFailure({ exitCode: ExitCode.usage, message: error.message })
  const sqlError = findSqlError(error)
  if (sqlError !== undefined) {
    const state = sqlState(sqlError)
    const where = describeUrl(current.url)
    const reason = sqlError.reason
    if (reason._tag === "ConnectionError" || reason._tag === "AuthenticationError" || reason.operation === "connect") {
      const detail = state ?? String((reason.cause as { readonly code?: unknown } | undefined)?.code ?? reason.message)
      return new CliFailure({
        exitCode: ExitCode.cannotConnect,
        message: `Cannot connect to PostgreSQL at ${where} (${detail}${
          state === "28000" || state === "28P01" ? ": login refused" : state === "3D000" ? ": no such database" : ""
        }): check DATABASE_URL and that the server is running`
      })
    }
    if (state === "42P01" || state === "3F000" || state === "42883") {
      return new CliFailure({
        exitCode: ExitCode.notFound,
        message: `No EventCore store in schema ${current.schema} at ${where}: ` +
          `run \`eventcore migrate --schema ${current.schema}\`, or pass the right --schema`
      })
    }
    const server = serverMessage(sqlError)
    return new CliFailure({
      exitCode: ExitCode.failed,
      message: server === undefined
        ? `PostgreSQL: ${String(sqlError.reason.message)}`
        : `PostgreSQL: ${server}${state === undefined ? "" : ` (SQLSTATE ${state})`}`
    })
  }
  if (error instanceof EventStoreError) return new CliFailure({ exitCode: ExitCode.failed, message: error.message })
  if (error instanceof Error) return new CliFailure({ exitCode: ExitCode.failed, message: error.message })
  return new CliFailure({ exitCode: ExitCode.failed, message: String(error) })
}

/**
 * Runs a command's work against the store's database: a pool of 2 connections, closed when
 * the work ends; every failure explained (no stack traces for the expected ones).
 */
export const withDatabase = <A, E, R>(
  work: (settings: Settings) => Effect.Effect<A, E, R>
): Effect.Effect<A, CliFailure, Exclude<R, SqlClient.SqlClient> | Command.CommandContext<"eventcore">> =>
  Effect.flatMap(settings, (current) =>
    work(current).pipe(
      Effect.provide(
        PgClient.layer({
          url: Redacted.make(current.url),
          maxConnections: 2,
          connectTimeout: "10 seconds",
          applicationName: "eventcore-cli"
        })
      ),
      Effect.scoped,
      // Failures are explained; defects (bugs) and interruptions go on as they are.
      Effect.catchCause((cause) => {
        const failure = Cause.findErrorOption(cause)
        return failure._tag === "Some"
          ? Effect.fail(explain(failure.value, current))
          : Effect.failCause(cause as Cause.Cause<never>)
      })
    ) as Effect.Effect<A, CliFailure, Exclude<R, SqlClient.SqlClient>>)

/**
 * Fails with "no store here" (exit 4) unless the schema holds an EventCore store; the first
 * statement of every command but `migrate`, so that it also reports a connection failure.
 */
export const requireStore = (schema: string): Effect.Effect<void, CliFailure | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const client = yield* SqlClient.SqlClient
    const rows = yield* client.unsafe<{ readonly found: boolean }>(
      "select to_regclass($1) is not null and to_regclass($2) is not null as found",
      [`${schema}.migrations`, `${schema}.events`]
    )
    if (rows[0]?.found !== true) {
      return yield* fail(
        ExitCode.notFound,
        `No EventCore store in schema ${schema}: run \`eventcore migrate --schema ${schema}\`, or pass the right --schema`
      )
    }
  })

/** A position for a person: `transaction.sequence` without the padding (`--from` accepts it back). */
export const showPosition = (position: Position.Position | string | null | undefined): string =>
  position === null || position === undefined
    ? "-"
    : Position.is(position)
    ? `${Position.transaction(position)}.${Position.sequence(position)}`
    : position

/** Parses a position given on the command line: the full form or `transaction.sequence`. */
export const parsePosition = (flag: string, text: string): Effect.Effect<Position.Position, CliFailure> => {
  const match = /^(\d{1,20})\.(\d{1,20})$/.exec(text.trim())
  return match === null || match[1] === undefined || match[2] === undefined
    ? fail(
      ExitCode.usage,
      `${flag}: ${JSON.stringify(text)} is not a position: expected transaction.sequence as printed by eventcore ` +
        `(e.g. 742.13)`
    )
    : Effect.succeed(Position.make(BigInt(match[1]), BigInt(match[2])))
}

/** A position from a row's (tx_id text, position bigint) pair. */
export const rowPosition = (txId: string | null, sequence: bigint | string | number | null): Position.Position =>
  txId === null || sequence === null ? Position.initial : Position.make(BigInt(txId), BigInt(sequence))

/**
 * An integer flag that must be at least `min` (1 unless given): every count, limit, cap,
 * interval and timeout. A value below it is a usage error naming the flag (exit 2), never
 * quietly clamped: `--limit -5` or `--poll-ms 0` is a mistake to report, not a request.
 */
export const countFlag = (name: string, min = 1): Flag.Flag<number> =>
  Flag.Int(name).pipe(
    Flag.filter(
      (value) => value >= min,
      () => min === 1 ? "Expected a positive integer" : `Expected an integer of at least ${min}`
    )
  )

/** `--yes` for destructive actions. */
export const yesFlag = Flag.Boolean("yes").pipe(
  Flag.withAlias("y"),
  Flag.withDescription("Confirm a destructive action (required: nothing is asked interactively)"),
  Flag.withDefault(false)
)

/** Refuses a destructive action without `--yes`, saying what it would do. */
export const requireYes = (confirmed: boolean, what: string): Effect.Effect<void, CliFailure> =>
  confirmed ? Effect.void : fail(ExitCode.usage, `${what}; pass --yes to confirm`)

/** The store's head: where a projection sent back has to get to. */
export const headOf = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ readonly tx_id: string; readonly position: bigint }>(Statements.head(schema))
    return rows[0] === undefined ? Position.initial : rowPosition(rows[0].tx_id, rows[0].position)
  })
