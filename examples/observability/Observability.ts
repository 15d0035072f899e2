/**
 * The export recipe: EventCore's spans and metrics over OTLP/HTTP (to an OpenTelemetry
 * Collector, Jaeger, Grafana Tempo/Mimir, Honeycomb, ...) and a Prometheus scrape endpoint,
 * with nothing but Effect's own `effect/observability` and a Node HTTP server. Provide the
 * layer to the whole application: every command, subscription and projection runner inside
 * it is traced and measured. docs/observability.md explains each choice.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Duration, Layer } from "effect"
import { FetchHttpClient, HttpRouter } from "effect/http"
import { OtlpMetrics, OtlpSerialization, OtlpTracer, PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"

export interface Options {
  /** The OTLP/HTTP endpoint, without `/v1/...`: a collector listens on port 4318. */
  readonly otlpUrl: string
  /** Where `/metrics` is served for Prometheus; 0 picks a free port. */
  readonly prometheusPort: number
  /** OpenTelemetry resource: who is reporting (`service.name`, `service.version`, ...). */
  readonly resource: {
    readonly serviceName: string
    readonly serviceVersion: string
    readonly attributes?: Record<string, unknown>
  }
  /** How often spans and metrics are sent (default 5 s and 10 s); all are sent on shutdown. */
  readonly tracesEvery?: Duration.Input
  readonly metricsEvery?: Duration.Input
  /** How long stopping waits for the last export (default 3 s): a collector that is down does not hold the exit. */
  readonly shutdownTimeout?: Duration.Input
}

/**
 * Traces and metrics to `otlpUrl` (`/v1/traces`, `/v1/metrics`, JSON), and `/metrics` on
 * `prometheusPort`. When the layer's scope closes (the application stops), both exporters send
 * what they still hold, waiting up to `shutdownTimeout` for the endpoint.
 */
export const layer = (options: Options) => {
  const shutdownTimeout = options.shutdownTimeout ?? Duration.seconds(3)
  const otlp = Layer.mergeAll(
    OtlpTracer.layer({
      url: `${options.otlpUrl}/v1/traces`,
      resource: options.resource,
      exportInterval: options.tracesEvery ?? Duration.seconds(5),
      shutdownTimeout
    }),
    OtlpMetrics.layer({
      url: `${options.otlpUrl}/v1/metrics`,
      resource: options.resource,
      exportInterval: options.metricsEvery ?? Duration.seconds(10),
      shutdownTimeout
    })
  ).pipe(Layer.provide([OtlpSerialization.layerJson, FetchHttpClient.layer]))
  const prometheus = HttpRouter.serve(PrometheusMetrics.layerHttp(), { disableListenLog: true, disableLogger: true })
    .pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.prometheusPort })))
  return Layer.mergeAll(otlp, prometheus)
}
