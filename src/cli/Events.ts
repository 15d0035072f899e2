/**
 * `eventcore events tail`: prints events in the global order as they commit, until stopped.
 *
 * It reads the store's tables with the store's own page statement (same visibility rule as
 * every global reader: only events below the read horizon), polling, so that a row the
 * library cannot read is shown flagged instead of stopping the tail.
 *
 * @internal
 */
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import * as Position from "../Position.ts"
import type { EventRow } from "../postgres/rows.ts"
import * as Statements from "../postgres/statements.ts"
import * as Output from "./Output.ts"
import { countFlag, headOf, parsePosition, requireStore, rowPosition, showPosition, withDatabase } from "./Shared.ts"
import { showEvent } from "./Streams.ts"

interface PageRow extends Omit<EventRow, "tx_id" | "position"> {
  readonly head_tx_id: string | null
  readonly head_position: bigint | null
  readonly tx_id: string | null
  readonly position: bigint | null
}

const pageSize = 500

const tail = Command.make("tail", {
  from: Flag.String("from").pipe(
    Flag.withDescription("Where to start: end (only new events, the default), start, or a position (742.13)"),
    Flag.withDefault("end")
  ),
  filter: Flag.String("filter").pipe(
    Flag.withDescription("Only streams whose id starts with this (a category such as account-)"),
    Flag.optional
  ),
  type: Flag.String("type").pipe(Flag.withDescription("Only events of this type"), Flag.optional),
  limit: countFlag("limit").pipe(Flag.withDescription("Stop after this many events"), Flag.optional),
  // At least 10: a shorter interval is a busy loop against the database, not a faster tail.
  poll: countFlag("poll-ms", 10).pipe(
    Flag.withDescription("How often to look for new events, in milliseconds (default 250, at least 10)"),
    Flag.withDefault(250)
  )
}, ({ filter, from, limit, poll, type }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      const start = from === "end" || from === "start" ? from : yield* parsePosition("--from", from)
      yield* requireStore(schema)
      const sql = yield* SqlClient.SqlClient
      const params: Array<string> = []
      let clauses = ""
      if (Option.isSome(filter)) {
        params.push(filter.value)
        clauses += ` and left(e.stream_id, length($${3 + params.length})) = $${3 + params.length}`
      }
      if (Option.isSome(type)) {
        params.push(type.value)
        clauses += ` and e.type = $${3 + params.length}`
      }
      const pageSql = Statements.page(schema, clauses)

      let at = Position.initial
      if (start === "end") {
        at = yield* headOf(schema)
      } else if (start !== "start") {
        at = start
      }
      let printed = 0
      let announced = false
      const wanted = Option.getOrUndefined(limit)
      while (true) {
        const rows = yield* sql.unsafe<PageRow>(pageSql, [
          Position.transaction(at).toString(),
          Position.sequence(at),
          pageSize,
          ...params
        ])
        let events = 0
        for (const row of rows) {
          if (row.tx_id === null || row.position === null) continue
          events++
          at = rowPosition(row.tx_id, row.position)
          const event = showEvent(row as EventRow)
          if (json) {
            yield* Output.json(event)
          } else {
            yield* Output.line(
              `${event.position}  ${event.recordedAt}  ${event.streamId}@${event.streamVersion}  ${event.type}  ` +
                `${event.readable ? "" : `UNREADABLE (${event.problem}) `}${Output.toJson(event.payload)}`
            )
          }
          printed++
          if (wanted !== undefined && printed >= wanted) return
        }
        if (events < pageSize) {
          // The page and the head come from one snapshot: nothing matching lies between the
          // last event and the head, so the next read starts at the head.
          const head = rows[0]
          if (head !== undefined && head.head_tx_id !== null && head.head_position !== null) {
            const headAt = rowPosition(head.head_tx_id, head.head_position)
            if (Position.isAfter(headAt, at)) at = headAt
          }
          if (!announced) {
            announced = true
            yield* Output.notice(`eventcore: following ${schema} after ${showPosition(at)} (Ctrl-C to stop)`)
          }
          yield* Effect.sleep(`${poll} millis`)
        }
      }
    })
  )).pipe(
    Command.withDescription(
      "Print events as they commit, in the global order, until interrupted (or --limit). One line, or one JSON object with --json, per event."
    ),
    Command.withExamples([
      { command: "eventcore events tail", description: "New events from now on" },
      { command: "eventcore events tail --from start --filter account- --json", description: "Every account event" }
    ])
  )

/** `events tail`. */
export const command = Command.make("events").pipe(
  Command.withDescription("Follow the store's events."),
  Command.withSubcommands([tail])
)
