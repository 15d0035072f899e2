/**
 * The banking domain: accounts as streams, money moved by commands whose consistency boundary
 * is exactly the accounts they touch.
 */
import { Effect, Schema } from "effect"
import { BusinessRuleViolation, Command, Event, StreamId } from "eventcore"

/** Amounts are whole cents, always positive. */
export const Money = Schema.Int.check(Schema.isGreaterThan(0))

export const AccountOpened = Schema.TaggedStruct("AccountOpened", { owner: Schema.String })
export const MoneyDeposited = Schema.TaggedStruct("MoneyDeposited", { amount: Money })
export const MoneyWithdrawn = Schema.TaggedStruct("MoneyWithdrawn", { amount: Money })
export const TransferSent = Schema.TaggedStruct("TransferSent", { to: Schema.String, amount: Money })
export const TransferReceived = Schema.TaggedStruct("TransferReceived", { from: Schema.String, amount: Money })

export const AccountEvents = Event.catalog(
  AccountOpened,
  MoneyDeposited,
  MoneyWithdrawn,
  TransferSent,
  TransferReceived
)
export type AccountEvent = Event.Type<typeof AccountEvents>

/** What a command needs to know about one account. */
export interface Account {
  readonly open: boolean
  readonly balance: number
}

export const closed: Account = { open: false, balance: 0 }

/** How much an event moves its account's balance. */
export const balanceDelta = (event: AccountEvent): number => {
  switch (event._tag) {
    case "AccountOpened":
      return 0
    case "MoneyDeposited":
    case "TransferReceived":
      return event.amount
    case "MoneyWithdrawn":
    case "TransferSent":
      return -event.amount
  }
}

/** The pure fold of one account's history. */
export const evolve = (account: Account, event: AccountEvent): Account =>
  event._tag === "AccountOpened"
    ? { open: true, balance: account.balance }
    : { ...account, balance: account.balance + balanceDelta(event) }

const mustBeOpen = (account: Account, id: StreamId.StreamId) =>
  account.open
    ? Effect.void
    : Effect.fail(
      new BusinessRuleViolation({
        rule: "account-not-open",
        message: `account ${id} is not open`,
        details: { account: id }
      })
    )

const mustCover = (account: Account, id: StreamId.StreamId, amount: number) =>
  account.balance >= amount
    ? Effect.void
    : Effect.fail(
      new BusinessRuleViolation({
        rule: "insufficient-funds",
        message: `account ${id} holds ${account.balance}, cannot pay ${amount}`,
        details: { account: id, balance: account.balance, amount }
      })
    )

export const OpenAccount = Command.make("OpenAccount", {
  input: Schema.Struct({ account: StreamId.StreamId, owner: Schema.NonEmptyString }),
  events: AccountEvents,
  streams: ({ account }) => ({ account }),
  initial: closed,
  apply: (state, event) => evolve(state, event),
  handle: ({ input, state, streams }) =>
    state.open
      ? Effect.fail(
        new BusinessRuleViolation({
          rule: "account-already-open",
          message: `account ${input.account} is already open`,
          details: { account: input.account }
        })
      )
      : Effect.succeed([streams.account.append(AccountOpened.make({ owner: input.owner }))])
})

export const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Money }),
  events: AccountEvents,
  streams: ({ account }) => ({ account }),
  initial: closed,
  apply: (state, event) => evolve(state, event),
  handle: ({ input, state, streams }) =>
    Effect.as(
      mustBeOpen(state, input.account),
      [streams.account.append(MoneyDeposited.make({ amount: input.amount }))]
    )
})

export const Withdraw = Command.make("Withdraw", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Money }),
  events: AccountEvents,
  streams: ({ account }) => ({ account }),
  initial: closed,
  apply: (state, event) => evolve(state, event),
  handle: ({ input, state, streams }) =>
    mustBeOpen(state, input.account).pipe(
      Effect.andThen(mustCover(state, input.account, input.amount)),
      Effect.as([streams.account.append(MoneyWithdrawn.make({ amount: input.amount }))])
    )
})

export const Transfer = Command.make("Transfer", {
  input: Schema.Struct({ from: StreamId.StreamId, to: StreamId.StreamId, amount: Money }),
  events: AccountEvents,
  streams: ({ from, to }) => ({ from, to }),
  initial: { from: closed, to: closed },
  apply: (state, event, role) =>
    role === "from" ? { ...state, from: evolve(state.from, event) } : { ...state, to: evolve(state.to, event) },
  handle: ({ input, state, streams }) =>
    input.from === input.to
      ? Effect.fail(
        new BusinessRuleViolation({
          rule: "same-account",
          message: `cannot transfer from account ${input.from} to itself`,
          details: { account: input.from }
        })
      )
      : mustBeOpen(state.from, input.from).pipe(
        Effect.andThen(mustBeOpen(state.to, input.to)),
        Effect.andThen(mustCover(state.from, input.from, input.amount)),
        Effect.as([
          streams.from.append(TransferSent.make({ to: input.to, amount: input.amount })),
          streams.to.append(TransferReceived.make({ from: input.from, amount: input.amount }))
        ])
      )
})
