/**
 * Timing helpers for benchmarks: throughput and latency percentiles, and the JSON/markdown
 * reports. Benchmarks measure; tests never assert timings.
 */
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { performance } from "node:perf_hooks"

export interface Result {
  readonly scenario: string
  readonly unit: string
  readonly operations: number
  readonly seconds: number
  readonly perSecond: number
  readonly latencyMs?: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number }
  readonly target?: number
  readonly note?: string
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0

export const latencies = (samples: Array<number>) => {
  const sorted = samples.sort((a, b) => a - b)
  const round = (n: number) => Math.round(n * 1000) / 1000
  return {
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0)
  }
}

/** Runs `effect` once, returning its value and the wall-clock seconds it took. */
export const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.map(effect, (value) => ({ value, seconds: (performance.now() - start) / 1000 }))
  })

/** Wraps one operation so that its latency is recorded into `samples`. */
export const sampled = <A, E, R>(samples: Array<number>, effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const start = performance.now()
    return Effect.tap(effect, () => Effect.sync(() => samples.push(performance.now() - start)))
  })

export const format = (r: Result): string => {
  const rate = Math.round(r.perSecond).toLocaleString("en-US")
  const target = r.target === undefined
    ? ""
    : ` (target ${r.target.toLocaleString("en-US")}: ${r.perSecond >= r.target ? "met" : "MISSED"})`
  const lat = r.latencyMs === undefined
    ? ""
    : ` p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms`
  return `${r.scenario}: ${rate} ${r.unit}/s${target}${lat}${r.note === undefined ? "" : ` — ${r.note}`}`
}

export const writeJson = (name: string, results: ReadonlyArray<Result>) => {
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true })
  const file = new URL(`./results/${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`, import.meta.url)
  writeFileSync(file, JSON.stringify({ node: process.version, results }, null, 2))
  return file.pathname
}
