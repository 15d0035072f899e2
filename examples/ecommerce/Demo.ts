/**
 * The shop at work: a catalog, customers, carts, and forty customers ordering the last ten
 * truffles at the same moment. Returns what happened and what the read model says, for
 * main.ts to print and check.
 */
import { Console, Effect, Result, Schedule } from "effect"
import { CommandExecutor } from "eventcore"
import * as Sales from "./Sales.ts"
import { AddStock, AddToCart, ListProduct, maxCartLines, PlaceOrder, RegisterCustomer } from "./Shop.ts"

export interface Report {
  readonly placed: number
  readonly refused: Readonly<Record<string, number>>
  readonly retried: number
  readonly trufflesLeft: number
  readonly trufflesSold: number
  readonly applesSold: number
  readonly revenue: number
  readonly revenueFromResults: number
}

const customers = 40

/**
 * Forty orders race for the same products: an order conflicts only when another one committed,
 * and at most ten can (ten truffles), so eleven attempts always suffice. The default schedule
 * (five attempts) is for streams that are rarely contended; this one says that ours are.
 */
const contended = Schedule.exponential("5 millis").pipe(
  Schedule.jittered,
  (delays) => Schedule.max([delays, Schedule.recurs(20)])
)

/** Runs the demo with every id under `prefix`, so runs on a persistent store do not meet. */
export const run = (prefix: string) =>
  Effect.gen(function*() {
    const id = (name: string) => `${prefix}${name}`
    const model = yield* Sales.sales

    for (const [name, price, stock] of [["apple", 120, 50], ["pear", 90, 30], ["truffle", 5_000, 10]] as const) {
      yield* CommandExecutor.execute(ListProduct, { product: id(name), name, price })
      yield* CommandExecutor.execute(AddStock, { product: id(name), quantity: stock })
    }
    yield* Effect.forEach(
      Array.from({ length: customers }, (_, n) => n),
      (n) =>
        CommandExecutor.execute(RegisterCustomer, {
          customer: id(`c${n}`),
          name: `customer ${n}`,
          creditLimit: 20_000
        }),
      {
        concurrency: 8,
        discard: true
      }
    )
    yield* CommandExecutor.execute(RegisterCustomer, { customer: id("frugal"), name: "frugal", creditLimit: 1_000 })

    const refused: Record<string, number> = {}
    let placed = 0
    let retried = 0
    let last: CommandExecutor.ExecutionResult | undefined
    const order = (customer: string, cart: string, orderId: string) =>
      Effect.gen(function*() {
        const result = yield* Effect.result(
          CommandExecutor.execute(PlaceOrder, { order: orderId, cart, customer }, { retry: contended })
        )
        if (Result.isSuccess(result)) {
          placed++
          retried += result.success.attempts - 1
          last = result.success
          return
        }
        const error = result.failure
        if (error._tag !== "BusinessRuleViolation") return yield* error
        refused[error.rule] = (refused[error.rule] ?? 0) + 1
      })

    // Forty customers, one truffle and two apples each, all at once: ten truffles to go round.
    yield* Effect.forEach(Array.from({ length: customers }, (_, n) => n), (n) =>
      Effect.gen(function*() {
        yield* CommandExecutor.execute(AddToCart, { cart: id(`cart-${n}`), product: id("truffle"), quantity: 1 })
        yield* CommandExecutor.execute(AddToCart, { cart: id(`cart-${n}`), product: id("apple"), quantity: 2 })
        yield* order(id(`c${n}`), id(`cart-${n}`), id(`o-${n}`))
      }), { concurrency: "unbounded", discard: true })

    // Over the credit limit: 20 pears at 90 come to 1,800.
    yield* CommandExecutor.execute(AddToCart, { cart: id("cart-frugal"), product: id("pear"), quantity: 20 })
    yield* order(id("frugal"), id("cart-frugal"), id("o-frugal"))

    // A cart too large to order: each line is a stream the order would read and lock.
    for (let line = 0; line <= maxCartLines; line++) {
      yield* CommandExecutor.execute(AddToCart, { cart: id("cart-huge"), product: id(`item-${line}`), quantity: 1 })
    }
    yield* order(id("c0"), id("cart-huge"), id("o-huge"))

    // Read-your-writes: the read model has applied the last order before it answers.
    const sales = model.after(last)
    const report: Report = {
      placed,
      refused,
      retried,
      trufflesLeft: yield* sales.available(id("truffle")),
      trufflesSold: yield* sales.unitsSold(id("truffle")),
      applesSold: yield* sales.unitsSold(id("apple")),
      revenue: yield* sales.revenue(),
      // every placed order is one truffle and two apples
      revenueFromResults: placed * (5_000 + 2 * 120)
    }
    return report
  })

export const print = (report: Report, store: string) =>
  Console.log([
    `EventCore shop on the ${store} store`,
    `  orders placed:        ${report.placed} (conflicts retried: ${report.retried})`,
    `  orders refused:       ${
      Object.entries(report.refused).toSorted().map(([rule, n]) => `${rule} ${n}`).join(", ")
    }`,
    `  truffles sold / left: ${report.trufflesSold} / ${report.trufflesLeft}`,
    `  apples sold:          ${report.applesSold}`,
    `  revenue (read model): ${report.revenue}`
  ].join("\n"))

/** What must hold whatever the interleaving: nothing oversold, the read model agrees. */
export const check = (report: Report) => {
  const problems: Array<string> = []
  if (report.trufflesSold !== 10 || report.trufflesLeft !== 0) problems.push("truffles oversold or left unsold")
  if (report.placed !== 10) problems.push(`expected 10 orders, placed ${report.placed}`)
  if (report.applesSold !== 2 * report.placed) problems.push("apples do not match the orders")
  if (report.revenue !== report.revenueFromResults) problems.push("the read model's revenue differs from the orders")
  if (report.refused["out-of-stock"] !== 30) problems.push("expected 30 orders refused for stock")
  if (report.refused["credit-limit"] !== 1 || report.refused["cart-too-large"] !== 1) {
    problems.push("expected one refusal for the credit limit and one for the cart's size")
  }
  return problems.length === 0
    ? Effect.as(Console.log("  invariants: hold (nothing oversold, the read model agrees)"), true)
    : Effect.die(new Error(`the shop's invariants failed: ${problems.join("; ")}`))
}
