/**
 * The PostgreSQL store's spans as a tracer sees them: each store operation a span with the
 * OpenTelemetry database attributes, @effect/sql-pg's statement span its child; a durable
 * projection runner whose every span sits in a chain EventCore began — no statement span is a
 * root of its own; and an idle subscriber, polling the store, makes no span at all.
 */
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Queue, Redacted, Schema, Stream, type Tracer } from "effect"
import { SqlClient } from "effect/sql"
import * as Command from "../../src/Command.ts"
import * as CommandExecutor from "../../src/CommandExecutor.ts"
import * as Event from "../../src/Event.ts"
import * as PostgresEventStore from "../../src/postgres/PostgresEventStore.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as Statements from "../../src/postgres/statements.ts"
import * as Projection from "../../src/Projection.ts"
import * as ProjectionRunner from "../../src/ProjectionRunner.ts"
import type { StoredEvent } from "../../src/StoredEvent.ts"
import * as StreamCategory from "../../src/StreamCategory.ts"
import * as Subscription from "../../src/Subscription.ts"
import { chainOf, childrenOf, named, parentOf, recordingTracer, rootOf } from "../spans.ts"
import * as Harness from "./harness.ts"

const Account = StreamCategory.make("account")
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Events = Event.catalog(Deposited)
const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: Account.Id, amount: Schema.Int }),
  events: Events,
  streams: ({ account }) => ({ account }),
  initial: undefined,
  apply: (state) => state,
  decide: ({ input, streams }) => [streams.account.append(Deposited.make({ amount: input.amount }))]
})

const TestLayer = Layer.unwrap(
  Effect.map(
    Harness.TestDatabase,
    ({ schema }) => PostgresProjection.layer({ schema, lock: { pollInterval: "100 millis", heartbeat: "200 millis" } })
  )
).pipe(
  Layer.provideMerge(CommandExecutor.layer().pipe(Layer.provideMerge(Harness.layer({ maxConnections: 4 })))),
  Layer.orDie
)

const one = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string): Tracer.NativeSpan => {
  const found = named(spans, name)
  assert.strictEqual(found.length, 1, `one ${name} span, found ${found.length}`)
  return found[0] as Tracer.NativeSpan
}

/** @effect/sql-pg's statement spans: kind client, with the statement's text. */
const statements = (spans: ReadonlyArray<Tracer.NativeSpan>) =>
  spans.filter((span) => span.kind === "client" && span.attributes.has("db.query.text"))

layer(TestLayer, { excludeTestServices: true })("PostgreSQL spans", (it) => {
  it.effect("store operations carry the database attributes; the statements are their children", () =>
    Effect.gen(function*() {
      const { schema, url } = yield* Harness.TestDatabase
      const database = new URL(url).pathname.slice(1)
      const { spans, tracer } = recordingTracer()
      yield* CommandExecutor.execute(Deposit, { account: "1", amount: 3 }).pipe(Effect.withTracer(tracer))
      const attempt = one(spans, "CommandExecutor.attempt")
      const read = one(spans, "EventStore.readStreams")
      const append = one(spans, "EventStore.append")
      for (const span of [read, append]) {
        assert.strictEqual(parentOf(span), attempt)
        assert.strictEqual(span.attributes.get("db.system.name"), "postgresql")
        assert.strictEqual(span.attributes.get("db.namespace"), database)
        assert.strictEqual(span.attributes.get("db.operation.name"), "SELECT")
        assert.strictEqual(span.attributes.get("db.collection.name"), `${schema}.events`)
        assert.strictEqual(span.attributes.get("eventcore.schema"), schema)
        assert.strictEqual(span.attributes.get("eventcore.streams"), 1)
      }
      assert.strictEqual(read.attributes.get("db.response.returned_rows"), 0)
      assert.strictEqual(append.attributes.get("db.stored_procedure.name"), `${schema}.append`)
      assert.strictEqual(append.attributes.get("eventcore.events"), 1)
      // one statement each, as children: not duplicated beside them
      const [readStatement] = childrenOf(spans, read)
      const [appendStatement] = childrenOf(spans, append)
      assert.include(String(readStatement?.attributes.get("db.query.text")), `from ${schema}.events`)
      assert.include(String(appendStatement?.attributes.get("db.query.text")), `${schema}.append(`)
      assert.deepStrictEqual(statements(spans), [readStatement, appendStatement])
    }))

  it.effect("a durable projection runner: every statement span has a parent chain EventCore began", () =>
    Effect.gen(function*() {
      const { schema } = yield* Harness.TestDatabase
      const { spans, tracer } = recordingTracer()
      yield* Effect.scoped(Effect.gen(function*() {
        const runner = yield* ProjectionRunner.start(Projection.make({
          name: "traced",
          events: Events,
          handle: () => Effect.void
        }))
        yield* runner.awaitStatus("Live")
        yield* CommandExecutor.execute(Deposit, { account: "2", amount: 1 })
        const last = yield* CommandExecutor.execute(Deposit, { account: "2", amount: 2 })
        // The last command's position, not the store's head: the visible head trails commits
        // while any other transaction on the server is open (other test files).
        if (last.position === undefined) return assert.fail("the command wrote nothing")
        yield* runner.awaitPosition(last.position)
      })).pipe(Effect.withTracer(tracer))
      // Started outside any span, a runner's work is several traces: its session's checkpoint
      // statements, each page, each batch (the commands above are the test's own).
      const roots = new Set(spans.map((span) => rootOf(span)).map((root) => root._tag === "Span" ? root.name : ""))
      assert.includeMembers([...roots], ["CheckpointStore.load", "Subscription.page", "ProjectionRunner.batch"])
      for (const root of roots) {
        assert.include(
          [
            "CheckpointStore.rebuildPending",
            "CheckpointStore.load",
            "CheckpointStore.advance",
            "Subscription.page",
            "ProjectionRunner.batch",
            "CommandExecutor.execute",
            "EventStore.head"
          ],
          root
        )
      }
      for (const statement of statements(spans)) {
        const parent = parentOf(statement)
        assert.isTrue(parent !== undefined && parent._tag === "Span", chainOf(statement).join(" < "))
      }
      const batches = named(spans, "ProjectionRunner.batch")
      assert.isAtLeast(batches.length, 1)
      // a durable runner saves its checkpoint in the batch it processed
      assert.isTrue(
        batches.some((batch) => childrenOf(spans, batch).some((span) => span.name === "CheckpointStore.advance"))
      )
      const load = named(spans, "CheckpointStore.load")[0]
      assert.strictEqual(load?.attributes.get("eventcore.projection"), "traced")
      assert.strictEqual(load?.attributes.get("db.collection.name"), `${schema}.checkpoints`)
    }))
})

/** The object, with the properties `override` gives (those it returns `undefined` for forwarded). */
const forward = <T extends object>(target: T, override: (key: PropertyKey) => unknown): T =>
  new Proxy(target, {
    get: (object, key) => {
      const replaced = override(key)
      if (replaced !== undefined) return replaced
      return Reflect.get(object, key, object)
    }
  })

/**
 * Counts the statements a store runs with exactly its head query's text: the polls of a
 * subscriber waiting for a commit (a page reads the head inside a statement of its own).
 */
const headPolls = (() => {
  let count = 0
  let waiters: Array<{ readonly at: number; readonly reached: Deferred.Deferred<void> }> = []
  const polled = () => {
    count++
    for (const waiter of waiters) if (count >= waiter.at) Deferred.doneUnsafe(waiter.reached, Effect.void)
    waiters = waiters.filter((waiter) => count < waiter.at)
  }
  /** Waits until `n` more polls than now have been made. */
  const more = (n: number) =>
    Effect.suspend(() => {
      const reached = Deferred.makeUnsafe<void>()
      waiters.push({ at: count + n, reached })
      return Deferred.await(reached)
    })
  /** The client, with `withoutTransforms()` (what the store queries through) counting head queries. */
  const counting = (pg: PgClient.PgClient, schema: string): PgClient.PgClient => {
    const headSql = Statements.head(schema)
    const countingSql = (sql: SqlClient.SqlClient): SqlClient.SqlClient =>
      forward(sql, (key) =>
        key === "unsafe"
          ? (text: string, params?: ReadonlyArray<unknown>) => {
            const statement = sql.unsafe(text, params)
            // The store builds its head statement once and runs it on every poll: count the runs.
            return text === headSql ? Effect.tap(statement, () => Effect.sync(polled)) : statement
          }
          : undefined)
    return forward(pg, (key) => key === "withoutTransforms" ? () => countingSql(pg.withoutTransforms()) : undefined)
  }
  return { more, counting }
})()

/** A store in a fresh schema that polls every 20 ms, through a client counting its head polls. */
const CountedLayer = Layer.unwrap(Effect.map(Harness.databaseUrl, (url) => {
  const schema = Harness.freshSchemaName()
  const client = PgClient.layer({ url: Redacted.make(url), maxConnections: 3 })
  const counted = Layer.effect(PgClient.PgClient, Effect.map(PgClient.PgClient, (pg) => headPolls.counting(pg, schema)))
  const dropSchemaAfterwards = Layer.effectDiscard(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.addFinalizer(() => Effect.ignore(sql.unsafe(`drop schema if exists ${schema} cascade`).unprepared))
  }))
  return CommandExecutor.layer().pipe(
    Layer.provideMerge(PostgresEventStore.layer({ schema, pollInterval: "20 millis" }).pipe(Layer.provide(counted))),
    Layer.provideMerge(dropSchemaAfterwards),
    Layer.provideMerge(client)
  )
})).pipe(Layer.orDie)

layer(CountedLayer, { excludeTestServices: true })("PostgreSQL spans of an idle subscriber", (it) => {
  it.effect("polling while idle makes no span; the live event after it is one page span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const items = yield* Queue.unbounded<Subscription.Item<StoredEvent>>()
      const subscriber = yield* Subscription.withSignals({ from: "start" }).pipe(
        Stream.runForEach((item) => Queue.offer(items, item)),
        Effect.withTracer(tracer),
        Effect.forkChild
      )
      const first = yield* Queue.take(items)
      assert.strictEqual(first._tag, "CaughtUp", "an empty store: caught up at once")
      const before = spans.length
      // Each poll found nothing committed; before the fix each one was a page read, a root span.
      yield* headPolls.more(5)
      assert.deepStrictEqual(spans.slice(before).map((span) => span.name), [], "no span while idle")

      const written = yield* CommandExecutor.execute(Deposit, { account: "idle", amount: 1 })
      const delivered = yield* Queue.take(items)
      assert.strictEqual(delivered._tag, "Event")
      assert.deepStrictEqual(
        delivered._tag === "Event" ? delivered.position : undefined,
        written.position
      )
      const caughtUp = yield* Queue.take(items)
      assert.strictEqual(caughtUp._tag, "CaughtUp")
      yield* Fiber.interrupt(subscriber)
      const live = spans.slice(before)
      const page = one(live, "Subscription.page")
      assert.strictEqual(rootOf(page), page)
      assert.strictEqual(page.attributes.get("eventcore.events"), 1)
      assert.strictEqual(page.attributes.get("eventcore.page.live"), true)
      // and only its own: the store's read, and that read's statement
      assert.strictEqual(live.length, 3, live.map((span) => chainOf(span).join(" < ")).join("; "))
      assert.deepStrictEqual(childrenOf(live, page).map((span) => span.name), ["EventStore.readPage"])
      const [statement] = statements(live)
      assert.strictEqual(statement && parentOf(statement), one(live, "EventStore.readPage"))
    }))
})
