/**
 * The read horizon made visible: a session idle in a transaction holds every global reader
 * back. `EventStore.horizon` says how many committed events wait and who holds them, a
 * runner's lag counts them, the store warns while live subscribers wait, and
 * `EventStore.awaitVisible` waits for one's own writes. Other test files may hold the
 * horizon too (their transactions are cluster-wide): assertions about the holder accept the
 * oldest transaction running, ours or an older one.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Schedule, Schema, Stream } from "effect"
import { Event, EventStore, Position, Projection, ProjectionRunner } from "eventcore"
import { MemoryProjections } from "eventcore/memory"
import { appendTo, idleInTransaction, namespace, raw, stream } from "./fixtures.ts"
import * as Harness from "./harness.ts"

/** The events `appendTo` writes. */
const Notes = Event.catalog(Schema.TaggedStruct("Noted", { text: Schema.String }))

const warnings: Array<string> = []
const capture = Logger.make(({ logLevel, message }) => {
  if (logLevel === "Warn") warnings.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
})

const Live = Layer.mergeAll(MemoryProjections.layer).pipe(
  Layer.provideMerge(Harness.layer({ maxConnections: 6, store: { horizonWarning: "200 millis" } })),
  Layer.provide(Logger.layer([capture], { mergeWithExisting: true }))
)

layer(Live, { excludeTestServices: true, timeout: "60 seconds" })("the read horizon", (it) => {
  it.effect("a session idle in a transaction: horizon, lag and awaitVisible say so; all clears when it ends", () =>
    Effect.scoped(Effect.gen(function*() {
      const ns = yield* namespace
      const a = stream(`${ns}a`)
      const first = yield* appendTo(a, 0)
      yield* EventStore.awaitVisible(first.events[0]?.position ?? Position.initial)
      const runner = yield* ProjectionRunner.start(
        Projection.make({ name: `${ns}runner`, events: Notes, filter: { streamPrefix: ns }, handle: () => Effect.void })
      )
      yield* runner.awaitStatus("Live")

      const idle = yield* idleInTransaction
      const written = yield* appendTo(a, 1, 3)
      const last = written.events[2]?.position ?? Position.initial

      const horizon = yield* EventStore.horizon({ filter: { streamPrefix: ns } })
      assert.strictEqual(horizon.pending, 3)
      assert.isTrue(Position.isAfter(horizon.committed, horizon.visible))
      assert.isAbove(horizon.trailingTransactions, 0)
      const holder = horizon.heldBy
      assert.isDefined(holder)
      if (holder !== undefined && holder.pid !== idle.pid) {
        // someone older holds it: a transaction whose id is older than ours
        assert.isTrue(BigInt(holder.transactionId) < BigInt(idle.xid), JSON.stringify(holder))
      }
      if (holder?.pid === idle.pid) {
        assert.strictEqual(holder.state, "idle in transaction")
        assert.strictEqual(holder.kind, "session")
      }

      const lag = yield* runner.lag
      assert.isAtLeast(lag.events, 3)
      assert.strictEqual(lag.pending, 3)
      assert.isDefined(lag.heldBy)

      // a live subscriber waits: the store warns once the events have waited past the threshold
      const waiter = yield* EventStore.awaitVisible(last).pipe(Effect.forkChild)
      yield* Effect.repeat(
        Effect.sync(() => warnings.some((w) => w.includes("global readers") && w.includes("held back"))),
        { until: (found) => found, schedule: Schedule.spaced("20 millis") }
      ).pipe(Effect.timeout("60 seconds"))
      assert.isUndefined(waiter.pollUnsafe(), "awaitVisible returned while the horizon was held")

      yield* idle.release
      yield* Fiber.join(waiter)
      const after = yield* EventStore.horizon({ filter: { streamPrefix: ns } })
      assert.isFalse(Position.isAfter(last, after.visible))
      const seen = yield* Stream.runCollect(EventStore.readAll({ filter: { streamPrefix: ns } }))
      assert.strictEqual(seen.length, 4)
      yield* runner.awaitPosition(last)
      assert.strictEqual((yield* runner.lag).pending, 0)
    })))

  it.effect("with nothing waiting behind it, the horizon reports nothing pending and no holder", () =>
    Effect.gen(function*() {
      const ns = yield* namespace
      const appended = yield* appendTo(stream(`${ns}quiet`), 0)
      yield* EventStore.awaitVisible(appended.events[0]?.position ?? Position.initial)
      const horizon = yield* EventStore.horizon({ filter: { streamPrefix: ns } })
      assert.strictEqual(horizon.pending, 0)
      assert.strictEqual(horizon.pendingMillis, 0)
      assert.isUndefined(horizon.heldBy)
      const rows = yield* raw<{ n: string }>(
        "select count(*)::text as n from ${s}.events where starts_with(stream_id, $1)",
        [ns]
      )
      assert.strictEqual(rows[0]?.n, "1")
    }))
})
