/**
 * The process manager: reacts to `OrderPlaced` by reserving each line's stock (one command
 * per product stream), and confirms the order — or, when one product lacks stock, releases
 * what it reserved (compensation) and rejects the order.
 *
 * It is a durable projection, so it runs at least once per event: after a crash it may see
 * an order again. It skips orders already decided, every command it issues is idempotent per
 * order in the domain, and each carries an idempotency key made from the event it reacts to
 * and its step: a second run — even one interrupted halfway, even in another process —
 * replays what the first run did instead of doing it again. It runs outside any read-model
 * transaction: a command cannot append inside a transaction that has already written
 * (docs/projections.md, "Process managers"). (With dynamic consistency boundaries one command could
 * reserve all products atomically; this example shows the saga shape for when the steps
 * must be separate, e.g. products in different services.)
 */
import { Effect } from "effect"
import { CommandExecutor, Projection } from "eventcore"
import { DecideOrder, OrderEvents, orderStatus, ReleaseStock, ReserveStock } from "./Inventory.ts"

const orderOf = (streamId: string) => streamId.slice("order-".length)

export const Fulfilment = Projection.make({
  name: "order-fulfilment",
  events: OrderEvents,
  filter: { streamPrefix: "order-" },
  onFailure: Projection.retry(CommandExecutor.defaultRetry),
  handle: (event, stored) => {
    if (event._tag !== "OrderPlaced") return Effect.void
    const order = orderOf(stored.streamId)
    // Every event the saga causes names the OrderPlaced event as its cause and carries the
    // order's correlation id on, so an order's whole story can be followed through the log:
    // the runner sets that metadata around this handler, for every command it executes.
    const step = (name: string) => ({ idempotencyKey: `order-fulfilment/${stored.eventId}/${name}` })
    return Effect.gen(function*() {
      // Redelivered after the order was decided: nothing to do. (Without this check a replay
      // would re-reserve and re-release stock: the same end state, but extra events.)
      if ((yield* orderStatus(order)) !== "placed") return
      for (const line of event.lines) {
        const outcome = yield* CommandExecutor.execute(
          ReserveStock,
          { order, ...line },
          step(`reserve/${line.product}`)
        ).pipe(
          Effect.map(() => "reserved" as const),
          Effect.catchTag("BusinessRuleViolation", (violation) => Effect.succeed(violation))
        )
        if (outcome !== "reserved") {
          // compensation: release everything this order holds (idempotent), then reject
          yield* Effect.forEach(
            event.lines,
            (l) => CommandExecutor.execute(ReleaseStock, { order, product: l.product }, step(`release/${l.product}`)),
            {
              discard: true
            }
          )
          yield* CommandExecutor.execute(DecideOrder, { order, rejected: outcome.message }, step("decide"))
          return
        }
      }
      yield* CommandExecutor.execute(DecideOrder, { order }, step("decide"))
    })
  }
})
