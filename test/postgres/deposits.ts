/**
 * A one-stream deposit command on account streams, shared by the PostgreSQL tests of read
 * models that rebuild (blue/green, rebuilds asked from outside).
 */
import { Schema } from "effect"
import { Command, Event, StreamCategory } from "eventcore"

export const Account = StreamCategory.make("account")
export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
export const Events = Event.catalog(Deposited)

export const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})
