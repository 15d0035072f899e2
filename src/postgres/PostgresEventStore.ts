/**
 * The PostgreSQL `EventStore`, on `@effect/sql-pg`.
 *
 * - append: one call of the `append` function (one round trip), which locks the boundary in
 *   one sorted order, checks every expected version, then inserts all events; inside a
 *   caller's transaction, in a savepoint of its own;
 * - readStreams: one query for all streams;
 * - readPage / head: only transactions below the read horizon, in `(tx_id, position)`
 *   order, so an event committed late by an older transaction is never skipped;
 * - awaitAppend: LISTEN/NOTIFY wake-ups, with polling as the source of truth;
 * - horizon: where the read horizon stands and who holds it, watched while subscribers wait.
 *
 * @since 0.1.0
 */
import { PgClient, PgTypes } from "@effect/sql-pg"
import { Clock, Duration, Effect, Layer, Option, Redacted, Result, Schema, type Tracer } from "effect"
import { SqlClient } from "effect/sql"
import { SqlError } from "effect/sql/SqlError"
import { EventDecodeError, EventStoreError, InvalidInput } from "../Errors.ts"
import {
  type AppendRequest,
  type AppendResult,
  type Committed,
  encodeAppend,
  type EventFilter,
  EventStore,
  type IdempotencyRecord,
  limitsOf,
  type PageRequest,
  type StreamRead,
  validatePage,
  validateStreamIds
} from "../EventStore.ts"
import * as Telemetry from "../internal/Telemetry.ts"
import * as Position from "../Position.ts"
import * as Serializer from "../Serializer.ts"
import type { StoredEvent } from "../StoredEvent.ts"
import type { StreamId } from "../StreamId.ts"
import { type Context as ErrorContext, fromAppendError, fromSqlError } from "./errors.ts"
import * as Horizon from "./horizon.ts"
import * as Migrations from "./Migrations.ts"
import { OwnTransaction } from "./ownTransaction.ts"
import * as Restore from "./Restore.ts"
import { type EventRow, toStoredEvent } from "./rows.ts"
import * as Statements from "./statements.ts"
import * as Tracing from "./tracing.ts"
import * as Wakeups from "./Wakeups.ts"

/**
 * The store's schema, migrations, live polling and limits.
 *
 * @example
 * ```ts
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * const options: PostgresEventStore.Options = {
 *   schema: "billing",
 *   migrate: false, // the migration role runs them (docs/roles.md)
 *   pollInterval: "100 millis"
 * }
 * const StoreLive = PostgresEventStore.layerFromUrl("postgres://app@localhost:5432/app", options)
 * ```
 * @since 0.1.0
 */
export interface Options {
  /** The PostgreSQL schema holding the store's tables. Default `"eventcore"`. */
  readonly schema?: string | undefined
  /**
   * Run the migrations when the layer starts. Default `true`. A schema already up to date is
   * only read (no DDL, no CREATE privilege); one with migrations pending that the role cannot
   * apply fails with `Migrations.MissingPrivilege` (docs/roles.md).
   */
  readonly migrate?: boolean | undefined
  /** How long a live subscriber waits without a notification before reading again. Default 250 ms. */
  readonly pollInterval?: Duration.Input | undefined
  /** The most streams one append's boundary may hold. Default `EventStore.defaultMaxBoundary` (1,000). */
  readonly maxBoundary?: number | undefined
  /** The deepest nesting of a payload or metadata. Default 256 (`EventStore.defaultLimits`). */
  readonly maxJsonDepth?: number | undefined
  /** The most UTF-8 bytes of JSON in one payload, or one event's metadata. Default 8 MiB. */
  readonly maxJsonBytes?: number | undefined
  /**
   * While live subscribers wait, warn when committed events have waited behind the read
   * horizon longer than this (another session's open transaction). Default 30 seconds.
   */
  readonly horizonWarning?: Duration.Input | undefined
}

/**
 * The default polling interval: notifications normally wake subscribers within a
 * millisecond or two; polling only bounds the delay when a notification is lost or an
 * unrelated long transaction holds the visibility horizon back.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * Duration.toMillis(PostgresEventStore.defaultPollInterval) // 250
 * ```
 * @since 0.1.0
 */
export const defaultPollInterval: Duration.Duration = Duration.millis(250)

const typedArray = (elementOid: number) => {
  const probe = PgTypes.array([], elementOid)
  if (Result.isFailure(probe)) throw new Error(`@effect/sql-pg has no array type for OID ${elementOid}`)
  const template = probe.success
  return (values: ReadonlyArray<unknown>): PgTypes.Parameter => ({ ...template, value: values })
}
const textArray = typedArray(PgTypes.OID.text)
const int8Array = typedArray(PgTypes.OID.int8)
const int4Array = typedArray(PgTypes.OID.int4)
const uuidArray = typedArray(PgTypes.OID.uuid)

interface AppendRow {
  readonly o_tx_id: bigint | null
  readonly o_versions: ReadonlyArray<bigint> | null
  readonly o_positions: ReadonlyArray<bigint> | null
  readonly o_replay: unknown
}

/** What an append returned, in the shape the function records it under an idempotency key. */
interface Outcome {
  readonly tx: bigint | null
  readonly streams: ReadonlyArray<string>
  readonly versions: ReadonlyArray<bigint>
  readonly eventIds: ReadonlyArray<string>
  readonly eventStreams: ReadonlyArray<string>
  readonly types: ReadonlyArray<string>
  readonly positions: ReadonlyArray<bigint>
}

/** Numbers each event within its stream from the versions the function saw before the insert. */
const toAppendResult = (outcome: Outcome, replayed: boolean): AppendResult => {
  const versions = new Map<string, number>()
  outcome.streams.forEach((streamId, i) => versions.set(streamId, Number(outcome.versions[i] ?? 0n)))
  const events: Array<Committed> = outcome.eventIds.map((eventId, i) => {
    const streamId = outcome.eventStreams[i] as StreamId
    const streamVersion = (versions.get(streamId) ?? 0) + 1
    versions.set(streamId, streamVersion)
    return {
      eventId: eventId as Committed["eventId"],
      streamId,
      streamVersion,
      position: Position.make(outcome.tx ?? 0n, outcome.positions[i] ?? 0n),
      type: outcome.types[i] ?? ""
    }
  })
  return {
    events,
    versions: outcome.streams.map((streamId) => ({
      streamId: streamId as StreamId,
      version: versions.get(streamId) ?? 0
    })),
    replayed
  }
}

const Digits = Schema.String.check(Schema.isPattern(/^\d+$/))
/** The result the append function records under an idempotency key (numbers as text). */
const RecordedOutcome = Schema.Struct({
  tx: Schema.NullOr(Digits),
  streams: Schema.Array(Schema.String),
  versions: Schema.Array(Digits),
  eventIds: Schema.Array(Schema.String),
  eventStreams: Schema.Array(Schema.String),
  types: Schema.Array(Schema.String),
  positions: Schema.Array(Digits)
})
const decodeRecorded = Schema.decodeUnknownResult(RecordedOutcome)

const fromRecorded = (operation: string, json: unknown): Result.Result<AppendResult, EventStoreError> =>
  Result.match(decodeRecorded(json), {
    onFailure: (issue) =>
      Result.fail(
        new EventStoreError({
          operation,
          transient: false,
          cause: `the result recorded under the idempotency key is malformed: ${issue.message}`
        })
      ),
    onSuccess: (r) =>
      Result.succeed(toAppendResult({
        ...r,
        tx: r.tx === null ? null : BigInt(r.tx),
        versions: r.versions.map(BigInt),
        positions: r.positions.map(BigInt)
      }, true))
  })

/** Collects converted rows, failing on the first row that does not convert. */
const toStoredEvents = (
  rows: ReadonlyArray<EventRow>,
  serializer: Serializer.Serializer
): Effect.Effect<Array<StoredEvent>, EventDecodeError> => {
  const events: Array<StoredEvent> = []
  for (const row of rows) {
    const event = toStoredEvent(row, serializer)
    if (event instanceof EventDecodeError) return Effect.fail(event)
    events.push(event)
  }
  return Effect.succeed(events)
}

/** The page query's filter clauses, from fixed text; user values only ever travel as parameters. */
const filterClauses = (filter: EventFilter | undefined, firstParameter: number) => {
  const clauses: Array<string> = []
  const params: Array<unknown> = []
  const next = () => `$${firstParameter + params.length}`
  if (filter?.streamIds !== undefined) {
    clauses.push(`and e.stream_id = any(${next()}::text[])`)
    params.push(textArray(filter.streamIds))
  }
  if (filter?.streamPrefix !== undefined) {
    clauses.push(`and starts_with(e.stream_id, ${next()}::text)`)
    params.push(filter.streamPrefix)
  }
  if (filter?.eventTypes !== undefined) {
    clauses.push(`and e.type = any(${next()}::text[])`)
    params.push(textArray(filter.eventTypes))
  }
  return { sql: clauses.join(" "), params }
}

interface PageRow extends EventRow {
  readonly head_tx_id: string | null
  readonly head_position: bigint | null
}

const maxPosition = (a: Position.Position, b: Position.Position) => Position.isAfter(a, b) ? a : b

/**
 * Builds the store on an existing `PgClient`. Prefer `layer`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * // Needs a PgClient and a Scope (the store's LISTEN connection lives in it).
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const store = yield* PostgresEventStore.make({ schema: "billing", migrate: false })
 *   return yield* store.head
 * }))
 * ```
 * @since 0.1.0
 */
export const make = Effect.fnUntraced(function*(options?: Options) {
  const schema = yield* Migrations.parseSchemaName(options?.schema ?? Migrations.defaultSchema)
  const pg = yield* PgClient.PgClient
  // The store keeps one pool connection for LISTEN: on a pool of one, every query would wait forever.
  const poolSize = "maxConnections" in pg.config ? pg.config.maxConnections : undefined
  if (poolSize === 1) {
    return yield* new InvalidInput({
      subject: "PgClient",
      path: ["maxConnections"],
      issue: "a pool of 1 connection cannot serve the store: it keeps one for LISTEN; use at least 2"
    })
  }
  if (options?.migrate ?? true) yield* Migrations.run({ schema }).pipe(Effect.provideService(SqlClient.SqlClient, pg))
  yield* Restore.check({ schema }).pipe(Effect.provideService(SqlClient.SqlClient, pg))
  const sql = pg.withoutTransforms()
  const serializer = yield* Serializer.Serializer
  const pollInterval = Duration.fromInputUnsafe(options?.pollInterval ?? defaultPollInterval)
  const limits = limitsOf(options)
  const wakeups = yield* Wakeups.make(pg, `${schema}_appended`)

  // Each operation is a span (when a tracer records them) with the OpenTelemetry database
  // attributes; @effect/sql-pg's own span for the statement is its child (tracing.ts).
  const target: Tracing.Target = { schema, database: Tracing.databaseOf(pg.config) }
  const traced = <A, E, R>(
    operation: string,
    collection: string,
    body: (span: Tracer.Span | undefined) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> => Tracing.span(`EventStore.${operation}`, target, "SELECT", collection, body)

  const appendSql = Statements.append(schema)
  const readStreamsSql = Statements.readStreams(schema)
  const headSql = Statements.head(schema)
  const readKeySql = Statements.readIdempotencyKey(schema)

  /** Whether the calling fiber is inside a transaction of this client (the caller's). */
  const context = Effect.map(
    Effect.serviceOption(sql.transactionService),
    (open): ErrorContext => ({ inTransaction: Option.isSome(open) })
  )

  const appendUntraced = Effect.fnUntraced(function*(request: AppendRequest) {
    const encoded = encodeAppend(request, serializer, limits)
    if (Result.isFailure(encoded)) return yield* encoded.failure
    const recordedAt = yield* Clock.currentTimeMillis
    const events = request.events
    const claim = request.idempotency
    const call = sql.unsafe<AppendRow>(appendSql, [
      textArray(request.streams.map((s) => s.streamId)),
      int8Array(request.streams.map((s) => BigInt(s.expected === "any" ? -1 : s.expected))),
      uuidArray(events.map((e) => e.eventId)),
      textArray(events.map((e) => e.streamId)),
      textArray(events.map((e) => e.type)),
      int4Array(events.map((e) => e.schemaVersion)),
      textArray(encoded.success.payloads),
      textArray(encoded.success.metadata),
      PgTypes.timestamptz(recordedAt),
      claim?.key ?? null,
      claim?.fingerprint ?? null,
      claim === undefined ? null : PgTypes.timestamptz(claim.notBefore)
    ])
    const where = yield* context
    // Inside a caller's transaction the append gets a savepoint of its own: a conflict then
    // rolls back only the append, and the executor can retry it in the same transaction.
    // Not in a transaction opened for this append (see ownTransaction.ts).
    const savepoint = where.inTransaction && !(yield* OwnTransaction)
    const rows = yield* (savepoint ? sql.withTransaction(call) : call).pipe(
      Effect.mapError((error) => fromAppendError(error, request.streams, where))
    )
    const row = rows[0]
    if (row === undefined) {
      return yield* new EventStoreError({ operation: "append", transient: false, cause: "append returned no row" })
    }
    if (row.o_replay !== null && row.o_replay !== undefined) {
      const replay = fromRecorded("append", row.o_replay)
      if (Result.isFailure(replay)) return yield* replay.failure
      return replay.success
    }
    // Subscribers are woken once the events can be seen: inside a caller's transaction, when
    // it commits (a rollback wakes nobody).
    if (events.length > 0) yield* sql.afterCommit(wakeups.appended)
    return toAppendResult({
      tx: row.o_tx_id,
      streams: request.streams.map((s) => s.streamId),
      versions: row.o_versions ?? [],
      eventIds: events.map((e) => e.eventId),
      eventStreams: events.map((e) => e.streamId),
      types: events.map((e) => e.type),
      positions: row.o_positions ?? []
    }, false)
  })

  const append = (request: AppendRequest) =>
    traced("append", "events", (span) => {
      span?.attribute("db.stored_procedure.name", `${schema}.append`)
      span?.attribute("eventcore.streams", request.streams.length)
      span?.attribute("eventcore.events", request.events.length)
      return appendUntraced(request)
    })

  const readStreamsUntraced = Effect.fnUntraced(function*(streamIds: ReadonlyArray<StreamId>) {
    const invalid = validateStreamIds(streamIds)
    if (invalid !== undefined) return yield* invalid
    if (streamIds.length === 0) return []
    const where = yield* context
    const rows = yield* sql.unsafe<EventRow>(readStreamsSql, [textArray(streamIds)]).pipe(
      Effect.mapError((error) => fromSqlError("readStreams", error, where))
    )
    const events = yield* toStoredEvents(rows, serializer)
    const byStream = new Map<string, Array<StoredEvent>>()
    for (const event of events) {
      const list = byStream.get(event.streamId)
      if (list === undefined) byStream.set(event.streamId, [event])
      else list.push(event)
    }
    return streamIds.map((streamId): StreamRead => {
      const list = byStream.get(streamId) ?? []
      return { streamId, version: list[list.length - 1]?.streamVersion ?? 0, events: list }
    })
  })

  const readStreams = (streamIds: ReadonlyArray<StreamId>) =>
    traced("readStreams", "events", (span) => {
      if (span === undefined) return readStreamsUntraced(streamIds)
      span.attribute("eventcore.streams", streamIds.length)
      return Effect.map(readStreamsUntraced(streamIds), (reads) => {
        Tracing.returned(span, reads.reduce((n, read) => n + read.events.length, 0))
        return reads
      })
    })

  const readPageUntraced = Effect.fnUntraced(function*(request: PageRequest) {
    const invalid = validatePage(request)
    if (invalid !== undefined) return yield* invalid
    const limit = request.limit
    const filters = filterClauses(request.filter, 4)
    const rows = yield* sql.unsafe<PageRow>(Statements.page(schema, filters.sql), [
      Position.transaction(request.after).toString(),
      Position.sequence(request.after),
      limit,
      ...filters.params
    ]).pipe(Effect.mapError((error) => fromSqlError("readPage", error)))
    const first = rows[0]
    const eventRows = first === undefined || first.position === null ? [] : rows
    const events = yield* toStoredEvents(eventRows, serializer)
    const last = events[events.length - 1]
    if (events.length === limit && last !== undefined) return { events, next: last.position, end: false }
    const head = first?.head_tx_id != null && first.head_position !== null
      ? Position.make(BigInt(first.head_tx_id), first.head_position)
      : Position.initial
    return {
      events,
      next: maxPosition(request.after, maxPosition(head, last?.position ?? Position.initial)),
      end: true
    }
  })

  const readPage = (request: PageRequest) =>
    traced("readPage", "events", (span) => {
      if (span === undefined) return readPageUntraced(request)
      span.attribute("eventcore.page.after", request.after)
      span.attribute("eventcore.page.limit", request.limit)
      return Effect.map(readPageUntraced(request), (page) => {
        Tracing.returned(span, page.events.length)
        return page
      })
    })

  const headUntraced = sql.unsafe<{ tx_id: string; position: bigint }>(headSql).pipe(
    Effect.map((rows) => {
      const row = rows[0]
      return row === undefined ? Position.initial : Position.make(BigInt(row.tx_id), row.position)
    }),
    Effect.mapError((error) => fromSqlError("head", error))
  )

  const head = traced("head", "events", () => headUntraced)

  // Live subscribers waiting now: the horizon monitor only queries while there are some.
  let waiting = 0
  // Returns only once the *visible* head is past `after` (the head a page reads in the same
  // statement, and visibility never goes back), so the page read after it is never empty for
  // want of a commit: an idle subscriber polls here and nowhere else. A wake-up for a commit
  // still behind the horizon, or a poll that finds nothing, waits again. Not traced at all
  // (nor @effect/sql-pg's statement spans): polling every `pollInterval` would fill the traces.
  const awaitAppend = (after: Position.Position): Effect.Effect<void, EventStoreError> =>
    Effect.gen(function*() {
      // Take the wake-up before reading the head, so a commit in between still wakes us.
      const woken = yield* wakeups.next
      if (Position.isAfter(yield* headUntraced, after)) return
      waiting++
      yield* Effect.gen(function*() {
        let next = woken
        while (true) {
          yield* Effect.raceFirst(next, Wakeups.sleepReal(pollInterval))
          next = yield* wakeups.next
          if (Position.isAfter(yield* headUntraced, after)) return
        }
      }).pipe(Effect.ensuring(Effect.sync(() => waiting--)))
    }).pipe(Effect.withTracerEnabled(false))

  const readIdempotencyKeyUntraced = (key: string, notBefore: number) =>
    sql.unsafe<{ readonly fingerprint: string; readonly result: unknown }>(readKeySql, [
      key,
      PgTypes.timestamptz(notBefore)
    ]).pipe(
      Effect.mapError((error) => fromSqlError("readIdempotencyKey", error)),
      Effect.flatMap((rows): Effect.Effect<IdempotencyRecord | undefined, EventStoreError> => {
        const row = rows[0]
        if (row === undefined) return Effect.succeed(undefined)
        return Effect.map(
          Effect.fromResult(fromRecorded("readIdempotencyKey", row.result)),
          (result) => ({ fingerprint: row.fingerprint, result })
        )
      })
    )

  const readIdempotencyKey = (key: string, notBefore: number) =>
    traced("readIdempotencyKey", "idempotency_keys", () => readIdempotencyKeyUntraced(key, notBefore))

  const readHorizon = (filter: EventFilter | undefined, cap: number) =>
    Horizon.read(sql, schema, cap, filterClauses(filter, 2)).pipe(
      Effect.mapError((error) =>
        error instanceof SqlError
          ? fromSqlError("horizon", error)
          : new EventStoreError({ operation: "horizon", transient: false, cause: "the report returned no row" })
      ),
      // The store-wide report (no filter) is what the read-horizon gauges show.
      Effect.tap((report) =>
        filter === undefined
          ? Effect.withFiber((fiber) =>
            Effect.sync(() => Telemetry.observeHorizon(report.pending, report.pendingMillis, fiber.context))
          )
          : Effect.void
      )
    )

  const horizonWarning = Duration.fromInputUnsafe(options?.horizonWarning ?? defaultHorizonWarning)
  yield* Horizon.monitor({
    // Polling, every few seconds while subscribers wait: not traced (its gauges and warning say
    // what it finds); `horizon()` asked for is.
    read: (filter, cap) => Effect.withTracerEnabled(readHorizon(filter, cap), false),
    waiting: () => waiting,
    threshold: horizonWarning,
    interval: Duration.min(horizonWarning, Duration.seconds(5)),
    schema
  })

  return EventStore.of({
    append,
    readStreams,
    readPage,
    head,
    awaitAppend,
    readIdempotencyKey,
    horizon: (options) =>
      traced("horizon", "events", () => readHorizon(options?.filter, options?.cap ?? Horizon.defaultCap))
  })
})

/**
 * How long committed events may wait behind the read horizon, while live subscribers wait,
 * before the store logs a warning naming the session that holds it.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * Duration.toSeconds(PostgresEventStore.defaultHorizonWarning) // 30
 * ```
 * @since 0.2.0
 */
export const defaultHorizonWarning: Duration.Duration = Duration.seconds(30)

/**
 * The PostgreSQL event store as a layer, on the `PgClient` of `@effect/sql-pg`. Migrates its
 * schema at start unless `migrate: false`.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * const StoreLive = PostgresEventStore.layer({ schema: "eventcore" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://postgres@localhost:5432/app") }))
 * )
 * ```
 * @since 0.1.0
 */
export const layer = (
  options?: Options
): Layer.Layer<
  EventStore,
  SqlError | InvalidInput | Migrations.MissingPrivilege | Restore.RestoredEventsAhead,
  PgClient.PgClient
> => Layer.effect(EventStore, make(options))

/**
 * The store and its connection pool from a connection URL.
 *
 * @example
 * ```ts
 * import { PostgresEventStore } from "eventcore/postgres"
 *
 * const StoreLive = PostgresEventStore.layerFromUrl("postgres://postgres@localhost:5432/app")
 * ```
 * @since 0.1.0
 */
export const layerFromUrl = (
  url: string,
  options?: Options & { readonly maxConnections?: number | undefined }
): Layer.Layer<EventStore, SqlError | InvalidInput | Migrations.MissingPrivilege | Restore.RestoredEventsAhead> =>
  layer(options).pipe(
    Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: options?.maxConnections }))
  )
