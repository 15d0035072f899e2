/**
 * The pieces every health check shares, whatever the store: thresholds, timing and timeouts
 * of one check, and what a runner's status, a read horizon and dead-letter counts say.
 * `Health` (any store) and `PostgresHealth` (a bare connection) assemble reports from them.
 *
 * @internal
 */
import { Cause, Clock, DateTime, Duration, Effect, Exit, SubscriptionRef } from "effect"
import type * as EventStore from "../EventStore.ts"
import type { Check, Gate, Status, Thresholds, Watched } from "../Health.ts"
import { describe } from "./ProjectionProcessing.ts"

/** Thresholds with every default filled in. */
export interface Resolved {
  readonly timeout: Duration.Duration
  readonly storeLatency: Duration.Duration
  readonly lagEvents: number
  readonly lagAge: Duration.Duration
  readonly horizonAge: Duration.Duration
  readonly deadLetters: number
}

export const defaults: Thresholds = {
  timeout: "5 seconds",
  storeLatency: "1 second",
  lagEvents: 1_000,
  lagAge: "1 minute",
  horizonAge: "30 seconds",
  deadLetters: 0
}

export const resolve = (given: Partial<Thresholds> | undefined): Resolved => ({
  timeout: Duration.fromInputUnsafe(given?.timeout ?? defaults.timeout),
  storeLatency: Duration.fromInputUnsafe(given?.storeLatency ?? defaults.storeLatency),
  lagEvents: given?.lagEvents ?? defaults.lagEvents,
  lagAge: Duration.fromInputUnsafe(given?.lagAge ?? defaults.lagAge),
  horizonAge: Duration.fromInputUnsafe(given?.horizonAge ?? defaults.horizonAge),
  deadLetters: given?.deadLetters ?? defaults.deadLetters
})

/** What a check found, before it is named and timed. */
export interface Outcome {
  readonly status: Status
  readonly message: string
  readonly details?: Readonly<Record<string, unknown>> | undefined
  /** Overrides the probe's gate (a stopped runner gates liveness). */
  readonly gate?: Gate | undefined
}

const order: Record<Status, number> = { healthy: 0, degraded: 1, unhealthy: 2 }

export const worst = (statuses: Iterable<Status>): Status => {
  let found: Status = "healthy"
  for (const status of statuses) if (order[status] > order[found]) found = status
  return found
}

export const duration = (millis: number): string =>
  millis < 1 ? "0ms" : Duration.format(Duration.millis(Math.round(millis)))

/**
 * Runs one check, timed, bounded by `timeout`: a failure, a defect or no answer in time is an
 * unhealthy result saying so, never an error of the report.
 */
export const probe = <E, R>(
  name: string,
  effect: Effect.Effect<Outcome, E, R>,
  options: { readonly timeout: Duration.Input; readonly gate?: Gate | undefined }
): Effect.Effect<Check, never, R> =>
  timed(
    name,
    Effect.flatMap(
      Effect.timeoutOption(effect, options.timeout),
      (answer): Effect.Effect<Outcome> =>
        answer._tag === "Some" ? Effect.succeed(answer.value) : Effect.succeed({
          status: "unhealthy",
          message: `no answer within ${Duration.format(Duration.fromInputUnsafe(options.timeout))}`
        })
    ),
    options.gate
  )

/**
 * Runs one check, timed, with no bound of its own (the caller bounds what can wait): a failure
 * or a defect is an unhealthy result saying so.
 */
const timed = <E, R>(
  name: string,
  effect: Effect.Effect<Outcome, E, R>,
  defaultGate: Gate | undefined
): Effect.Effect<Check, never, R> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(effect)
    const millis = (yield* Clock.currentTimeMillis) - start
    const outcome: Outcome = Exit.isFailure(exit)
      ? { status: "unhealthy", message: `failed: ${describe(exit.cause).message}` }
      : exit.value
    const gate = outcome.gate ?? defaultGate
    return {
      name,
      status: outcome.status,
      message: outcome.message,
      millis,
      ...(outcome.details === undefined ? {} : { details: outcome.details }),
      ...(gate === undefined ? {} : { gate })
    } satisfies Check
  })

/**
 * The store check's verdict on its round trip (the probe's time): slower than `storeLatency`
 * degrades.
 */
export const storeLatency = (thresholds: Resolved) => (check: Check): Check => {
  if (check.status !== "healthy") return check
  const took = `answered in ${duration(check.millis)}`
  return check.millis > Duration.toMillis(thresholds.storeLatency)
    ? { ...check, status: "degraded", message: `${took}, slower than ${Duration.format(thresholds.storeLatency)}` }
    : { ...check, message: took }
}

/** A horizon holder as JSON-friendly details. */
export const holderDetails = (holder: EventStore.HorizonHolder | undefined) =>
  holder === undefined ? undefined : {
    kind: holder.kind,
    transactionId: holder.transactionId,
    pid: holder.pid,
    database: holder.database,
    user: holder.user,
    applicationName: holder.applicationName,
    state: holder.state,
    since: holder.since === undefined ? undefined : DateTime.formatIso(holder.since),
    query: holder.query
  }

/**
 * A holder for a message. The pid, database, user and application of a session are visible to
 * every role; its state, start and query only to its own role and to pg_read_all_stats.
 */
const describeHolder = (holder: EventStore.HorizonHolder | undefined): string => {
  if (holder === undefined) return "a transaction this role cannot see (grant pg_read_all_stats to see it)"
  if (holder.kind === "prepared transaction") {
    return `prepared transaction ${holder.transactionId} (${holder.query ?? "?"})`
  }
  const where = `database ${holder.database ?? "?"}, user ${holder.user ?? "?"}, application ${
    JSON.stringify(holder.applicationName ?? "")
  }, transaction ${holder.transactionId}`
  return holder.state === undefined
    ? `backend pid ${holder.pid ?? "?"} (${where}, state hidden: grant pg_read_all_stats to see its state and query)`
    : `backend pid ${holder.pid ?? "?"} (${where}, ${holder.state})`
}

/** What the read horizon says: events waiting longer than `horizonAge` degrade. */
export const horizon = (report: EventStore.Horizon, thresholds: Resolved): Outcome => {
  const details = {
    visible: report.visible,
    committed: report.committed,
    pending: report.pending,
    pendingCapped: report.pendingCapped,
    pendingMillis: report.pendingMillis,
    trailingTransactions: report.trailingTransactions,
    heldBy: holderDetails(report.heldBy)
  }
  if (report.pending === 0) return { status: "healthy", message: "no committed event waits", details }
  const waiting = `${report.pending}${report.pendingCapped ? "+" : ""} committed events have waited up to ${
    duration(report.pendingMillis)
  } for ${describeHolder(report.heldBy)} to end its transaction`
  return report.pendingMillis > Duration.toMillis(thresholds.horizonAge)
    ? { status: "degraded", message: `${waiting} (more than ${Duration.format(thresholds.horizonAge)})`, details }
    : { status: "healthy", message: waiting, details }
}

/** Dead letters per projection: more than `deadLetters` in all degrade. */
export const deadLetters = (counts: Readonly<Record<string, number>>, thresholds: Resolved): Outcome => {
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0)
  const details = { total, byProjection: counts }
  if (total === 0) return { status: "healthy", message: "no dead letters", details }
  const which = Object.entries(counts).map(([name, n]) => `${name}: ${n}`).join(", ")
  return {
    status: total > thresholds.deadLetters ? "degraded" : "healthy",
    message: `${total} event${total === 1 ? "" : "s"} skipped by projections (${which}); ` +
      "see DeadLetterStore.list, fix the cause, rebuild",
    details
  }
}

/** What lag says: more than `lagEvents` events or an oldest event older than `lagAge` degrade. */
export const lag = (
  behind: { readonly events: number; readonly capped: boolean; readonly millis: number },
  thresholds: Resolved,
  where = "behind"
): { readonly status: Status; readonly message: string } => {
  const text = behind.events === 0
    ? "caught up"
    : `${behind.events}${behind.capped ? "+" : ""} event${behind.events === 1 ? "" : "s"} ${where}, the oldest ${
      duration(behind.millis)
    } old`
  const over = behind.events > thresholds.lagEvents || behind.millis > Duration.toMillis(thresholds.lagAge)
  return {
    status: over ? "degraded" : "healthy",
    message: over
      ? `${text} (thresholds: ${Number.isFinite(thresholds.lagEvents) ? `${thresholds.lagEvents} events, ` : ""}${
        Duration.format(thresholds.lagAge)
      })`
      : text
  }
}

/** What a runner's status says, on its own. */
export const runnerStatus = (runner: Watched) =>
  Effect.map(SubscriptionRef.get(runner.status), (status): Outcome => {
    switch (status._tag) {
      case "Live":
        return { status: "healthy", message: "live", details: { runner: status._tag } }
      case "CatchingUp":
        return { status: "healthy", message: "catching up", details: { runner: status._tag } }
      case "Standby":
        return {
          status: "healthy",
          message: "standby: another runner holds the projection's lock",
          details: { runner: status._tag }
        }
      case "Retrying":
        return {
          status: "degraded",
          message: `retrying after a transient store error (attempt ${status.attempt}, next in ${
            Duration.format(status.delay)
          }): ${status.message}`,
          details: { runner: status._tag, attempt: status.attempt, error: status.message }
        }
      case "Faulted":
        return {
          status: "unhealthy",
          message: `faulted: ${status.message}; fix the cause, then restart or rebuild it`,
          details: {
            runner: status._tag,
            error: status.message,
            event: status.event === undefined ? undefined : {
              eventId: status.event.eventId,
              streamId: status.event.streamId,
              streamVersion: status.event.streamVersion,
              type: status.event.type,
              position: status.event.position
            }
          }
        }
      case "Stopped":
        return {
          status: "unhealthy",
          message: "stopped: its scope closed, and nothing in this process will start it again",
          details: { runner: status._tag },
          gate: "liveness"
        }
    }
  })

/**
 * A runner's check: its status and, when `withLag`, its lag against the thresholds. A lag the
 * store cannot tell degrades (the store's own check says whether the store is down).
 *
 * One bound, `timeout`, as every check: the status is in memory and answers at once, so only
 * the lag read is bounded, and a lag read that does not answer leaves the status known.
 */
export const runner = (watched: Watched, thresholds: Resolved, withLag: boolean): Effect.Effect<Check> =>
  timed(
    `projection:${watched.name}`,
    Effect.gen(function*() {
      const current = yield* runnerStatus(watched)
      const tag = current.details?.["runner"]
      if (!withLag || tag === "Stopped") return current
      const read = yield* Effect.exit(Effect.timeoutOption(watched.lag, thresholds.timeout))
      if (Exit.isFailure(read) || read.value._tag === "None") {
        const why = Exit.isFailure(read)
          ? describe(read.cause).message
          : `no answer within ${Duration.format(thresholds.timeout)}`
        return {
          ...current,
          status: worst([current.status, "degraded"]),
          message: `${current.message}; lag unknown: ${why}`
        }
      }
      const behind = read.value.value
      const verdict = lag(behind, thresholds)
      // A runner that has processed the last event goes live only once its subscription says
      // it reached the end: until then "catching up; caught up" would contradict itself.
      const message = tag === "CatchingUp" && behind.events === 0
        ? "no event behind (status: catching up, not yet live)"
        : `${current.message}; ${verdict.message}`
      return {
        ...current,
        status: worst([current.status, verdict.status]),
        message,
        details: {
          ...current.details,
          lag: {
            events: behind.events,
            capped: behind.capped,
            millis: behind.millis,
            pending: behind.pending,
            heldBy: holderDetails(behind.heldBy)
          }
        }
      }
    }),
    undefined
  )

/** Renders a failure cause for a check's message. */
export const failure = (cause: Cause.Cause<unknown>): string => describe(cause).message
