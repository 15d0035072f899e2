/**
 * The banking read models in PostgreSQL: balances and transaction history, written by one
 * transactional projection (read model and checkpoint in the same transaction: exactly-once).
 * Same interface as `Balances.start`, so the demo can use either.
 */
import { DateTime, Effect, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import { Position, ProjectionRunner } from "eventcore"
import { PostgresProjection } from "eventcore/postgres"
import { AccountEvents, balanceDelta } from "./Account.ts"
import type { Balances } from "./Balances.ts"

/** Creates the read-model tables (idempotent). */
export const createTables = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`create table if not exists ${schema}.banking_balances (
      account text primary key, balance bigint not null)`).unprepared
    yield* sql.unsafe(`create table if not exists ${schema}.banking_history (
      event_id uuid primary key, account text not null, position text not null, type text not null,
      amount bigint not null, recorded_at timestamptz not null)`).unprepared
  })

/** The projection: one row per account, one history row per event. */
export const projection = (schema: string) =>
  PostgresProjection.transactional({
    name: "banking-read-models",
    events: AccountEvents,
    handle: (event, stored) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe(
          `insert into ${schema}.banking_balances (account, balance) values ($1, $2)
           on conflict (account) do update set balance = banking_balances.balance + excluded.balance`,
          [stored.streamId, balanceDelta(event)]
        )
        yield* sql.unsafe(
          `insert into ${schema}.banking_history (event_id, account, position, type, amount, recorded_at)
           values ($1, $2, $3, $4, $5, $6)`,
          [
            stored.eventId,
            stored.streamId,
            stored.position,
            stored.type,
            balanceDelta(event),
            DateTime.toDateUtc(stored.recordedAt)
          ]
        )
      }),
    reset: Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`truncate ${schema}.banking_balances, ${schema}.banking_history`)
    })
  })

/**
 * Starts the PostgreSQL read models (with the projection services from
 * `PostgresProjection.layer`); returns their state and a way to wait for a position.
 */
export const start = (schema: string) =>
  Effect.gen(function*() {
    yield* createTables(schema)
    const sql = yield* SqlClient.SqlClient
    const runner = yield* ProjectionRunner.start(yield* projection(schema), { pageSize: 500 })
    const current = Effect.gen(function*() {
      const rows = yield* sql.unsafe<{ account: string; balance: string }>(
        `select account, balance::text from ${schema}.banking_balances`
      )
      return {
        balances: new Map(rows.map((r) => [r.account, Number(r.balance)])),
        position: yield* SubscriptionRef.get(runner.position)
      } satisfies Balances
    }).pipe(Effect.orDie)
    /** The last `limit` entries of an account's history, newest first. */
    const history = (account: string, limit = 20) =>
      sql.unsafe<{ type: string; amount: string; position: string }>(
        `select type, amount::text, position from ${schema}.banking_history where account = $1
         order by position collate "C" desc limit $2`,
        [account, limit]
      ).pipe(Effect.orDie)
    return {
      current,
      history,
      runner,
      awaitPosition: (position: Position.Position) => runner.awaitPosition(position)
    }
  })
