/**
 * Commands: the unit of decision. A command names the streams it reads (its consistency
 * boundary), folds their events into state, decides, and returns the events to append to
 * streams of that boundary. The executor appends them atomically, and only if nothing the
 * command read has changed.
 *
 * @since 0.1.0
 */
import type { Effect, Schema } from "effect"
import type * as Event from "./Event.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * The role under which a discovered stream's events are folded.
 *
 * @since 0.1.0
 */
export type Discovered = "discovered"

/**
 * One event to append to one stream. Made only through a `Handle`, so a write names a stream
 * the command declared.
 *
 * @since 0.1.0
 */
export interface Write<E> {
  readonly streamId: StreamId
  readonly event: E
}

/**
 * A stream of the boundary, as `handle` sees it: the only way to produce writes.
 *
 * @since 0.1.0
 */
export interface Handle<E> {
  readonly streamId: StreamId
  /** The stream's version when the command read it. */
  readonly version: number
  /** One event to append to this stream. */
  readonly append: (event: E) => Write<E>
}

/**
 * What `handle` receives: the parsed input, the folded state, a handle per declared role,
 * and `stream(id)` for streams found by discovery (writing to a stream that was never read
 * fails with `UndeclaredStream`).
 *
 * @since 0.1.0
 */
export interface Context<I, E, S, Roles extends string> {
  readonly input: I
  readonly state: S
  readonly streams: { readonly [K in Roles]: Handle<E> }
  readonly stream: (streamId: StreamId) => Handle<E>
}

/**
 * How a command is written.
 *
 * @since 0.1.0
 */
export interface Definition<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R> {
  /** Parsed before anything runs; bad input fails with `InvalidInput`. */
  readonly input: Schema.Codec<I, IE, never, never>
  /** The event types this command reads and writes. */
  readonly events: Event.Catalog<E>
  /** The consistency boundary, by role. */
  readonly streams: (input: I) => { readonly [K in Roles]: StreamId }
  readonly initial: S
  /** Pure fold of one event (from the stream of `streamId`, read under `role`) into state. */
  readonly apply: (state: S, event: E, role: Roles | Discovered, streamId: StreamId) => S
  /**
   * Streams to add to the boundary once the state so far is known. Called after every round
   * of reads until it names no new stream; each stream is read once per attempt.
   */
  readonly discover?: (state: S, input: I) => Iterable<StreamId>
  /** The most rounds of discovery before `DiscoveryLimitExceeded` (default 10). */
  readonly discoveryLimit?: number
  /** The decision: the events to append, or a typed error. */
  readonly handle: (context: Context<I, E, S, Roles>) => Effect.Effect<ReadonlyArray<Write<E>>, Err, R>
}

/**
 * A command, ready for `CommandExecutor.execute`.
 *
 * @since 0.1.0
 */
export interface Command<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>
  extends Definition<I, IE, E, S, Roles, Err, R>
{
  readonly _tag: "eventcore/Command"
  readonly name: string
}

/**
 * Any command.
 *
 * @since 0.1.0
 */
// oxlint-disable-next-line typescript/no-explicit-any -- variance placeholder for heterogeneous commands
export type Any = Command<any, any, any, any, any, any, any>

/**
 * The parsed input of a command.
 *
 * @since 0.1.0
 */
export type Input<C> = C extends Command<infer I, infer _IE, infer _E, infer _S, infer _Roles, infer _Err, infer _R> ? I
  : never

/**
 * Defines a command.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { BusinessRuleViolation, Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 * const AccountEvents = Event.catalog(Deposited, Withdrawn)
 *
 * const Transfer = Command.make("Transfer", {
 *   input: Schema.Struct({ from: StreamId.StreamId, to: StreamId.StreamId, amount: Schema.Number }),
 *   events: AccountEvents,
 *   streams: ({ from, to }) => ({ from, to }),
 *   initial: { from: 0, to: 0 },
 *   apply: (state, event, role) =>
 *     role === "discovered" ? state
 *     : { ...state, [role]: state[role] + (event._tag === "Deposited" ? event.amount : -event.amount) },
 *   handle: ({ state, input, streams }) =>
 *     state.from < input.amount
 *       ? Effect.fail(new BusinessRuleViolation({ rule: "insufficient-funds", message: "not enough money" }))
 *       : Effect.succeed([
 *         streams.from.append(Withdrawn.make({ amount: input.amount })),
 *         streams.to.append(Deposited.make({ amount: input.amount }))
 *       ])
 * })
 * ```
 * @since 0.1.0
 */
export const make = <I, IE, E extends Event.Tagged, S, Roles extends string, Err = never, R = never>(
  name: string,
  definition: Definition<I, IE, E, S, Roles, Err, R>
): Command<I, IE, E, S, Roles, Err, R> => ({ ...definition, _tag: "eventcore/Command", name })
