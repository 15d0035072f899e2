/**
 * Rebuilds that fail or are cut short stay pending until they succeed, and never replay onto
 * the old read model; a runner that stops cleanly in the middle of a batch hands over without
 * anything being done twice.
 */
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Ref, Scope, SubscriptionRef } from "effect"
import { CheckpointStore, CommandExecutor, EventStore, Projection, ProjectionRunner } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { AccountEvents, Deposit, OpenAccount } from "../../examples/banking/Account.ts"

const Live = Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(
  Layer.provideMerge(MemoryEventStore.layer)
)

const seed = (accounts: number, deposits: number) =>
  Effect.gen(function*() {
    for (let a = 0; a < accounts; a++) yield* CommandExecutor.execute(OpenAccount, { account: `acc-${a}`, owner: "o" })
    for (let d = 0; d < deposits; d++) {
      yield* CommandExecutor.execute(Deposit, { account: `acc-${d % accounts}`, amount: 1 + d })
    }
  })

const head = EventStore.EventStore.use((store) => store.head)

/** A read model that counts how often each event was applied: any count above 1 is a double apply. */
const counting = (options: {
  readonly applied: Map<string, number>
  readonly failReset?: Ref.Ref<boolean>
  readonly gate?: (eventId: string) => Effect.Effect<void>
  readonly onReset?: Effect.Effect<void>
  readonly everyEvents?: number
}) =>
  Projection.make({
    name: "counting",
    events: AccountEvents,
    handle: (_event, stored) =>
      Effect.andThen(
        options.gate?.(stored.eventId) ?? Effect.void,
        Effect.sync(() => void options.applied.set(stored.eventId, (options.applied.get(stored.eventId) ?? 0) + 1))
      ),
    reset: Effect.gen(function*() {
      if (options.failReset !== undefined && (yield* Ref.get(options.failReset))) {
        return yield* Effect.fail(new Error("the read model is locked"))
      }
      yield* options.onReset ?? Effect.void
      options.applied.clear()
    }),
    checkpoint: { everyEvents: options.everyEvents ?? 1 }
  })

const appliedOnce = (applied: Map<string, number>) => [...applied.values()].every((n) => n === 1)

it.effect("a rebuild whose reset fails faults the runner and stays pending: nothing replays onto the old model", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(3, 12)
      const applied = new Map<string, number>()
      const failReset = yield* Ref.make(false)
      const runner = yield* ProjectionRunner.start(counting({ applied, failReset }))
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 15)

      yield* Ref.set(failReset, true)
      const failed = yield* Effect.exit(runner.rebuild)
      assert.isTrue(Exit.isFailure(failed))
      const status = yield* runner.awaitStatus("Faulted")
      assert.match(status.message, /the read model is locked/)
      assert.isTrue(yield* CheckpointStore.CheckpointStore.use((c) => c.rebuildPending("counting")))
      assert.isTrue(appliedOnce(applied), "an event was applied twice onto the old read model")

      // restart retries the rebuild itself, not processing from the old checkpoint
      yield* Ref.set(failReset, false)
      yield* runner.restart
      yield* runner.awaitStatus("Live")
      yield* runner.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 15)
      assert.isTrue(appliedOnce(applied))
      assert.isFalse(yield* CheckpointStore.CheckpointStore.use((c) => c.rebuildPending("counting")))
    }).pipe(Effect.provide(Live))
  ))

it.effect("a rebuild cut short by a crash is finished by the next runner before it processes anything", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(2, 8)
      const applied = new Map<string, number>()
      const first = yield* Scope.make()
      const runner = yield* ProjectionRunner.start(counting({ applied })).pipe(Scope.provide(first))
      yield* runner.awaitPosition(yield* head)
      yield* Scope.close(first, Exit.void)
      // the process died after marking the rebuild, before clearing anything
      yield* CheckpointStore.CheckpointStore.use((c) => c.beginRebuild("counting"))
      const cleared = yield* Ref.make(0)
      const next = yield* ProjectionRunner.start(counting({ applied, onReset: Ref.update(cleared, (n) => n + 1) }))
      yield* next.awaitStatus("Live")
      yield* next.awaitPosition(yield* head)
      assert.strictEqual(yield* Ref.get(cleared), 1)
      assert.strictEqual(applied.size, 10)
      assert.isTrue(appliedOnce(applied))
    }).pipe(Effect.provide(Live))
  ))

it.effect("a runner that lost its lock cannot save over a rebuild in progress", () =>
  Effect.gen(function*() {
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const position = yield* head
    yield* checkpoints.advance("zombie", undefined, position)
    yield* checkpoints.beginRebuild("zombie")
    const late = yield* Effect.flip(checkpoints.advance("zombie", position, position))
    assert.strictEqual(late._tag, "CheckpointMoved")
    yield* checkpoints.reset("zombie")
    assert.isFalse(yield* checkpoints.rebuildPending("zombie"))
    assert.isUndefined(yield* checkpoints.load("zombie"))
  }).pipe(Effect.provide(Live)))

it.effect("a clean stop in the middle of a batch hands over: the next runner does nothing twice", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* seed(2, 18)
      const applied = new Map<string, number>()
      const reachedSixth = yield* Deferred.make<void>()
      const hold = yield* Deferred.make<void>()
      let seen = 0
      // The first runner handles five events of its first page, then stops while on the sixth.
      const gate = () =>
        Effect.suspend(() =>
          ++seen === 6 ? Effect.andThen(Deferred.succeed(reachedSixth, undefined), Deferred.await(hold)) : Effect.void
        )
      const first = yield* Scope.make()
      const a = yield* ProjectionRunner.start(counting({ applied, gate, everyEvents: 1_000 }), { pageSize: 100 }).pipe(
        Scope.provide(first)
      )
      yield* Deferred.await(reachedSixth)
      assert.strictEqual(applied.size, 5)
      yield* Scope.close(first, Exit.void)
      assert.strictEqual((yield* SubscriptionRef.get(a.status))._tag, "Stopped")

      const b = yield* ProjectionRunner.start(counting({ applied }))
      yield* b.awaitStatus("Live")
      yield* b.awaitPosition(yield* head)
      assert.strictEqual(applied.size, 20)
      assert.isTrue(appliedOnce(applied), "the next runner redid events the first had handled")
    }).pipe(Effect.provide(Live))
  ))
