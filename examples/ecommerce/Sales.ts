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
  apply: (sales, event, stored): Sales => {
    switch (event._tag) {
      case "OrderPlaced": {
        const order = Order.idOf(stored.streamId) ?? stored.streamId
        const sold = new Map(sales.sold)
        for (const line of event.lines) sold.set(line.product, (sold.get(line.product) ?? 0) + line.quantity)
        const mine = sales.orders.get(event.customer) ?? []
        return {
          ...sales,
          orders: new Map(sales.orders).set(event.customer, [...mine, { order, total: event.total }]),
          revenue: sales.revenue + event.total,
          sold
        }
      }
      case "StockAdded":
      case "StockReserved": {
        const product = Product.idOf(stored.streamId) ?? stored.streamId
        const delta = event._tag === "StockAdded" ? event.quantity : -event.quantity
        return {
          ...sales,
          available: new Map(sales.available).set(product, (sales.available.get(product) ?? 0) + delta)
        }
      }
      default:
        return sales
    }
  },
  queries: {
    ordersOf: (sales, customer: string) => sales.orders.get(customer) ?? [],
    revenue: (sales) => sales.revenue,
    unitsSold: (sales, product: string) => sales.sold.get(product) ?? 0,
    available: (sales, product: string) => sales.available.get(product) ?? 0,
    orderCount: (sales) => [...sales.orders.values()].reduce((n, orders) => n + orders.length, 0)
  }
})
