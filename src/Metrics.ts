/**
 * EventCore's metrics, as Effect `Metric`s with stable names and attributes: export them with
 * whatever exporter the application uses (OpenTelemetry, Prometheus), or read them with
 * `Metric.value` / `Metric.snapshot`. docs/operations.md lists them in one table.
 *
 * Durations are in milliseconds. `category` is a stream's category under the
 * `<category>-<id>` convention (`StreamCategory.of`), or `"none"`.
 *
 * @since 0.3.0
 */
import { Metric } from "effect"
import { of as categoryOf } from "./StreamCategory.ts"

/**
 * The bucket boundaries of every duration histogram, in milliseconds (0.25 ms to about 8 s).
 *
 * @example
 * ```ts
 * import { Metrics } from "eventcore"
 *
 * Metrics.durationBoundaries.length // 16
 * ```
 * @since 0.3.0
 */
export const durationBoundaries: ReadonlyArray<number> = Metric.exponentialBoundaries({
  start: 0.25,
  factor: 2,
  count: 16
})

/**
 * Commands executed, by `command` and `outcome`: `ok`, `refused` (a `BusinessRuleViolation`),
 * `conflict` (still conflicting after the retries), `invalid` (`InvalidInput`), `error`
 * (anything else: the store failed, a decode error, a defect).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const refusedTransfers = Metric.value(Metric.withAttributes(Metrics.commands, { command: "Transfer", outcome: "refused" }))
 * ```
 * @since 0.3.0
 */
export const commands = Metric.counter("eventcore.commands", {
  description: "Commands executed, by command and outcome (ok, refused, conflict, invalid, error)",
  incremental: true
})

/**
 * How long a command took, every attempt included, by `command`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const transfers = Metric.value(Metric.withAttributes(Metrics.commandDuration, { command: "Transfer" }))
 * ```
 * @since 0.3.0
 */
export const commandDuration = Metric.histogram("eventcore.command.duration", {
  description: "Command duration in milliseconds, every attempt included, by command",
  boundaries: durationBoundaries
})

/**
 * Attempts made, by `command`: attempts over commands is the average number of tries.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const attempts = Metric.value(Metric.withAttributes(Metrics.commandAttempts, { command: "Transfer" }))
 * ```
 * @since 0.3.0
 */
export const commandAttempts = Metric.counter("eventcore.command.attempts", {
  description: "Command attempts (each read, decide and append), by command",
  incremental: true
})

/**
 * Conflicts met by commands (each one retried, or the last one returned), by the `category` of
 * the stream that had moved.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const onAccounts = Metric.value(Metric.withAttributes(Metrics.conflicts, { category: "account" }))
 * ```
 * @since 0.3.0
 */
export const conflicts = Metric.counter("eventcore.conflicts", {
  description: "Concurrency conflicts met by commands, by the category of the stream that moved",
  incremental: true
})

/**
 * Events appended by commands, by stream `category`.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const accountEvents = Metric.value(Metric.withAttributes(Metrics.eventsAppended, { category: "account" }))
 * ```
 * @since 0.3.0
 */
export const eventsAppended = Metric.counter("eventcore.events.appended", {
  description: "Events appended by commands, by stream category",
  incremental: true
})

/**
 * How long the store took to append, per attempt of a command, by `outcome` (`ok`,
 * `conflict`, `error`).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const appends = Metric.value(Metric.withAttributes(Metrics.appendDuration, { outcome: "ok" }))
 * ```
 * @since 0.3.0
 */
export const appendDuration = Metric.histogram("eventcore.append.duration", {
  description: "Store append latency in milliseconds, per command attempt, by outcome (ok, conflict, error)",
  boundaries: durationBoundaries
})

/**
 * Pages a subscription read from the store (catch-up and live).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const pages = Metric.value(Metrics.subscriptionPages)
 * ```
 * @since 0.3.0
 */
export const subscriptionPages = Metric.counter("eventcore.subscription.pages", {
  description: "Pages read by subscriptions",
  incremental: true
})

/**
 * Events subscriptions delivered.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const delivered = Metric.value(Metrics.subscriptionEvents)
 * ```
 * @since 0.3.0
 */
export const subscriptionEvents = Metric.counter("eventcore.subscription.events", {
  description: "Events delivered by subscriptions",
  incremental: true
})

/**
 * Events a projection runner handled, by `projection` and `outcome`: `processed`, or `skipped`
 * (failed, skipped by the failure policy and recorded in the dead letters; the runner's
 * `metrics.skipped`). Rolled-back batches of a transactional projection are not counted.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const poison = Metric.value(Metric.withAttributes(Metrics.projectionEvents, { projection: "balances", outcome: "skipped" }))
 * ```
 * @since 0.3.0
 */
export const projectionEvents = Metric.counter("eventcore.projection.events", {
  description: "Events handled by projection runners, by projection and outcome (processed, skipped)",
  incremental: true
})

/**
 * Dead letters projection runners recorded, by `projection`: each event a failure policy
 * skipped is recorded in the `DeadLetterStore`, and counted here when the batch that skipped
 * it completes (a rolled-back batch counts nothing, like `eventcore.projection.events`). The
 * same events are `skipped` in `eventcore.projection.events`; a metric of their own, so that
 * summing that metric's outcomes never counts an event twice. Alert on either.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const letters = Metric.value(Metric.withAttributes(Metrics.projectionDeadLetters, { projection: "balances" }))
 * ```
 * @since 0.3.0
 */
export const projectionDeadLetters = Metric.counter("eventcore.projection.dead_letters", {
  description: "Dead letters recorded by projection runners, by projection",
  incremental: true
})

/**
 * How far behind its last event's commit a projection was when it finished a batch, in
 * milliseconds, by `projection`: 0 when it was live and quick, growing when it falls behind.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const lag = Metric.value(Metric.withAttributes(Metrics.projectionLagMillis, { projection: "balances" }))
 * ```
 * @since 0.3.0
 */
export const projectionLagMillis = Metric.gauge("eventcore.projection.lag.millis", {
  description: "Milliseconds between the commit of a projection's last processed event and its processing"
})

/**
 * Committed events a projection has not processed yet (visible or held behind the read
 * horizon), by `projection`, as of the last time its runner's `lag` was read (a health check,
 * the CLI, your own poll).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const behind = Metric.value(Metric.withAttributes(Metrics.projectionLagEvents, { projection: "balances" }))
 * ```
 * @since 0.3.0
 */
export const projectionLagEvents = Metric.gauge("eventcore.projection.lag.events", {
  description: "Events a projection has yet to process, as of the last read of its lag"
})

/**
 * Committed events waiting behind the read horizon (another transaction still open), as of
 * the store's last horizon report (taken while live subscribers wait, and by
 * `EventStore.horizon`).
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const held = Metric.value(Metrics.horizonPending)
 * ```
 * @since 0.3.0
 */
export const horizonPending = Metric.gauge("eventcore.read_horizon.pending", {
  description: "Committed events waiting behind the read horizon, as of the last horizon report"
})

/**
 * How long the oldest of those events has waited, in milliseconds.
 *
 * @example
 * ```ts
 * import { Metric } from "effect"
 * import { Metrics } from "eventcore"
 *
 * const waited = Metric.value(Metrics.horizonLagMillis)
 * ```
 * @since 0.3.0
 */
export const horizonLagMillis = Metric.gauge("eventcore.read_horizon.lag.millis", {
  description: "Milliseconds the oldest event behind the read horizon has waited, as of the last horizon report"
})

/**
 * A stream id's category attribute.
 *
 * @example
 * ```ts
 * import { Metrics } from "eventcore"
 *
 * Metrics.categoryAttribute("account-42") // "account"
 * Metrics.categoryAttribute("singleton") // "none"
 * ```
 * @since 0.3.0
 */
export const categoryAttribute = (streamId: string): string => categoryOf(streamId) ?? "none"
