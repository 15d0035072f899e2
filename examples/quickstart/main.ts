// The README's example, kept here so the type check and a test keep it true.
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { Command, CommandExecutor, Event, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"

// Events are tagged Schemas; a catalog is the set a command reads and writes.
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
const AccountEvents = Event.catalog(Deposited, Withdrawn)

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Int }),
  events: AccountEvents,
  streams: ({ account }) => ({ account }),
  initial: null,
  apply: (state) => state, // a deposit needs no state to decide
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))] // pure
})

const Transfer = Command.make("Transfer", {
  input: Schema.Struct({ from: StreamId.StreamId, to: StreamId.StreamId, amount: Schema.Int }),
  events: AccountEvents,
  streams: ({ from, to }) => ({ from, to }), // the consistency boundary, by role
  initial: { from: 0, to: 0 },
  apply: (state, event, role) =>
    // a pure fold; role says which stream it came from
    role === "discovered" ?
      state
      : { ...state, [role]: state[role] + (event._tag === "Deposited" ? event.amount : -event.amount) },
  handle: ({ state, input, streams }) =>
    Effect.gen(function*() {
      // a refusal under a named rule: callers can switch over error.rule
      yield* Command.require(state.from >= input.amount, "insufficient-funds", `balance is ${state.from}`)
      return [
        streams.from.append(Withdrawn.make({ amount: input.amount })), // only declared streams have handles
        streams.to.append(Deposited.make({ amount: input.amount }))
      ]
    })
})

const program = Effect.gen(function*() {
  yield* CommandExecutor.execute(Deposit, { account: "alice", amount: 100 })
  const moved = yield* CommandExecutor.execute(Transfer, { from: "alice", to: "bob", amount: 30 })
  const versions = moved.versions.map(({ streamId, version }) => `${streamId} at version ${version}`)
  yield* Effect.log(`transferred 30: ${moved.events.length} events written, ${versions.join(", ")}`)
  yield* CommandExecutor.execute(Transfer, { from: "alice", to: "bob", amount: 500 }).pipe(
    Effect.catchTag("BusinessRuleViolation", (e) => Effect.log(`refused: ${e.message}`))
  )
})

program.pipe(
  Effect.provide(CommandExecutor.layer().pipe(Layer.provide(MemoryEventStore.layer))),
  NodeRuntime.runMain
)
