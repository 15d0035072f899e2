/**
 * Health checks with liveness and readiness semantics (ADR 17), for any store: is the store
 * reachable and how fast, how far the read horizon trails, what each projection runner is
 * doing and how far behind it is, and how many events were dead-lettered.
 *
 * A report has three answers, for three audiences:
 *
 * - `live`: the process is not wedged. Only a check that a restart would cure takes it away
 *   (a projection runner that has stopped for good). An unreachable store, a faulted
 *   projection or a held read horizon do not: restarting would not fix them, and a restart
 *   loop would make things worse.
 * - `ready`: the process can serve commands: live, and the store answers (and, on PostgreSQL,
 *   its schema is at the library's version).
 * - `status`: the worst of every check, for people and dashboards. `degraded` (a lag or a
 *   read horizon over its threshold, dead letters, a retrying runner, a slow store) leaves the
 *   process live and ready; `unhealthy` needs someone to act.
 *
 * PostgreSQL adds the schema version, every projection known to the store and its checkpoint,
 * all from a bare connection: `PostgresHealth` (`eventcore/postgres`).
 *
 * @since 0.3.0
 */
import { Context, DateTime, Duration, Effect, Layer, Option } from "effect"
import { DeadLetterStore } from "./DeadLetterStore.ts"
import * as EventStore from "./EventStore.ts"
import * as Checks from "./internal/HealthChecks.ts"
import type { Runner } from "./ProjectionRunner.ts"

/**
 * How a check, or a whole report, stands: `healthy`; `degraded` (works, but something is over
 * a threshold and worth a look); `unhealthy` (broken, or could not be checked).
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * const alert = (status: Health.Status): boolean => status === "unhealthy"
 * ```
 * @since 0.3.0
 */
export type Status = "healthy" | "degraded" | "unhealthy"

/**
 * What an `unhealthy` check takes away besides the status: `"liveness"` (the report is not
 * live, nor ready) or `"readiness"` (the report is not ready). A check without a gate only
 * sets the status.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * // A check of your own that, when unhealthy, takes readiness away.
 * const gate: Health.Gate = "readiness"
 * ```
 * @since 0.3.0
 */
export type Gate = "liveness" | "readiness"

/**
 * One check's result.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * const failing = (report: Health.Report): ReadonlyArray<Health.Check> =>
 *   report.checks.filter((check) => check.status !== "healthy")
 * ```
 * @since 0.3.0
 */
export interface Check {
  /** `store`, `schema`, `read-horizon`, `projection:<name>`, `dead-letters`, or yours. */
  readonly name: string
  readonly status: Status
  /** What was found, for a person. */
  readonly message: string
  /** How long the check took (for `store`, the store's round trip). */
  readonly millis: number
  /** What was found, for a program (JSON-friendly). */
  readonly details?: Readonly<Record<string, unknown>> | undefined
  /** What this check takes away when `unhealthy`; see `Gate`. */
  readonly gate?: Gate | undefined
}

/**
 * A health report: the checks, and what they mean together (see the module's description).
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * // The status code of a readiness route.
 * const statusCode = (report: Health.Report): number => report.ready ? 200 : 503
 * ```
 * @since 0.3.0
 */
export interface Report {
  /** The worst status of all checks (`healthy` when there are none). */
  readonly status: Status
  /** No `unhealthy` check gates liveness. */
  readonly live: boolean
  /** Live, and no `unhealthy` check gates readiness. */
  readonly ready: boolean
  readonly checks: ReadonlyArray<Check>
  /** When the report was made, ISO 8601. */
  readonly checkedAt: string
}

/**
 * Which checks to run: `"liveness"` only what can take liveness away, without touching the
 * store (runner statuses); `"readiness"` also the store (and on PostgreSQL the schema);
 * `"full"` (the default) everything, lag, read horizon and dead letters included. Kubernetes
 * probes time out quickly (1 s by default): point them at the cheap modes.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * const liveness = Health.check({ mode: "liveness" }) // reads nothing from the store
 * ```
 * @since 0.3.0
 */
export type Mode = "liveness" | "readiness" | "full"

/**
 * Where `degraded` begins, and how long a check may take.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * // Below a Kubernetes probe's 1 s timeout; a projection may trail by 5 minutes.
 * const thresholds: Partial<Health.Thresholds> = { timeout: "800 millis", lagAge: "5 minutes" }
 * ```
 * @since 0.3.0
 */
export interface Thresholds {
  /** How long one check may take before it counts as unhealthy (default 5 seconds). */
  readonly timeout: Duration.Input
  /** A store round trip slower than this degrades (default 1 second). */
  readonly storeLatency: Duration.Input
  /** A projection more events behind than this degrades (default 1,000). */
  readonly lagEvents: number
  /** A projection whose oldest unprocessed event is older than this degrades (default 1 minute). */
  readonly lagAge: Duration.Input
  /**
   * Committed events waiting behind the read horizon longer than this degrade (default
   * 30 seconds, as `PostgresEventStore.defaultHorizonWarning`).
   */
  readonly horizonAge: Duration.Input
  /** More dead letters than this (all projections together) degrade (default 0: any). */
  readonly deadLetters: number
}

/**
 * The default thresholds.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * const thresholds: Partial<Health.Thresholds> = { ...Health.defaultThresholds, lagEvents: 10_000 }
 * ```
 * @since 0.3.0
 */
export const defaultThresholds: Thresholds = Checks.defaults

/**
 * What the health check needs of a projection runner: any `ProjectionRunner.Runner` is one.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Health, ProjectionRunner } from "eventcore"
 *
 * declare const Balances: Parameters<typeof ProjectionRunner.start>[0]
 *
 * const report = Effect.gen(function*() {
 *   const runner: Health.Watched = yield* ProjectionRunner.start(Balances)
 *   return yield* Health.check({ projections: [runner] })
 * })
 * ```
 * @since 0.3.0
 */
export type Watched = Pick<Runner<unknown>, "name" | "status" | "lag">

/**
 * Health check settings.
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * declare const balances: Health.Watched
 *
 * const options: Health.Options = { projections: [balances], thresholds: { lagEvents: 10_000 }, mode: "full" }
 * const report = Health.check(options)
 * ```
 * @since 0.3.0
 */
export interface Options {
  /** The projection runners of this process to report on. */
  readonly projections?: ReadonlyArray<Watched> | undefined
  /** Overrides of `defaultThresholds`. */
  readonly thresholds?: Partial<Thresholds> | undefined
  /** Which checks to run (default `"full"`). */
  readonly mode?: Mode | undefined
}

/**
 * The worst of some statuses (`healthy` for none).
 *
 * @example
 * ```ts
 * import { Health } from "eventcore"
 *
 * Health.worst(["healthy", "degraded"]) // "degraded"
 * ```
 * @since 0.3.0
 */
export const worst: (statuses: Iterable<Status>) => Status = Checks.worst

/**
 * Combines checks into a report: the worst status wins; an `unhealthy` check gated on
 * liveness makes the report neither live nor ready, one gated on readiness makes it not ready.
 *
 * @example
 * ```ts
 * import { DateTime } from "effect"
 * import { Health } from "eventcore"
 *
 * const report = Health.combine([
 *   { name: "store", status: "unhealthy", message: "failed: connection refused", millis: 3, gate: "readiness" },
 *   { name: "projection:balances", status: "degraded", message: "live; 2000 events behind", millis: 1 }
 * ], DateTime.makeUnsafe("2026-01-01T00:00:00Z"))
 * // { status: "unhealthy", live: true, ready: false, … }
 * ```
 * @since 0.3.0
 */
export const combine = (checks: ReadonlyArray<Check>, checkedAt: DateTime.DateTime): Report => {
  const takesAway = (gate: Gate) => checks.some((check) => check.status === "unhealthy" && check.gate === gate)
  const live = !takesAway("liveness")
  return {
    status: Checks.worst(checks.map((check) => check.status)),
    live,
    ready: live && !takesAway("readiness"),
    checks,
    checkedAt: DateTime.formatIso(checkedAt)
  }
}

/**
 * Runs a check of your own, timed and bounded: `effect` says what it found; a failure, a
 * defect or no answer within `timeout` is an `unhealthy` result saying so. Add the result to
 * a report with `combine`.
 *
 * @example
 * ```ts
 * import { DateTime, Effect } from "effect"
 * import { Health } from "eventcore"
 *
 * declare const pingPayments: Effect.Effect<void, Error>
 *
 * const withPayments = (report: Health.Report) =>
 *   Effect.gen(function*() {
 *     const payments = yield* Health.probe(
 *       "payments",
 *       Effect.as(pingPayments, { status: "healthy" as const, message: "answers" }),
 *       { timeout: "2 seconds" }
 *     )
 *     return Health.combine([...report.checks, payments], yield* DateTime.now)
 *   })
 * ```
 * @since 0.3.0
 */
export const probe: <E, R>(
  name: string,
  effect: Effect.Effect<Pick<Check, "status" | "message" | "details" | "gate">, E, R>,
  options: { readonly timeout: Duration.Input; readonly gate?: Gate | undefined }
) => Effect.Effect<Check, never, R> = Checks.probe

/**
 * Checks the store in context and the given runners:
 *
 * - `store` (gates readiness): reads the head; fails or times out -> unhealthy; slower than
 *   `storeLatency` -> degraded.
 * - `read-horizon`: committed events waiting longer than `horizonAge` -> degraded.
 * - `projection:<name>` per runner: `Faulted` -> unhealthy; `Stopped` -> unhealthy, gates
 *   liveness; `Retrying`, or a lag over `lagEvents`/`lagAge` -> degraded.
 * - `dead-letters`, when a `DeadLetterStore` is in context (its `counts`, not the letters):
 *   more than `deadLetters` -> degraded.
 *
 * Never fails: what cannot be checked is reported as such.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Health } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const report = Health.check().pipe(Effect.provide(MemoryEventStore.layer))
 * // { status: "healthy", live: true, ready: true, checks: [store, read-horizon], … }
 * ```
 * @since 0.3.0
 */
export const check = Effect.fn("Health.check")(function*(
  options?: Options
): Effect.fn.Return<Report, never, EventStore.EventStore> {
  const thresholds = Checks.resolve(options?.thresholds)
  const mode = options?.mode ?? "full"
  const store = yield* EventStore.EventStore
  const deadLetterStore = yield* Effect.serviceOption(DeadLetterStore)
  const checks: Array<Effect.Effect<Check>> = []
  if (mode !== "liveness") {
    checks.push(
      Checks.probe(
        "store",
        Effect.map(
          store.head,
          (head): Checks.Outcome => ({ status: "healthy", message: "answered", details: { head } })
        ),
        { timeout: thresholds.timeout, gate: "readiness" }
      ).pipe(Effect.map(Checks.storeLatency(thresholds)))
    )
  }
  if (mode === "full") {
    checks.push(Checks.probe(
      "read-horizon",
      Effect.map(store.horizon(), (horizon) => Checks.horizon(horizon, thresholds)),
      { timeout: thresholds.timeout }
    ))
  }
  for (const runner of options?.projections ?? []) checks.push(Checks.runner(runner, thresholds, mode === "full"))
  if (mode === "full" && Option.isSome(deadLetterStore)) {
    checks.push(Checks.probe(
      "dead-letters",
      Effect.map(deadLetterStore.value.counts, (counts) => Checks.deadLetters(counts, thresholds)),
      { timeout: thresholds.timeout }
    ))
  }
  const results = yield* Effect.all(checks, { concurrency: "unbounded" })
  return combine(results, yield* DateTime.now)
})

/**
 * The health check as a service, for HTTP routes and the like: `check(mode)` makes a report.
 * Provided by `layer` (any store) or `PostgresHealth.layer`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Health } from "eventcore"
 *
 * const ready = Effect.map(Health.Health.use((health) => health.check("readiness")), (report) => report.ready)
 * ```
 * @since 0.3.0
 */
export class Health extends Context.Service<Health, {
  readonly check: (mode?: Mode) => Effect.Effect<Report>
}>()("eventcore/Health") {}

/**
 * The `Health` service over the store in context (and its `DeadLetterStore`, when there is
 * one), reporting on the given runners; `check(mode)` overrides `options.mode`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Health, ProjectionRunner } from "eventcore"
 * import { MemoryEventStore, MemoryProjections } from "eventcore/memory"
 *
 * declare const Balances: Parameters<typeof ProjectionRunner.start>[0]
 *
 * // The runner lives as long as the layer; so does the service reporting on it.
 * const HealthLive = Layer.effect(
 *   Health.Health,
 *   Effect.flatMap(ProjectionRunner.start(Balances), (runner) => Health.make({ projections: [runner] }))
 * ).pipe(Layer.provideMerge(Layer.mergeAll(MemoryEventStore.layer, MemoryProjections.layer)))
 * ```
 * @since 0.3.0
 */
export const make = (options?: Options): Effect.Effect<Health["Service"], never, EventStore.EventStore> =>
  Effect.map(Effect.context<EventStore.EventStore>(), (context) =>
    Health.of({
      check: (mode) => check({ ...options, mode: mode ?? options?.mode }).pipe(Effect.provideContext(context))
    }))

/**
 * `make` as a layer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Health } from "eventcore"
 * import { MemoryEventStore } from "eventcore/memory"
 *
 * const HealthLive = Health.layer().pipe(Layer.provide(MemoryEventStore.layer))
 * ```
 * @since 0.3.0
 */
export const layer = (options?: Options): Layer.Layer<Health, never, EventStore.EventStore> =>
  Layer.effect(Health, make(options))
