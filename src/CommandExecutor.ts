/**
 * The command executor: parses input, reads the boundary, folds, discovers, decides, and
 * appends atomically, re-running the whole command under a retry `Schedule` when a stream it
 * read changed in between.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Duration, Effect, type Exit, Layer, Predicate, Random, Schedule, Schema } from "effect"
import type * as Command from "./Command.ts"
import {
  ConcurrencyConflict,
  type DiscoveryLimitExceeded,
  type EventDecodeError,
  type EventStoreError,
  InvalidInput,
  type TransactionAlreadyWritten,
  type UndeclaredStream
} from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventId from "./EventId.ts"
import * as EventStore from "./EventStore.ts"
import * as Attempt from "./internal/Attempt.ts"
import * as Fingerprint from "./internal/Fingerprint.ts"
import * as Telemetry from "./internal/Telemetry.ts"
import * as TestClockGuard from "./internal/TestClockGuard.ts"
import * as Metadata from "./Metadata.ts"
import type { Position } from "./Position.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * The default retry policy for concurrency conflicts, as in EventCore: 5 attempts in all,
 * exponential from 10 ms ×2 with ±20% jitter, each delay capped at 1 second.
 *
 * @example
 * ```ts
 * import { CommandExecutor } from "eventcore"
 *
 * // The same backoff for transient store errors (off by default).
 * const Executor = CommandExecutor.layer({ transientRetry: CommandExecutor.defaultRetry })
 * ```
 * @since 0.1.0
 */
export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("10 millis", 2).pipe(
  Schedule.jittered,
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(1)))),
  Schedule.upTo({ times: 4 })
)

/**
 * How the executor retries.
 *
 * @example
 * ```ts
 * import { Schedule } from "effect"
 * import { CommandExecutor } from "eventcore"
 *
 * const config: CommandExecutor.Config = {
 *   // a hot stream: up to 10 attempts, backing off from 10 ms
 *   retry: Schedule.exponential("10 millis").pipe(Schedule.jittered, Schedule.upTo({ times: 9 })),
 *   idempotencyRetention: "7 days"
 * }
 * const Executor = CommandExecutor.layer(config)
 * ```
 * @since 0.1.0
 */
export interface Config {
  /** Retries after a `ConcurrencyConflict`; every retry re-reads and re-decides. */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyConflict> | undefined
  /**
   * Opt-in retries after a transient `EventStoreError` (connection loss, …). A retry after an
   * append whose acknowledgement was lost never applies the command twice: it re-reads, and
   * if that append committed after all, returns its result.
   */
  readonly transientRetry?: Schedule.Schedule<unknown, EventStoreError> | undefined
  /**
   * How long an idempotency key is remembered (`ExecuteOptions.idempotencyKey`). Default
   * `defaultIdempotencyRetention`, 24 hours.
   */
  readonly idempotencyRetention?: Duration.Input | undefined
}

/**
 * How long an idempotency key is remembered unless configured otherwise: 24 hours.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { CommandExecutor } from "eventcore"
 *
 * Duration.toHours(CommandExecutor.defaultIdempotencyRetention) // 24
 * ```
 * @since 0.2.0
 */
export const defaultIdempotencyRetention: Duration.Duration = Duration.hours(24)

/**
 * Options for one execution.
 *
 * @example
 * ```ts
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const PlaceOrder: Command.Any // a command of your domain
 * declare const requestId: string // e.g. an HTTP request's Idempotency-Key header
 *
 * const options: CommandExecutor.ExecuteOptions = {
 *   idempotencyKey: `place-order/${requestId}`, // the client's retry writes nothing twice
 *   metadata: { correlationId: requestId }
 * }
 * const placed = CommandExecutor.execute(PlaceOrder, { orderId: "order-1" }, options)
 * ```
 * @since 0.1.0
 */
export interface ExecuteOptions {
  /**
   * Carried into every event this execution writes, merged over the ambient metadata
   * (`Metadata.withAmbient`, or the event a projection is processing): these fields win.
   */
  readonly metadata?: Metadata.Input | undefined
  /** Overrides the executor's conflict retry policy for this execution. */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyConflict> | undefined
  /**
   * Makes the execution idempotent: while the key is remembered (`idempotencyRetention`), an
   * execution with the same key — from this process or any other on the same store — writes
   * nothing and returns the first one's result (`replayed: true`). The key is recorded
   * atomically with the events, and only when the command succeeds: a refused command can be
   * retried with the same key. A key names one request: reusing it with another command or
   * input fails with `InvalidInput`.
   */
  readonly idempotencyKey?: string | undefined
}

/**
 * An event the execution appended.
 *
 * @example
 * ```ts
 * import type { CommandExecutor } from "eventcore"
 *
 * const describe = (event: CommandExecutor.WrittenEvent) =>
 *   `${event.type} ${event.eventId}: ${event.streamId} v${event.streamVersion} at ${event.position}`
 * ```
 * @since 0.1.0
 */
export interface WrittenEvent extends EventStore.Committed {}

/**
 * What an execution wrote.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const Deposit: Command.Any // a command of your domain
 *
 * const summary = (result: CommandExecutor.ExecutionResult) =>
 *   result.replayed
 *     ? `${result.command}: already done, nothing written`
 *     : `${result.command}: ${result.events.length} events in ${result.attempts} attempt(s)`
 *
 * const program = Effect.map(CommandExecutor.execute(Deposit, { account: "acc-1", amount: 10 }), summary)
 * ```
 * @since 0.1.0
 */
export interface ExecutionResult {
  readonly command: string
  readonly events: ReadonlyArray<WrittenEvent>
  /** The version of every stream of the boundary after the commit. */
  readonly versions: ReadonlyArray<{ readonly streamId: StreamId; readonly version: number }>
  /** The position of the last event written; undefined when the command wrote nothing. */
  readonly position: Position | undefined
  /**
   * How many times this execution ran the command (1 when no conflict was retried; 0 when
   * its idempotency key replayed an earlier result without running it).
   */
  readonly attempts: number
  /**
   * True when the idempotency key had already been used: nothing was written, and `events`,
   * `versions` and `position` are what the first execution with the key wrote.
   */
  readonly replayed: boolean
}

/**
 * Everything an execution can fail with, besides the command's own errors.
 *
 * @example
 * ```ts
 * import type { CommandExecutor } from "eventcore"
 *
 * // An HTTP status for each failure of the executor (the command's own errors aside).
 * const status = (error: CommandExecutor.ExecuteError): number => {
 *   switch (error._tag) {
 *     case "InvalidInput":
 *       return 400
 *     case "ConcurrencyConflict":
 *       return 409 // still conflicting after the retries
 *     case "EventStoreError":
 *       return error.transient ? 503 : 500
 *     default:
 *       return 500
 *   }
 * }
 * ```
 * @since 0.1.0
 */
export type ExecuteError =
  | InvalidInput
  | ConcurrencyConflict
  | EventStoreError
  | EventDecodeError
  | UndeclaredStream
  | DiscoveryLimitExceeded
  | TransactionAlreadyWritten

/**
 * The executor service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const Deposit: Command.Any // a command of your domain
 *
 * const program = Effect.gen(function*() {
 *   const executor = yield* CommandExecutor.CommandExecutor
 *   const result = yield* executor.execute(Deposit, { account: "acc-1", amount: 10 })
 *   return result.position
 * })
 * ```
 * @since 0.1.0
 */
export class CommandExecutor extends Context.Service<CommandExecutor, {
  readonly execute: <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
    command: Command.Command<I, IE, E, S, Roles, Err, R>,
    input: IE,
    options?: ExecuteOptions
  ) => Effect.Effect<ExecutionResult, Err | ExecuteError, R>
}>()("eventcore/CommandExecutor") {}

const isTransient = (e: unknown): boolean =>
  Predicate.isTagged(e, "EventStoreError") && (e as EventStoreError).transient

// Compiling a Schema decoder costs far more than running it: compile once per command.
const decoders = new WeakMap<object, (input: unknown) => Exit.Exit<unknown, Schema.SchemaError>>()
const inputDecoder = <I, IE>(
  command: { readonly input: Schema.Codec<I, IE, never, never> }
): (input: unknown) => Exit.Exit<I, Schema.SchemaError> => {
  let decoder = decoders.get(command)
  if (decoder === undefined) {
    decoder = Schema.decodeUnknownExit(command.input)
    decoders.set(command, decoder)
  }
  return decoder as (input: unknown) => Exit.Exit<I, Schema.SchemaError>
}

/**
 * `Effect.retry` with the schedule set up only once the first attempt has failed: most
 * executions succeed at once and should not pay for the schedule. The first failure is
 * replayed into the retry loop without re-running, so the schedule counts attempts exactly as
 * `Effect.retry(self, schedule)` would.
 */
const retryAfterFirstFailure = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  schedule: Schedule.Schedule<unknown, unknown>,
  retryable: (error: unknown) => boolean,
  kind: string,
  command: string,
  attempts?: () => number
): Effect.Effect<A, E, R> =>
  Effect.catchIf(self, retryable, (first) => {
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) return self
      replayed = true
      return Effect.fail(first)
    })
    // A schedule that sleeps on a TestClock nobody advances fails the test saying so.
    const what = () => `the ${kind} retry of command ${command}`
    const retried = Effect.retry(again, { schedule: TestClockGuard.guard(schedule, what), while: retryable })
    // The conflict that ends the retries says which command gave up, after how many attempts
    // (mapped here, on the failure path only: a command that succeeds at once pays nothing).
    return attempts === undefined ? retried : Effect.mapError(retried, (error) =>
      error instanceof ConcurrencyConflict
        ? new ConcurrencyConflict({ conflicts: error.conflicts, command, attempts: attempts() }) as E
        : error)
  })

/**
 * Builds an executor on the given store.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { CommandExecutor } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const executor = CommandExecutor.make({ retry: Schedule.recurs(3) }).pipe(Effect.provide(MemoryEventStore.layer))
 * ```
 * @since 0.1.0
 */
export const make = (config?: Config): Effect.Effect<CommandExecutor["Service"], never, EventStore.EventStore> =>
  Effect.map(EventStore.EventStore.useSync((store) => store), (store) => {
    // Schedules see only the errors their `while` admits, so widening their input is sound.
    const retry = (config?.retry ?? defaultRetry) as Schedule.Schedule<unknown, unknown>
    const transientRetry = config?.transientRetry as Schedule.Schedule<unknown, unknown> | undefined
    const retention = Duration.toMillis(
      Duration.fromInputUnsafe(config?.idempotencyRetention ?? defaultIdempotencyRetention)
    )
    const toResult = (command: string, outcome: Attempt.Outcome, attempts: number): ExecutionResult => ({
      command,
      events: outcome.events,
      versions: outcome.versions,
      position: outcome.events[outcome.events.length - 1]?.position,
      attempts,
      replayed: outcome.replayed
    })

    /** The result recorded under the claim's key, if there is one and it is for this request. */
    const recorded = (claim: EventStore.IdempotencyClaim) =>
      Effect.flatMap(
        store.readIdempotencyKey(claim.key, claim.notBefore),
        (record): Effect.Effect<EventStore.AppendResult | undefined, InvalidInput> =>
          record === undefined
            ? Effect.succeed(undefined)
            : record.fingerprint === claim.fingerprint
            ? Effect.succeed(record.result)
            : Effect.fail(EventStore.idempotencyKeyReused(claim.key))
      )

    const execute = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
      command: Command.Command<I, IE, E, S, Roles, Err, R>,
      rawInput: IE,
      options?: ExecuteOptions
    ): Effect.Effect<ExecutionResult, Err | ExecuteError, R> => {
      // One step takes what the execution needs from its fiber (clock, random, ambient
      // metadata, the context metrics are recorded in); one more observes how it ended.
      const execution = Effect.withFiber((fiber) => {
        const clock = fiber.getRef(Clock.Clock)
        const env: Attempt.Environment = {
          store,
          clock,
          random: fiber.getRef(Random.Random),
          context: fiber.context,
          traced: Telemetry.tracing(fiber)
        }
        const now = clock.currentTimeMillisUnsafe()
        const track: Telemetry.Execution = { command: command.name, started: now, attempts: 0 }
        const run = (): Effect.Effect<ExecutionResult, Err | ExecuteError, R> => {
          const parsed = inputDecoder(command)(rawInput)
          if (parsed._tag === "Failure") return Effect.fail(invalidInput(command.name, parsed))
          const input = parsed.value
          const executionId = EventId.generate(now, env.random)
          const ambient = Metadata.current(fiber)
          const metadata = Metadata.fromInput(Metadata.merge(ambient, options?.metadata), executionId)
          const anyInput = command as unknown as Command.Command<I, unknown, E, S, Roles, Err, R>
          const key = options?.idempotencyKey
          const claim: EventStore.IdempotencyClaim | undefined = key === undefined ? undefined : {
            key,
            fingerprint: Fingerprint.ofCommand(command.name, rawInput),
            notBefore: now - retention
          }
          const state: Attempt.Execution = { unsettled: [], idempotency: claim }
          let once = Effect.suspend(() => {
            track.attempts++
            const attempt = Attempt.run(anyInput, input, metadata, env, state)
            return env.traced ? Attempt.traced(attempt, track.attempts) : attempt
          })
          if (transientRetry !== undefined) {
            once = retryAfterFirstFailure(once, transientRetry, isTransient, "transient-failure", command.name)
          }
          const schedule = (options?.retry as Schedule.Schedule<unknown, unknown> | undefined) ?? retry
          const attempted = Effect.map(
            retryAfterFirstFailure(
              once,
              schedule,
              (error) => Predicate.isTagged(error, "ConcurrencyConflict"),
              "conflict",
              command.name,
              () => track.attempts
            ),
            (outcome) => toResult(command.name, outcome, track.attempts)
          )
          if (claim === undefined) return attempted
          // With a key: an earlier execution's result wins, checked before running (so a
          // retry is not refused on the state the first one changed) and again when this one
          // fails (the first may have committed meanwhile, from another process).
          const replayOr = <E2>(
            otherwise: Effect.Effect<ExecutionResult, E2, R>
          ): Effect.Effect<ExecutionResult, E2 | InvalidInput | EventStoreError, R> =>
            Effect.flatMap(
              recorded(claim),
              (result) =>
                result === undefined ? otherwise : Effect.succeed(toResult(command.name, result, track.attempts))
            )
          const unrecorded = (error: Err | Attempt.AttemptError) =>
            Predicate.isTagged(error, "InvalidInput") || Predicate.isTagged(error, "TransactionAlreadyWritten")
          // After a failure, a store that cannot be asked leaves the failure as it was.
          const replayOrFail = (error: Err | Attempt.AttemptError) =>
            Effect.flatMap(
              Effect.catchTag(recorded(claim), "EventStoreError", () => Effect.succeed(undefined)),
              (result) =>
                result === undefined
                  ? Effect.fail(error)
                  : Effect.succeed(toResult(command.name, result, track.attempts))
            )
          return replayOr(Effect.catchIf(attempted, (error) => !unrecorded(error), replayOrFail))
        }
        return Effect.onExit(
          Effect.suspend(run),
          (exit) =>
            Effect.sync(() => Telemetry.observeCommand(track, exit, clock.currentTimeMillisUnsafe(), fiber.context))
        )
      })
      return Effect.withSpan(execution, "CommandExecutor.execute", {
        attributes: { "eventcore.command": command.name },
        // A stack trace per command costs more than the rest of an in-memory execution.
        captureStackTrace: false
      })
    }

    return CommandExecutor.of({ execute })
  })

const invalidInput = (command: string, exit: Exit.Failure<unknown, Schema.SchemaError>): InvalidInput => {
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  return failure !== undefined
    ? InvalidInput.fromIssue(`input of command ${command}`, failure.error.issue)
    : new InvalidInput({ subject: `input of command ${command}`, path: [], issue: Cause.pretty(exit.cause) })
}

/**
 * A layer providing the executor, on whatever `EventStore` is provided to it.
 *
 * @example
 * ```ts
 * import { Layer, Schedule } from "effect"
 * import { CommandExecutor } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const Live = CommandExecutor.layer({ retry: Schedule.recurs(10) }).pipe(Layer.provide(MemoryEventStore.layer))
 * ```
 * @since 0.1.0
 */
export const layer = (config?: Config): Layer.Layer<CommandExecutor, never, EventStore.EventStore> =>
  Layer.effect(CommandExecutor, make(config))

/**
 * Executes a command through the current executor.
 *
 * @example
 * ```ts
 * import { type Command, CommandExecutor } from "eventcore"
 *
 * declare const Transfer: Command.Any // a command of your domain
 *
 * const program = CommandExecutor.execute(Transfer, { from: "acc-1", to: "acc-2", amount: 10 })
 * ```
 * @since 0.1.0
 */
export const execute = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
  command: Command.Command<I, IE, E, S, Roles, Err, R>,
  input: IE,
  options?: ExecuteOptions
): Effect.Effect<ExecutionResult, Err | ExecuteError, CommandExecutor | R> =>
  CommandExecutor.use((executor) => executor.execute(command, input, options))
