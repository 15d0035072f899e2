/**
 * The `append` function of the PostgreSQL store: one call, one round trip, one transaction.
 *
 * Why advisory locks rather than row locks on `streams`:
 *
 * - They cover streams that do not exist yet, so two commands both expecting version 0 of a
 *   new stream serialize without any insert race.
 * - They are taken before the transaction writes anything, so its transaction id (which row
 *   locks would assign at the first lock) is assigned only once the whole boundary is held.
 *   Two commits touching one stream therefore get transaction ids in commit order, and the
 *   global order `(tx_id, position)` keeps each stream's events in version order.
 * - Shared advisory locks cost no multixact, unlike `FOR SHARE` row locks.
 *
 * Keys are 64-bit hashes of the stream id, seeded per schema; a hash collision only makes
 * two streams share a lock. Keys are deduplicated (exclusive wins) and taken in ascending
 * order, so two appends can never wait on each other in a cycle.
 *
 * @internal
 */

/**
 * The SQLSTATE raised when an expected version does not match; DETAIL carries the
 * mismatches as JSON `[{ streamId, expected, actual }]`.
 *
 * @since 0.1.0
 */
export const versionMismatchState = "EC409"

/**
 * The SQLSTATE raised when an event would be changed or deleted.
 *
 * @since 0.1.0
 */
export const immutableState = "EC403"

/** FNV-1a: a stable per-schema seed, so two stores in one database do not share locks. */
export const lockSeed = (schema: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < schema.length; i++) {
    hash ^= schema.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash
}

/**
 * The DDL of `<schema>.append`. Arguments are parallel arrays: the boundary (stream ids and
 * expected versions, -1 for "any"), then one entry per event. A stream is locked
 * exclusively when the call writes to it, shared otherwise. Returns the transaction id, the
 * version every boundary stream had before the append, and the events' positions in order.
 *
 * @since 0.1.0
 */
export const appendFunction = (s: string): string => `
create function ${s}.append(
  p_stream_ids text[],
  p_expected bigint[],
  p_event_ids uuid[],
  p_event_streams text[],
  p_types text[],
  p_schema_versions integer[],
  p_payloads jsonb[],
  p_metadata jsonb[],
  p_recorded_at timestamptz
) returns table (o_tx_id bigint, o_versions bigint[], o_positions bigint[])
language plpgsql as $fn$
declare
  v_lock record;
  v_versions bigint[];
  v_conflicts jsonb;
  v_positions bigint[];
begin
  -- 1. Lock the boundary in ascending key order: exclusive where written, shared where only read.
  for v_lock in
    select hashtextextended(b.stream_id, ${lockSeed(s)}) as key,
           bool_or(b.stream_id = any(p_event_streams)) as exclusive
    from unnest(p_stream_ids) as b(stream_id)
    group by 1
    order by 1
  loop
    if v_lock.exclusive then
      perform pg_advisory_xact_lock(v_lock.key);
    else
      perform pg_advisory_xact_lock_shared(v_lock.key);
    end if;
  end loop;

  -- 2. Read the versions. In READ COMMITTED this statement's snapshot is taken after the locks
  --    were granted, so it sees every commit of a previous holder.
  select array_agg(coalesce(st.version, 0) order by b.ord) into v_versions
  from unnest(p_stream_ids) with ordinality as b(stream_id, ord)
  left join ${s}.streams st on st.stream_id = b.stream_id;

  -- 3. Check every expected version before any sequence value is drawn.
  select jsonb_agg(jsonb_build_object('streamId', b.stream_id, 'expected', b.expected, 'actual', b.actual)
                   order by b.ord)
  into v_conflicts
  from unnest(p_stream_ids, p_expected, v_versions) with ordinality as b(stream_id, expected, actual, ord)
  where b.expected >= 0 and b.expected <> b.actual;
  if v_conflicts is not null then
    raise exception using
      errcode = '${versionMismatchState}',
      message = 'eventcore: stream version mismatch',
      detail = v_conflicts::text;
  end if;

  if coalesce(cardinality(p_event_ids), 0) = 0 then
    return query select null::bigint, v_versions, '{}'::bigint[];
    return;
  end if;

  -- 4. Insert all events in request order (identity values follow that order), numbering each
  --    stream's events from its current version.
  with batch as (
    select e.*, b.version + row_number() over (partition by e.stream_id order by e.ord) as stream_version
    from unnest(p_event_ids, p_event_streams, p_types, p_schema_versions, p_payloads, p_metadata)
         with ordinality as e(event_id, stream_id, type, schema_version, payload, metadata, ord)
    join unnest(p_stream_ids, v_versions) as b(stream_id, version) on b.stream_id = e.stream_id
  ), inserted as (
    insert into ${s}.events (event_id, stream_id, stream_version, type, schema_version, payload, metadata, recorded_at)
    select batch.event_id, batch.stream_id, batch.stream_version, batch.type, batch.schema_version,
           batch.payload, batch.metadata, p_recorded_at
    from batch
    order by batch.ord
    returning position
  )
  select array_agg(inserted.position order by inserted.position) into v_positions from inserted;

  if coalesce(cardinality(v_positions), 0) <> cardinality(p_event_ids) then
    raise exception using
      errcode = '22023',
      message = 'eventcore: every event must belong to a stream of the boundary';
  end if;

  -- 5. Move the written streams to their new versions (we hold their exclusive locks).
  insert into ${s}.streams as st (stream_id, version)
  select e.stream_id, b.version + count(*)
  from unnest(p_event_streams) as e(stream_id)
  join unnest(p_stream_ids, v_versions) as b(stream_id, version) on b.stream_id = e.stream_id
  group by e.stream_id, b.version
  on conflict (stream_id) do update set version = excluded.version;

  return query select pg_current_xact_id()::text::bigint, v_versions, v_positions;
end
$fn$`
