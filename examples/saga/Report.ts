/**
 * Reads the saga's outcome back from the streams: each order's status, each product's stock.
 */
import { Effect } from "effect"
import { EventStore } from "eventcore"
import {
  emptyProduct,
  evolveProduct,
  OrderEvents,
  type OrderStatus,
  orderStream,
  ProductEvents,
  productStream
} from "./Inventory.ts"

export interface Report {
  readonly orders: ReadonlyMap<string, { readonly status: OrderStatus; readonly reason?: string }>
  readonly products: ReadonlyMap<
    string,
    { readonly available: number; readonly reserved: number; readonly events: number }
  >
}

export const read = (orders: ReadonlyArray<string>, products: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const result: {
      orders: Map<string, { status: OrderStatus; reason?: string }>
      products: Map<string, { available: number; reserved: number; events: number }>
    } = { orders: new Map(), products: new Map() }
    for (const order of orders) {
      const read = yield* EventStore.readStream(orderStream(order))
      let entry: { status: OrderStatus; reason?: string } = { status: "none" }
      for (const stored of read.events) {
        const decoded = OrderEvents.decode(stored)
        if (decoded._tag === "Failure") return yield* decoded.failure
        const event = decoded.success
        entry = event._tag === "OrderPlaced"
          ? { status: "placed" }
          : event._tag === "OrderConfirmed"
          ? { status: "confirmed" }
          : { status: "rejected", reason: event.reason }
      }
      result.orders.set(order, entry)
    }
    for (const product of products) {
      const read = yield* EventStore.readStream(productStream(product))
      let state = emptyProduct
      for (const stored of read.events) {
        const decoded = ProductEvents.decode(stored)
        if (decoded._tag === "Failure") return yield* decoded.failure
        state = evolveProduct(state, decoded.success)
      }
      const reserved = [...state.reservations.values()].reduce((a, b) => a + b, 0)
      result.products.set(product, { available: state.available, reserved, events: read.events.length })
    }
    return result as Report
  })

export const format = (report: Report): string =>
  [
    "EventCore saga example: order fulfilment with compensation",
    ...[...report.orders].map(([order, o]) =>
      `  order ${order}: ${o.status}${o.reason === undefined ? "" : ` (${o.reason})`}`
    ),
    ...[...report.products].map(([product, p]) =>
      `  product ${product}: ${p.available} available, ${p.reserved} reserved`
    )
  ].join("\n")
