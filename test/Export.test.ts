/**
 * The export recipe (examples/observability/Observability.ts) end to end: commands (one of them
 * meeting a conflict, then succeeding) and a projection run under it, an in-process OTLP receiver collects what the exporters send when
 * the application's scope closes, and a Prometheus scrape reads the same metrics. Nothing waits
 * on time: the exporters send everything on shutdown, and the test reads after that.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { CommandExecutor, EventId, EventStore, Projection, ProjectionRunner, StreamId } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { createServer, type Server } from "node:http"
import { AccountEvents, balanceDelta, Deposit, OpenAccount, Withdraw } from "../examples/banking/Account.ts"
import * as Observability from "../examples/observability/Observability.ts"

interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: string | number
  readonly doubleValue?: number
  readonly boolValue?: boolean
  readonly arrayValue?: { readonly values: ReadonlyArray<AnyValue> }
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}
interface OtlpSpan {
  readonly name: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly attributes: ReadonlyArray<KeyValue>
}
interface DataPoint {
  readonly attributes: ReadonlyArray<KeyValue>
  readonly asInt?: string | number
  readonly asDouble?: number
  readonly count?: string | number
}
interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly dataPoints: ReadonlyArray<DataPoint> }
  readonly gauge?: { readonly dataPoints: ReadonlyArray<DataPoint> }
  readonly histogram?: { readonly dataPoints: ReadonlyArray<DataPoint> }
}
interface Resource {
  readonly resource: { readonly attributes: ReadonlyArray<KeyValue> }
}
interface TracesRequest {
  readonly resourceSpans: ReadonlyArray<
    Resource & { readonly scopeSpans: ReadonlyArray<{ readonly spans: ReadonlyArray<OtlpSpan> }> }
  >
}
interface MetricsRequest {
  readonly resourceMetrics: ReadonlyArray<
    Resource & { readonly scopeMetrics: ReadonlyArray<{ readonly metrics: ReadonlyArray<OtlpMetric> }> }
  >
}

const valueOf = (value: AnyValue | undefined): unknown =>
  value === undefined
    ? undefined
    : value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : undefined) ?? value.doubleValue ??
      value.boolValue ?? value.arrayValue?.values.map(valueOf)

const attributesOf = (kvs: ReadonlyArray<KeyValue>): Record<string, unknown> =>
  Object.fromEntries(kvs.map((kv) => [kv.key, valueOf(kv.value)]))

/** An OTLP/HTTP receiver: keeps the JSON body of every request, by path. */
const receiver = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<{ readonly server: Server; readonly url: string; readonly requests: Map<string, Array<unknown>> }>(
      (resolve) => {
        const requests = new Map<string, Array<unknown>>()
        const server = createServer((request, response) => {
          const chunks: Array<Buffer> = []
          request.on("data", (chunk: Buffer) => chunks.push(chunk))
          request.on("end", () => {
            const path = request.url ?? ""
            const list = requests.get(path) ?? []
            list.push(JSON.parse(Buffer.concat(chunks).toString("utf8")))
            requests.set(path, list)
            response.writeHead(200, { "content-type": "application/json" }).end("{}")
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resolve({ server, url: `http://127.0.0.1:${port}`, requests })
        })
      }
    )
  ),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

const alice = StreamId.makeUnsafe("account-alice")
const bob = StreamId.makeUnsafe("account-bob")

/**
 * Armed, the store's next append is preceded by another writer's deposit on Alice's account:
 * the command whose append it is meets a conflict on its first attempt, and its retry succeeds.
 */
let competeOnce = false
const CompetingStore = Layer.effect(
  EventStore.EventStore,
  Effect.map(EventStore.EventStore, (store) =>
    EventStore.EventStore.of({
      ...store,
      append: (request) =>
        Effect.gen(function*() {
          if (competeOnce) {
            competeOnce = false
            const metadata = { correlationId: "other", causationId: "other", custom: {} }
            yield* store.append({
              streams: [{ streamId: alice, expected: "any" }],
              events: [{
                streamId: alice,
                eventId: yield* EventId.make,
                type: "MoneyDeposited",
                schemaVersion: 1,
                payload: { _tag: "MoneyDeposited", amount: 5 },
                metadata
              }]
            })
          }
          return yield* store.append(request)
        })
    }))
).pipe(Layer.provide(MemoryEventStore.layer))

/** The application: a few commands and a projection; returns a Prometheus scrape of its metrics. */
const application = Effect.scoped(Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
  const balances = new Map<string, number>()
  const runner = yield* ProjectionRunner.start(Projection.make({
    name: "balances",
    events: AccountEvents,
    handle: (event, stored) =>
      Effect.sync(() => balances.set(stored.streamId, (balances.get(stored.streamId) ?? 0) + balanceDelta(event)))
  }))
  yield* CommandExecutor.execute(OpenAccount, { account: alice, owner: "Alice" })
  yield* CommandExecutor.execute(OpenAccount, { account: bob, owner: "Bob" })
  yield* CommandExecutor.execute(Deposit, { account: alice, amount: 100 })
  yield* Effect.flip(CommandExecutor.execute(Withdraw, { account: bob, amount: 500 }))
  competeOnce = true
  yield* CommandExecutor.execute(Withdraw, { account: alice, amount: 30 })
  yield* runner.awaitPosition(yield* EventStore.EventStore.use((store) => store.head))
  assert.strictEqual(balances.get(alice), 75)
  return yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()))
})).pipe(
  Effect.provide(
    Layer.mergeAll(CommandExecutor.layer().pipe(Layer.provideMerge(CompetingStore)), MemoryProjections.layer)
  )
)

describe("the export recipe", () => {
  it.live("sends the spans and metrics over OTLP on shutdown, and serves them to Prometheus", () =>
    Effect.gen(function*() {
      const otlp = yield* receiver
      const scraped = yield* application.pipe(
        Effect.provide(Observability.layer({
          otlpUrl: otlp.url,
          prometheusPort: 0,
          resource: {
            serviceName: "export-test",
            serviceVersion: "1.2.3",
            attributes: { "deployment.environment.name": "test" }
          },
          // Nothing is sent before the application stops; then everything, however long it takes.
          tracesEvery: "1 hour",
          metricsEvery: "1 hour",
          shutdownTimeout: "1 hour"
        }))
      )

      // Prometheus: the metrics under their sanitized names, attributes as labels.
      assert.include(scraped, `eventcore_commands{command="Deposit",outcome="ok"} 1`)
      assert.include(scraped, `eventcore_commands{command="Withdraw",outcome="refused"} 1`)
      assert.include(scraped, `eventcore_projection_events{projection="balances",outcome="processed"} 5`)
      assert.include(scraped, `eventcore_conflicts{category="account"} 1`)
      assert.match(scraped, /eventcore_command_duration_bucket\{command="Deposit",le="[^"]+"\} 1/)

      // OTLP traces: the service, and the spans with their attributes and parents.
      const traces = (otlp.requests.get("/v1/traces") ?? []) as ReadonlyArray<TracesRequest>
      assert.isAtLeast(traces.length, 1)
      const resources = traces.flatMap((t) => t.resourceSpans)
      assert.strictEqual(attributesOf(resources[0]?.resource.attributes ?? [])["service.name"], "export-test")
      assert.strictEqual(attributesOf(resources[0]?.resource.attributes ?? [])["service.version"], "1.2.3")
      const spans = resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))
      const withName = (name: string) => spans.filter((span) => span.name === name)
      const deposit = withName("CommandExecutor.execute").find((span) =>
        attributesOf(span.attributes)["eventcore.command"] === "Deposit"
      )
      assert.isDefined(deposit)
      assert.deepInclude(attributesOf(deposit?.attributes ?? []), {
        "eventcore.command": "Deposit",
        "eventcore.outcome": "ok",
        "eventcore.attempts": 1,
        "eventcore.boundary.size": 1,
        "eventcore.events": 1
      })
      const refused = withName("CommandExecutor.execute").find((span) =>
        attributesOf(span.attributes)["eventcore.command"] === "Withdraw"
      )
      assert.strictEqual(attributesOf(refused?.attributes ?? [])["eventcore.outcome"], "refused")
      const attempt = withName("CommandExecutor.attempt").find((span) => span.parentSpanId === deposit?.spanId)
      assert.isDefined(attempt, "the deposit's attempt is its child")
      assert.strictEqual(attributesOf(attempt?.attributes ?? [])["eventcore.attempt"], 1)
      assert.deepStrictEqual(
        spans.filter((span) => span.parentSpanId === attempt?.spanId).map((span) => span.name).toSorted(),
        ["EventStore.append", "EventStore.readStreams"]
      )
      // The withdrawal that met the other writer's deposit: two attempts, the first a conflict.
      const withdrawal = withName("CommandExecutor.execute").find((span) =>
        attributesOf(span.attributes)["eventcore.command"] === "Withdraw" &&
        attributesOf(span.attributes)["eventcore.outcome"] === "ok"
      )
      assert.strictEqual(attributesOf(withdrawal?.attributes ?? [])["eventcore.attempts"], 2)
      const withdrawalAttempts = withName("CommandExecutor.attempt")
        .filter((span) => span.parentSpanId === withdrawal?.spanId)
        .map((span) => attributesOf(span.attributes))
      assert.deepStrictEqual(
        withdrawalAttempts.map((
          a
        ) => [a["eventcore.attempt"], a["eventcore.outcome"], a["eventcore.conflicting_streams"]]),
        [[1, "conflict", ["account-alice"]], [2, "ok", undefined]]
      )
      const batch = withName("ProjectionRunner.batch")[0]
      assert.strictEqual(attributesOf(batch?.attributes ?? [])["eventcore.projection"], "balances")
      const pages = withName("Subscription.page").map((span) => attributesOf(span.attributes))
      assert.isTrue(pages.some((page) => typeof page["eventcore.page.after"] === "string"))
      assert.isTrue(pages.some((page) => (page["eventcore.events"] as number) > 0))

      // OTLP metrics: the same counters, with their attributes.
      const metricRequests = (otlp.requests.get("/v1/metrics") ?? []) as ReadonlyArray<MetricsRequest>
      assert.isAtLeast(metricRequests.length, 1)
      const last = metricRequests[metricRequests.length - 1]
      const metrics = (last?.resourceMetrics ?? []).flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
      // A counter's value: `asDouble` (Effect counts in numbers) or `asInt` (bigint counters).
      const point = (name: string, attributes: Record<string, string>) => {
        const found = metrics.find((m) => m.name === name)?.sum?.dataPoints.find((p) => {
          const has = attributesOf(p.attributes)
          return Object.entries(attributes).every(([key, value]) => has[key] === value)
        })
        return Number(found?.asInt ?? found?.asDouble ?? 0)
      }
      assert.strictEqual(point("eventcore.commands", { command: "Deposit", outcome: "ok" }), 1)
      assert.strictEqual(
        point("eventcore.commands", { command: "Withdraw", outcome: "refused" }),
        1
      )
      assert.strictEqual(
        point("eventcore.projection.events", { projection: "balances", outcome: "processed" }),
        5
      )
      assert.strictEqual(point("eventcore.events.appended", { category: "account" }), 4)
      assert.strictEqual(point("eventcore.conflicts", { category: "account" }), 1)
      // the refused withdrawal's one attempt, and the conflicting one's two
      assert.strictEqual(point("eventcore.command.attempts", { command: "Withdraw" }), 3)
      const appends = metrics.find((m) => m.name === "eventcore.append.duration")?.histogram?.dataPoints ?? []
      const appendsBy = (outcome: string) =>
        appends.filter((p) => attributesOf(p.attributes)["outcome"] === outcome).reduce(
          (n, p) => n + Number(p.count),
          0
        )
      assert.strictEqual(appendsBy("conflict"), 1)
      assert.strictEqual(appendsBy("ok"), 4)
      const durations = metrics.find((m) => m.name === "eventcore.command.duration")?.histogram?.dataPoints ?? []
      assert.isTrue(durations.some((p) => attributesOf(p.attributes)["command"] === "Deposit" && Number(p.count) === 1))
    }))
})
