/**
 * The saga example's domain: products hold stock, orders ask for several products. Every
 * command is idempotent (keyed by the order id), so a process manager that runs at least
 * once — and may run twice after a crash — never reserves or releases twice.
 */
import { Effect, Schema } from "effect"
import { BusinessRuleViolation, Command, Event, EventStore, StreamId } from "eventcore"

const Quantity = Schema.Int.check(Schema.isGreaterThan(0))

export const StockAdded = Schema.TaggedStruct("StockAdded", { quantity: Quantity })
export const StockReserved = Schema.TaggedStruct("StockReserved", { order: Schema.String, quantity: Quantity })
export const ReservationReleased = Schema.TaggedStruct("ReservationReleased", {
  order: Schema.String,
  quantity: Quantity
})
export const ProductEvents = Event.catalog(StockAdded, StockReserved, ReservationReleased)
export type ProductEvent = Event.Type<typeof ProductEvents>

export const Line = Schema.Struct({ product: Schema.String, quantity: Quantity })
export const OrderPlaced = Schema.TaggedStruct("OrderPlaced", { lines: Schema.Array(Line) })
export const OrderConfirmed = Schema.TaggedStruct("OrderConfirmed", {})
export const OrderRejected = Schema.TaggedStruct("OrderRejected", { reason: Schema.String })
export const OrderEvents = Event.catalog(OrderPlaced, OrderConfirmed, OrderRejected)
export type OrderEvent = Event.Type<typeof OrderEvents>

export const productStream = (product: string) => StreamId.makeUnsafe(`product-${product}`)
export const orderStream = (order: string) => StreamId.makeUnsafe(`order-${order}`)

export interface Product {
  readonly available: number
  /** Active reservations by order. */
  readonly reservations: ReadonlyMap<string, number>
}

export const emptyProduct: Product = { available: 0, reservations: new Map() }

export const evolveProduct = (product: Product, event: ProductEvent): Product => {
  switch (event._tag) {
    case "StockAdded":
      return { ...product, available: product.available + event.quantity }
    case "StockReserved":
      return {
        available: product.available - event.quantity,
        reservations: new Map(product.reservations).set(event.order, event.quantity)
      }
    case "ReservationReleased": {
      const reservations = new Map(product.reservations)
      reservations.delete(event.order)
      return { available: product.available + event.quantity, reservations }
    }
  }
}

export type OrderStatus = "none" | "placed" | "confirmed" | "rejected"

export const AddStock = Command.make("AddStock", {
  input: Schema.Struct({ product: Schema.String, quantity: Quantity }),
  events: ProductEvents,
  streams: ({ product }) => ({ product: productStream(product) }),
  initial: emptyProduct,
  apply: evolveProduct,
  handle: ({ input, streams }) =>
    Effect.succeed([streams.product.append(StockAdded.make({ quantity: input.quantity }))])
})

/** Reserves stock for an order; a no-op when this order already holds a reservation. */
export const ReserveStock = Command.make("ReserveStock", {
  input: Schema.Struct({ order: Schema.String, product: Schema.String, quantity: Quantity }),
  events: ProductEvents,
  streams: ({ product }) => ({ product: productStream(product) }),
  initial: emptyProduct,
  apply: evolveProduct,
  handle: ({ input, state, streams }) =>
    state.reservations.has(input.order)
      ? Effect.succeed([])
      : state.available < input.quantity
      ? Effect.fail(
        new BusinessRuleViolation({
          rule: "insufficient-stock",
          message: `product ${input.product} has ${state.available}, order ${input.order} needs ${input.quantity}`,
          details: { product: input.product, available: state.available, requested: input.quantity }
        })
      )
      : Effect.succeed([streams.product.append(StockReserved.make({ order: input.order, quantity: input.quantity }))])
})

/** Releases an order's reservation (compensation); a no-op when it holds none. */
export const ReleaseStock = Command.make("ReleaseStock", {
  input: Schema.Struct({ order: Schema.String, product: Schema.String }),
  events: ProductEvents,
  streams: ({ product }) => ({ product: productStream(product) }),
  initial: emptyProduct,
  apply: evolveProduct,
  handle: ({ input, state, streams }) => {
    const quantity = state.reservations.get(input.order)
    return Effect.succeed(
      quantity === undefined ? [] : [streams.product.append(ReservationReleased.make({ order: input.order, quantity }))]
    )
  }
})

const evolveOrder = (_status: OrderStatus, event: OrderEvent): OrderStatus =>
  event._tag === "OrderPlaced" ? "placed" : event._tag === "OrderConfirmed" ? "confirmed" : "rejected"

export const PlaceOrder = Command.make("PlaceOrder", {
  input: Schema.Struct({ order: Schema.String, lines: Schema.Array(Line) }),
  events: OrderEvents,
  streams: ({ order }) => ({ order: orderStream(order) }),
  initial: "none" as OrderStatus,
  apply: evolveOrder,
  handle: ({ input, state, streams }) =>
    state !== "none"
      ? Effect.fail(new BusinessRuleViolation({ rule: "order-exists", message: `order ${input.order} exists` }))
      : Effect.succeed([streams.order.append(OrderPlaced.make({ lines: input.lines }))])
})

/** Records the saga's outcome once; later attempts (redeliveries) write nothing. */
export const DecideOrder = Command.make("DecideOrder", {
  input: Schema.Struct({ order: Schema.String, rejected: Schema.optionalKey(Schema.String) }),
  events: OrderEvents,
  streams: ({ order }) => ({ order: orderStream(order) }),
  initial: "none" as OrderStatus,
  apply: evolveOrder,
  handle: ({ input, state, streams }) =>
    Effect.succeed(
      state !== "placed"
        ? []
        : [
          input.rejected === undefined
            ? streams.order.append(OrderConfirmed.make({}))
            : streams.order.append(OrderRejected.make({ reason: input.rejected }))
        ]
    )
})

/** An order's current status, read from its stream. */
export const orderStatus = (order: string) =>
  Effect.flatMap(EventStore.readStream(orderStream(order)), (read) => {
    let status: OrderStatus = "none"
    for (const stored of read.events) {
      const decoded = OrderEvents.decode(stored)
      if (decoded._tag === "Failure") return Effect.fail(decoded.failure)
      status = evolveOrder(status, decoded.success)
    }
    return Effect.succeed(status)
  })
