/**
 * The append stays correct whatever isolation level the database defaults to: under
 * REPEATABLE READ and SERIALIZABLE its snapshot predates the boundary's locks, and a version
 * read from that snapshot could miss a commit made while it waited. Each database here is
 * created for the test with `ALTER DATABASE … SET default_transaction_isolation`.
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Random, Result, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { CommandExecutor, EventStore, StreamId } from "eventcore"
import { Deposit, OpenAccount, Transfer } from "../../examples/banking/Account.ts"
import { appendTo, event, namespace, raw, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

/** Waits (bounded) until a session of this database waits for an advisory lock. */
const someoneWaitsForALock = Effect.gen(function*() {
  for (let i = 0; i < 2_000; i++) {
    const rows = yield* raw<{ waiting: string }>(
      `select count(*)::text as waiting from pg_locks l join pg_database d on d.oid = l.database
       where l.locktype = 'advisory' and not l.granted and d.datname = current_database()`
    )
    if (Number(rows[0]?.waiting) > 0) return
    yield* Effect.sleep("5 millis")
  }
  return yield* Effect.die(new Error("no session ever waited for an advisory lock"))
})

const retryForever = Schedule.spaced("1 millis").pipe(Schedule.jittered)

for (const isolation of ["repeatable read", "serializable"] as const) {
  const Live = CommandExecutor.layer({ retry: retryForever }).pipe(
    Layer.provideMerge(
      Harness.layer({
        maxConnections: 8,
        url: Harness.freshDatabase({ default_transaction_isolation: isolation })
      })
    )
  )

  layer(Live, { excludeTestServices: true, timeout: "120 seconds" })(`default isolation ${isolation}`, (it) => {
    it.effect("the database really defaults to it", () =>
      Effect.gen(function*() {
        const rows = yield* raw<{ level: string }>("select current_setting('transaction_isolation') as level")
        assert.strictEqual(rows[0]?.level, isolation)
      }))

    it.effect("write skew: a commit made while an append waits for its locks is not missed", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = stream(`${ns}a`)
        const b = stream(`${ns}b`)
        yield* appendTo(a, 0)
        yield* appendTo(b, 0)
        const sql = yield* SqlClient.SqlClient
        // The first append runs in a transaction left open: it holds a exclusively, b shared.
        const holding = yield* Deferred.make<void>()
        const first = yield* sql.withTransaction(Effect.gen(function*() {
          yield* EventStore.append({
            streams: [{ streamId: a, expected: 1 }, { streamId: b, expected: 1 }],
            events: [yield* event(a)]
          })
          yield* Deferred.succeed(holding, undefined)
          yield* someoneWaitsForALock
        })).pipe(Effect.forkChild)
        yield* Deferred.await(holding)
        // The second takes its snapshot, then waits for a; the first commits meanwhile.
        const second = yield* EventStore.append({
          streams: [{ streamId: a, expected: 1 }, { streamId: b, expected: 1 }],
          events: [yield* event(b)]
        }).pipe(Effect.result, Effect.forkChild)
        yield* Fiber.join(first)
        const outcome = yield* Fiber.join(second)
        assert.isTrue(Result.isFailure(outcome), "both appends committed: write skew")
        if (Result.isFailure(outcome)) assert.strictEqual(outcome.failure._tag, "ConcurrencyConflict")
        assert.strictEqual((yield* EventStore.readStream(b)).version, 1)
      }))

    it.effect("a new stream created while an append waits is not missed either", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const a = stream(`${ns}a`)
        const b = stream(`${ns}b`)
        const sql = yield* SqlClient.SqlClient
        const holding = yield* Deferred.make<void>()
        const first = yield* sql.withTransaction(Effect.gen(function*() {
          yield* EventStore.append({
            streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 0 }],
            events: [yield* event(a)]
          })
          yield* Deferred.succeed(holding, undefined)
          yield* someoneWaitsForALock
        })).pipe(Effect.forkChild)
        yield* Deferred.await(holding)
        const second = yield* EventStore.append({
          streams: [{ streamId: a, expected: 0 }, { streamId: b, expected: 0 }],
          events: [yield* event(b)]
        }).pipe(Effect.result, Effect.forkChild)
        yield* Fiber.join(first)
        const outcome = yield* Fiber.join(second)
        assert.isTrue(Result.isFailure(outcome), "both appends committed: write skew on new streams")
        assert.strictEqual((yield* EventStore.readStream(b)).version, 0)
      }))

    it.effect("money is conserved under 16 fibers of random transfers, each retried until it commits", () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const accounts = Array.from({ length: 6 }, (_, i) => StreamId.makeUnsafe(`${ns}acct-${i}`))
        for (const account of accounts) {
          yield* CommandExecutor.execute(OpenAccount, { account, owner: "o" })
          yield* CommandExecutor.execute(Deposit, { account, amount: 100 })
        }
        yield* Effect.forEach(
          Array.from({ length: 16 }, (_, f) => f),
          (f) =>
            Effect.forEach(Array.from({ length: 12 }), () =>
              Effect.gen(function*() {
                const from = accounts[yield* Random.nextIntBetween(0, 5)] as StreamId.StreamId
                const to = accounts[yield* Random.nextIntBetween(0, 5)] as StreamId.StreamId
                yield* CommandExecutor.execute(Transfer, { from, to, amount: yield* Random.nextIntBetween(1, 60) })
                  .pipe(
                    Effect.catchTag("BusinessRuleViolation", () => Effect.void)
                  )
              }), { discard: true }).pipe(Random.withSeed(`iso-${f}`)),
          { concurrency: "unbounded", discard: true }
        )
        const rows = yield* raw<{ total: string }>(
          `select coalesce(sum(case type when 'MoneyDeposited' then (payload->>'amount')::bigint
             when 'MoneyWithdrawn' then -(payload->>'amount')::bigint
             when 'TransferSent' then -(payload->>'amount')::bigint
             when 'TransferReceived' then (payload->>'amount')::bigint else 0 end), 0)::text as total
           from \${s}.events where starts_with(stream_id, $1)`,
          [ns]
        )
        assert.strictEqual(Number(rows[0]?.total), 600)
      }))
  })
}
