/**
 * Blue/green rebuilds in memory: version 2 of a read model builds beside version 1 while
 * commands append and queries keep answering from version 1; a promotion before version 2 has
 * caught up is refused; once it has, queries answer from version 2 — in every reader of the
 * process, and after a restart.
 */
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Queue, Schema, Scope, Stream, SubscriptionRef } from "effect"
import { TestClock } from "effect/testing"
import {
  BlueGreen,
  Command,
  CommandExecutor,
  Event,
  EventStore,
  Position,
  Projection,
  ProjectionRunner,
  ReadModel,
  StreamCategory
} from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Events = Event.catalog(Deposited)

const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Number }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

const Live = Layer.mergeAll(CommandExecutor.layer(), MemoryProjections.layer).pipe(
  Layer.provideMerge(MemoryEventStore.layer)
)

const head = EventStore.EventStore.use((store) => store.head)
const deposit = (account: string, amount: number) => CommandExecutor.execute(Deposit, { account, amount })

/** The queries every version answers; `source` says which version answered. */
type Queries = {
  readonly balance: (account: string) => Effect.Effect<number>
  readonly source: () => Effect.Effect<string>
}

const idOf = (streamId: string) => Account.idOf(streamId) ?? streamId

const memoryVersion = (version: number) =>
  ReadModel.memory({
    name: "balances",
    version,
    events: Events,
    filter: Account.filter,
    initial: new Map<string, number>(),
    apply: (state, event, stored) =>
      new Map(state).set(idOf(stored.streamId), (state.get(idOf(stored.streamId)) ?? 0) + event.amount),
    queries: {
      balance: (state, account: string) => state.get(account) ?? 0,
      source: () => `v${version}`
    }
  })

const version1 = memoryVersion(1)

/**
 * Version 2, durable, whose handler waits at its third event until `gate` opens: it stays
 * mid-build for as long as the test needs.
 */
const version2 = (gate: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const balances = new Map<string, number>()
    let applied = 0
    const runner = yield* ProjectionRunner.start(Projection.make({
      name: BlueGreen.versionedName("balances", 2),
      events: Events,
      filter: Account.filter,
      handle: (event, stored) =>
        Effect.andThen(
          ++applied >= 3 ? Deferred.await(gate) : Effect.void,
          Effect.sync(() =>
            void balances.set(idOf(stored.streamId), (balances.get(idOf(stored.streamId)) ?? 0) + event.amount)
          )
        ),
      reset: Effect.sync(() => balances.clear())
    }))
    const queries: Queries = {
      balance: (account) => Effect.sync(() => balances.get(account) ?? 0),
      source: () => Effect.succeed("v2")
    }
    return {
      ...ReadModel.make("balances", queries, ReadModel.awaitRunner(runner.name, runner), 2),
      runner
    }
  })

const awaitActive = (model: ReadModel.Versioned<Queries>, version: number) =>
  SubscriptionRef.changes(model.active).pipe(Stream.filter((v) => v === version), Stream.take(1), Stream.runDrain)

it.effect("v2 builds beside v1, which keeps answering; a lagging v2 is refused; once caught up it serves everywhere", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* deposit("1", 5)
      yield* deposit("2", 7)
      yield* deposit("1", 1)
      const v1 = yield* version1
      yield* v1.runner.awaitPosition(yield* head)

      const gate = yield* Deferred.make<void>()
      const v2 = yield* version2(gate)
      const model = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2] })
      // another reader of the same read model in this process, created before the promotion
      const reader = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2] })
      assert.strictEqual(model.version, 1)
      assert.strictEqual(yield* model.query.source(), "v1")
      assert.strictEqual(yield* model.query.balance("1"), 6)

      // v2 is mid-build: promoting it is refused, and nothing changes
      const refused = yield* Effect.flip(model.promote(2))
      assert.strictEqual(refused._tag, "NotCaughtUp")
      assert.strictEqual(yield* (yield* BlueGreen.ActiveVersions).get("balances"), 1)
      const unknown = yield* Effect.flip(model.promote(3))
      assert.strictEqual(unknown._tag, "UnknownVersion")

      // commands keep appending; queries keep answering, from v1, never empty
      const result = yield* deposit("1", 10)
      assert.strictEqual(yield* model.after(result).balance("1"), 16)
      assert.strictEqual(yield* model.query.source(), "v1")
      const built = yield* SubscriptionRef.get(v2.runner.position)
      assert.isTrue(result.position !== undefined && Position.isAfter(result.position, built))

      // v2 catches up; the promotion goes through
      yield* Deferred.succeed(gate, undefined)
      yield* v2.runner.awaitStatus("Live")
      yield* v2.runner.awaitPosition(yield* head)
      yield* model.promote(2)
      assert.strictEqual(model.version, 2)
      assert.strictEqual(yield* model.query.source(), "v2")
      assert.strictEqual(yield* model.query.balance("1"), 16)
      const later = yield* deposit("2", 1)
      assert.strictEqual(yield* model.after(later).balance("2"), 8)

      // every reader agrees: one created now at once, one created before on its next refresh
      const fresh = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2] })
      assert.strictEqual(yield* fresh.query.source(), "v2")
      yield* TestClock.adjust("1 second")
      yield* awaitActive(reader, 2)
      assert.strictEqual(yield* reader.query.source(), "v2")
    }).pipe(Effect.provide(Live))
  ))

it.effect("promote: \"whenCaughtUp\" switches to the newest version once its runner is live and caught up", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* deposit("1", 5)
      const v1 = yield* version1
      const gate = yield* Deferred.make<void>()
      const v2 = yield* version2(gate)
      const model = yield* ReadModel.blueGreen<Queries>({
        name: "balances",
        versions: [v1, v2],
        promote: "whenCaughtUp"
      })
      yield* deposit("2", 1)
      yield* deposit("2", 2)
      assert.strictEqual(yield* model.after(yield* deposit("2", 3)).source(), "v1") // v2 waits at the gate
      yield* Deferred.succeed(gate, undefined)
      yield* awaitActive(model, 2)
      assert.strictEqual(yield* model.query.source(), "v2")
      assert.strictEqual(yield* model.query.balance("2"), 6)
    }).pipe(Effect.provide(Live))
  ))

it.effect("a restart keeps the active version", () =>
  Effect.gen(function*() {
    yield* deposit("1", 5)
    const first = yield* Scope.make()
    yield* Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      yield* Deferred.succeed(gate, undefined)
      const v2 = yield* version2(gate)
      const model = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [yield* version1, v2] })
      yield* v2.runner.awaitPosition(yield* head)
      yield* model.promote(2)
    }).pipe(Scope.provide(first))
    yield* Scope.close(first, Exit.void)

    // the process starts again with both versions: it serves v2 at once
    yield* Effect.scoped(Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const model = yield* ReadModel.blueGreen<Queries>({
        name: "balances",
        versions: [yield* version1, yield* version2(gate)]
      })
      assert.strictEqual(model.version, 2)
      assert.strictEqual(yield* model.query.source(), "v2")
    }))
  }).pipe(Effect.provide(Live)))

it.effect("versions must belong to the read model, once each", () =>
  Effect.scoped(
    Effect.gen(function*() {
      const v1 = yield* version1
      const twice = yield* Effect.flip(ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v1] }))
      assert.match(twice.message, /version 1 is given twice/)
      const other = yield* Effect.flip(ReadModel.blueGreen<Queries>({ name: "orders", versions: [v1] }))
      assert.match(other.message, /belongs to read model balances/)
      const bad = yield* Effect.flip(
        ReadModel.memory({ name: "x", version: 0, events: Events, initial: 0, apply: (n) => n, queries: {} })
      )
      assert.strictEqual(bad._tag, "InvalidInput")
    }).pipe(Effect.provide(Live))
  ))

/**
 * Active versions whose reads wait, once `gated`, until the test releases them (a slow
 * database round trip): each waiting read offers its release to `reads`.
 */
const gatedVersions = Effect.gen(function*() {
  const inner = yield* BlueGreen.makeMemory
  const reads = yield* Queue.unbounded<Deferred.Deferred<void>>()
  const state = { gated: false }
  const service = BlueGreen.ActiveVersions.of({
    ...inner,
    get: (name) =>
      Effect.gen(function*() {
        const value = yield* inner.get(name)
        if (state.gated) {
          const release = yield* Deferred.make<void>()
          yield* Queue.offer(reads, release)
          yield* Deferred.await(release)
        }
        return value
      })
  })
  return { service, reads, state }
})

it.effect("a refresh that read the stored version before a promotion does not take readers back", () =>
  Effect.scoped(
    Effect.gen(function*() {
      const versions = yield* gatedVersions
      const v1 = yield* version1
      const v2 = yield* memoryVersion(2)
      const model = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2] }).pipe(
        Effect.provideService(BlueGreen.ActiveVersions, versions.service)
      )
      versions.state.gated = true
      yield* TestClock.adjust("1 second")
      const inFlight = yield* Queue.take(versions.reads) // a refresh has read version 1 ...
      yield* model.promote(2).pipe(Effect.provideService(BlueGreen.ActiveVersions, versions.service))
      assert.strictEqual(yield* model.query.source(), "v2")
      yield* Deferred.succeed(inFlight, undefined) // ... and finishes after the promotion
      yield* TestClock.adjust("1 second")
      yield* Queue.take(versions.reads) // the next refresh started: the one before has finished
      assert.strictEqual(model.version, 2)
      assert.strictEqual(yield* model.query.source(), "v2")
    }).pipe(Effect.provide(Live))
  ))

it.effect("a refresh that read the stored version before an automatic promotion does not take readers back", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* deposit("1", 5)
      yield* deposit("1", 6)
      yield* deposit("1", 7)
      const versions = yield* gatedVersions
      const gate = yield* Deferred.make<void>()
      const v2 = yield* version2(gate) // waits at its third event
      const model = yield* ReadModel.blueGreen<Queries>({
        name: "balances",
        versions: [yield* version1, v2],
        promote: "whenCaughtUp"
      }).pipe(Effect.provideService(BlueGreen.ActiveVersions, versions.service))
      versions.state.gated = true
      yield* TestClock.adjust("1 second")
      const inFlight = yield* Queue.take(versions.reads) // a refresh has read version 1 ...
      yield* Deferred.succeed(gate, undefined)
      yield* awaitActive(model, 2) // ... v2 caught up and was promoted ...
      yield* Deferred.succeed(inFlight, undefined) // ... and the refresh finishes after that
      yield* TestClock.adjust("1 second")
      yield* Queue.take(versions.reads)
      assert.strictEqual(model.version, 2)
      assert.strictEqual(yield* model.query.source(), "v2")
    }).pipe(Effect.provide(Live))
  ))

/**
 * Version 2, durable, whose handler waits while `hold.held` until `hold.release` opens: the
 * test stops it between two events.
 */
const heldVersion2 = Effect.gen(function*() {
  const hold = { held: false, release: yield* Deferred.make<void>() }
  const balances = new Map<string, number>()
  const runner = yield* ProjectionRunner.start(Projection.make({
    name: BlueGreen.versionedName("balances", 2),
    events: Events,
    filter: Account.filter,
    handle: (event, stored) =>
      Effect.andThen(
        hold.held ? Deferred.await(hold.release) : Effect.void,
        Effect.sync(() =>
          void balances.set(idOf(stored.streamId), (balances.get(idOf(stored.streamId)) ?? 0) + event.amount)
        )
      ),
    reset: Effect.sync(() => balances.clear())
  }))
  const queries: Queries = {
    balance: (account) => Effect.sync(() => balances.get(account) ?? 0),
    source: () => Effect.succeed("v2")
  }
  const model = { ...ReadModel.make("balances", queries, ReadModel.awaitRunner(runner.name, runner), 2), runner }
  return { model, hold }
})

/** Active versions whose `activate` waits until the test releases it (offered to `activations`). */
const gatedActivations = Effect.gen(function*() {
  const inner = yield* BlueGreen.makeMemory
  const activations = yield* Queue.unbounded<Deferred.Deferred<void>>()
  const service = BlueGreen.ActiveVersions.of({
    ...inner,
    activate: (name, version, options) =>
      Effect.gen(function*() {
        const release = yield* Deferred.make<void>()
        yield* Queue.offer(activations, release)
        yield* Deferred.await(release)
        return yield* inner.activate(name, version, options)
      })
  })
  return { service, activations }
})

it.effect("readers never go back: after a switch, queries wait until the new version has what the old one showed", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* deposit("1", 5)
      const versions = yield* gatedActivations
      const v1 = yield* version1
      const v2 = yield* heldVersion2
      const model = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2.model] }).pipe(
        Effect.provideService(BlueGreen.ActiveVersions, versions.service)
      )
      yield* v2.model.runner.awaitStatus("Live")
      yield* v2.model.runner.awaitPosition(yield* head)
      const promoting = yield* model.promote(2).pipe(
        Effect.provideService(BlueGreen.ActiveVersions, versions.service),
        Effect.forkChild
      )
      // v2 has reached v1 (reachServing) and the switch waits to store the promotion: meanwhile
      // v1 applies one more event, v2 not yet, and a reader sees it from v1
      const switching = yield* Queue.take(versions.activations)
      v2.hold.held = true
      const result = yield* deposit("1", 10)
      assert.strictEqual(yield* model.after(result).balance("1"), 15)
      assert.strictEqual(yield* model.query.source(), "v1")
      yield* Deferred.succeed(switching, undefined)
      yield* Fiber.join(promoting)
      assert.strictEqual(model.version, 2)
      assert.strictEqual(yield* v2.model.query.balance("1"), 5) // v2 itself has not applied it

      // v2 applies it only once the query has started: a query that answered at once would
      // answer 5, from before what v1 showed
      const started = yield* Deferred.make<void>()
      yield* Effect.forkChild(Effect.andThen(Deferred.await(started), Deferred.succeed(v2.hold.release, undefined)))
      const answer = yield* Effect.andThen(Deferred.succeed(started, undefined), model.query.balance("1"))
      assert.strictEqual(answer, 15)
      assert.strictEqual(yield* model.query.source(), "v2")
    }).pipe(Effect.provide(Live))
  ))

it.effect("readers never go back: a refresh switching to a version promoted elsewhere waits the same way", () =>
  Effect.scoped(
    Effect.gen(function*() {
      yield* deposit("1", 5)
      const v1 = yield* version1
      const v2 = yield* heldVersion2
      const promoter = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2.model] })
      const reader = yield* ReadModel.blueGreen<Queries>({ name: "balances", versions: [v1, v2.model] })
      yield* v2.model.runner.awaitStatus("Live")
      yield* v2.model.runner.awaitPosition(yield* head)
      yield* promoter.promote(2)
      // before its refresh, the reader serves v1, which applies one more event, v2 not yet
      v2.hold.held = true
      const result = yield* deposit("1", 10)
      assert.strictEqual(yield* reader.after(result).balance("1"), 15)
      assert.strictEqual(yield* reader.query.source(), "v1")
      yield* TestClock.adjust("1 second")
      yield* awaitActive(reader, 2)
      assert.strictEqual(yield* v2.model.query.balance("1"), 5)

      const started = yield* Deferred.make<void>()
      yield* Effect.forkChild(Effect.andThen(Deferred.await(started), Deferred.succeed(v2.hold.release, undefined)))
      const answer = yield* Effect.andThen(Deferred.succeed(started, undefined), reader.query.balance("1"))
      assert.strictEqual(answer, 15)
      assert.strictEqual(yield* reader.query.source(), "v2")
    }).pipe(Effect.provide(Live))
  ))
