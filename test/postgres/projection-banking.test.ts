/** The banking demo's PostgreSQL read models equal a replay of the account events. */
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Deposit, OpenAccount, Transfer } from "../../examples/banking/Account.ts"
import * as BalancesPostgres from "../../examples/banking/BalancesPostgres.ts"
import * as CommandExecutor from "../../src/CommandExecutor.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as Harness from "./harness.ts"
import { lastCommitted, replay } from "./projectionFixtures.ts"

const TestLayer = Layer.mergeAll(
  CommandExecutor.layer(),
  Layer.unwrap(Effect.map(Harness.TestDatabase, ({ schema }) => PostgresProjection.layer({ schema })))
).pipe(Layer.provideMerge(Harness.layer()), Layer.orDie)

layer(TestLayer, { excludeTestServices: true })("banking read models in PostgreSQL", (it) => {
  it.effect("balances and history follow the commands, live", () =>
    Effect.scoped(Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const models = yield* BalancesPostgres.start(schema)
      for (const account of ["a-1", "a-2"]) {
        yield* CommandExecutor.execute(OpenAccount, { account, owner: account })
        yield* CommandExecutor.execute(Deposit, { account, amount: 100 })
      }
      yield* CommandExecutor.execute(Transfer, { from: "a-1", to: "a-2", amount: 30 })
      yield* models.awaitPosition(yield* lastCommitted)
      const current = yield* models.current
      assert.deepStrictEqual(current.balances, (yield* replay).balances)
      assert.deepStrictEqual(current.balances, new Map([["a-1", 70], ["a-2", 130]]))
      const history = yield* models.history("a-1")
      assert.deepStrictEqual(history.map((h) => [h.type, Number(h.amount)]), [
        ["TransferSent", -30],
        ["MoneyDeposited", 100],
        ["AccountOpened", 0]
      ])
    })))
})
