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
 * The guarantees hold whatever the surrounding session does (ADR 8):
 *
 * - In a transaction that already has a transaction id (it wrote before calling), the id was
 *   drawn before the boundary was locked, so the events could land before an earlier commit
 *   of the same stream in the global order: the function refuses (SQLSTATE `EC425`).
 * - Under REPEATABLE READ or SERIALIZABLE (a database, role or caller default), the snapshot
 *   predates the locks, so a plain read of the versions could miss a commit that happened while
 *   waiting. The function then re-checks the boundary with locking reads, which fail with a
 *   serialization error (`40001`, a `ConcurrencyConflict` for the executor) instead of
 *   deciding on a stale version.
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

/**
 * The SQLSTATE raised when the append runs in a transaction that already has a transaction
 * id; DETAIL carries that id.
 *
 * @since 0.2.0
 */
export const transactionHasWrittenState = "EC425"

/**
 * The SQLSTATE raised when an idempotency key is reused for another request; DETAIL carries
 * the key.
 *
 * @since 0.2.0
 */
export const idempotencyKeyReusedState = "EC422"

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
 * The signatures the append function has had, so a migration can drop the one it replaces.
 *
 * @since 0.2.0
 */
export const previousSignatures: ReadonlyArray<string> = [
  "text[], bigint[], uuid[], text[], text[], integer[], jsonb[], jsonb[], timestamptz"
]

/**
 * The argument types of the current append function, to name it in GRANT, REVOKE and DROP.
 *
 * @since 0.3.0
 */
export const appendSignature =
  "text[], bigint[], uuid[], text[], text[], integer[], jsonb[], jsonb[], timestamptz, text, text, timestamptz"

/**
 * The DDL of `<schema>.append`. Arguments are parallel arrays: the boundary (stream ids and
 * expected versions, -1 for "any"), then one entry per event, the instant to record, and an
 * optional idempotency key with its request fingerprint and the instant before which records
 * have expired. A stream is locked exclusively when the call writes to it, shared otherwise.
 *
 * Returns the transaction's place in the global order (its id plus the store's ordering
 * offset), the version every boundary stream had before the append and the events'
 * positions in order — or, when the key was already used, only `o_replay`: what the first
 * append with that key returned.
 *
 * It runs with its owner's rights (`security definer`; ADR 19): the application role executes
 * it and holds no INSERT, UPDATE or DELETE on the tables it writes, so events enter the store
 * only through it. Its `search_path` is fixed to `pg_catalog, pg_temp` (every object of the
 * store is schema-qualified), so a caller's own objects cannot stand in for built-ins it uses.
 *
 * It bounds what the caller passes where trusting it would let the role do what it may not do
 * itself (delete idempotency records): the expiry instant is at most the server's `now()` minus
 * `<schema>.idempotency_min_retention()` (migration 6), so no call replaces or clears a record
 * younger than that. `p_recorded_at` is the writer's claim and is stored as given (ADR 19).
 *
 * @since 0.1.0
 */
export const appendFunction = (s: string): string => `
create or replace function ${s}.append(
  p_stream_ids text[],
  p_expected bigint[],
  p_event_ids uuid[],
  p_event_streams text[],
  p_types text[],
  p_schema_versions integer[],
  p_payloads jsonb[],
  p_metadata jsonb[],
  p_recorded_at timestamptz,
  p_idempotency_key text default null,
  p_idempotency_fingerprint text default null,
  p_idempotency_not_before timestamptz default null
) returns table (o_tx_id bigint, o_versions bigint[], o_positions bigint[], o_replay jsonb)
language plpgsql
security definer set search_path = pg_catalog, pg_temp
as $fn$
declare
  v_lock record;
  v_versions bigint[];
  v_conflicts jsonb;
  v_positions bigint[];
  v_tx bigint;
  v_recorded record;
  v_not_before timestamptz;
begin
  -- 0. A transaction id drawn before the boundary is locked could order these events before
  --    an earlier commit of the same stream: refuse rather than break the global order.
  if pg_current_xact_id_if_assigned() is not null then
    raise exception using
      errcode = '${transactionHasWrittenState}',
      message = 'eventcore: cannot append in a transaction that has already written',
      detail = pg_current_xact_id_if_assigned()::text,
      hint = 'Append before the transaction writes anything else, or outside it.';
  end if;

  -- 1. An idempotency key: serialize on it (before any stream lock, so the order of locks is
  --    the same for everyone) and replay the first append's result if it is still recorded.
  --    Records made before the caller's expiry instant have expired, but the caller does not
  --    decide alone: the role may not delete records, so no call may expire one younger than
  --    the store's minimum retention (by the server's clock; null counts as no bound of its
  --    own). An honest caller's instant, its clock minus its retention, is earlier anyway.
  if p_idempotency_key is not null then
    v_not_before := least(p_idempotency_not_before, now() - ${s}.idempotency_min_retention());
    perform pg_advisory_xact_lock(hashtextextended('eventcore/idempotency/' || p_idempotency_key, ${lockSeed(s)}));
    select k.fingerprint, k.result into v_recorded
    from ${s}.idempotency_keys k
    where k.key = p_idempotency_key and k.recorded_at >= v_not_before;
    if found then
      if v_recorded.fingerprint is distinct from p_idempotency_fingerprint then
        raise exception using
          errcode = '${idempotencyKeyReusedState}',
          message = 'eventcore: idempotency key already used for another request',
          detail = p_idempotency_key;
      end if;
      return query select null::bigint, null::bigint[], null::bigint[], v_recorded.result;
      return;
    end if;
  end if;

  -- 2. Lock the boundary in ascending key order: exclusive where written, shared where only read.
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

  -- 3. Under READ COMMITTED the next statement's snapshot is taken now, after the locks were
  --    granted, so it sees every commit of a previous holder. Under REPEATABLE READ and
  --    SERIALIZABLE the snapshot was taken when the call started: a locking read of a row a
  --    previous holder changed since, and an insert beside a row it created since, fail with a
  --    serialization error (40001) instead of letting a stale version through.
  if current_setting('transaction_isolation') <> 'read committed' then
    perform 1 from ${s}.streams st where st.stream_id = any(p_stream_ids) order by st.stream_id for share;
    insert into ${s}.streams (stream_id, version)
    select distinct b.stream_id, 0 from unnest(p_stream_ids) as b(stream_id) order by 1
    on conflict (stream_id) do nothing;
  end if;

  select array_agg(coalesce(st.version, 0) order by b.ord) into v_versions
  from unnest(p_stream_ids) with ordinality as b(stream_id, ord)
  left join ${s}.streams st on st.stream_id = b.stream_id;

  -- 4. Check every expected version before any sequence value is drawn.
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

  if coalesce(cardinality(p_event_ids), 0) > 0 then
    -- 5. The transaction's place in the global order: its id (drawn here, after the locks, if
    --    no locking read above drew it already) plus the store's ordering offset, which is 0
    --    unless the store was restored into a cluster whose transaction ids run behind.
    v_tx := pg_current_xact_id()::text::bigint + ${s}.tx_offset();

    -- 6. Insert all events in request order (identity values follow that order), numbering
    --    each stream's events from its current version.
    with batch as (
      select e.*, b.version + row_number() over (partition by e.stream_id order by e.ord) as stream_version
      from unnest(p_event_ids, p_event_streams, p_types, p_schema_versions, p_payloads, p_metadata)
           with ordinality as e(event_id, stream_id, type, schema_version, payload, metadata, ord)
      join unnest(p_stream_ids, v_versions) as b(stream_id, version) on b.stream_id = e.stream_id
    ), inserted as (
      insert into ${s}.events (tx_id, event_id, stream_id, stream_version, type, schema_version, payload, metadata, recorded_at)
      select v_tx::text::xid8, batch.event_id, batch.stream_id, batch.stream_version, batch.type, batch.schema_version,
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

    -- 7. Move the written streams to their new versions (we hold their exclusive locks).
    insert into ${s}.streams as st (stream_id, version)
    select e.stream_id, b.version + count(*)
    from unnest(p_event_streams) as e(stream_id)
    join unnest(p_stream_ids, v_versions) as b(stream_id, version) on b.stream_id = e.stream_id
    group by e.stream_id, b.version
    on conflict (stream_id) do update set version = excluded.version;
  end if;

  -- 8. Record the key with what this append returns, replacing an expired record (step 1 found
  --    none live under the key's lock), and clear a few expired ones (rows other appends are
  --    clearing are skipped, not waited for).
  if p_idempotency_key is not null then
    insert into ${s}.idempotency_keys as k (key, fingerprint, result, recorded_at)
    values (
      p_idempotency_key,
      p_idempotency_fingerprint,
      jsonb_build_object(
        'tx', v_tx::text,
        'streams', to_jsonb(p_stream_ids),
        'versions', to_jsonb(v_versions::text[]),
        'eventIds', to_jsonb(coalesce(p_event_ids, '{}')),
        'eventStreams', to_jsonb(coalesce(p_event_streams, '{}')),
        'types', to_jsonb(coalesce(p_types, '{}')),
        'positions', to_jsonb(coalesce(v_positions, '{}')::text[])
      ),
      p_recorded_at
    )
    on conflict (key) do update
      set fingerprint = excluded.fingerprint, result = excluded.result, recorded_at = excluded.recorded_at;
    delete from ${s}.idempotency_keys
    where ctid = any(array(
      select x.ctid from ${s}.idempotency_keys x
      where x.recorded_at < v_not_before and x.key <> p_idempotency_key
      limit 100 for update skip locked
    ));
  end if;

  return query select v_tx, v_versions, coalesce(v_positions, '{}'::bigint[]), null::jsonb;
end
$fn$`
