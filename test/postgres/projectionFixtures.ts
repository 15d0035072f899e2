/**
 * Read models on PostgreSQL shared by the projection tests and the child process they kill:
 * a transactional one (exactly-once: every event id is inserted into a unique table, so a
 * second application would fail the batch) and an at-least-once one (idempotent upserts,
 * with a delivery counter that shows redeliveries).
 */
import { Effect, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { AccountEvents, balanceDelta } from "../../examples/banking/Account.ts"
import * as EventId from "../../src/EventId.ts"
import * as EventStore from "../../src/EventStore.ts"
import * as Position from "../../src/Position.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as Projection from "../../src/Projection.ts"
import * as StreamId from "../../src/StreamId.ts"
import { raw } from "./fixtures.ts"

const metadata = { correlationId: "seed", causationId: "seed", custom: {} }

/**
 * The position of the last committed event. Tests wait for runners to reach this rather than
 * `EventStore.head`, the last *visible* event: a transaction open elsewhere in the cluster
 * (another test file's) holds visibility back, so `head` may stop short of what this file has
 * just committed, and a runner that reached it may not have seen those events yet.
 */
export const lastCommitted = Effect.map(
  raw<{ tx_id: string; position: string }>(
    "select tx_id::text, position::text from ${s}.events order by tx_id desc, position desc limit 1"
  ),
  (rows) => rows[0] === undefined ? Position.initial : Position.make(BigInt(rows[0].tx_id), BigInt(rows[0].position))
)

/** Appends `count` deposits spread over `accounts` accounts, in batches of `batch`. */
export const seed = (
  options: { readonly count: number; readonly accounts: number; readonly batch?: number; readonly prefix?: string }
) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const batch = options.batch ?? 100
    const versions = new Map<string, number>()
    for (let done = 0; done < options.count; done += batch) {
      const n = Math.min(batch, options.count - done)
      const account = StreamId.makeUnsafe(`${options.prefix ?? "acct"}-${(done / batch) % options.accounts}`)
      const expected = versions.get(account) ?? 0
      const events = yield* Effect.forEach(Array.from({ length: n }, (_, i) => i), (i) =>
        Effect.map(EventId.make, (eventId): EventStore.EventToAppend => ({
          streamId: account,
          eventId,
          type: "MoneyDeposited",
          schemaVersion: 1,
          payload: { _tag: "MoneyDeposited", amount: 1 + ((done + i) % 7) },
          metadata
        })))
      yield* store.append({ streams: [{ streamId: account, expected }], events })
      versions.set(account, expected + n)
    }
  })

/** Balances by account from a full replay of the store. */
export const replay = Effect.map(
  Stream.runCollect(EventStore.readAll({ filter: { eventTypes: AccountEvents.types } })),
  (events) => {
    const balances = new Map<string, number>()
    for (const stored of events) {
      const decoded = AccountEvents.decode(stored)
      if (decoded._tag === "Success") {
        balances.set(stored.streamId, (balances.get(stored.streamId) ?? 0) + balanceDelta(decoded.success))
      }
    }
    return { balances, count: events.length }
  }
)

export const createReadModels = (schema: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (
      const statement of [
        `create table if not exists ${schema}.rm_balances (account text primary key, balance bigint not null, events bigint not null)`,
        `create table if not exists ${schema}.rm_applied (event_id uuid primary key)`,
        `create table if not exists ${schema}.rm_history (event_id uuid primary key, account text not null, amount bigint not null)`,
        `create table if not exists ${schema}.rm_deliveries (id int primary key, count bigint not null)`
      ]
    ) yield* sql.unsafe(statement).unprepared
  })

const pause = (millis: number) =>
  millis > 0 ? Effect.promise(() => new Promise((r) => setTimeout(r, millis))) : Effect.void

/** Exactly-once: balances and the applied-event table move with the checkpoint. */
export const transactionalBalances = (
  schema: string,
  options?: { readonly pauseMillis?: number; readonly name?: string }
) =>
  PostgresProjection.transactional({
    name: options?.name ?? "balances-tx",
    events: AccountEvents,
    handle: (event, stored) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* pause(options?.pauseMillis ?? 0)
        // no "on conflict": applying an event twice would fail
        yield* sql.unsafe(`insert into ${schema}.rm_applied (event_id) values ($1)`, [stored.eventId])
        yield* sql.unsafe(
          `insert into ${schema}.rm_balances (account, balance, events) values ($1, $2, 1)
           on conflict (account) do update set balance = rm_balances.balance + excluded.balance,
             events = rm_balances.events + 1`,
          [stored.streamId, balanceDelta(event)]
        )
      }),
    reset: Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`truncate ${schema}.rm_balances, ${schema}.rm_applied`)
    })
  })

/** At-least-once, idempotent: upserts keyed by event id; deliveries counts every call. */
export const idempotentHistory = (schema: string, options?: { readonly pauseMillis?: number }) =>
  Effect.map(SqlClient.SqlClient, (sql) =>
    Projection.make({
      name: "history-idem",
      events: AccountEvents,
      checkpoint: { everyEvents: 100 },
      handle: (event, stored) =>
        Effect.gen(function*() {
          yield* pause(options?.pauseMillis ?? 0)
          yield* sql.unsafe(
            `insert into ${schema}.rm_deliveries (id, count) values (1, 1)
             on conflict (id) do update set count = rm_deliveries.count + 1`
          )
          yield* sql.unsafe(
            `insert into ${schema}.rm_history (event_id, account, amount) values ($1, $2, $3)
             on conflict (event_id) do nothing`,
            [stored.eventId, stored.streamId, balanceDelta(event)]
          )
        }),
      reset: Effect.asVoid(sql.unsafe(`truncate ${schema}.rm_history, ${schema}.rm_deliveries`))
    }))
