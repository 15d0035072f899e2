/**
 * The balance read model: every account's balance, folded from a subscription to the account
 * events. It keeps the position it has applied up to, so a caller can wait until it has seen
 * a given commit.
 */
import { Effect, Stream, SubscriptionRef } from "effect"
import { Position, Subscription } from "eventcore"
import { type AccountEvent, AccountEvents, balanceDelta } from "./Account.ts"

export interface Balances {
  readonly balances: ReadonlyMap<string, number>
  readonly position: Position.Position
}

export const empty: Balances = { balances: new Map(), position: Position.initial }

/** Applies one event in place: the map is owned by the read model's single fiber. */
export const apply = (
  model: Balances,
  streamId: string,
  event: AccountEvent,
  position: Position.Position
): Balances => {
  const balances = model.balances as Map<string, number>
  balances.set(streamId, (balances.get(streamId) ?? 0) + balanceDelta(event))
  return { balances, position }
}

/**
 * Starts the read model in the background over the accounts whose ids start with `prefix`;
 * returns its state and a way to wait until it has applied a position.
 */
export const start = Effect.fnUntraced(function*(prefix: string) {
  const state = yield* SubscriptionRef.make<Balances>({ balances: new Map(), position: Position.initial })
  yield* Subscription.events(AccountEvents, { from: "start", filter: { streamPrefix: prefix } }).pipe(
    Stream.runForEach(({ event, stored }) =>
      SubscriptionRef.update(state, (model) => apply(model, stored.streamId, event, stored.position))
    ),
    Effect.forkScoped
  )
  /** Completes once the model has applied everything up to `position`. */
  const awaitPosition = (position: Position.Position) =>
    SubscriptionRef.changes(state).pipe(
      Stream.filter((model) => !Position.isAfter(position, model.position)),
      Stream.take(1),
      Stream.runDrain
    )
  return { current: SubscriptionRef.get(state), awaitPosition }
})
