/**
 * `eventcore projections list | status | lag | rebuild | reset`: projections as the store sees
 * them — their checkpoints, the runner holding each one's lock, how far behind they are —
 * and the two ways to send one back.
 *
 * The CLI has no projection's code: it cannot replay events into a read model itself.
 * `rebuild` marks a rebuild pending (what `CheckpointStore.beginRebuild` does) and the
 * application's runner of that projection performs it; `reset` moves the checkpoint and
 * leaves the read model as it is. Both then follow the runner's progress.
 *
 * @internal
 */
import { Clock, Effect, Option, Stdio } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { SqlClient } from "effect/sql"
import * as Position from "../Position.ts"
import * as PostgresCheckpointStore from "../postgres/PostgresCheckpointStore.ts"
import * as PostgresProjectionLock from "../postgres/PostgresProjectionLock.ts"
import * as Statements from "../postgres/statements.ts"
import * as Output from "./Output.ts"
import {
  countFlag,
  headOf,
  parsePosition,
  requireStore,
  requireYes,
  showPosition,
  withDatabase,
  yesFlag
} from "./Shared.ts"

interface CheckpointRow {
  readonly name: string
  readonly position: string | null
  readonly updated_at: Date
  readonly rebuild_pending: boolean
  readonly dead_letters: bigint | string | number
  readonly runner_pid: number | null
  readonly runner_application: string | null
  readonly runner_address: string | null
  readonly runner_since: Date | null
}

/** A projection as the CLI shows it. */
interface Shown {
  readonly name: string
  readonly checkpoint: string | null
  readonly updatedAt: string
  readonly rebuildPending: boolean
  readonly deadLetters: number
  /** The session holding the projection's lock (its active runner), if any. */
  readonly runner: { readonly pid: number; readonly application: string; readonly since: string | null } | null
}

/**
 * The checkpoints with their dead letters and the session holding each projection's lock
 * (PostgresProjectionLock: a session advisory lock on a 64-bit hash of schema and name,
 * which pg_locks shows split into classid and objid).
 */
const checkpointsSql = (schema: string, one: boolean) =>
  `select c.name, c.position, c.updated_at, c.rebuild_pending,
     (select count(*) from ${schema}.dead_letters d where d.projection = c.name) as dead_letters,
     r.pid as runner_pid, r.application_name as runner_application, r.client_addr::text as runner_address,
     r.backend_start as runner_since
   from ${schema}.checkpoints c
   left join lateral (
     select a.pid, a.application_name, a.client_addr, a.backend_start
     from pg_locks l left join pg_stat_activity a on a.pid = l.pid
     where ${PostgresProjectionLock.grantedLockSql("l", PostgresProjectionLock.lockKeySql("$1::text", "c.name"))}
     limit 1
   ) r on true
   ${one ? "where c.name = $2" : ""}
   order by c.name collate "C"`

const toShown = (row: CheckpointRow): Shown => ({
  name: row.name,
  checkpoint: row.position === null ? null : showPosition(row.position),
  updatedAt: new Date(row.updated_at).toISOString(),
  rebuildPending: row.rebuild_pending,
  deadLetters: Number(row.dead_letters),
  runner: row.runner_pid === null ? null : {
    pid: row.runner_pid,
    application: row.runner_application ?? "",
    since: row.runner_since === null ? null : new Date(row.runner_since).toISOString()
  }
})

/** All projections (those with a checkpoint row), or the one named (exit 4 when unknown). */
const load = (schema: string, name?: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = name === undefined
      ? yield* sql.unsafe<CheckpointRow>(checkpointsSql(schema, false), [schema])
      : yield* sql.unsafe<CheckpointRow>(checkpointsSql(schema, true), [schema, name])
    if (name !== undefined && rows.length === 0) {
      const known = yield* sql.unsafe<{ readonly name: string }>(
        `select name from ${schema}.checkpoints order by name collate "C" limit 20`
      )
      return yield* Output.fail(
        Output.ExitCode.notFound,
        `No projection ${JSON.stringify(name)} in schema ${schema} (it has never saved a checkpoint)` +
          (known.length === 0 ? "." : `; known: ${known.map((k) => k.name).join(", ")}`)
      )
    }
    return rows.map(toShown)
  })

const status = (shown: Shown): string =>
  shown.rebuildPending ? "rebuild pending" : shown.checkpoint === null ? "no position yet" : "ok"

const runnerText = (shown: Shown): string =>
  shown.runner === null
    ? "none"
    : `pid ${shown.runner.pid}${shown.runner.application ? ` (${shown.runner.application})` : ""}`

const nameArgument = Argument.String("name").pipe(Argument.withDescription("The projection's name"))
const optionalName = Argument.String("name").pipe(
  Argument.withDescription("One projection (default: all)"),
  Argument.optional
)

const list = Command.make("list", {}, () =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const shown = yield* load(schema)
      if (json) return yield* Output.json({ schema, projections: shown })
      yield* Output.line(Output.table(
        ["NAME", "CHECKPOINT", "UPDATED", "STATUS"],
        shown.map((p) => [p.name, p.checkpoint ?? "-", p.updatedAt, status(p)]),
        `No projection has saved a checkpoint in schema ${schema}.`
      ))
    })
  )).pipe(Command.withDescription("List the projections that have a checkpoint in the store."))

const statusCommand = Command.make(
  "status",
  { name: optionalName },
  ({ name }) =>
    withDatabase(({ json, schema }) =>
      Effect.gen(function*() {
        yield* requireStore(schema)
        const shown = yield* load(schema, Option.getOrUndefined(name))
        if (json) return yield* Output.json({ schema, projections: shown })
        yield* Output.line(Output.table(
          ["NAME", "STATUS", "CHECKPOINT", "UPDATED", "DEAD LETTERS", "RUNNER"],
          shown.map((p) => [p.name, status(p), p.checkpoint ?? "-", p.updatedAt, String(p.deadLetters), runnerText(p)]),
          `No projection has saved a checkpoint in schema ${schema}.`
        ))
      })
    )
).pipe(
  Command.withDescription(
    "Show each projection's checkpoint, pending rebuild, dead letters, and the session running it (the holder of its lock)."
  )
)

/** Events after a position that global readers can see, counted up to `cap`, and the oldest one's age. */
const behind = (schema: string, after: Position.Position, cap: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ readonly events: number; readonly oldest: Date | null }>(
      Statements.visibleAfter(schema),
      [Position.transaction(after).toString(), Position.sequence(after), cap]
    )
    const now = yield* Clock.currentTimeMillis
    const events = Number(rows[0]?.events ?? 0)
    const oldest = rows[0]?.oldest ?? null
    return { events, capped: events >= cap, millis: oldest === null ? 0 : Math.max(0, now - oldest.getTime()) }
  })

const lag = Command.make("lag", {
  name: optionalName,
  cap: countFlag("cap").pipe(
    Flag.withDescription("Stop counting at this many events (default 10000)"),
    Flag.withDefault(10_000)
  )
}, ({ cap, name }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      yield* requireStore(schema)
      const shown = yield* load(schema, Option.getOrUndefined(name))
      const headAt = yield* headOf(schema)
      const lags = yield* Effect.forEach(shown, (p) =>
        Effect.map(
          behind(schema, p.checkpoint === null ? Position.initial : toPosition(p.checkpoint), cap),
          (b) => ({ name: p.name, checkpoint: p.checkpoint, ...b })
        ))
      if (json) return yield* Output.json({ schema, head: showPosition(headAt), projections: lags })
      yield* Output.line(Output.table(
        ["NAME", "CHECKPOINT", "EVENTS BEHIND", "OLDEST UNPROCESSED"],
        lags.map((l) => [
          l.name,
          l.checkpoint ?? "-",
          `${l.events}${l.capped ? "+" : ""}`,
          l.events === 0 ? "-" : `${Output.duration(l.millis)} ago`
        ]),
        `No projection has saved a checkpoint in schema ${schema}.`
      ))
      yield* Output.line(
        `\nHead: ${showPosition(headAt)}. Counts include events a projection does not subscribe to; a live ` +
          "projection's checkpoint moves at its checkpoint interval."
      )
    })
  )).pipe(
    Command.withDescription(
      "How far behind the head of the store each projection's checkpoint is: events after it and the oldest one's age."
    )
  )

/** A position shown as `transaction.sequence`, back to a position. */
const toPosition = (shown: string): Position.Position => {
  const [tx = "0", seq = "0"] = shown.split(".")
  return Position.make(BigInt(tx), BigInt(seq))
}

/** Where a followed projection is. */
interface Progress {
  readonly state: "pending" | "waiting" | "running" | "done"
  readonly checkpoint: Position.Position | undefined
}

const progressOf = (schema: string, projection: string, target: Position.Position) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql.unsafe<{ readonly position: string | null; readonly rebuild_pending: boolean }>(
      `select position, rebuild_pending from ${schema}.checkpoints where name = $1`,
      [projection]
    )
    const row = rows[0]
    const checkpoint = row?.position === null || row?.position === undefined
      ? undefined
      : row.position as Position.Position
    if (row?.rebuild_pending === true) return { state: "pending", checkpoint } satisfies Progress
    if (target === Position.initial) return { state: "done", checkpoint } satisfies Progress
    if (checkpoint === undefined) return { state: "waiting", checkpoint } satisfies Progress
    return { state: Position.isAfter(target, checkpoint) ? "running" : "done", checkpoint } satisfies Progress
  })

/**
 * Follows a projection until its checkpoint reaches `target` (the head when the action was
 * asked): a progress bar with an ETA on a terminal, a line per change otherwise, on standard
 * error. Progress is estimated from the store's event sequence numbers (assigned in commit
 * order, give or take concurrent transactions), so it is cheap on any store size.
 */
export const follow = (options: {
  readonly schema: string
  readonly projection: string
  readonly target: Position.Position
  readonly timeoutSeconds: number | undefined
  readonly what: string
}) =>
  Effect.gen(function*() {
    const { projection, schema, target } = options
    const tty = yield* (yield* Stdio.Stdio).stderrIsTerminal
    const started = yield* Clock.currentTimeMillis
    const total = Number(Position.sequence(target))
    let first: { readonly at: number; readonly done: number } | undefined
    let lastKey = ""
    while (true) {
      const progress = yield* progressOf(schema, projection, target)
      const now = yield* Clock.currentTimeMillis
      if (progress.state === "done") {
        yield* Output.endProgress(tty, false)
        return { elapsedMillis: now - started, checkpoint: progress.checkpoint }
      }
      const done = progress.checkpoint === undefined
        ? 0
        : Math.min(total, Number(Position.sequence(progress.checkpoint)))
      let summary: string
      let bar = ""
      let key: string = progress.state
      if (progress.state === "pending") {
        summary = `waiting for a runner of ${projection} to take the rebuild ` +
          "(a running runner notices it; otherwise the next one to start does)"
      } else if (progress.state === "waiting") {
        summary = `waiting for a runner of ${projection} to start processing`
      } else {
        if (first === undefined || done < first.done) first = { at: now, done }
        const rate = (done - first.done) / Math.max(1, now - first.at)
        const eta = rate > 0 ? Output.duration((total - done) / rate) : "?"
        const ratio = total === 0 ? 1 : done / total
        const width = 30
        const filled = Math.round(ratio * width)
        if (tty) bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}] `
        summary = `${Math.floor(ratio * 100)}% (about ${done}/${total} events), ETA ${eta}`
        key = `running ${Math.floor(ratio * 10)}`
      }
      // Without a terminal: one line per change of state or of ten percent, not one per poll.
      yield* Output.progress(`${options.what}: ${bar}${summary}`, { tty, changed: key !== lastKey })
      lastKey = key
      if (options.timeoutSeconds !== undefined && now - started >= options.timeoutSeconds * 1000) {
        yield* Output.endProgress(tty, true)
        return yield* Output.fail(
          Output.ExitCode.failed,
          `${options.what}: not caught up after ${options.timeoutSeconds}s (${summary}); ` +
            `it goes on without the CLI: see \`eventcore projections status ${projection}\``
        )
      }
      yield* Effect.sleep("500 millis")
    }
  })

const waitFlags = {
  wait: Flag.Boolean("wait").pipe(
    Flag.withDescription("Follow progress until caught up (--no-wait: return at once)"),
    Flag.withDefault(true)
  ),
  timeout: countFlag("timeout").pipe(
    Flag.withDescription("Give up following after this many seconds (exit 1; the work goes on)"),
    Flag.optional
  )
}

/** Marks a rebuild of `projection` pending (CheckpointStore.beginRebuild, on a known projection). */
export const beginRebuild = (schema: string, projection: string) =>
  Effect.gen(function*() {
    yield* load(schema, projection)
    yield* (yield* PostgresCheckpointStore.make({ schema })).beginRebuild(projection)
  })

const rebuild = Command.make(
  "rebuild",
  { name: nameArgument, yes: yesFlag, ...waitFlags },
  ({ name, timeout, wait, yes }) =>
    withDatabase(({ json, schema }) =>
      Effect.gen(function*() {
        yield* requireYes(
          yes,
          `rebuild clears the read model of ${name}, its dead letters and its checkpoint, and replays every event`
        )
        yield* requireStore(schema)
        yield* beginRebuild(schema, name)
        const target = yield* headOf(schema)
        if (!wait) {
          if (json) return yield* Output.json({ schema, projection: name, rebuild: "pending" })
          return yield* Output.line(
            `Rebuild of ${name} requested: its runner performs it (a running one notices; otherwise the next to start).`
          )
        }
        const result = yield* follow({
          schema,
          projection: name,
          target,
          timeoutSeconds: Option.getOrUndefined(timeout),
          what: `rebuild ${name}`
        })
        if (json) {
          return yield* Output.json({
            schema,
            projection: name,
            rebuild: "done",
            checkpoint: result.checkpoint === undefined ? null : showPosition(result.checkpoint),
            elapsedMillis: result.elapsedMillis
          })
        }
        yield* Output.line(
          `Rebuilt ${name}: caught up with ${showPosition(target)} in ${Output.duration(result.elapsedMillis)}.`
        )
      })
    )
).pipe(
  Command.withDescription(
    "Rebuild a projection: its runner clears the read model, dead letters and checkpoint, then replays every event. Requires --yes."
  )
)

const reset = Command.make("reset", {
  name: nameArgument,
  yes: yesFlag,
  to: Flag.String("to").pipe(
    Flag.withDescription("Move the checkpoint to this position (742.13) instead of to the start"),
    Flag.optional
  ),
  ...waitFlags
}, ({ name, timeout, to, wait, yes }) =>
  withDatabase(({ json, schema }) =>
    Effect.gen(function*() {
      const destination = Option.isSome(to) ? yield* parsePosition("--to", to.value) : undefined
      yield* requireYes(
        yes,
        destination === undefined
          ? `reset moves the checkpoint of ${name} back to the start, so every event is processed again ON TOP of the ` +
            "current read model (use rebuild to clear it first)"
          : `reset moves the checkpoint of ${name} to ${showPosition(destination)}: events before it are never ` +
            "processed, events after it are processed again"
      )
      yield* requireStore(schema)
      const [current] = yield* load(schema, name)
      if (current?.rebuildPending === true) {
        return yield* Output.fail(
          Output.ExitCode.failed,
          `A rebuild of ${name} is pending: a reset now would leave its read model half cleared. Let a runner finish ` +
            "the rebuild first."
        )
      }
      const sql = yield* SqlClient.SqlClient
      // A running runner finds its checkpoint moved at its next save, reloads it and goes on from there.
      yield* destination === undefined
        ? (yield* PostgresCheckpointStore.make({ schema })).reset(name)
        : sql.unsafe(`update ${schema}.checkpoints set position = $2, updated_at = now() where name = $1`, [
          name,
          destination
        ])
      const target = yield* headOf(schema)
      const to_ = destination === undefined ? "the start" : showPosition(destination)
      if (!wait || (destination !== undefined && !Position.isAfter(target, destination))) {
        if (json) return yield* Output.json({ schema, projection: name, reset: to_, following: false })
        return yield* Output.line(`Checkpoint of ${name} moved to ${to_}.`)
      }
      const result = yield* follow({
        schema,
        projection: name,
        target,
        timeoutSeconds: Option.getOrUndefined(timeout),
        what: `reset ${name}`
      })
      if (json) {
        return yield* Output.json({
          schema,
          projection: name,
          reset: to_,
          following: true,
          checkpoint: result.checkpoint === undefined ? null : showPosition(result.checkpoint),
          elapsedMillis: result.elapsedMillis
        })
      }
      yield* Output.line(
        `Checkpoint of ${name} moved to ${to_}; caught up with ${showPosition(target)} in ${
          Output.duration(result.elapsedMillis)
        }.`
      )
    })
  )).pipe(
    Command.withDescription(
      "Move a projection's checkpoint back to the start (or --to a position) WITHOUT clearing its read model: events are processed again on top of it. Requires --yes."
    )
  )

/** `projections list | status | lag | rebuild | reset`. */
export const command = Command.make("projections").pipe(
  Command.withDescription("Look at projections, rebuild or reset one."),
  Command.withSubcommands([list, statusCommand, lag, rebuild, reset])
)
