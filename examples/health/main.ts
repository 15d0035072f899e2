/**
 * `npm run health`: health endpoints on Effect's HTTP server, for Kubernetes probes and
 * monitoring (docs/health.md):
 *
 * - `GET /health/live`: 200 while the process is live, 503 when not (restart it);
 * - `GET /health/ready`: 200 while it can serve commands, 503 when not (send it no traffic);
 * - `GET /health`: the whole report as JSON; 503 when its status is `unhealthy`.
 *
 * The store is in memory, or PostgreSQL when DATABASE_URL is set (schema `eventcore`, or the
 * one EVENTCORE_DEMO_SCHEMA names; migrated at start); an `audit` projection runs on it. It
 * serves on PORT (default 8080) until interrupted. With EVENTCORE_HEALTH_SELF_TEST=1 it serves
 * on a free port, asks each endpoint, makes the projection fault, asks again, prints the
 * answers and exits.
 */
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Console, Context, Effect, Layer, Redacted, Schema } from "effect"
import {
  FetchHttpClient,
  HttpClient,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  HttpServerResponse
} from "effect/http"
import { Event, EventId, EventStore, Health, Position, Projection, ProjectionRunner, StreamId } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { PostgresEventStore, PostgresHealth, PostgresProjection } from "eventcore/postgres"
import { createServer } from "node:http"

// The domain: deposits, and a projection that audits them and stops at one it cannot accept
// (a durable projection fails fast by default: someone has to look).
const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number })
const Audit = Projection.make({
  name: "audit",
  events: Event.catalog(Deposited),
  checkpoint: { everyEvents: 1 },
  handle: (deposit, stored) =>
    deposit.amount > 0
      ? Effect.void
      : Effect.fail(
        new Error(`deposit ${stored.streamId}@${stored.streamVersion} of ${deposit.amount} is not positive`)
      )
})

/** The running projection, for the health check (and the self-test). */
class AuditRunner
  extends Context.Service<AuditRunner, ProjectionRunner.Runner<void>>()("examples/health/AuditRunner")
{}

// The routes: each asks the health check for what its audience needs.
const respond = (mode: Health.Mode, ok: (report: Health.Report) => boolean) =>
  Effect.gen(function*() {
    const report = yield* Health.Health.use((health) => health.check(mode))
    return yield* HttpServerResponse.json(report, { status: ok(report) ? 200 : 503 })
  })

const Routes = HttpRouter.addAll([
  HttpRouter.route("GET", "/health/live", respond("liveness", (report) => report.live)),
  HttpRouter.route("GET", "/health/ready", respond("readiness", (report) => report.ready)),
  HttpRouter.route("GET", "/health", respond("full", (report) => report.status !== "unhealthy"))
])

// Kubernetes gives up on a probe after 1 second unless told otherwise (timeoutSeconds): each
// check gives up before that, so a slow store makes /health/ready answer 503 rather than time out.
const thresholds = { timeout: "800 millis" } as const

// The stores: in memory, or PostgreSQL (whose health check also reads the schema version,
// every checkpoint and dead letters, from the connection alone).
const inMemory = () => {
  const Stores = Layer.mergeAll(MemoryProjections.layer).pipe(Layer.provideMerge(MemoryEventStore.layer))
  const Runner = Layer.effect(AuditRunner, ProjectionRunner.start(Audit)).pipe(Layer.provideMerge(Stores))
  const HealthLive = Layer.effect(
    Health.Health,
    Effect.flatMap(AuditRunner, (runner) => Health.make({ projections: [runner], thresholds }))
  )
  return HealthLive.pipe(Layer.provideMerge(Runner))
}

const onPostgres = (url: string, schema: string) => {
  const Client = PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })
  const Stores = PostgresProjection.layer({ schema }).pipe(
    Layer.provideMerge(PostgresEventStore.layer({ schema })),
    Layer.provideMerge(Client)
  )
  const Runner = Layer.effect(AuditRunner, ProjectionRunner.start(Audit)).pipe(Layer.provideMerge(Stores))
  const HealthLive = Layer.effect(
    Health.Health,
    Effect.flatMap(AuditRunner, (runner) => PostgresHealth.make({ schema, projections: [runner], thresholds }))
  )
  return HealthLive.pipe(Layer.provideMerge(Runner))
}

const databaseUrl = process.env["DATABASE_URL"]
const schema = process.env["EVENTCORE_DEMO_SCHEMA"] ?? "eventcore"
const App = databaseUrl === undefined ? inMemory() : onPostgres(databaseUrl, schema)
const where = databaseUrl === undefined ? "the in-memory store" : `PostgreSQL (schema ${schema})`

/** The server: the routes over the app's health check, on Node's HTTP server. */
const serve = (port: number) =>
  HttpRouter.serve(Routes, { disableLogger: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port })),
    Layer.provideMerge(App)
  )

// The self-test: a few deposits, each endpoint, a deposit the audit refuses, each endpoint again.
const deposit = (account: string, amount: number) =>
  Effect.gen(function*() {
    const streamId = StreamId.makeUnsafe(account)
    const appended = yield* EventStore.append({
      streams: [{ streamId, expected: "any" }],
      events: [{
        streamId,
        eventId: yield* EventId.make,
        type: "Deposited",
        schemaVersion: 1,
        payload: Deposited.make({ amount }),
        metadata: { correlationId: "health-demo", causationId: "health-demo", custom: {} }
      }]
    })
    return appended.events[0]?.position ?? Position.initial
  })

/** What the self-test reads of a report: parsed, not assumed. */
const ReportBody = Schema.Struct({
  status: Schema.Literals(["healthy", "degraded", "unhealthy"]),
  live: Schema.Boolean,
  ready: Schema.Boolean,
  checks: Schema.Array(Schema.Struct({ name: Schema.String, status: Schema.String, message: Schema.String }))
})
const readReport = HttpIncomingMessage.schemaBodyJson(ReportBody)

const ask = (base: string, path: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(`${base}${path}`)
    const report = yield* readReport(response)
    yield* Console.log(
      `GET ${path} -> ${response.status} (status ${report.status}, live ${report.live}, ready ${report.ready})`
    )
    if (path === "/health") {
      for (const check of report.checks) yield* Console.log(`  ${check.name}: ${check.status} (${check.message})`)
    }
  })

const askAll = (base: string) =>
  Effect.forEach(["/health/live", "/health/ready", "/health"], (path) => ask(base, path), { discard: true })

const selfTest = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const base = HttpServer.formatAddress(server.address)
  const runner = yield* AuditRunner
  yield* Console.log(`EventCore health endpoints on ${where}, at ${base}`)
  const run = (yield* Effect.clockWith((clock) => clock.currentTimeMillis)).toString(36)
  yield* deposit(`account-${run}-1`, 100)
  yield* runner.awaitPosition(yield* deposit(`account-${run}-2`, 50))
  yield* askAll(base)

  yield* Console.log("a deposit the audit refuses:")
  yield* deposit(`account-${run}-1`, -5)
  yield* runner.awaitStatus("Faulted")
  yield* askAll(base)
}).pipe(
  Effect.provide(serve(0)),
  Effect.provide(FetchHttpClient.layer)
)

const main = process.env["EVENTCORE_HEALTH_SELF_TEST"] === "1"
  ? selfTest
  : Layer.launch(serve(Number(process.env["PORT"] ?? 8080)))

main.pipe(NodeRuntime.runMain)
