/**
 * The SQL the store sends, as text built only from the (validated) schema name and fixed
 * fragments; every user value travels as a bind parameter. Kept apart from the store so the
 * benchmarks' pgbench baseline can run exactly the same statements.
 *
 * @internal
 */
import { eventColumns } from "./rows.ts"

/**
 * The read horizon in the store's global order: the oldest transaction still running anywhere
 * in the cluster (the snapshot's xmin), plus the store's ordering offset (0 unless a logical
 * restore was adopted). Every event below it belongs to a finished transaction.
 */
const horizon = (schema: string) =>
  `(pg_snapshot_xmin(pg_current_snapshot())::text::bigint + ${schema}.tx_offset())::text::xid8`

/** Visible to global reads: transactions below the horizon, all finished. */
const visible = (schema: string) => `e.tx_id < ${horizon(schema)}`

/**
 * How many events global readers can see after a position (`$1` its transaction, `$2` its
 * sequence), counted up to `$3` through the `(tx_id, position)` index, and when the oldest of
 * them was recorded: a projection's lag as the store alone can tell it (health, the CLI).
 */
export const visibleAfter = (schema: string) =>
  `select count(*)::int as events, min(p.recorded_at) as oldest from (
    select e.recorded_at from ${schema}.events e
    where ${visible(schema)} and (e.tx_id, e.position) > ($1::xid8, $2::bigint)
    order by e.tx_id, e.position limit $3
  ) as p`

/**
 * One call of the append function. Parameters: boundary stream ids, expected versions
 * (-1 = any), event ids, event streams, types, schema versions, payloads and metadata (JSON
 * texts, encoded and checked once by the store), recorded at, idempotency key, its
 * fingerprint, and the instant before which key records expired.
 *
 * @since 0.1.0
 */
export const append = (schema: string): string =>
  `select o_tx_id, o_versions, o_positions, o_replay from ${schema}.append($1, $2, $3, $4, $5, $6, $7::jsonb[], $8::jsonb[], $9, $10, $11, $12)`

/**
 * All events of several streams (`$1`: text[]), by stream then version.
 *
 * @since 0.1.0
 */
export const readStreams = (schema: string): string =>
  `select ${eventColumns} from ${schema}.events e where e.stream_id = any($1::text[]) order by e.stream_id, e.stream_version`

/**
 * The greatest visible (tx_id, position).
 *
 * @since 0.1.0
 */
export const head = (schema: string): string =>
  `select e.tx_id::text as tx_id, e.position from ${schema}.events e where ${
    visible(schema)
  } order by e.tx_id desc, e.position desc limit 1`

/**
 * One page of the global order strictly after (`$1` tx id as text, `$2` position), at most
 * `$3` rows, plus the head. Page and head come from one statement, hence one snapshot: a page
 * that ends short may skip to the head without passing over an event committed in between.
 * `filters` are fixed clauses whose parameters start at `$4`.
 *
 * @since 0.1.0
 */
export const page = (schema: string, filters: string): string =>
  `select h.tx_id as head_tx_id, h.position as head_position,
     p.tx_id, p.position, p.event_id, p.stream_id, p.stream_version, p.type, p.schema_version, p.payload, p.metadata, p.recorded_at
   from (select 1) as one
   left join lateral (${head(schema)}) as h on true
   left join lateral (
     select e.tx_id as tx_order, ${eventColumns} from ${schema}.events e
     where ${visible(schema)} and (e.tx_id, e.position) > ($1::xid8, $2::bigint) ${filters}
     order by e.tx_id, e.position
     limit $3
   ) as p on true
   order by p.tx_order, p.position`

/**
 * Where the read horizon is, from one snapshot: the last visible and the last committed
 * event, how many committed events (matching `filters`, parameters from `$2`) wait behind the
 * horizon (counted up to `$1`) and when the oldest of them was recorded, the horizon and the
 * next transaction id, and who holds the horizon back: the session and the prepared
 * transaction with the oldest transaction id running when the statistics are read (the one
 * that held the snapshot's horizon may have ended a moment later; the oldest one left holds it
 * now). Backends of other users show no state or query unless the role may read all
 * statistics (`pg_read_all_stats`).
 *
 * @since 0.2.0
 */
export const horizonReport = (schema: string, filters: string): string =>
  `with snap as (
     select pg_snapshot_xmin(pg_current_snapshot()) as xmin, pg_snapshot_xmax(pg_current_snapshot()) as xmax,
            ${schema}.tx_offset() as tx_offset
   ), pending as (
     select e.recorded_at from ${schema}.events e, snap
     where e.tx_id >= (snap.xmin::text::bigint + snap.tx_offset)::text::xid8 ${filters}
     order by e.tx_id, e.position
     limit $1
   )
   select
     snap.xmin::text as xmin, snap.xmax::text as xmax, snap.tx_offset::text as tx_offset,
     (select count(*) from pending) as pending,
     (select min(recorded_at) from pending) as oldest_pending_at,
     v.tx_id::text as visible_tx_id, v.position as visible_position,
     c.tx_id::text as committed_tx_id, c.position as committed_position,
     a.backend_xid::text as session_xid, a.pid, a.datname as database, a.state, a.usename as user_name,
     a.application_name, a.xact_start, left(a.query, 200) as query,
     px.transaction::text as prepared_xid, px.gid as prepared_gid, px.database as prepared_database,
     px.owner as prepared_owner, px.prepared as prepared_at
   from snap
   left join lateral (${head(schema)}) as v on true
   left join lateral (
     select e.tx_id, e.position from ${schema}.events e order by e.tx_id desc, e.position desc limit 1
   ) as c on true
   left join lateral (
     select * from pg_stat_activity s where s.backend_xid is not null order by age(s.backend_xid) desc limit 1
   ) as a on true
   left join lateral (
     select * from pg_prepared_xacts p order by age(p.transaction) desc limit 1
   ) as px on true`

/**
 * Whether the store's events run ahead of this cluster's transaction ids: the newest event's
 * transaction, less the ordering offset, is at or past the next transaction id the cluster will
 * assign. Only a logical restore (or logical replication) into another cluster does that.
 *
 * @since 0.2.0
 */
export const restoredAhead = (schema: string): string =>
  `select m.newest::text as newest, pg_snapshot_xmax(pg_current_snapshot())::text as next_xid,
     ${schema}.tx_offset()::text as tx_offset,
     m.newest is not null and m.newest - ${schema}.tx_offset() >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint as ahead
   from (select max(e.tx_id)::text::bigint as newest from ${schema}.events e) as m`

/**
 * The result recorded under an idempotency key, if recorded at or after `$2`.
 *
 * @since 0.2.0
 */
export const readIdempotencyKey = (schema: string): string =>
  `select fingerprint, result from ${schema}.idempotency_keys where key = $1 and recorded_at >= $2`
