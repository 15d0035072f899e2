/**
 * One attempt of a command: read the boundary, fold, discover, decide, encode, append.
 * Written as few Effect steps as possible: in memory, an execution is a handful of
 * microseconds, and each step and allocation shows.
 *
 * @internal
 */
import { Cause, type Clock, type Context, Effect, Exit, Predicate, type Random } from "effect"
import * as Command from "../Command.ts"
import {
  type ConcurrencyConflict,
  DiscoveryLimitExceeded,
  EventDecodeError,
  type InvalidInput,
  UndeclaredStream
} from "../Errors.ts"
import type * as Event from "../Event.ts"
import * as EventId from "../EventId.ts"
import type * as EventStore from "../EventStore.ts"
import type * as Metadata from "../Metadata.ts"
import type { StreamId } from "../StreamId.ts"
import * as Telemetry from "./Telemetry.ts"
import * as Unsettled from "./Unsettled.ts"

/** What an attempt can fail with, besides the command's own errors. */
export type AttemptError =
  | EventStore.AppendError
  | EventDecodeError
  | DiscoveryLimitExceeded
  | UndeclaredStream
  | InvalidInput

/** What every attempt of one execution shares. */
export interface Environment {
  readonly store: EventStore.EventStore["Service"]
  readonly clock: Clock.Clock
  readonly random: Random.Random
  /** The executing fiber's context, where metrics are recorded. */
  readonly context: Context.Context<never>
  /** Whether a tracer records spans (`Telemetry.tracing`): then attempts and discovery get spans. */
  readonly traced: boolean
}

/** What the attempts of one execution learn from each other. */
export interface Execution {
  /**
   * Appends of earlier attempts that failed with a transient error: they may have committed
   * (the acknowledgement was lost) or may still commit (the request is still in flight).
   */
  readonly unsettled: Array<EventStore.AppendRequest>
  /** The execution's idempotency key, carried by every append. */
  readonly idempotency: EventStore.IdempotencyClaim | undefined
}

/** What an attempt produces when it commits (or decides to write nothing). */
export interface Outcome {
  readonly events: ReadonlyArray<EventStore.Committed>
  readonly versions: ReadonlyArray<{ readonly streamId: StreamId; readonly version: number }>
  /** An earlier execution with the same idempotency key already did this. */
  readonly replayed: boolean
}

interface Entry<Roles extends string> {
  readonly streamId: StreamId
  readonly roles: Array<Roles | Command.Discovered>
  version: number
}

type Boundary<Roles extends string> = Map<StreamId, Entry<Roles>>

const idsOf = <Roles extends string>(entries: ReadonlyArray<Entry<Roles>>): Array<StreamId> => {
  const ids: Array<StreamId> = []
  for (let i = 0; i < entries.length; i++) ids.push((entries[i] as Entry<Roles>).streamId)
  return ids
}

const versionsOf = <Roles extends string>(boundary: Boundary<Roles>) => {
  const versions: Array<{ readonly streamId: StreamId; readonly version: number }> = []
  for (const { streamId, version } of boundary.values()) versions.push({ streamId, version })
  return versions
}

/** Folds the events of freshly read streams into the state; records each stream's version. */
const fold = <E extends Event.Tagged, S, Roles extends string>(
  command: Command.Command<unknown, unknown, E, S, Roles, unknown, unknown>,
  state: S,
  entries: ReadonlyArray<Entry<Roles>>,
  reads: ReadonlyArray<EventStore.StreamRead>
): S | EventDecodeError => {
  const { apply, events: catalog } = command
  for (let i = 0; i < reads.length; i++) {
    const read = reads[i] as EventStore.StreamRead
    const entry = entries[i] as Entry<Roles>
    entry.version = read.version
    const { roles, streamId } = entry
    const events = read.events
    for (let j = 0; j < events.length; j++) {
      const decoded = catalog.decode(events[j] as EventStore.StreamRead["events"][number])
      if (decoded._tag === "Failure") return decoded.failure
      if (roles.length === 1) state = apply(state, decoded.success, roles[0] as Roles, streamId)
      else for (let r = 0; r < roles.length; r++) state = apply(state, decoded.success, roles[r] as Roles, streamId)
    }
  }
  return state
}

/**
 * Runs one attempt. The caller counts attempts and retries; this only reads, decides and
 * appends, with an expected version for every stream it read.
 */
export const run = <I, E extends Event.Tagged, S, Roles extends string, Err, R>(
  command: Command.Command<I, unknown, E, S, Roles, Err, R>,
  input: I,
  metadata: Metadata.Metadata,
  env: Environment,
  execution: Execution
): Effect.Effect<Outcome, Err | AttemptError, R> =>
  Effect.suspend(() => {
    const boundary: Boundary<Roles> = new Map()
    // Kept only while an earlier attempt's append is unsettled, to look for its events.
    const kept = execution.unsettled.length > 0 ? new Map<StreamId, EventStore.StreamRead>() : undefined
    const keep = (reads: ReadonlyArray<EventStore.StreamRead>) => {
      if (kept !== undefined) { for (const read of reads) kept.set(read.streamId, read) }
    }
    // Streams read only to settle an earlier append: this attempt's append expects them too.
    const fences: Array<EventStore.StreamExpectation> = []
    const declared = command.streams(input)
    const entries: Array<Entry<Roles>> = []
    for (const role in declared) {
      const streamId = declared[role]
      const entry = boundary.get(streamId)
      if (entry !== undefined) entry.roles.push(role)
      else {
        const fresh: Entry<Roles> = { streamId, roles: [role], version: 0 }
        boundary.set(streamId, fresh)
        entries.push(fresh)
      }
    }
    const anyCommand = command as unknown as Command.Command<unknown, unknown, E, S, Roles, unknown, unknown>

    const discover = (
      state: S,
      round: number
    ): Effect.Effect<S, EventStore.ReadError | EventDecodeError | DiscoveryLimitExceeded> => {
      const discovered = command.discover
      if (discovered === undefined) return Effect.succeed(state)
      const found: Array<Entry<Roles>> = []
      const seen = new Set<StreamId>() // linear however many streams discovery names
      for (const streamId of discovered(state, input)) {
        if (!boundary.has(streamId) && !seen.has(streamId)) {
          seen.add(streamId)
          found.push({ streamId, roles: ["discovered"], version: 0 })
        }
      }
      if (found.length === 0) return Effect.succeed(state)
      const limit = command.discoveryLimit ?? 10
      if (round > limit) {
        return Effect.fail(new DiscoveryLimitExceeded({ command: command.name, limit, streams: [...boundary.keys()] }))
      }
      for (const entry of found) boundary.set(entry.streamId, entry)
      return Effect.flatMap(env.store.readStreams(idsOf(found)), (reads) => {
        keep(reads)
        const next = fold(anyCommand, state, found, reads)
        return next instanceof EventDecodeError ? Effect.fail(next) : discover(next, round + 1)
      })
    }

    const handleOf = (streamId: StreamId): Command.Handle<E> => ({
      streamId,
      version: boundary.get(streamId)?.version ?? 0,
      append: (event) => ({ streamId, event })
    })

    /** The outcome of an earlier attempt whose append committed after all, if one did. */
    const settle = (): Effect.Effect<Outcome | undefined, EventStore.ReadError> => {
      if (kept === undefined) return Effect.succeed(undefined)
      const unread = Unsettled.unreadStreams(execution.unsettled, kept)
      const check = () => Unsettled.committed(execution.unsettled, kept)
      return unread.length === 0
        ? Effect.sync(check)
        : Effect.map(env.store.readStreams(unread), (reads) => {
          keep(reads)
          // Streams an unsettled append wrote that this attempt does not otherwise read: its
          // append expects their versions too, so that if the unsettled one commits after
          // all, this one conflicts instead of applying the command a second time.
          for (const read of reads) {
            if (!boundary.has(read.streamId)) fences.push({ streamId: read.streamId, expected: read.version })
          }
          return check()
        })
    }

    const appendWith = (decided: EventStore.AppendRequest): Effect.Effect<Outcome, AttemptError> => {
      const request = fences.length === 0 ? decided : { ...decided, streams: [...decided.streams, ...fences] }
      // Built just before it runs: the store's latency, measured without a step of its own.
      const started = env.clock.currentTimeNanosUnsafe()
      return env.store.append(request).pipe(
        Effect.tapError((error) =>
          Effect.sync(() => {
            // The outcome is unknown: a later attempt must find out before deciding again.
            if (error._tag === "EventStoreError" && error.transient) execution.unsettled.push(request)
            const conflict = error._tag === "ConcurrencyConflict"
            Telemetry.observeAppend(conflict ? "conflict" : "error", started, env)
            // Counted where each attempt's conflict arises (the append is their only source),
            // not in the retry's predicate, which runs twice on the first and never on the last.
            if (conflict) Telemetry.countConflict(error, env.context)
          })
        ),
        Effect.map((appended): Outcome => {
          Telemetry.observeAppend("ok", started, env)
          return appended
        })
      )
    }

    const decide = (state: S): Effect.Effect<Outcome, Err | AttemptError, R> => {
      const streams = {} as { [K in Roles]: Command.Handle<E> }
      for (const role in declared) streams[role] = handleOf(declared[role])
      return Effect.flatMap(
        command.handle({
          input,
          state,
          streams,
          stream: handleOf,
          refuse: Command.refuse,
          require: Command.require,
          refusal: Command.refusal
        }),
        (writes): Effect.Effect<Outcome, AttemptError> => {
          if (writes.length === 0) {
            if (execution.idempotency === undefined) {
              return Effect.succeed<Outcome>({ events: [], versions: versionsOf(boundary), replayed: false })
            }
            // Nothing to write, but the key must be recorded, atomically with a check that the
            // state this decision saw still holds.
            const expectations: Array<EventStore.StreamExpectation> = []
            for (const { streamId, version } of boundary.values()) expectations.push({ streamId, expected: version })
            return appendWith({ streams: expectations, events: [], idempotency: execution.idempotency })
          }
          const events: Array<EventStore.EventToAppend> = []
          for (let i = 0; i < writes.length; i++) {
            const write = writes[i] as Command.Write<E>
            if (!boundary.has(write.streamId)) {
              return Effect.fail(
                new UndeclaredStream({
                  command: command.name,
                  streamId: write.streamId,
                  boundary: [...boundary.keys()]
                })
              )
            }
            const encoded = command.events.encode(write.event)
            if (encoded._tag === "Failure") return Effect.fail(encoded.failure)
            events.push({
              streamId: write.streamId,
              eventId: EventId.generate(env.clock.currentTimeMillisUnsafe(), env.random),
              type: encoded.success.type,
              schemaVersion: encoded.success.schemaVersion,
              payload: encoded.success.payload,
              metadata
            })
          }
          const expectations: Array<EventStore.StreamExpectation> = []
          for (const { streamId, version } of boundary.values()) expectations.push({ streamId, expected: version })
          return appendWith(
            execution.idempotency === undefined
              ? { streams: expectations, events }
              : { streams: expectations, events, idempotency: execution.idempotency }
          )
        }
      )
    }

    // Decide only once it is known that no earlier attempt of this execution committed.
    const settleThenDecide = (state: S): Effect.Effect<Outcome, Err | AttemptError, R> =>
      kept === undefined
        ? decide(state)
        : Effect.flatMap(settle(), (settled) => settled === undefined ? decide(state) : Effect.succeed(settled))

    return Effect.flatMap(
      env.store.readStreams(idsOf(entries)),
      (reads): Effect.Effect<Outcome, Err | AttemptError, R> => {
        keep(reads)
        const state = fold(anyCommand, command.initial, entries, reads)
        if (state instanceof EventDecodeError) return Effect.fail(state)
        if (command.discover === undefined) return settleThenDecide(state)
        const discovery = discover(state, 1)
        return Effect.flatMap(
          env.traced ? tracedDiscovery(discovery, boundary, entries.length) : discovery,
          settleThenDecide
        )
      }
    )
  })

/** Discovery in a span of its own: how many streams it added to the boundary. */
const tracedDiscovery = <A, E, R>(
  discovery: Effect.Effect<A, E, R>,
  boundary: ReadonlyMap<StreamId, unknown>,
  declared: number
): Effect.Effect<A, E, R> =>
  Effect.useSpan("CommandExecutor.discover", Telemetry.fineGrained, (span) =>
    Effect.withParentSpan(
      Effect.ensuring(discovery, Effect.sync(() => span.attribute("eventcore.discovered", boundary.size - declared))),
      span,
      { captureStackTrace: false }
    ))

/**
 * One attempt in a span of its own (`CommandExecutor.attempt`, a child of the command's span):
 * its number, and how it ended. The store's reads and append are its children.
 */
export const traced = <A, E, R>(attempt: Effect.Effect<A, E, R>, number: number): Effect.Effect<A, E, R> =>
  Effect.useSpan(
    "CommandExecutor.attempt",
    { ...Telemetry.fineGrained, attributes: { "eventcore.attempt": number } },
    (span) =>
      Effect.withParentSpan(
        Effect.onExit(attempt, (exit) =>
          Effect.sync(() => {
            span.attribute("eventcore.outcome", Telemetry.outcomeOf(exit))
            if (Exit.isSuccess(exit)) return
            const error: unknown = exit.cause.reasons.find(Cause.isFailReason)?.error
            if (Predicate.isTagged(error, "ConcurrencyConflict")) {
              const conflicts = (error as ConcurrencyConflict).conflicts
              span.attribute("eventcore.conflicting_streams", conflicts.map((c) => c.streamId))
            }
          })),
        span,
        { captureStackTrace: false }
      )
  )
