/**
 * Writes one section of docs/benchmarks.md (memory, PostgreSQL, projections), leaving every
 * other section as it is, so each benchmark reports what it measured and nothing else.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, loadavg } from "node:os"
import type { Result } from "./Measure.ts"

const file = new URL("../docs/benchmarks.md", import.meta.url)

const row = (r: Result): string => {
  const rate = Math.round(r.perSecond).toLocaleString("en-US")
  const lat = r.latencyMs === undefined ? "" : `${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99}`
  const target = r.target === undefined
    ? ""
    : `${r.target.toLocaleString("en-US")} ${r.perSecond >= r.target ? "(met)" : "(missed)"}`
  return `| ${r.scenario} | ${rate} ${r.unit}/s | ${lat} | ${target} | ${r.note ?? ""} |`
}

/**
 * Replaces (or adds) the section `title` with a table of `results`, measured by `command`,
 * with `notes` (one paragraph per entry) under the heading.
 */
export const writeSection = (
  title: string,
  results: ReadonlyArray<Result>,
  command: string,
  notes: ReadonlyArray<string> = []
): void => {
  const heading = `## ${title}`
  const section = [
    heading,
    "",
    `Measured ${new Date().toISOString()} on ${cpus().length} cores (load average ${
      loadavg()[0]?.toFixed(1)
    } at the end), Node ${process.version}, with \`${command}\`.`,
    ...notes.flatMap((note) => ["", note]),
    "",
    "| scenario | throughput | latency p50 / p95 / p99 (ms) | target | note |",
    "|---|---|---|---|---|",
    ...results.map(row),
    ""
  ].join("\n")
  mkdirSync(new URL("./", file), { recursive: true })
  const current = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n\n"
  const start = current.indexOf(heading)
  const next = start === -1 ? -1 : current.indexOf("\n## ", start + heading.length)
  const updated = start === -1
    ? `${current.trimEnd()}\n\n${section}`
    : `${current.slice(0, start)}${section}${next === -1 ? "" : `\n${current.slice(next + 1)}`}`
  writeFileSync(file, updated)
}
