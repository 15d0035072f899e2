/**
 * `eventcore streams list | show`: the streams of the store, and the events of one, as stored.
 *
 * @internal
 */
import { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import { EventDecodeError } from "../Errors.ts"
import { eventColumns, type EventRow, toStoredEvent } from "../postgres/rows.ts"
import * as Serializer from "../Serializer.ts"
import * as Output from "./Output.ts"
import { countFlag, requireStore, withDatabase } from "./Shared.ts"

/** One event as the CLI shows it: as stored, flagged when the library could not read it. */
export interface ShownEvent {
  readonly position: string
  readonly streamId: string
  readonly streamVersion: number
  readonly eventId: string
  readonly type: string
  readonly schemaVersion: number
  readonly recordedAt: string
  readonly metadata: unknown
  readonly payload: unknown
  /** False for a row the library cannot read (see docs/operations.md): shown raw, with why. */
  readonly readable: boolean
  readonly problem?: string
}

/** A row, checked the way the store reads it (`toStoredEvent`) but shown as stored either way. */
export const showEvent = (row: EventRow): ShownEvent => {
  const stored = toStoredEvent(row, Serializer.json)
  const base = {
    position: `${row.tx_id}.${row.position}`,
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    eventId: row.event_id,
    type: row.type,
    schemaVersion: Number(row.schema_version),
    recordedAt: new Date(row.recorded_at).toISOString(),
    metadata: row.metadata,
    payload: row.payload
  }
  return stored instanceof EventDecodeError
    ? { ...base, readable: false, problem: stored.reason }
    : { ...base, readable: true }
}

const list = Command.make("list", {
  prefix: Flag.String("prefix").pipe(
    Flag.withDescription("Only streams whose id starts with this (a category such as account-)"),
    Flag.optional
  ),
  limit: countFlag("limit").pipe(Flag.withDescription("The most streams to list (default 100)"), Flag.withDefault(100))
}, ({ limit, prefix }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const sql = yield* SqlClient.SqlClient
      const start = prefix._tag === "Some" ? prefix.value : ""
      // `left(...) = $1` rather than LIKE: a prefix may hold % or _.
      const rows = yield* sql.unsafe<{
        readonly stream_id: string
        readonly version: bigint | string
        readonly last_recorded_at: Date | null
      }>(
        `select s.stream_id, s.version, e.recorded_at as last_recorded_at
         from ${schema}.streams s
         left join ${schema}.events e on e.stream_id = s.stream_id and e.stream_version = s.version
         where left(s.stream_id, length($1)) = $1
         order by s.stream_id collate "C"
         limit $2`,
        [start, limit + 1]
      )
      const shown = rows.slice(0, limit).map((row) => ({
        streamId: row.stream_id,
        version: Number(row.version),
        lastRecordedAt: row.last_recorded_at === null ? null : new Date(row.last_recorded_at).toISOString()
      }))
      const more = rows.length > limit
      if (json) return yield* Output.json({ schema, streams: shown, more })
      yield* Output.line(Output.table(
        ["STREAM", "VERSION", "LAST EVENT AT"],
        shown.map((s) => [s.streamId, String(s.version), s.lastRecordedAt ?? "-"]),
        start === "" ? "No streams." : `No stream starts with ${JSON.stringify(start)}.`
      ))
      if (more) yield* Output.line(`(more than ${limit}: narrow with --prefix or raise --limit)`)
    })
  )).pipe(Command.withDescription("List streams with their versions, by id."))

const show = Command.make("show", {
  id: Argument.String("stream-id").pipe(Argument.withDescription("The stream's id")),
  limit: countFlag("limit").pipe(
    Flag.withDescription("The most events to show (default 1000)"),
    Flag.withDefault(1_000)
  ),
  from: countFlag("from-version").pipe(
    Flag.withDescription("Start at this stream version (1 = the first event)"),
    Flag.withDefault(1)
  )
}, ({ from, id, limit }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const sql = yield* SqlClient.SqlClient
      const versions = yield* sql.unsafe<{ readonly version: bigint | string }>(
        `select version from ${schema}.streams where stream_id = $1`,
        [id]
      )
      const version = versions[0]
      if (version === undefined) {
        return yield* Output.fail(Output.ExitCode.notFound, `No stream ${JSON.stringify(id)} in schema ${schema}.`)
      }
      const rows = yield* sql.unsafe<EventRow>(
        `select ${eventColumns} from ${schema}.events e
         where e.stream_id = $1 and e.stream_version >= $2 order by e.stream_version limit $3`,
        [id, from, limit]
      )
      const events = rows.map(showEvent)
      const unreadable = events.filter((e) => !e.readable).length
      if (json) return yield* Output.json({ schema, streamId: id, version: Number(version.version), events })
      yield* Output.line(`Stream ${id}: version ${Number(version.version)}`)
      for (const event of events) {
        yield* Output.line(
          `\n#${event.streamVersion}  ${event.type} (schema v${event.schemaVersion})  position ${event.position}  ` +
            `${event.recordedAt}  event ${event.eventId}`
        )
        if (!event.readable) yield* Output.line(`  UNREADABLE: ${event.problem} (shown as stored)`)
        yield* Output.line(`  metadata: ${Output.toJson(event.metadata)}`)
        yield* Output.line(`  payload:  ${Output.toJson(event.payload)}`)
      }
      if (events.length < Number(version.version) - from + 1) {
        yield* Output.line(`\n(${events.length} shown: raise --limit or use --from-version for the rest)`)
      }
      if (unreadable > 0) {
        yield* Output.line(
          `\n${unreadable} event(s) cannot be read by the library: every read of this stream fails until they ` +
            "are repaired (docs/operations.md, runbook)."
        )
      }
    })
  )).pipe(
    Command.withDescription(
      "Show a stream's events: versions, types, metadata and payload JSON as stored; rows the library cannot read are flagged."
    )
  )

/** `streams list | show`. */
export const command = Command.make("streams").pipe(
  Command.withDescription("Look at streams."),
  Command.withSubcommands([list, show])
)
