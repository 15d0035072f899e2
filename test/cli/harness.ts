/**
 * The CLI as an operator runs it: its own process (`node --import ./scripts/source.mjs
 * src/cli/main.ts`, the package's sources), against the test database in a schema of the test
 * file's own, checked on standard output, standard error and the exit code.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Command, CommandExecutor, Event, StreamCategory } from "eventcore"
import { PostgresEventStore } from "eventcore/postgres"
import { type ChildProcess, spawn } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Harness from "../postgres/harness.ts"

const root = new URL("../..", import.meta.url)

export interface Outcome {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** A CLI process: its outcome once it exits, and a way to wait for a line it prints. */
export interface Running {
  readonly child: ChildProcess
  readonly done: Promise<Outcome>
  /** Resolves once standard error (or output) has matched; rejects if the process exits first. */
  readonly printed: (pattern: RegExp, stream?: "stdout" | "stderr") => Promise<void>
}

/** Starts the CLI with `args`; `DATABASE_URL` only as given in `env`. */
export const start = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Running => {
  const { DATABASE_URL: _ignored, ...inherited } = process.env
  const child = spawn(process.execPath, ["--import", "./scripts/source.mjs", "src/cli/main.ts", ...args], {
    cwd: root,
    // Node's compile cache halves a start on the sources (measured: 3.2 s -> 1.6 s on a loaded machine).
    env: { ...inherited, NO_COLOR: "1", NODE_COMPILE_CACHE: join(tmpdir(), "eventcore-cli-compile-cache"), ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  const listeners = new Set<() => void>()
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk
    for (const listener of listeners) listener()
  })
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
    for (const listener of listeners) listener()
  })
  const done = new Promise<Outcome>((resolve, reject) => {
    child.once("error", reject)
    child.once("close", (code, signal) => resolve({ code: code ?? (signal === null ? -1 : 128), stdout, stderr }))
  })
  const printed = (pattern: RegExp, stream: "stdout" | "stderr" = "stderr") =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stream === "stdout" ? stdout : stderr)) {
          listeners.delete(check)
          resolve()
        }
      }
      listeners.add(check)
      check()
      void done.then((outcome) => {
        listeners.delete(check)
        reject(new Error(`the CLI exited (${outcome.code}) before printing ${pattern}:\n${stdout}\n${stderr}`))
      })
    })
  return { child, done, printed }
}

/** Runs the CLI to its end (waits on the process's exit, not on time). */
export const cli = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<Outcome> =>
  start(args, env).done

/** The test database's URL (a throwaway server when none answers; see ../postgres/harness.ts). */
export const databaseUrl = (): Promise<string> => Effect.runPromise(Harness.databaseUrl)

/** Runs statements on the test database with a pool of one. */
export const query = async <A extends object = Record<string, unknown>>(
  text: string,
  params: ReadonlyArray<unknown> = []
): Promise<ReadonlyArray<A>> => {
  const url = await databaseUrl()
  return Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql.unsafe<A>(text, params)
    }).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
    )
  )
}

/** Drops a test schema. */
export const dropSchema = (schema: string): Promise<unknown> => query(`drop schema if exists ${schema} cascade`)

export const Account = StreamCategory.make("account")
export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
export const Events = Event.catalog(Deposited)

export const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

/** The store of `schema` (migrated) with a command executor, through the library's public API. */
export const storeLayer = (url: string, schema: string) =>
  CommandExecutor.layer().pipe(
    Layer.provideMerge(PostgresEventStore.layer({ schema })),
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 3 }))
  )

/** Deposits through the library: one event per deposit, on `account-<id>`. */
export const deposit = (url: string, schema: string, deposits: ReadonlyArray<readonly [string, number]>) =>
  Effect.runPromise(
    Effect.forEach(deposits, ([account, amount]) => CommandExecutor.execute(Deposit, { account, amount }), {
      discard: true
    }).pipe(Effect.provide(storeLayer(url, schema)))
  )

/** The parsed JSON a `--json` command printed (the last line, for followers). */
export const json = <A = Record<string, unknown>>(outcome: Outcome): A => {
  const lines = outcome.stdout.trim().split("\n")
  return JSON.parse(lines[lines.length - 1] ?? "null") as A
}
