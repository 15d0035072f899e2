/**
 * A small shop: products with prices and stock, customers with a credit limit, carts, and
 * orders. `PlaceOrder` is the interesting command: it reads the order, the cart and the
 * customer, discovers the product streams from what the cart holds (at most `maxCartLines`),
 * and in one atomic append places the order, checks the cart out and reserves stock on every
 * product. The customer is a read-only participant: the order is checked against their credit
 * limit, and a concurrent change of that limit makes the order decide again.
 */
import { Schema } from "effect"
import { Command, Event, StreamCategory, type StreamId } from "eventcore"

export const Product = StreamCategory.make("product")
export const Customer = StreamCategory.make("customer")
export const Cart = StreamCategory.make("cart")
export const Order = StreamCategory.make("order")

/** Money in cents. */
const Cents = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const Quantity = Schema.Int.check(Schema.isGreaterThan(0))

export const ProductListed = Schema.TaggedStruct("ProductListed", { name: Schema.String, price: Cents })
export const PriceChanged = Schema.TaggedStruct("PriceChanged", { price: Cents })
export const StockAdded = Schema.TaggedStruct("StockAdded", { quantity: Quantity })
export const StockReserved = Schema.TaggedStruct("StockReserved", { order: Schema.String, quantity: Quantity })
export const CustomerRegistered = Schema.TaggedStruct("CustomerRegistered", {
  name: Schema.String,
  creditLimit: Cents
})
export const CreditLimitChanged = Schema.TaggedStruct("CreditLimitChanged", { creditLimit: Cents })
export const ItemAddedToCart = Schema.TaggedStruct("ItemAddedToCart", { product: Schema.String, quantity: Quantity })
export const CartCheckedOut = Schema.TaggedStruct("CartCheckedOut", { order: Schema.String })
export const OrderLine = Schema.Struct({ product: Schema.String, quantity: Quantity, price: Cents })
export const OrderPlaced = Schema.TaggedStruct("OrderPlaced", {
  customer: Schema.String,
  lines: Schema.Array(OrderLine),
  total: Cents
})

export const ShopEvents = Event.catalog(
  ProductListed,
  PriceChanged,
  StockAdded,
  StockReserved,
  CustomerRegistered,
  CreditLimitChanged,
  ItemAddedToCart,
  CartCheckedOut,
  OrderPlaced
)
export type ShopEvent = Event.Type<typeof ShopEvents>

/** The most lines a cart may hold when it is ordered: each line is a stream to read and lock. */
export const maxCartLines = 20

// --- products -------------------------------------------------------------------------------

export interface ProductState {
  readonly listed: boolean
  readonly price: number
  readonly available: number
}
const noProduct: ProductState = { listed: false, price: 0, available: 0 }

export const evolveProduct = (product: ProductState, event: ShopEvent): ProductState => {
  switch (event._tag) {
    case "ProductListed":
      return { ...product, listed: true, price: event.price }
    case "PriceChanged":
      return { ...product, price: event.price }
    case "StockAdded":
      return { ...product, available: product.available + event.quantity }
    case "StockReserved":
      return { ...product, available: product.available - event.quantity }
    default:
      return product
  }
}

export const ListProduct = Command.make("ListProduct", {
  input: Schema.Struct({ product: Product.Id, name: Schema.NonEmptyString, price: Cents }),
  events: ShopEvents,
  streams: ({ product }) => ({ product }),
  initial: noProduct,
  apply: evolveProduct,
  decide: ({ input, state, streams, refusal }) =>
    state.listed
      ? refusal("already-listed", `${input.product} is already listed`)
      : [streams.product.append(ProductListed.make({ name: input.name, price: input.price }))]
})

export const AddStock = Command.make("AddStock", {
  input: Schema.Struct({ product: Product.Id, quantity: Quantity }),
  events: ShopEvents,
  streams: ({ product }) => ({ product }),
  initial: noProduct,
  apply: evolveProduct,
  decide: ({ input, state, streams, refusal }) =>
    state.listed
      ? [streams.product.append(StockAdded.make({ quantity: input.quantity }))]
      : refusal("unknown-product", `${input.product} is not listed`)
})

// --- customers ------------------------------------------------------------------------------

export interface CustomerState {
  readonly registered: boolean
  readonly creditLimit: number
}
const noCustomer: CustomerState = { registered: false, creditLimit: 0 }

export const evolveCustomer = (customer: CustomerState, event: ShopEvent): CustomerState => {
  switch (event._tag) {
    case "CustomerRegistered":
      return { registered: true, creditLimit: event.creditLimit }
    case "CreditLimitChanged":
      return { ...customer, creditLimit: event.creditLimit }
    default:
      return customer
  }
}

export const RegisterCustomer = Command.make("RegisterCustomer", {
  input: Schema.Struct({ customer: Customer.Id, name: Schema.NonEmptyString, creditLimit: Cents }),
  events: ShopEvents,
  streams: ({ customer }) => ({ customer }),
  initial: noCustomer,
  apply: evolveCustomer,
  decide: ({ input, state, streams, refusal }) =>
    state.registered
      ? refusal("already-registered", `${input.customer} is already registered`)
      : [streams.customer.append(CustomerRegistered.make({ name: input.name, creditLimit: input.creditLimit }))]
})

export const ChangeCreditLimit = Command.make("ChangeCreditLimit", {
  input: Schema.Struct({ customer: Customer.Id, creditLimit: Cents }),
  events: ShopEvents,
  streams: ({ customer }) => ({ customer }),
  initial: noCustomer,
  apply: evolveCustomer,
  decide: ({ input, state, streams, refusal }) =>
    state.registered
      ? [streams.customer.append(CreditLimitChanged.make({ creditLimit: input.creditLimit }))]
      : refusal("unknown-customer", `${input.customer} is not registered`)
})

// --- carts ----------------------------------------------------------------------------------

export interface CartState {
  /** Quantity by product id (the bare id, as customers name products). */
  readonly items: ReadonlyMap<string, number>
  readonly checkedOut: boolean
}
const emptyCart: CartState = { items: new Map(), checkedOut: false }

export const evolveCart = (cart: CartState, event: ShopEvent): CartState => {
  switch (event._tag) {
    case "ItemAddedToCart":
      return {
        ...cart,
        items: new Map(cart.items).set(event.product, (cart.items.get(event.product) ?? 0) + event.quantity)
      }
    case "CartCheckedOut":
      return { ...cart, checkedOut: true }
    default:
      return cart
  }
}

export const AddToCart = Command.make("AddToCart", {
  input: Schema.Struct({ cart: Cart.Id, product: Schema.NonEmptyString, quantity: Quantity }),
  events: ShopEvents,
  streams: ({ cart }) => ({ cart }),
  initial: emptyCart,
  apply: evolveCart,
  decide: ({ input, state, streams, refusal }) =>
    state.checkedOut
      ? refusal("cart-checked-out", `${input.cart} has been ordered already`)
      : [streams.cart.append(ItemAddedToCart.make({ product: input.product, quantity: input.quantity }))]
})

// --- orders ---------------------------------------------------------------------------------

interface PlaceOrderState {
  readonly placed: boolean
  readonly cart: CartState
  readonly customer: CustomerState
  /** Products the cart names, by stream id, as discovered. */
  readonly products: ReadonlyMap<StreamId.StreamId, ProductState>
}

type PlaceOrderRule =
  | "order-exists"
  | "cart-empty"
  | "cart-checked-out"
  | "cart-too-large"
  | "unknown-customer"
  | "unknown-product"
  | "out-of-stock"
  | "credit-limit"

/** The product streams a cart names, or none when it is too large to order. */
const productsOf = (cart: CartState): ReadonlyArray<StreamId.StreamId> =>
  cart.items.size > maxCartLines ? [] : [...cart.items.keys()].map((product) => Product.makeUnsafe(product))

export const PlaceOrder = Command.make<PlaceOrderState, PlaceOrderRule>()("PlaceOrder", {
  input: Schema.Struct({ order: Order.Id, cart: Cart.Id, customer: Customer.Id }),
  events: ShopEvents,
  streams: ({ cart, customer, order }) => ({ order, cart, customer }),
  initial: { placed: false, cart: emptyCart, customer: noCustomer, products: new Map() },
  apply: (state, event, role, streamId) => {
    switch (role) {
      case "order":
        return event._tag === "OrderPlaced" ? { ...state, placed: true } : state
      case "cart":
        return { ...state, cart: evolveCart(state.cart, event) }
      case "customer":
        return { ...state, customer: evolveCustomer(state.customer, event) }
      case "discovered":
        return {
          ...state,
          products: new Map(state.products).set(
            streamId,
            evolveProduct(state.products.get(streamId) ?? noProduct, event)
          )
        }
    }
  },
  // The cart says which products to read: their streams join the boundary, so their stock
  // and prices are checked and reserved in the same atomic append.
  discover: (state) => productsOf(state.cart),
  decide: ({ input, refusal, state, stream, streams }) => {
    if (state.placed) return refusal("order-exists", `${input.order} has been placed already`)
    if (state.cart.checkedOut) return refusal("cart-checked-out", `${input.cart} has been ordered already`)
    if (state.cart.items.size === 0) return refusal("cart-empty", `${input.cart} is empty`)
    if (state.cart.items.size > maxCartLines) {
      return refusal("cart-too-large", `${input.cart} has ${state.cart.items.size} lines; at most ${maxCartLines}`, {
        lines: state.cart.items.size
      })
    }
    if (!state.customer.registered) return refusal("unknown-customer", `${input.customer} is not registered`)
    const lines: Array<typeof OrderLine.Type> = []
    for (const [product, quantity] of state.cart.items) {
      const stock = state.products.get(Product.makeUnsafe(product)) ?? noProduct
      if (!stock.listed) return refusal("unknown-product", `${product} is not listed`)
      if (stock.available < quantity) {
        return refusal("out-of-stock", `${product} has ${stock.available}, the cart wants ${quantity}`, {
          product,
          available: stock.available
        })
      }
      lines.push({ product, quantity, price: stock.price })
    }
    const total = lines.reduce((sum, line) => sum + line.quantity * line.price, 0)
    if (total > state.customer.creditLimit) {
      return refusal(
        "credit-limit",
        `the order comes to ${total}, over ${input.customer}'s limit of ${state.customer.creditLimit}`,
        {
          total,
          creditLimit: state.customer.creditLimit
        }
      )
    }
    const order = Order.idOf(input.order) ?? input.order
    return [
      streams.order.append(
        OrderPlaced.make({ customer: Customer.idOf(input.customer) ?? input.customer, lines, total })
      ),
      streams.cart.append(CartCheckedOut.make({ order })),
      ...lines.map((line) =>
        stream(Product.makeUnsafe(line.product)).append(StockReserved.make({ order, quantity: line.quantity }))
      )
    ]
  }
})
