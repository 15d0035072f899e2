/**
 * The PostgreSQL stores' spans: each operation a span with the OpenTelemetry database
 * attributes (`db.system.name`, `db.namespace`, `db.operation.name`, `db.collection.name`)
 * and the store's schema, made only when a tracer records spans (`Telemetry.span`). The
 * statement span @effect/sql-pg makes (kind `client`, with the statement's text) is its child.
 *
 * @internal
 */
import type { PgClient } from "@effect/sql-pg"
import { type Effect, Redacted, type Tracer } from "effect"
import type { CheckpointStore } from "../CheckpointStore.ts"
import * as Telemetry from "../internal/Telemetry.ts"

/**
 * The database a client talks to: its `database`, else the path of its URL, else (as
 * PostgreSQL defaults it) the user name. (@effect/sql-pg's statement spans take `database`
 * or the user name, so a client configured by URL names the user there.)
 */
export const databaseOf = (config: PgClient.PgClientConfig): string => {
  if (config.database !== undefined) return config.database
  if (config.url !== undefined) {
    try {
      const path = new URL(Redacted.value(config.url)).pathname.slice(1)
      if (path.length > 0) return decodeURIComponent(path)
    } catch {
      // not a URL this can read: fall back as the driver would
    }
  }
  return config.username ?? "postgres"
}

/** The database of a SQL client, when it is a PostgreSQL one whose configuration shows it. */
export const databaseOfClient = (client: object): string | undefined =>
  "config" in client && typeof client.config === "object" && client.config !== null
    ? databaseOf(client.config as PgClient.PgClientConfig)
    : undefined

/** Where a store's statements go. */
export interface Target {
  readonly schema: string
  readonly database: string | undefined
}

/**
 * Runs `body` in a span `name` with the database attributes of `target` (when a tracer
 * records spans). Every statement the store sends is a `SELECT` (the append calls a function)
 * or, for checkpoints, one `INSERT`, `UPDATE` or `DELETE`.
 */
export const span = <A, E, R>(
  name: string,
  target: Target,
  operation: string,
  collection: string,
  body: (current: Tracer.Span | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Telemetry.span(name, (made) => {
    if (made !== undefined) {
      made.attribute("db.system.name", "postgresql")
      if (target.database !== undefined) made.attribute("db.namespace", target.database)
      made.attribute("db.operation.name", operation)
      made.attribute("db.collection.name", `${target.schema}.${collection}`)
      made.attribute("eventcore.schema", target.schema)
    }
    return body(made)
  })

/** Records how many rows (events) a read returned, on its span. */
export const returned = (current: Tracer.Span | undefined, rows: number): void =>
  current?.attribute("db.response.returned_rows", rows)

/** The checkpoint store with a span per operation, named `CheckpointStore.<operation>`. */
export const checkpoints = (store: CheckpointStore["Service"], target: Target): CheckpointStore["Service"] => {
  const traced = <A, E>(operation: string, verb: string, name: string, effect: Effect.Effect<A, E>) =>
    span(`CheckpointStore.${operation}`, target, verb, "checkpoints", (made) => {
      made?.attribute("eventcore.projection", name)
      return effect
    })
  return {
    load: (name) => traced("load", "SELECT", name, store.load(name)),
    save: (name, position) => traced("save", "INSERT", name, store.save(name, position)),
    advance: (name, from, to) =>
      traced("advance", from === undefined ? "INSERT" : "UPDATE", name, store.advance(name, from, to)),
    reset: (name) => traced("reset", "DELETE", name, store.reset(name)),
    beginRebuild: (name) => traced("beginRebuild", "INSERT", name, store.beginRebuild(name)),
    rebuildPending: (name) => traced("rebuildPending", "SELECT", name, store.rebuildPending(name))
  }
}
