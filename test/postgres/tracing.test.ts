/**
 * The PostgreSQL store's spans as a tracer sees them: each store operation a span with the
 * OpenTelemetry database attributes, @effect/sql-pg's statement span its child; and a durable
 * projection runner whose every span sits in a chain EventCore began — no statement span is a
 * root of its own.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema, type Tracer } from "effect"
import * as Command from "../../src/Command.ts"
import * as CommandExecutor from "../../src/CommandExecutor.ts"
import * as Event from "../../src/Event.ts"
import * as PostgresProjection from "../../src/postgres/PostgresProjection.ts"
import * as Projection from "../../src/Projection.ts"
import * as ProjectionRunner from "../../src/ProjectionRunner.ts"
import * as StreamCategory from "../../src/StreamCategory.ts"
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
