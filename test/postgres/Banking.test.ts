/**
 * The library end to end on real PostgreSQL: money conservation under heavy contention, and a
 * live subscriber that must not skip a transaction committing out of order.
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Random, Result, Schedule, Stream } from "effect"
import { SqlClient } from "effect/sql"
import { CommandExecutor, EventStore, Position, StreamId, Subscription } from "eventcore"
import { AccountEvents, balanceDelta, Deposit, OpenAccount, Transfer } from "../../examples/banking/Account.ts"
import { appendTo, namespace, raw, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

// 64 fibers over 20 accounts conflict constantly: retry until each transfer commits or is
// refused on its merits, however loaded the machine (a bounded schedule could run out).
const retry = Schedule.spaced("2 millis").pipe(Schedule.jittered)

// The conflict storm takes about 10 s alone and 40 s beside another full run of the suite; the
// timeout only guards against a hang.
const heavy = { timeout: 300_000 }

const Live = CommandExecutor.layer({ retry }).pipe(Layer.provideMerge(Harness.layer({ maxConnections: 32 })))

const balanceOf = (read: EventStore.StreamRead) =>
  read.events.reduce((sum, stored) => {
    const decoded = AccountEvents.decode(stored)
    if (Result.isFailure(decoded)) throw decoded.failure
    return sum + balanceDelta(decoded.success)
  }, 0)

layer(Live, { excludeTestServices: true, timeout: "120 seconds" })("banking on PostgreSQL", (it) => {
  it.effect(
    "64 fibers, 2,048 random transfers over 20 accounts: money is conserved, versions contiguous, no duplicates",
    () =>
      Effect.gen(function*() {
        const ns = yield* namespace
        const accounts = Array.from({ length: 20 }, (_, i) => StreamId.makeUnsafe(`${ns}account-${i}`))
        for (const account of accounts) {
          yield* CommandExecutor.execute(OpenAccount, { account, owner: "owner" })
          yield* CommandExecutor.execute(Deposit, { account, amount: 1_000 })
        }
        let committed = 0
        let retried = 0
        yield* Effect.forEach(
          Array.from({ length: 64 }, (_, f) => f),
          (fiber) =>
            Effect.forEach(Array.from({ length: 32 }), () =>
              Effect.gen(function*() {
                const from = accounts[yield* Random.nextIntBetween(0, 19)] as StreamId.StreamId
                const to = accounts[yield* Random.nextIntBetween(0, 19)] as StreamId.StreamId
                const amount = yield* Random.nextIntBetween(1, 300)
                const result = yield* Effect.result(CommandExecutor.execute(Transfer, { from, to, amount }))
                if (Result.isSuccess(result)) {
                  committed++
                  retried += result.success.attempts - 1
                } else if (result.failure._tag !== "BusinessRuleViolation") {
                  return yield* Effect.die(result.failure)
                }
              }), { discard: true }).pipe(Random.withSeed(`fiber-${fiber}`)),
          { concurrency: "unbounded", discard: true }
        )

        const reads = yield* EventStore.EventStore.use((store) => store.readStreams(accounts))
        assert.strictEqual(reads.reduce((sum, read) => sum + balanceOf(read), 0), 20 * 1_000)
        for (const read of reads) {
          assert.isAtLeast(balanceOf(read), 0)
          assert.deepStrictEqual(
            read.events.map((e) => e.streamVersion),
            Array.from({ length: read.version }, (_, i) => i + 1)
          )
        }
        const newest = reads.flatMap((read) => read.events).reduce(
          (a, b) => (Position.isAfter(b.position, a) ? b.position : a),
          Position.initial
        )
        yield* EventStore.awaitVisible(newest)
        const all = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: ns } }))
        assert.strictEqual(new Set(all.map((e) => e.eventId)).size, all.length)
        assert.strictEqual(all.length, reads.reduce((sum, read) => sum + read.version, 0))
        assert.strictEqual(all.length, 40 + 2 * committed)
        assert.isAbove(committed, 500)
        assert.isAbove(retried, 0, "the fibers really contended")
      }),
    heavy
  )

  it.effect("a transaction that draws an earlier position and commits later still reaches a running subscriber, once, in order", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const early = stream(`${ns}early`)
      const late = stream(`${ns}late`)
      const sentinel = stream(`${ns}sentinel`)
      const first = stream(`${ns}first`)
      const sql = yield* SqlClient.SqlClient
      const running = yield* Deferred.make<void>()
      const received = yield* Subscription.stream({ from: "start", filter: { streamPrefix: ns } }).pipe(
        Stream.tap(() => Deferred.succeed(running, undefined)),
        Stream.take(4),
        Stream.runCollect,
        Effect.forkChild
      )
      // The subscriber is live (it has caught up with a first event) before anything else.
      yield* appendTo(first, 0)
      yield* Deferred.await(running)
      const drawn = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // Another connection opens a transaction, appends (drawing its transaction id and
      // position first), and stays open...
      const held = yield* sql.withTransaction(Effect.gen(function*() {
        yield* raw(
          `select * from \${s}.append(array[$1::text], array[0]::bigint[], array[gen_random_uuid()], array[$1::text],
            array['Noted'], array[1], array['{"_tag":"Noted","text":"early"}'::jsonb],
            array['{"correlationId":"c","causationId":"c","custom":{}}'::jsonb], now())`,
          [early]
        )
        yield* Deferred.succeed(drawn, undefined)
        yield* Deferred.await(release)
      })).pipe(Effect.forkChild)
      yield* Deferred.await(drawn)
      // ...while a later append commits and wakes the subscriber.
      yield* appendTo(late, 0)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(held)
      yield* appendTo(sentinel, 0)
      const events = yield* Fiber.join(received)
      assert.deepStrictEqual(events.map((e) => e.streamId), [first, early, late, sentinel])
    }))
})
