/**
 * Given / when / then for commands: given events already stored (per stream), when a command
 * runs with some input, then it wrote exactly these events (`thenEvents`: per stream, compared
 * by value after decoding with the command's catalog) — or it failed with this typed error and
 * wrote nothing (`thenFails`).
 *
 * A scenario is an Effect needing a `CommandExecutor` and an `EventStore`, so it runs inside
 * `it.effect` with `TestLayers.memory()` (or any other store) provided.
 *
 * @example
 * ```ts
 * import { it } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 * import type { BusinessRuleViolation, Command } from "eventcore"
 * import { Scenario, TestLayers } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 * type Input = { readonly from: string; readonly to: string; readonly amount: number }
 * type Events = typeof Deposited.Type | typeof Withdrawn.Type
 * // A command of your domain (see `Command.make`): moves money between two accounts.
 * declare const Transfer: Command.Command<Input, Input, Events, unknown, "from" | "to", BusinessRuleViolation, never>
 *
 * it.effect("transfers", () =>
 *   Scenario.make(Transfer)
 *     .given({ "acc-1": [Deposited.make({ amount: 100 })] })
 *     .when({ from: "acc-1", to: "acc-2", amount: 30 })
 *     .thenEvents({ "acc-1": [Withdrawn.make({ amount: 30 })], "acc-2": [Deposited.make({ amount: 30 })] })
 *     .pipe(Effect.provide(TestLayers.memory())))
 *
 * it.effect("refuses overdrafts", () =>
 *   Scenario.make(Transfer)
 *     .when({ from: "acc-1", to: "acc-2", amount: 30 })
 *     .thenFails("BusinessRuleViolation", (e) => e.rule === "insufficient-funds")
 *     .pipe(Effect.provide(TestLayers.memory())))
 * ```
 * @since 0.1.0
 */
import { Effect, Equal, Schema, Stream } from "effect"
import type * as Command from "../Command.ts"
import * as CommandExecutor from "../CommandExecutor.ts"
import type { EventDecodeError, EventStoreError } from "../Errors.ts"
import type * as Event from "../Event.ts"
import * as EventId from "../EventId.ts"
import * as EventStore from "../EventStore.ts"
import type * as Metadata from "../Metadata.ts"
import type { Position } from "../Position.ts"
import * as StreamId from "../StreamId.ts"

/**
 * A scenario's expectation did not hold. `expected` and `actual` are what was compared.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Scenario } from "eventcore/testing"
 *
 * // A check of your own that fails like the built-in ones.
 * const expectVersion = (actual: number, expected: number) =>
 *   actual === expected
 *     ? Effect.void
 *     : Effect.fail(new Scenario.ScenarioFailed({ message: "wrong version", expected, actual }))
 * ```
 * @since 0.1.0
 */
export class ScenarioFailed extends Schema.TaggedError<ScenarioFailed>()("ScenarioFailed", {
  message: Schema.String,
  expected: Schema.optionalKey(Schema.Unknown),
  actual: Schema.optionalKey(Schema.Unknown)
}) {}

/**
 * Events per stream id, as event values (not encoded).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 * import { Scenario } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * const history: Scenario.EventsByStream<typeof Deposited.Type> = {
 *   "account-1": [Deposited.make({ amount: 10 }), Deposited.make({ amount: 5 })],
 *   "account-2": [Deposited.make({ amount: 1 })]
 * }
 * const setup = Scenario.given(Event.catalog(Deposited), history)
 * ```
 * @since 0.1.0
 */
export type EventsByStream<E> = { readonly [streamId: string]: ReadonlyArray<E> }

/**
 * Appends events per stream, as the command's history, with correct expected versions.
 * Usable on its own to set up any test.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Event } from "eventcore"
 * import { Scenario } from "eventcore/testing"
 *
 * const AccountOpened = Schema.TaggedStruct("AccountOpened", { owner: Schema.String })
 *
 * const setup = Scenario.given(Event.catalog(AccountOpened), { "acc-1": [AccountOpened.make({ owner: "ann" })] })
 * ```
 * @since 0.1.0
 */
export const given = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  events: EventsByStream<E>,
  metadata?: Metadata.Metadata
): Effect.Effect<void, EventStore.AppendError | EventDecodeError, EventStore.EventStore> =>
  Effect.gen(function*() {
    const meta = metadata ?? { correlationId: "scenario-given", causationId: "scenario-given", custom: {} }
    for (const raw in events) {
      const list = events[raw] ?? []
      if (list.length === 0) continue
      const streamId = yield* StreamId.make(raw)
      const current = yield* EventStore.readStream(streamId)
      const toAppend: Array<EventStore.EventToAppend> = []
      for (const event of list) {
        const encoded = catalog.encode(event)
        if (encoded._tag === "Failure") return yield* encoded.failure
        toAppend.push({
          streamId,
          eventId: yield* EventId.make,
          type: encoded.success.type,
          schemaVersion: encoded.success.schemaVersion,
          payload: encoded.success.payload,
          metadata: meta
        })
      }
      yield* EventStore.append({ streams: [{ streamId, expected: current.version }], events: toAppend })
    }
  })

/** The errors a command can fail with that carry a tag. */
type TaggedErrors<Err> = Extract<Err | CommandExecutor.ExecuteError, { readonly _tag: string }>

/**
 * A scenario with its input: run it with `thenEvents` or `thenFails`. (Not `then`: an
 * object with a `then` method is a thenable, which `await` would try to resolve.)
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 * import { Scenario } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * type Input = { readonly account: string; readonly amount: number }
 * declare const Deposit: Command.Command<Input, Input, typeof Deposited.Type, number, "account", never, never>
 *
 * const negative: Scenario.When<typeof Deposited.Type, never, never> = Scenario.make(Deposit).when({ account: "acc-1", amount: -5 })
 * const refused = negative.thenFails("InvalidInput")
 * ```
 * @since 0.1.0
 */
export interface When<E extends Event.Tagged, Err, R> {
  /**
   * Runs the command and checks that it wrote exactly `expected`: per stream, the events it
   * appended, decoded with the command's catalog, equal by value and in order. Streams not
   * named must not have been written to; `{}` means the command wrote nothing.
   */
  readonly thenEvents: (
    expected: EventsByStream<E>
  ) => Effect.Effect<
    CommandExecutor.ExecutionResult,
    ScenarioFailed | Err | CommandExecutor.ExecuteError,
    CommandExecutor.CommandExecutor | EventStore.EventStore | R
  >
  /**
   * Runs the command and checks that it failed with the error tagged `tag` (and satisfying
   * `predicate`, when given) and that the store is unchanged. Succeeds with the error.
   */
  readonly thenFails: <Tag extends TaggedErrors<Err>["_tag"]>(
    tag: Tag,
    predicate?: (error: Extract<TaggedErrors<Err>, { readonly _tag: Tag }>) => boolean
  ) => Effect.Effect<
    Extract<TaggedErrors<Err>, { readonly _tag: Tag }>,
    ScenarioFailed | EventStoreError,
    CommandExecutor.CommandExecutor | EventStore.EventStore | R
  >
}

/**
 * A scenario for one command, with the history it starts from.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 * import { Scenario } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * type Input = { readonly account: string; readonly amount: number }
 * declare const Deposit: Command.Command<Input, Input, typeof Deposited.Type, number, "account", never, never>
 *
 * // A history shared by several tests.
 * const funded: Scenario.Scenario<Input, Input, typeof Deposited.Type, number, "account", never, never> = Scenario.make(Deposit)
 *   .given({ "acc-1": [Deposited.make({ amount: 10 })] })
 * const deposits = funded.when({ account: "acc-1", amount: 5 }).thenEvents({ "acc-1": [Deposited.make({ amount: 5 })] })
 * ```
 * @since 0.1.0
 */
export interface Scenario<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R> {
  readonly command: Command.Command<I, IE, E, S, Roles, Err, R>
  readonly history: ReadonlyArray<EventsByStream<E>>
  /** Adds events to the history (appended in order, streams in key order). */
  readonly given: (events: EventsByStream<E>) => Scenario<I, IE, E, S, Roles, Err, R>
  /** The command's input (before parsing) and, optionally, execution options. */
  readonly when: (input: IE, options?: CommandExecutor.ExecuteOptions) => When<E, Err, R>
}

const describe = (value: unknown): string => {
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}

const writtenSince = <E extends Event.Tagged>(
  catalog: Event.Catalog<E>,
  after: Position
): Effect.Effect<Map<string, Array<E>>, EventStore.ReadError, EventStore.EventStore> =>
  Effect.gen(function*() {
    const byStream = new Map<string, Array<E>>()
    const events = yield* Stream.runCollect(EventStore.readAll({ after }))
    for (const stored of events) {
      const decoded = catalog.decode(stored)
      if (decoded._tag === "Failure") return yield* decoded.failure
      const list = byStream.get(stored.streamId)
      if (list === undefined) byStream.set(stored.streamId, [decoded.success])
      else list.push(decoded.success)
    }
    return byStream
  })

const headOf = EventStore.EventStore.use((store) => store.head)

/**
 * Starts a scenario for a command.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 * import { Scenario } from "eventcore/testing"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * type Input = { readonly account: string; readonly amount: number }
 * declare const Deposit: Command.Command<Input, Input, typeof Deposited.Type, number, "account", never, never>
 *
 * const deposits = Scenario.make(Deposit)
 *   .given({ "acc-1": [Deposited.make({ amount: 10 })] })
 *   .when({ account: "acc-1", amount: 5 })
 *   .thenEvents({ "acc-1": [Deposited.make({ amount: 5 })] })
 * ```
 * @since 0.1.0
 */
export const make = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
  command: Command.Command<I, IE, E, S, Roles, Err, R>
): Scenario<I, IE, E, S, Roles, Err, R> => build(command, [])

const build = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
  command: Command.Command<I, IE, E, S, Roles, Err, R>,
  history: ReadonlyArray<EventsByStream<E>>
): Scenario<I, IE, E, S, Roles, Err, R> => {
  const setup = Effect.forEach(history, (events) => given(command.events, events), { discard: true }).pipe(
    Effect.mapError((error) =>
      new ScenarioFailed({ message: `Scenario ${command.name}: setting up the given events failed: ${error.message}` })
    )
  )
  return {
    command,
    history,
    given: (events) => build(command, [...history, events]),
    when: (input, options) => ({
      thenEvents: (expected) =>
        Effect.gen(function*() {
          yield* setup
          const before = yield* headOf
          const result = yield* CommandExecutor.execute(command, input, options)
          const written = yield* writtenSince(command.events, before)
          const expectedIds = new Set<string>()
          for (const raw in expected) {
            const streamId = yield* StreamId.make(raw)
            expectedIds.add(streamId)
            const want = expected[raw] ?? []
            const got = written.get(streamId) ?? []
            if (!Equal.equals(want, got)) {
              return yield* new ScenarioFailed({
                message: `Scenario ${command.name}: stream ${JSON.stringify(streamId)}: expected ${
                  describe(want)
                }, got ${describe(got)}`,
                expected: want,
                actual: got
              })
            }
          }
          for (const [streamId, got] of written) {
            if (!expectedIds.has(streamId)) {
              return yield* new ScenarioFailed({
                message: `Scenario ${command.name}: unexpected events in stream ${JSON.stringify(streamId)}: ${
                  describe(got)
                }`,
                actual: got
              })
            }
          }
          return result
        }),
      thenFails: (tag, predicate) =>
        Effect.gen(function*() {
          yield* setup
          const before = yield* headOf
          const outcome = yield* Effect.result(CommandExecutor.execute(command, input, options))
          const after = yield* headOf
          if (outcome._tag === "Success") {
            return yield* new ScenarioFailed({
              message: `Scenario ${command.name}: expected failure ${tag}, but the command succeeded writing ${
                describe(outcome.success.events.map((e) => e.type))
              }`,
              expected: tag
            })
          }
          const error: unknown = outcome.failure
          const actualTag = typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined
          if (actualTag !== tag) {
            return yield* new ScenarioFailed({
              message: `Scenario ${command.name}: expected failure ${tag}, got ${String(actualTag)}: ${
                error instanceof Error ? error.message : describe(error)
              }`,
              expected: tag,
              actual: error
            })
          }
          const typed = error as Extract<TaggedErrors<Err>, { readonly _tag: typeof tag }>
          if (predicate !== undefined && !predicate(typed)) {
            return yield* new ScenarioFailed({
              message: `Scenario ${command.name}: failure ${tag} did not satisfy the predicate: ${
                error instanceof Error ? error.message : describe(error)
              }`,
              actual: error
            })
          }
          if (after !== before) {
            return yield* new ScenarioFailed({
              message: `Scenario ${command.name}: failed with ${tag} but the store changed (head ${before} -> ${after})`
            })
          }
          return typed
        })
    })
  }
}
