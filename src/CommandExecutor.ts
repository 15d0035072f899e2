/**
 * The command executor: parses input, reads the boundary, folds, discovers, decides, and
 * appends atomically, re-running the whole command under a retry `Schedule` when a stream it
 * read changed in between.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Duration, Effect, type Exit, Layer, Predicate, Random, Schedule, Schema } from "effect"
import type * as Command from "./Command.ts"
import type {
  ConcurrencyConflict,
  DiscoveryLimitExceeded,
  EventDecodeError,
  EventStoreError,
  UndeclaredStream
} from "./Errors.ts"
import { InvalidInput } from "./Errors.ts"
import type * as Event from "./Event.ts"
import * as EventId from "./EventId.ts"
import * as EventStore from "./EventStore.ts"
import * as Attempt from "./internal/Attempt.ts"
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
 * @since 0.1.0
 */
export interface Config {
  /** Retries after a `ConcurrencyConflict`; every retry re-reads and re-decides. */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyConflict> | undefined
  /** Opt-in retries after a transient `EventStoreError` (connection loss, …). */
  readonly transientRetry?: Schedule.Schedule<unknown, EventStoreError> | undefined
}

/**
 * Options for one execution.
 *
 * @since 0.1.0
 */
export interface ExecuteOptions {
  /** Carried into every event this execution writes. */
  readonly metadata?: Metadata.Input | undefined
  /** Overrides the executor's conflict retry policy for this execution. */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyConflict> | undefined
}

/**
 * An event the execution appended.
 *
 * @since 0.1.0
 */
export interface WrittenEvent extends EventStore.Committed {
  readonly type: string
}

/**
 * What an execution wrote.
 *
 * @since 0.1.0
 */
export interface ExecutionResult {
  readonly command: string
  readonly events: ReadonlyArray<WrittenEvent>
  /** The version of every stream of the boundary after the commit. */
  readonly versions: ReadonlyArray<{ readonly streamId: StreamId; readonly version: number }>
  /** The position of the last event written; undefined when the command wrote nothing. */
  readonly position: Position | undefined
  /** How many times the command ran (1 when no conflict was retried). */
  readonly attempts: number
}

/**
 * Everything an execution can fail with, besides the command's own errors.
 *
 * @since 0.1.0
 */
export type ExecuteError =
  | InvalidInput
  | ConcurrencyConflict
  | EventStoreError
  | EventDecodeError
  | UndeclaredStream
  | DiscoveryLimitExceeded

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

const isConflict = (e: unknown): boolean => Predicate.isTagged(e, "ConcurrencyConflict")
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
  retryable: (error: unknown) => boolean
): Effect.Effect<A, E, R> =>
  Effect.catchIf(self, retryable, (first) => {
    let replayed = false
    const again = Effect.suspend(() => {
      if (replayed) return self
      replayed = true
      return Effect.fail(first)
    })
    return Effect.retry(again, { schedule, while: retryable })
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
    const environment = Clock.clockWith((clock) =>
      Random.Random.useSync((random): Attempt.Environment => ({ store, clock, random }))
    )

    const execute = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
      command: Command.Command<I, IE, E, S, Roles, Err, R>,
      rawInput: IE,
      options?: ExecuteOptions
    ): Effect.Effect<ExecutionResult, Err | ExecuteError, R> => {
      const execution = Effect.suspend(() => {
        const parsed = inputDecoder(command)(rawInput)
        if (parsed._tag === "Failure") return Effect.fail(invalidInput(command.name, parsed))
        const input = parsed.value
        return Effect.flatMap(environment, (env) => {
          const executionId = EventId.generate(env.clock.currentTimeMillisUnsafe(), env.random)
          const metadata = Metadata.fromInput(options?.metadata, executionId)
          const anyInput = command as unknown as Command.Command<I, unknown, E, S, Roles, Err, R>
          let attempts = 0
          let once = Effect.suspend(() => {
            attempts++
            return Attempt.run(anyInput, input, metadata, env)
          })
          if (transientRetry !== undefined) once = retryAfterFirstFailure(once, transientRetry, isTransient)
          const schedule = (options?.retry as Schedule.Schedule<unknown, unknown> | undefined) ?? retry
          return Effect.map(retryAfterFirstFailure(once, schedule, isConflict), (outcome): ExecutionResult => ({
            command: command.name,
            events: outcome.events,
            versions: outcome.versions,
            position: outcome.events[outcome.events.length - 1]?.position,
            attempts
          }))
        })
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
