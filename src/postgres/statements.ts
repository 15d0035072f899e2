/**
 * The SQL the store sends, as text built only from the (validated) schema name and fixed
 * fragments; every user value travels as a bind parameter. Kept apart from the store so the
 * benchmarks' pgbench baseline can run exactly the same statements.
 *
 * @internal
 */
import { eventColumns } from "./rows.ts"

/** Visible to global reads: transactions below the snapshot's xmin, all finished. */
const visible = "e.tx_id < pg_snapshot_xmin(pg_current_snapshot())"

/**
 * One call of the append function. Parameters: boundary stream ids, expected versions
 * (-1 = any), event ids, event streams, types, schema versions, payloads, metadata, recorded at.
 *
 * @since 0.1.0
 */
export const append = (schema: string): string =>
  `select o_tx_id, o_versions, o_positions from ${schema}.append($1, $2, $3, $4, $5, $6, $7, $8, $9)`

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
  `select e.tx_id::text as tx_id, e.position from ${schema}.events e where ${visible} order by e.tx_id desc, e.position desc limit 1`

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
     where ${visible} and (e.tx_id, e.position) > ($1::xid8, $2::bigint) ${filters}
     order by e.tx_id, e.position
     limit $3
   ) as p on true
   order by p.tx_order, p.position`
