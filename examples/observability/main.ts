// EventCore's spans and metrics, exported: OTLP/HTTP to a collector, and a Prometheus scrape
// endpoint (the recipe is Observability.ts; docs/observability.md explains it). Runs a few
// commands and a projection on the in-memory store, scrapes its own endpoint, and stops: on
// the way out the exporters send what they hold.
//
//   OTEL_EXPORTER_OTLP_ENDPOINT  default http://localhost:4318 (nothing listening is fine: the
//                                spans and metrics are dropped)
//   PROMETHEUS_PORT              default 9464; 0 picks a free port
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { CommandExecutor, EventStore, Projection, ProjectionRunner, StreamId } from "eventcore"
import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
import { AccountEvents, balanceDelta, Deposit, OpenAccount, Transfer, Withdraw } from "../banking/Account.ts"
import * as Observability from "./Observability.ts"

const otlpUrl = process.env["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "http://localhost:4318"
const prometheusPort = Number(process.env["PROMETHEUS_PORT"] ?? 9464)

const Telemetry = Observability.layer({
  otlpUrl,
  prometheusPort,
  resource: {
    serviceName: "eventcore-observability-example",
    serviceVersion: "0.3.0",
    attributes: { "deployment.environment.name": "development" }
  }
})

const EventCore = CommandExecutor.layer().pipe(Layer.provideMerge(MemoryEventStore.layer))

const alice = StreamId.makeUnsafe("account-alice")
const bob = StreamId.makeUnsafe("account-bob")

const program = Effect.scoped(Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const port = server.address._tag === "UnixPathAddress" ? prometheusPort : server.address.port
  yield* Console.log(`EventCore observability example: OTLP to ${otlpUrl}, Prometheus on :${port}/metrics`)

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
  yield* CommandExecutor.execute(Transfer, { from: alice, to: bob, amount: 30 })
  const refused = yield* Effect.flip(CommandExecutor.execute(Withdraw, { account: bob, amount: 500 }))
  yield* Console.log(`commands: 4 ok, 1 refused (${refused._tag})`)

  yield* runner.awaitPosition(yield* EventStore.EventStore.use((store) => store.head))
  yield* Console.log(`projection balances: alice ${balances.get(alice)}, bob ${balances.get(bob)}`)

  // What Prometheus would scrape.
  const scraped = yield* Effect.promise(() => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()))
  const commands = scraped.split("\n").filter((line) => line.startsWith("eventcore_commands"))
  yield* Console.log(`scraped /metrics, ${commands.length} eventcore_commands series:\n  ${commands.join("\n  ")}`)
}))

program.pipe(
  Effect.provide(Layer.mergeAll(EventCore, MemoryProjections.layer)),
  Effect.andThen(Console.log("done: the exporters send the rest as the application stops")),
  Effect.provide(Telemetry),
  NodeRuntime.runMain
)
