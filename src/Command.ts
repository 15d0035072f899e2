/**
 * Commands: the unit of decision. A command names the streams it reads (its consistency
 * boundary), folds their events into state, decides, and returns the events to append to
 * streams of that boundary. The executor appends them atomically, and only if nothing the
 * command read has changed.
 *
 * @since 0.1.0
 */
import { Effect, type Schema } from "effect"
import { BusinessRuleViolation } from "./Errors.ts"
import type * as Event from "./Event.ts"
import type { StreamId } from "./StreamId.ts"

/**
 * The role under which a discovered stream's events are folded.
 *
 * @example
 * ```ts
 * import type { Command, StreamId } from "eventcore"
 *
 * // `apply` learns the role each event was read under: a declared one, or "discovered".
 * const apply = (total: number, event: { readonly amount: number }, role: "account" | Command.Discovered, _: StreamId.StreamId) =>
 *   role === "discovered" ? total : total + event.amount
 * ```
 * @since 0.1.0
 */
export type Discovered = "discovered"

/**
 * One event to append to one stream. Made only through a `Handle`, so a write names a stream
 * the command declared.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 *
 * // A piece of a decision: a write comes from the `append` of a stream the command declared.
 * const deposit = (account: Command.Handle<typeof Deposited.Type>, amount: number): Command.Write<typeof Deposited.Type> =>
 *   account.append(Deposited.make({ amount }))
 * ```
 * @since 0.1.0
 */
export interface Write<E> {
  readonly streamId: StreamId
  readonly event: E
}

/**
 * A stream of the boundary, as `handle` sees it: the only way to produce writes.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 *
 * const Opened = Schema.TaggedStruct("Opened", {})
 *
 * // Open the account once: only while its stream is empty.
 * const openOnce = (account: Command.Handle<typeof Opened.Type>): ReadonlyArray<Command.Write<typeof Opened.Type>> =>
 *   account.version === 0 ? [account.append(Opened.make({}))] : []
 * ```
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
 * A refusal under a named business rule: a `BusinessRuleViolation` whose `rule` the type
 * system knows. A command's refusals join into a union, so a caller's `switch` over
 * `error.rule` is checked for exhaustiveness.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Command } from "eventcore"
 *
 * declare const refused: Effect.Effect<void, Command.Refusal<"insufficient-funds"> | Command.Refusal<"account-closed">>
 *
 * const explained = refused.pipe(
 *   Effect.catchTag("BusinessRuleViolation", (error) => {
 *     switch (error.rule) {
 *       case "insufficient-funds":
 *         return Effect.succeed("top up first")
 *       case "account-closed":
 *         return Effect.succeed("open another account")
 *     }
 *   })
 * )
 * ```
 * @since 0.3.0
 */
export type Refusal<Rule extends string = string> = BusinessRuleViolation & { readonly rule: Rule }

/**
 * The refusal itself, as a value: what a pure `decide` returns instead of its events.
 *
 * @example
 * ```ts
 * import { Command } from "eventcore"
 *
 * const refusal = Command.refusal("insufficient-funds", "account acc-1 holds 10, cannot send 50", { balance: 10 })
 * // refusal.rule: "insufficient-funds"
 * ```
 * @since 0.3.0
 */
export const refusal = <const Rule extends string>(
  rule: Rule,
  message: string,
  details?: Readonly<Record<string, unknown>>
): Refusal<Rule> =>
  new BusinessRuleViolation(details === undefined ? { rule, message } : { rule, message, details }) as Refusal<Rule>

/**
 * Refuses the command under `rule`: fails with a `Refusal<Rule>` (a `BusinessRuleViolation`).
 * Refusals are never retried and nothing is written.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Command } from "eventcore"
 *
 * const checkAmount = (amount: number) =>
 *   amount > 0 ? Effect.void : Command.refuse("positive-amount", `amount must be positive, got ${amount}`)
 * ```
 * @since 0.3.0
 */
export const refuse = <const Rule extends string>(
  rule: Rule,
  message: string,
  details?: Readonly<Record<string, unknown>>
): Effect.Effect<never, Refusal<Rule>> => Effect.fail(refusal(rule, message, details))

/**
 * Succeeds when `condition` holds, refuses under `rule` otherwise — EventCore's `require!`
 * for Effect: `yield* Command.require(balance >= amount, "insufficient-funds", "...")`. A
 * function as `message` is called only when the condition fails.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Command } from "eventcore"
 *
 * const withdraw = (balance: number, amount: number) =>
 *   Effect.gen(function*() {
 *     yield* Command.require(balance >= amount, "insufficient-funds", () => `holds ${balance}, cannot withdraw ${amount}`)
 *     return balance - amount
 *   })
 * ```
 * @since 0.3.0
 */
export const require = <const Rule extends string>(
  condition: boolean,
  rule: Rule,
  message: string | (() => string),
  details?: Readonly<Record<string, unknown>>
): Effect.Effect<void, Refusal<Rule>> =>
  condition ? Effect.void : refuse(rule, typeof message === "string" ? message : message(), details)

/**
 * What `handle` and `decide` receive: the parsed input, the folded state, a handle per
 * declared role, `stream(id)` for streams found by discovery (writing to a stream that was
 * never read fails with `UndeclaredStream`), and `refuse` / `require` / `refusal` checked
 * against the command's rule names when it states them (see `make`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import type { Command } from "eventcore"
 *
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 *
 * // A pure decision, written apart from its command: input, state (the balance), streams, refusal.
 * type WithdrawContext = Command.Context<{ readonly amount: number }, typeof Withdrawn.Type, number, "account", "insufficient-funds">
 *
 * const withdraw = ({ input, state, streams, refusal }: WithdrawContext) =>
 *   state < input.amount
 *     ? refusal("insufficient-funds", `balance is ${state}`)
 *     : [streams.account.append(Withdrawn.make({ amount: input.amount }))]
 * ```
 * @since 0.1.0
 */
export interface Context<I, E, S, Roles extends string, Rules extends string = string> {
  readonly input: I
  readonly state: S
  readonly streams: { readonly [K in Roles]: Handle<E> }
  readonly stream: (streamId: StreamId) => Handle<E>
  /** `Command.refuse`, restricted to the command's rule names. */
  readonly refuse: <const Rule extends Rules>(
    rule: Rule,
    message: string,
    details?: Readonly<Record<string, unknown>>
  ) => Effect.Effect<never, Refusal<Rule>>
  /** `Command.require`, restricted to the command's rule names. */
  readonly require: <const Rule extends Rules>(
    condition: boolean,
    rule: Rule,
    message: string | (() => string),
    details?: Readonly<Record<string, unknown>>
  ) => Effect.Effect<void, Refusal<Rule>>
  /** `Command.refusal`, restricted to the command's rule names: what a pure `decide` returns to refuse. */
  readonly refusal: <const Rule extends Rules>(
    rule: Rule,
    message: string,
    details?: Readonly<Record<string, unknown>>
  ) => Refusal<Rule>
}

/**
 * What every command states: its input, events, boundary and fold.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Input = Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number })
 *
 * // What Deposit shares with the account's other commands, stated once.
 * const account: Command.Common<typeof Input.Type, typeof Input.Encoded, typeof Deposited.Type, number, "account"> = {
 *   input: Input,
 *   events: Event.catalog(Deposited),
 *   streams: ({ account }) => ({ account }),
 *   initial: 0,
 *   apply: (balance, event) => balance + event.amount
 * }
 *
 * const Deposit = Command.make("Deposit", {
 *   ...account,
 *   decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
 * })
 * ```
 * @since 0.3.0
 */
export interface Common<I, IE, E extends Event.Tagged, S, Roles extends string> {
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
}

/**
 * A command that decides with an Effect: `handle` may read services, fail with typed errors,
 * and refuse with `refuse` / `require`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Input = Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number })
 *
 * const definition: Command.Handled<typeof Input.Type, typeof Input.Encoded, typeof Deposited.Type, number, "account", never, never> = {
 *   input: Input,
 *   events: Event.catalog(Deposited),
 *   streams: ({ account }) => ({ account }),
 *   initial: 0,
 *   apply: (balance, event) => balance + event.amount,
 *   handle: ({ input, streams }) => Effect.succeed([streams.account.append(Deposited.make({ amount: input.amount }))])
 * }
 * const Deposit = Command.make("Deposit", definition)
 * ```
 * @since 0.3.0
 */
export interface Handled<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R, Rules extends string = string>
  extends Common<I, IE, E, S, Roles>
{
  /** The decision: the events to append, or a typed error. */
  readonly handle: (context: Context<I, E, S, Roles, Rules>) => Effect.Effect<ReadonlyArray<Write<E>>, Err, R>
  readonly decide?: undefined
}

/**
 * A command that decides purely: `decide` returns the events to append, or a refusal
 * (`refusal(rule, message)`), and needs nothing else.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Input = Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number })
 *
 * const definition: Command.Decided<typeof Input.Type, typeof Input.Encoded, typeof Deposited.Type, number, "account", never> = {
 *   input: Input,
 *   events: Event.catalog(Deposited),
 *   streams: ({ account }) => ({ account }),
 *   initial: 0,
 *   apply: (balance, event) => balance + event.amount,
 *   decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
 * }
 * const Deposit = Command.make("Deposit", definition)
 * ```
 * @since 0.3.0
 */
export interface Decided<I, IE, E extends Event.Tagged, S, Roles extends string, Err, Rules extends string = string>
  extends Common<I, IE, E, S, Roles>
{
  /** The decision: the events to append, or the refusal. */
  readonly decide: (context: Context<I, E, S, Roles, Rules>) => ReadonlyArray<Write<E>> | Err
  readonly handle?: undefined
}

/**
 * How a command is written: `handle` (an Effect) or `decide` (a pure function).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Input = Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number })
 *
 * type Definition = Command.Definition<typeof Input.Type, typeof Input.Encoded, typeof Deposited.Type, number, "account", never, never>
 *
 * // Either way of deciding fits a `Definition`.
 * const definition: Definition = {
 *   input: Input,
 *   events: Event.catalog(Deposited),
 *   streams: ({ account }) => ({ account }),
 *   initial: 0,
 *   apply: (balance, event) => balance + event.amount,
 *   decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
 * }
 * const Deposit = Command.make("Deposit", definition)
 * ```
 * @since 0.1.0
 */
export type Definition<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R, Rules extends string = string> =
  | Handled<I, IE, E, S, Roles, Err, R, Rules>
  | Decided<I, IE, E, S, Roles, Err, Rules>

/**
 * A command, ready for `CommandExecutor.execute`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { type Command, CommandExecutor, type Event } from "eventcore"
 *
 * // Executes any command in a span named after it.
 * const executeTraced = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
 *   command: Command.Command<I, IE, E, S, Roles, Err, R>,
 *   input: IE
 * ) => CommandExecutor.execute(command, input).pipe(Effect.withSpan(`command ${command.name}`))
 * ```
 * @since 0.1.0
 */
export interface Command<I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>
  extends Common<I, IE, E, S, Roles>
{
  readonly _tag: "eventcore/Command"
  readonly name: string
  /** The decision, as an Effect (a pure `decide` is wrapped). */
  readonly handle: (context: Context<I, E, S, Roles>) => Effect.Effect<ReadonlyArray<Write<E>>, Err, R>
}

/**
 * Any command.
 *
 * @example
 * ```ts
 * import type { Command } from "eventcore"
 *
 * declare const Deposit: Command.Any // commands of your domain
 * declare const Withdraw: Command.Any
 *
 * // An endpoint's commands, by name.
 * const commands: ReadonlyMap<string, Command.Any> = new Map([Deposit, Withdraw].map((command) => [command.name, command]))
 * ```
 * @since 0.1.0
 */
// oxlint-disable-next-line typescript/no-explicit-any -- variance placeholder for heterogeneous commands
export type Any = Command<any, any, any, any, any, any, any>

/**
 * The parsed input of a command.
 *
 * @example
 * ```ts
 * import type { Command, Event } from "eventcore"
 *
 * declare const Deposit: Command.Command<
 *   { readonly account: string; readonly amount: number }, // parsed input
 *   { readonly account: string; readonly amount: string }, // encoded input
 *   Event.Tagged, number, "account", never, never
 * >
 *
 * const parsed: Command.Input<typeof Deposit> = { account: "acc-1", amount: 10 }
 * ```
 * @since 0.1.0
 */
export type Input<C> = C extends Command<infer I, infer _IE, infer _E, infer _S, infer _Roles, infer _Err, infer _R> ? I
  : never

/**
 * Defines a command: `Command.make(name, definition)`, with every type inferred, or
 * `Command.make<State, Rules>()(name, definition)` to state the state type (when `initial`
 * alone cannot say it: an empty `Map`, a union) and, optionally, the rule names its
 * refusals may use. The decision is `handle` (an Effect) or `decide` (a pure function).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Command, Event, StreamId } from "eventcore"
 *
 * const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
 * const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
 * const AccountEvents = Event.catalog(Deposited, Withdrawn)
 *
 * // Everything inferred; an effectful decision that refuses with `require`.
 * const Transfer = Command.make("Transfer", {
 *   input: Schema.Struct({ from: StreamId.StreamId, to: StreamId.StreamId, amount: Schema.Number }),
 *   events: AccountEvents,
 *   streams: ({ from, to }) => ({ from, to }),
 *   initial: { from: 0, to: 0 },
 *   apply: (state, event, role) =>
 *     role === "discovered" ? state
 *     : { ...state, [role]: state[role] + (event._tag === "Deposited" ? event.amount : -event.amount) },
 *   handle: ({ state, input, streams }) =>
 *     Effect.gen(function*() {
 *       yield* Command.require(state.from >= input.amount, "insufficient-funds", `balance is ${state.from}`)
 *       return [
 *         streams.from.append(Withdrawn.make({ amount: input.amount })),
 *         streams.to.append(Deposited.make({ amount: input.amount }))
 *       ]
 *     })
 * })
 *
 * // The state type and rule names stated; a pure decision.
 * interface Ledger {
 *   readonly seen: Map<string, number>
 * }
 * const Withdraw = Command.make<Ledger, "insufficient-funds">()("Withdraw", {
 *   input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Number }),
 *   events: AccountEvents,
 *   streams: ({ account }) => ({ account }),
 *   initial: { seen: new Map() },
 *   apply: (state, event, _role, streamId) =>
 *     ({ seen: new Map(state.seen).set(streamId, (state.seen.get(streamId) ?? 0) + (event._tag === "Deposited" ? event.amount : -event.amount)) }),
 *   decide: ({ state, input, streams, refusal }) =>
 *     (state.seen.get(input.account) ?? 0) < input.amount
 *       ? refusal("insufficient-funds", "not enough money")
 *       : [streams.account.append(Withdrawn.make({ amount: input.amount }))]
 * })
 * ```
 * @since 0.1.0
 */
export function make<S, Rules extends string = string>(): <
  I,
  IE,
  E extends Event.Tagged,
  Roles extends string,
  Err = never,
  R = never
>(
  name: string,
  definition: Definition<I, IE, E, S, Roles, Err, R, Rules>
) => Command<I, IE, E, S, Roles, Err, R>
export function make<I, IE, E extends Event.Tagged, S, Roles extends string, Err = never, R = never>(
  name: string,
  definition: Definition<I, IE, E, S, Roles, Err, R>
): Command<I, IE, E, S, Roles, Err, R>
export function make(...args: ReadonlyArray<unknown>): unknown {
  if (args.length === 0) return build
  return build(
    args[0] as string,
    args[1] as Definition<unknown, unknown, Event.Tagged, unknown, string, unknown, unknown>
  )
}

const build = <I, IE, E extends Event.Tagged, S, Roles extends string, Err, R>(
  name: string,
  definition: Definition<I, IE, E, S, Roles, Err, R>
): Command<I, IE, E, S, Roles, Err, R> => {
  const { decide, handle, ...common } = definition
  const decision = handle ?? ((context: Context<I, E, S, Roles>): Effect.Effect<ReadonlyArray<Write<E>>, Err, R> => {
    const decided = (decide as Decided<I, IE, E, S, Roles, Err>["decide"])(context)
    return Array.isArray(decided) ? Effect.succeed(decided) : Effect.fail(decided as Err)
  })
  return { ...common, _tag: "eventcore/Command", name, handle: decision }
}
