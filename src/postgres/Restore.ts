/**
 * Logical restores: after `pg_dump`/`pg_restore` or logical replication into another
 * cluster, the stored events keep the transaction ids of the cluster that wrote them. When
 * those run ahead of the new cluster's own, every new event would sort before the restored
 * ones and global readers would not see the restored ones at all. The store refuses to start
 * then (`RestoredEventsAhead`), and `adopt` — run once, with every writer stopped — raises the
 * store's ordering offset so the restored events keep their order and every new transaction
 * orders after them. Physical backups and point-in-time recovery keep transaction ids and need
 * nothing. See docs/operations.md.
 *
 * @since 0.2.0
 */
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import type { SqlError } from "effect/sql/SqlError"
import type { InvalidInput } from "../Errors.ts"
import * as Migrations from "./Migrations.ts"
import * as Statements from "./statements.ts"

/**
 * The store's events were written by a cluster whose transaction ids run ahead of this one's:
 * it was restored logically (pg_dump/pg_restore, logical replication). Nothing was changed.
 * Stop every writer, run `Restore.adopt({ schema })` (or `select <schema>.adopt_restored_events()`),
 * and start again.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { PostgresEventStore, Restore } from "eventcore/postgres"
 *
 * const StoreLive = PostgresEventStore.layer().pipe(
 *   Layer.tapError((e) => e instanceof Restore.RestoredEventsAhead ? Effect.logError(e.message) : Effect.void)
 * )
 * ```
 * @since 0.2.0
 */
export class RestoredEventsAhead extends Schema.TaggedError<RestoredEventsAhead>()("RestoredEventsAhead", {
  schema: Schema.String,
  /** The newest event's transaction id, less the current ordering offset. */
  newestTransaction: Schema.String,
  /** The next transaction id this cluster will assign. */
  nextTransaction: Schema.String
}) {
  override get message(): string {
    return `The events in schema ${this.schema} were written by a PostgreSQL cluster whose transaction ids run ` +
      `ahead of this one's (newest event's transaction ${this.newestTransaction}, this cluster's next ` +
      `${this.nextTransaction}): the store was restored logically (pg_dump/pg_restore or logical replication). ` +
      `Until it adopts them, new events would be ordered before the restored ones and global readers would not ` +
      `see the restored ones. With every writer stopped, run \`select ${this.schema}.adopt_restored_events()\` ` +
      `(or Restore.adopt), then start again; see docs/operations.md.`
  }
}

/**
 * Fails with `RestoredEventsAhead` when the store's events run ahead of this cluster's
 * transaction ids. The store's layer runs it at start.
 *
 * @example
 * ```ts
 * import { Restore } from "eventcore/postgres"
 *
 * const preflight = Restore.check({ schema: "eventcore" }) // needs a SqlClient
 * ```
 * @since 0.2.0
 */
export const check = Effect.fn("Restore.check")(function*(
  options?: { readonly schema?: string | undefined }
): Effect.fn.Return<void, RestoredEventsAhead | SqlError | InvalidInput, SqlClient.SqlClient> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{
    readonly newest: string | null
    readonly next_xid: string
    readonly tx_offset: string
    readonly ahead: boolean
  }>(Statements.restoredAhead(schema))
  const row = rows[0]
  if (row?.ahead === true && row.newest !== null) {
    return yield* new RestoredEventsAhead({
      schema,
      newestTransaction: (BigInt(row.newest) - BigInt(row.tx_offset)).toString(),
      nextTransaction: row.next_xid
    })
  }
})

/**
 * After a logical restore, makes the store order every new transaction after the restored
 * events: raises the ordering offset (recorded, with the values it was computed from, in
 * `<schema>.ordering_changes`). Idempotent: when the store is not ahead it changes nothing.
 * Run it with every writer stopped. Returns the offset before and after.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import { Restore } from "eventcore/postgres"
 *
 * const afterRestore = Restore.adopt({ schema: "eventcore" }).pipe(
 *   Effect.tap(({ after, before }) => Effect.log(`ordering offset ${before} -> ${after}`)),
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@localhost/app") }))
 * )
 * ```
 * @since 0.2.0
 */
export const adopt = Effect.fn("Restore.adopt")(function*(
  options?: { readonly schema?: string | undefined }
): Effect.fn.Return<{ readonly before: bigint; readonly after: bigint }, SqlError | InvalidInput, SqlClient.SqlClient> {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql.unsafe<{ readonly old_offset: string; readonly new_offset: string }>(
    `select old_offset::text, new_offset::text from ${schema}.adopt_restored_events()`
  )
  const row = rows[0]
  return { before: BigInt(row?.old_offset ?? 0), after: BigInt(row?.new_offset ?? 0) }
})
