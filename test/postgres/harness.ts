/**
 * PostgreSQL for tests: `DATABASE_URL` when set, else postgres://postgres@127.0.0.1:5432/test;
 * when nothing answers there (and DATABASE_URL is unset), a throwaway server started from the
 * machine's PostgreSQL binaries. Each test file gets a schema of its own, dropped afterwards,
 * so files run in parallel. Never skips: without a server, tests fail saying how to get one.
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync } from "node:fs"
import { createConnection, createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { EventStore } from "../../src/EventStore.ts"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"

const defaultUrl = "postgres://postgres@127.0.0.1:5432/test"
const binaries = process.env["PG_BIN"] ?? "/usr/lib/postgresql/15/bin"

const howToGetOne = `Start PostgreSQL (>= 15) and set DATABASE_URL, e.g.
  pg_ctlcluster 15 main start   (Debian/Ubuntu)
  nix develop                   (the flake's dev shell)
  docker run -e POSTGRES_HOST_AUTH_METHOD=trust -p 5432:5432 postgres:15`

const answers = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = createConnection({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1_000, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** initdb refuses to run as root; run the server binaries as `postgres` then. */
const runAsServerUser = (command: string, args: ReadonlyArray<string>): void => {
  const asRoot = process.getuid?.() === 0
  const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, [...args]]
  execFileSync(file, argv, { stdio: "pipe" })
}

export const startThrowaway = async (): Promise<string> => {
  if (!existsSync(join(binaries, "initdb"))) {
    throw new Error(
      `No PostgreSQL answers at ${defaultUrl} and no binaries at ${binaries} (set PG_BIN).\n${howToGetOne}`
    )
  }
  const dir = mkdtempSync(join(tmpdir(), "eventcore-pg-"))
  if (process.getuid?.() === 0) execFileSync("chown", ["postgres", dir])
  const port = await freePort()
  runAsServerUser(join(binaries, "initdb"), ["-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
  runAsServerUser(join(binaries, "pg_ctl"), [
    "-D",
    dir,
    "-w",
    "-l",
    join(dir, "server.log"),
    "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
    "start"
  ])
  process.once("exit", () => {
    try {
      runAsServerUser(join(binaries, "pg_ctl"), ["-D", dir, "-m", "immediate", "stop"])
    } catch {
      // The process is exiting; the server dies with its data directory in tmp either way.
    }
  })
  runAsServerUser(join(binaries, "createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "test"])
  return `postgres://postgres@127.0.0.1:${port}/test`
}

const resolveUrl = async (): Promise<string> => {
  const fromEnv = process.env["DATABASE_URL"]
  const url = new URL(fromEnv ?? defaultUrl)
  if (await answers(url.hostname, Number(url.port || 5432))) return url.toString()
  if (fromEnv !== undefined) throw new Error(`DATABASE_URL=${fromEnv} does not answer.\n${howToGetOne}`)
  try {
    return await startThrowaway()
  } catch (error) {
    throw new Error(
      `No PostgreSQL answers at ${defaultUrl}, and starting a throwaway server failed: ${
        String(error)
      }\n${howToGetOne}`,
      { cause: error }
    )
  }
}

let server: Promise<string> | undefined
/** The database URL, starting a throwaway server at most once per process. */
export const databaseUrl: Effect.Effect<string> = Effect.promise(() => (server ??= resolveUrl()))

/** Where this test file's store lives. */
export class TestDatabase extends Context.Service<TestDatabase, {
  readonly url: string
  readonly schema: string
}>()("eventcore/test/TestDatabase") {}

/** A fresh, random schema name. */
export const freshSchemaName = (): string => `ec_test_${Math.random().toString(36).slice(2, 12)}`

/**
 * A database of its own (dropped afterwards), with `ALTER DATABASE … SET` settings such as
 * `default_transaction_isolation`: for tests that change what every session of a database
 * sees, without touching the database other test files share. Yields its URL.
 */
export const freshDatabase = (settings: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function*() {
    const url = yield* databaseUrl
    const name = `ec_db_${Math.random().toString(36).slice(2, 12)}`
    const admin = (statement: string) =>
      Effect.scoped(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.unsafe(statement).unprepared
        }).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 })))
      ).pipe(Effect.orDie)
    yield* Effect.acquireRelease(
      admin(`create database ${name}`),
      () => admin(`drop database if exists ${name} with (force)`)
    )
    for (const [setting, value] of Object.entries(settings)) {
      yield* admin(`alter database ${name} set ${setting} = '${value.replaceAll("'", "''")}'`)
    }
    const target = new URL(url)
    target.pathname = `/${name}`
    return target.toString()
  })

/**
 * The store in a fresh schema, with its `PgClient`/`SqlClient` and the `TestDatabase` facts;
 * the schema is dropped when the layer is released.
 */
export const layer = (options?: {
  readonly pollInterval?: PostgresEventStore.Options["pollInterval"]
  readonly maxConnections?: number
  /** Another database than the default one (e.g. from `freshDatabase`). */
  readonly url?: Effect.Effect<string, never, Scope.Scope>
  readonly store?: Omit<PostgresEventStore.Options, "schema" | "pollInterval">
}): Layer.Layer<EventStore | PgClient.PgClient | SqlClient.SqlClient | TestDatabase> =>
  Layer.unwrap(Effect.map(options?.url ?? databaseUrl, (url) => {
    const schema = freshSchemaName()
    const client = PgClient.layer({ url: Redacted.make(url), maxConnections: options?.maxConnections ?? 16 })
    const dropSchemaAfterwards = Layer.effectDiscard(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Effect.addFinalizer(() =>
        sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared.pipe(
          Effect.catch((error) => Effect.logError(`could not drop test schema ${schema}`, error))
        )
      )
    }))
    return Layer.mergeAll(
      PostgresEventStore.layer({ ...options?.store, schema, pollInterval: options?.pollInterval }),
      dropSchemaAfterwards,
      Layer.succeed(TestDatabase, { url, schema })
    ).pipe(Layer.provideMerge(client))
  })).pipe(Layer.orDie)
