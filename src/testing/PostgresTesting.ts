/**
 * PostgreSQL for your tests: the real store in a schema of its own, made fresh for each use of
 * the layer (a test file, with `@effect/vitest`'s `layer`) and dropped when the layer is
 * released, so test files run in parallel on one database without seeing each other's
 * events. Time is real: run these tests with `it.live`, or `layer(..., { excludeTestServices:
 * true })`, since PostgreSQL's clock and pool do not follow a `TestClock`.
 *
 * @since 0.3.0
 */
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Redacted, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import type { CheckpointStore } from "../CheckpointStore.ts"
import * as CommandExecutor from "../CommandExecutor.ts"
import type { DeadLetterStore } from "../DeadLetterStore.ts"
import type { EventStore } from "../EventStore.ts"
import * as PostgresEventStore from "../postgres/PostgresEventStore.ts"
import * as PostgresProjection from "../postgres/PostgresProjection.ts"
import type { ProjectionLock } from "../ProjectionLock.ts"

/**
 * The database a test runs against when `url` is not given: `DATABASE_URL`, else
 * `postgres://postgres@127.0.0.1:5432/test`.
 *
 * @example
 * ```ts
 * import { PostgresTesting } from "eventcore/testing/postgres"
 *
 * console.log(PostgresTesting.defaultUrl())
 * ```
 * @since 0.3.0
 */
export const defaultUrl = (): string =>
  globalThis.process?.env?.["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

/**
 * Where this use of the layer keeps its events: the database URL and the fresh schema, for
 * tests that create read-model tables beside the store or query it directly.
 *
 * @example
 * ```ts
 * import { PostgresTesting } from "eventcore/testing/postgres"
 *
 * const tableName = PostgresTesting.TestSchema.useSync(({ schema }) => `${schema}.balances`)
 * ```
 * @since 0.3.0
 */
export class TestSchema extends Context.Service<TestSchema, {
  readonly url: string
  readonly schema: string
}>()("eventcore/testing/PostgresTesting/TestSchema") {}

/**
 * Options of the PostgreSQL test layer.
 *
 * @example
 * ```ts
 * import { PostgresTesting } from "eventcore/testing/postgres"
 *
 * const options: PostgresTesting.Options = {
 *   url: "postgres://postgres@127.0.0.1:5432/test",
 *   maxConnections: 2,
 *   store: { pollInterval: "50 millis" }
 * }
 * const Test = PostgresTesting.layer(options)
 * ```
 * @since 0.3.0
 */
export interface Options {
  /** The database; default `defaultUrl()`. */
  readonly url?: string | undefined
  /** Pool size; default 4 (a server's connections are shared by every test file running at once). */
  readonly maxConnections?: number | undefined
  /** The executor's conflict retry; default the production one (it sleeps: keep the live clock). */
  readonly retry?: CommandExecutor.Config["retry"]
  /** Store options other than the schema. */
  readonly store?: Omit<PostgresEventStore.Options, "schema"> | undefined
}

/**
 * Everything the PostgreSQL test layer provides.
 *
 * @example
 * ```ts
 * import { Effect, type Layer } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { PostgresTesting } from "eventcore/testing/postgres"
 *
 * const Test: Layer.Layer<PostgresTesting.Services> = PostgresTesting.layer()
 * // The test's own schema, for tables of its own.
 * const tables = Effect.gen(function*() {
 *   const { schema } = yield* PostgresTesting.TestSchema
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql.unsafe(`select tablename from pg_tables where schemaname = '${schema}'`)
 * }).pipe(Effect.provide(Test))
 * ```
 * @since 0.3.0
 */
export type Services =
  | EventStore
  | CommandExecutor.CommandExecutor
  | CheckpointStore
  | DeadLetterStore
  | ProjectionLock
  | PgClient.PgClient
  | SqlClient.SqlClient
  | TestSchema

const freshSchemaName = (): string => `ec_test_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`

const unreachable = (url: string, cause: unknown) =>
  new Error(
    `eventcore/testing/postgres: cannot reach PostgreSQL at ${redact(url)}. Start PostgreSQL (15 or newer) and ` +
      "set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test), or pass `url`.",
    { cause }
  )

const redact = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "<an unparsable URL>"
  }
}

/**
 * The store, the executor and the projection services on PostgreSQL, in a fresh schema that
 * is dropped when the layer is released. Fails (as a defect, with what to do) when the
 * database cannot be reached.
 *
 * @example
 * ```ts
 * import { assert, layer } from "@effect/vitest"
 * import { Effect, Stream } from "effect"
 * import { EventStore } from "eventcore"
 * import { PostgresTesting } from "eventcore/testing/postgres"
 *
 * layer(PostgresTesting.layer(), { excludeTestServices: true })("on PostgreSQL", (it) => {
 *   it.effect("starts empty", () =>
 *     Effect.gen(function*() {
 *       const events = yield* Stream.runCount(EventStore.readAll())
 *       assert.strictEqual(events, 0)
 *     }))
 * })
 * ```
 * @since 0.3.0
 */
export const layer = (options?: Options): Layer.Layer<Services> => {
  const url = options?.url ?? defaultUrl()
  return Layer.unwrap(Effect.sync(() => {
    const schema = freshSchemaName()
    const client = PgClient.layer({ url: Redacted.make(url), maxConnections: options?.maxConnections ?? 4 })
    const reachable = Layer.effectDiscard(
      SqlClient.SqlClient.use((sql) => sql.unsafe("select 1")).pipe(
        // A server that is still starting gets a few seconds; one that is not there, a clear message.
        Effect.retry(Schedule.max([Schedule.spaced("250 millis"), Schedule.recurs(12)])),
        Effect.catch((cause) => Effect.die(unreachable(url, cause)))
      )
    )
    const dropSchemaAfterwards = Layer.effectDiscard(Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Effect.addFinalizer(() =>
        sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared.pipe(
          Effect.catch((error) => Effect.logWarning(`eventcore: could not drop test schema ${schema}`, error))
        )
      )
    }))
    const store = PostgresEventStore.layer({ ...options?.store, schema })
    return Layer.mergeAll(
      CommandExecutor.layer(options?.retry === undefined ? undefined : { retry: options.retry }).pipe(
        Layer.provideMerge(store)
      ),
      PostgresProjection.layer({ schema }),
      Layer.succeed(TestSchema, { url, schema })
    ).pipe(
      Layer.provideMerge(dropSchemaAfterwards),
      Layer.provideMerge(reachable),
      Layer.provideMerge(client),
      Layer.orDie
    )
  }))
}
