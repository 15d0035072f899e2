/**
 * The read model the shop's users query: orders by customer, revenue, units sold and stock
 * left per product. A fold over the shop's events, kept in memory by a projection runner (on
 * either store); `after(result)` answers once it has seen a command's writes.
 */
import { ReadModel } from "eventcore"
import { Order, Product, ShopEvents } from "./Shop.ts"

export interface Sales {
  /** Order ids by customer id, in the order they were placed. */
  readonly orders: ReadonlyMap<string, ReadonlyArray<{ readonly order: string; readonly total: number }>>
  readonly revenue: number
  readonly sold: ReadonlyMap<string, number>
  readonly available: ReadonlyMap<string, number>
}

const empty: Sales = { orders: new Map(), revenue: 0, sold: new Map(), available: new Map() }

export const sales = ReadModel.memory({
  name: "sales",
  events: ShopEvents,
  initial: empty,
  apply: (model, event, stored): Sales => {
    switch (event._tag) {
      case "OrderPlaced": {
        const order = Order.idOf(stored.streamId) ?? stored.streamId
        const sold = new Map(model.sold)
        for (const line of event.lines) sold.set(line.product, (sold.get(line.product) ?? 0) + line.quantity)
        const mine = model.orders.get(event.customer) ?? []
        return {
          ...model,
          orders: new Map(model.orders).set(event.customer, [...mine, { order, total: event.total }]),
          revenue: model.revenue + event.total,
          sold
        }
      }
      case "StockAdded":
      case "StockReserved": {
        const product = Product.idOf(stored.streamId) ?? stored.streamId
        const delta = event._tag === "StockAdded" ? event.quantity : -event.quantity
        return {
          ...model,
          available: new Map(model.available).set(product, (model.available.get(product) ?? 0) + delta)
        }
      }
      default:
        return model
    }
  },
  queries: {
    ordersOf: (model, customer: string) => model.orders.get(customer) ?? [],
    revenue: (model) => model.revenue,
    unitsSold: (model, product: string) => model.sold.get(product) ?? 0,
    available: (model, product: string) => model.available.get(product) ?? 0,
    orderCount: (model) => [...model.orders.values()].reduce((n, orders) => n + orders.length, 0)
  }
})
