/**
 * `eventcore dead-letters list | show | retry | discard`: the events projections skipped.
 *
 * `retry` rebuilds the projection (ADR 16): the only replay that keeps a projection's
 * guarantees — events in the global order, each applied once — since a skipped event's
 * effects would otherwise land after those of every event that followed it. `discard` forgets
 * one letter: the projection skips that event for good.
 *
 * @internal
 */
import { DateTime, Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import type { DeadLetter } from "../DeadLetterStore.ts"
import * as PostgresDeadLetterStore from "../postgres/PostgresDeadLetterStore.ts"
import { eventColumns, type EventRow } from "../postgres/rows.ts"
import * as Output from "./Output.ts"
import { beginRebuild, follow } from "./Projections.ts"
import { countFlag, headOf, requireStore, requireYes, showPosition, withDatabase, yesFlag } from "./Shared.ts"
import { showEvent } from "./Streams.ts"

const toJson = (letter: DeadLetter) => ({
  projection: letter.projection,
  eventId: letter.eventId,
  streamId: letter.streamId,
  streamVersion: letter.streamVersion,
  position: showPosition(letter.position),
  type: letter.type,
  error: letter.error,
  attempts: letter.attempts,
  recordedAt: DateTime.formatIso(letter.recordedAt)
})

const firstLine = (text: string, max = 80): string => {
  const line = text.split("\n")[0] ?? ""
  return line.length > max ? `${line.slice(0, max - 1)}…` : line
}

const projectionArgument = Argument.String("projection").pipe(Argument.withDescription("The projection's name"))
const eventIdArgument = Argument.String("event-id").pipe(Argument.withDescription("The skipped event's id"))

const list = Command.make("list", {
  projection: Argument.String("projection").pipe(
    Argument.withDescription("One projection's (default: every projection's)"),
    Argument.optional
  )
}, ({ projection }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const store = yield* PostgresDeadLetterStore.make({ schema })
      const letters = yield* store.list(Option.getOrUndefined(projection))
      if (json) return yield* Output.json({ schema, deadLetters: letters.map(toJson) })
      yield* Output.line(Output.table(
        ["PROJECTION", "EVENT ID", "STREAM", "TYPE", "ATTEMPTS", "RECORDED", "ERROR"],
        letters.map((l) => [
          l.projection,
          l.eventId,
          `${l.streamId}@${l.streamVersion}`,
          l.type,
          String(l.attempts),
          DateTime.formatIso(l.recordedAt),
          firstLine(l.error)
        ]),
        "No dead letters."
      ))
    })
  )).pipe(Command.withDescription("List the events projections skipped, with the error, in the global order."))

/** One letter, or "not found" (exit 4). */
const find = (schema: string, projection: string, eventId: string) =>
  Effect.gen(function*() {
    const store = yield* PostgresDeadLetterStore.make({ schema })
    const letters = yield* store.list(projection)
    const letter = letters.find((l) => l.eventId === eventId.toLowerCase())
    if (letter === undefined) {
      return yield* Output.fail(
        Output.ExitCode.notFound,
        `No dead letter of ${projection} for event ${eventId} in schema ${schema}` +
          (letters.length === 0 ? `: ${projection} has none.` : ": see `eventcore dead-letters list`.")
      )
    }
    return letter
  })

const show = Command.make(
  "show",
  { projection: projectionArgument, eventId: eventIdArgument },
  ({ eventId, projection }) =>
    withDatabase(({ json, schema }) =>
      Effect.gen(function*() {
        yield* requireStore(schema)
        const letter = yield* find(schema, projection, eventId)
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql.unsafe<EventRow>(
          `select ${eventColumns} from ${schema}.events e where e.event_id::text = $1`,
          [letter.eventId]
        )
        const event = rows[0] === undefined ? null : showEvent(rows[0])
        if (json) return yield* Output.json({ schema, deadLetter: toJson(letter), event })
        yield* Output.line(Output.record([
          ["projection", letter.projection],
          ["event", letter.eventId],
          ["stream", `${letter.streamId}@${letter.streamVersion}`],
          ["type", letter.type],
          ["position", showPosition(letter.position)],
          ["attempts", String(letter.attempts)],
          ["recorded", DateTime.formatIso(letter.recordedAt)]
        ]))
        yield* Output.line(`\nerror:\n${letter.error}`)
        if (event !== null) {
          if (!event.readable) yield* Output.line(`\nUNREADABLE event: ${event.problem} (shown as stored)`)
          yield* Output.line(`\nmetadata: ${Output.toJson(event.metadata)}`)
          yield* Output.line(`payload:  ${Output.toJson(event.payload)}`)
        }
      })
    )
).pipe(Command.withDescription("Show one dead letter: the error in full, and the event as stored."))

const retry = Command.make("retry", {
  projection: projectionArgument,
  yes: yesFlag,
  wait: Flag.Boolean("wait").pipe(
    Flag.withDescription("Follow the rebuild until caught up (--no-wait: return at once)"),
    Flag.withDefault(true)
  ),
  timeout: countFlag("timeout").pipe(
    Flag.withDescription("Give up following after this many seconds (exit 1; the rebuild goes on)"),
    Flag.optional
  )
}, ({ projection, timeout, wait, yes }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireYes(
        yes,
        `retry rebuilds ${projection}: its runner clears the read model, dead letters and checkpoint, and replays ` +
          "every event in order, the skipped ones included"
      )
      yield* requireStore(schema)
      const store = yield* PostgresDeadLetterStore.make({ schema })
      const before = yield* store.list(projection)
      if (before.length === 0) {
        if (json) return yield* Output.json({ schema, projection, retried: 0, remaining: 0 })
        return yield* Output.line(`${projection} has no dead letters: nothing to retry.`)
      }
      yield* beginRebuild(schema, projection)
      const target = yield* headOf(schema)
      if (!wait) {
        if (json) return yield* Output.json({ schema, projection, retried: before.length, rebuild: "pending" })
        return yield* Output.line(
          `Rebuild of ${projection} requested to retry ${before.length} dead letter(s): its runner performs it.`
        )
      }
      yield* follow({
        schema,
        projection,
        target,
        timeoutSeconds: Option.getOrUndefined(timeout),
        what: `retry ${projection}`
      })
      const after = yield* store.list(projection)
      if (json) {
        yield* Output.json({ schema, projection, retried: before.length, remaining: after.length })
      } else {
        yield* Output.line(
          `Rebuilt ${projection}: ${before.length} dead letter(s) retried, ${after.length} failed again.`
        )
      }
      if (after.length > 0) {
        return yield* Output.fail(
          Output.ExitCode.failed,
          `${after.length} event(s) failed again: see \`eventcore dead-letters list ${projection}\``
        )
      }
    })
  )).pipe(
    Command.withDescription(
      "Retry a projection's dead letters by rebuilding it (every event replayed in order, after your fix). Requires --yes."
    )
  )

const discard = Command.make(
  "discard",
  { projection: projectionArgument, eventId: eventIdArgument, yes: yesFlag },
  ({ eventId, projection, yes }) =>
    withDatabase(({ json, schema }) =>
      Effect.gen(function*() {
        yield* requireYes(yes, `discard forgets the dead letter: ${projection} skips event ${eventId} for good`)
        yield* requireStore(schema)
        const letter = yield* find(schema, projection, eventId)
        const store = yield* PostgresDeadLetterStore.make({ schema })
        yield* store.discard(projection, letter.eventId)
        if (json) return yield* Output.json({ schema, discarded: toJson(letter) })
        yield* Output.line(`Discarded the dead letter of ${projection} for event ${letter.eventId}.`)
      })
    )
).pipe(Command.withDescription("Forget one dead letter: the projection skips that event for good. Requires --yes."))

/** `dead-letters list | show | retry | discard`. */
export const command = Command.make("dead-letters").pipe(
  Command.withDescription("Look at the events projections skipped; retry or discard them."),
  Command.withSubcommands([list, show, retry, discard])
)
