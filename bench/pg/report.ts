/**
 * Writes the "PostgreSQL" section of docs/benchmarks.md, leaving every other section as it is.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import type { Result } from "../Measure.ts"

const file = new URL("../../docs/benchmarks.md", import.meta.url)
const heading = "## PostgreSQL"

const row = (r: Result): string => {
  const rate = Math.round(r.perSecond).toLocaleString("en-US")
  const lat = r.latencyMs === undefined ? "" : `${r.latencyMs.p50} / ${r.latencyMs.p95} / ${r.latencyMs.p99}`
  const target = r.target === undefined
    ? ""
    : `${r.target.toLocaleString("en-US")} ${r.perSecond >= r.target ? "(met)" : "(missed)"}`
  return `| ${r.scenario} | ${rate} ${r.unit}/s | ${lat} | ${target} | ${r.note ?? ""} |`
}

export const writeReport = (results: ReadonlyArray<Result>, command: string): void => {
  const section = [
    heading,
    "",
    `Measured ${new Date().toISOString()} on ${cpus().length} cores, Node ${process.version}, with \`${command}\`.`,
    "Durable commits (fsync and synchronous_commit on). Each baseline is pgbench running the store's own SQL",
    "against the same schema in the same run; \"% of baseline\" is our throughput over pgbench's.",
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
    : `${current.slice(0, start)}${section}${next === -1 ? "" : current.slice(next + 1)}`
  writeFileSync(file, updated)
}
