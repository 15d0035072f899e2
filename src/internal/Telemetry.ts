/**
 * Recording EventCore's metrics on hot paths: each series (a metric with its attributes
 * bound) is made once, and updated synchronously in the fiber's context, with no Effect step.
 *
 * @internal
 */
import { Cause, Context, Effect, Exit, type Fiber, Metric, Predicate, Tracer } from "effect"
import type { ConcurrencyConflict } from "../Errors.ts"
import {
  appendDuration,
  categoryAttribute,
  commandAttempts,
  commandDuration,
  commands,
  conflicts,
  durationBoundaries,
  eventsAppended,
  horizonLagMillis,
  horizonPending,
  projectionDeadLetters,
  projectionEvents,
  projectionLagEvents,
  projectionLagMillis,
  subscriptionEvents,
  subscriptionPages
} from "../Metrics.ts"

type Attributes = Readonly<Record<string, string>>

/**
 * One series (a metric with its attributes bound) per distinct attribute values, made once:
 * a metric built with its attributes keeps its registry key, where `withAttributes` would
 * rebuild it on every update. The values come from a bounded vocabulary (command names,
 * outcomes, categories, projection names).
 */
const seriesOf = <M>(make: (attributes: Attributes) => M) => {
  const cache = new Map<string, M>()
  return (key: string, attributes: Attributes): M => {
    let series = cache.get(key)
    if (series === undefined) {
      series = make(attributes)
      cache.set(key, series)
    }
    return series
  }
}

const counterSeries = (name: string, description: string) =>
  seriesOf((attributes) => Metric.counter(name, { description, incremental: true, attributes }))
const histogramSeries = (name: string, description: string) =>
  seriesOf((attributes) => Metric.histogram(name, { description, boundaries: durationBoundaries, attributes }))
const gaugeSeries = (name: string, description: string) =>
  seriesOf((attributes) => Metric.gauge(name, { description, attributes }))

const describe = (metric: { readonly id: string; readonly description: string | undefined }) =>
  [metric.id, metric.description ?? ""] as const

const series = {
  commands: counterSeries(...describe(commands)),
  commandDuration: histogramSeries(...describe(commandDuration)),
  commandAttempts: counterSeries(...describe(commandAttempts)),
  conflicts: counterSeries(...describe(conflicts)),
  eventsAppended: counterSeries(...describe(eventsAppended)),
  appendDuration: histogramSeries(...describe(appendDuration)),
  projectionEvents: counterSeries(...describe(projectionEvents)),
  projectionDeadLetters: counterSeries(...describe(projectionDeadLetters)),
  projectionLagMillis: gaugeSeries(...describe(projectionLagMillis)),
  projectionLagEvents: gaugeSeries(...describe(projectionLagEvents))
}

/**
 * Whether this fiber makes EventCore's fine-grained spans (attempts, discovery, store
 * operations, subscription pages): only for a tracer that records them. Effect's native tracer
 * (the default) keeps spans in memory and exports nothing, so an in-memory command does not pay
 * for spans nobody can see.
 */
export const tracing = (fiber: Fiber.Fiber<unknown, unknown>): boolean =>
  fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer

/**
 * The level of the fine-grained spans: with `Tracer.MinimumTraceLevel` at `Info` they, and the
 * statement spans under them, are not sampled (not exported), leaving the command and batch
 * spans.
 */
export const fineGrained = { level: "Debug" } as const

/**
 * Runs `body` in a span named `name` when the fiber's tracer records spans (see `tracing`),
 * else without one (`body` then gets `undefined`). `body` runs when the span has started, and
 * sets its attributes, so none are built when nothing records them; what it returns runs as
 * the span's child. One step when nothing records spans.
 */
export const span = <A, E, R>(
  name: string,
  body: (current: Tracer.Span | undefined, fiber: Fiber.Fiber<unknown, unknown>) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    tracing(fiber)
      ? Effect.useSpan(
        name,
        fineGrained,
        (made) => Effect.withParentSpan(body(made, fiber), made, { captureStackTrace: false })
      )
      : body(undefined, fiber)
  )

/** What the executor knows of one execution while it runs. */
export interface Execution {
  readonly command: string
  readonly started: number
  attempts: number
}

/**
 * Counts an attempt's failure if it is a conflict, by the category of every stream that had
 * moved (only failures reach here: a command that succeeds at once pays nothing). Called once
 * per failed attempt, the last one included; the retry decision is the executor's.
 */
export const countConflict = (error: unknown, context: Context.Context<never>): void => {
  if (!Predicate.isTagged(error, "ConcurrencyConflict")) return
  for (const conflict of (error as ConcurrencyConflict).conflicts) {
    const category = categoryAttribute(conflict.streamId)
    series.conflicts(category, { category }).updateUnsafe(1, context)
  }
}

/** A command's (or one attempt's) outcome: `ok`, `refused`, `conflict`, `invalid` or `error`. */
export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) return "ok"
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure === undefined) return "error"
  switch ((failure.error as { readonly _tag?: unknown })._tag) {
    case "BusinessRuleViolation":
      return "refused"
    case "ConcurrencyConflict":
      return "conflict"
    case "InvalidInput":
      return "invalid"
    default:
      return "error"
  }
}

/**
 * Records how an execution ended: the command's count by outcome, its duration and attempts,
 * the events it appended by category, and the same on its span.
 */
export const observeCommand = (
  execution: Execution,
  exit: Exit.Exit<
    {
      readonly events: ReadonlyArray<{ readonly streamId: string }>
      readonly versions: ReadonlyArray<unknown>
      readonly replayed: boolean
    },
    unknown
  >,
  now: number,
  context: Context.Context<never>
): void => {
  const { attempts, command } = execution
  const outcome = outcomeOf(exit)
  series.commands(`${command}\u0000${outcome}`, { command, outcome }).updateUnsafe(1, context)
  series.commandDuration(command, { command }).updateUnsafe(now - execution.started, context)
  if (attempts > 0) series.commandAttempts(command, { command }).updateUnsafe(attempts, context)
  const parent = Context.getOrUndefined(context, Tracer.ParentSpan)
  const recording = parent !== undefined && parent._tag === "Span" ? parent : undefined
  recording?.attribute("eventcore.outcome", outcome)
  recording?.attribute("eventcore.attempts", attempts)
  if (Exit.isSuccess(exit)) {
    const result = exit.value
    recording?.attribute("eventcore.boundary.size", result.versions.length)
    recording?.attribute("eventcore.events", result.events.length)
    if (result.replayed) {
      recording?.attribute("eventcore.replayed", true)
      return
    }
    for (const event of result.events) {
      const category = categoryAttribute(event.streamId)
      series.eventsAppended(category, { category }).updateUnsafe(1, context)
    }
    return
  }
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined && Predicate.isTagged(failure.error, "ConcurrencyConflict")) {
    recording?.attribute(
      "eventcore.conflicting_streams",
      (failure.error as ConcurrencyConflict).conflicts.map((c) => c.streamId)
    )
  }
}

/** Records one append's latency (from `started`, in the clock's nanoseconds) by outcome. */
export const observeAppend = (
  outcome: "ok" | "conflict" | "error",
  started: bigint,
  env: { readonly clock: { currentTimeNanosUnsafe(): bigint }; readonly context: Context.Context<never> }
): void => {
  const millis = Number(env.clock.currentTimeNanosUnsafe() - started) / 1_000_000
  series.appendDuration(outcome, { outcome }).updateUnsafe(millis, env.context)
}

/** Records one page a subscription read, and the events it delivered. */
export const observePage = (events: number, context: Context.Context<never>): void => {
  subscriptionPages.updateUnsafe(1, context)
  if (events > 0) subscriptionEvents.updateUnsafe(events, context)
}

/**
 * Records a projection batch's events: `processed`, and `skipped` (failed, skipped by the
 * failure policy and recorded in the dead letters), as the runner counts them.
 */
export const observeProjectionBatch = (
  projection: string,
  processed: number,
  skipped: number,
  context: Context.Context<never>
): void => {
  // `processed` counts every event handled, skipped ones included (as the runner's `processed`).
  const ok = processed - skipped
  if (ok > 0) {
    series.projectionEvents(`${projection}\u0000processed`, { projection, outcome: "processed" }).updateUnsafe(
      ok,
      context
    )
  }
  if (skipped > 0) {
    series.projectionEvents(`${projection}\u0000skipped`, { projection, outcome: "skipped" })
      .updateUnsafe(skipped, context)
    // Every skipped event is recorded as a dead letter in the same batch.
    series.projectionDeadLetters(projection, { projection }).updateUnsafe(skipped, context)
  }
}

/** Sets a projection's time lag gauge. */
export const observeProjectionLag = (projection: string, millis: number, context: Context.Context<never>): void =>
  series.projectionLagMillis(projection, { projection }).updateUnsafe(Math.max(0, millis), context)

/** Sets a projection's event lag gauge (when its `lag` is read). */
export const observeProjectionLagEvents = (projection: string, events: number, context: Context.Context<never>): void =>
  series.projectionLagEvents(projection, { projection }).updateUnsafe(events, context)

/** Sets the read-horizon gauges from a horizon report. */
export const observeHorizon = (pending: number, millis: number, context: Context.Context<never>): void => {
  horizonPending.updateUnsafe(pending, context)
  horizonLagMillis.updateUnsafe(millis, context)
}
