#!/usr/bin/env node
// `npm run test:stress`: the whole test suite twice at the same time, as two developers (or a
// developer and CI) would run it on one machine, sharing its cores and its PostgreSQL. Each run
// keeps its own output in a temporary directory; the script prints both summaries and fails if
// either run failed. A test that only passes on an idle machine fails here.
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const runs = Number(process.env.EVENTCORE_STRESS_RUNS ?? 2)
const dir = mkdtempSync(join(tmpdir(), "eventcore-stress-"))
const started = Date.now()

const run = (index) =>
  new Promise((resolve) => {
    const report = join(dir, `run-${index}.json`)
    const log = join(dir, `run-${index}.log`)
    const child = spawn("npx", ["vitest", "run"], {
      env: { ...process.env, EVENTCORE_VITEST_REPORT: report, FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const chunks = []
    child.stdout.on("data", (chunk) => chunks.push(chunk))
    child.stderr.on("data", (chunk) => chunks.push(chunk))
    child.on("close", async (code) => {
      const { writeFileSync } = await import("node:fs")
      const output = Buffer.concat(chunks).toString("utf8")
      writeFileSync(log, output)
      let summary = `run ${index}: exit ${code}`
      try {
        const r = JSON.parse(readFileSync(report, "utf8"))
        summary += `, ${r.numPassedTests} passed, ${r.numFailedTests} failed`
        const failed = r.testResults.flatMap((file) =>
          file.assertionResults.filter((t) => t.status === "failed").map((t) => `  ✗ ${t.fullName}`)
        )
        if (failed.length > 0) summary += `\n${failed.join("\n")}`
      } catch {
        summary += " (no report: see the log)"
      }
      resolve({ code, summary: `${summary}\n  log: ${log}` })
    })
  })

const results = await Promise.all(Array.from({ length: runs }, (_, i) => run(i + 1)))
for (const { summary } of results) console.log(summary)
console.log(`${runs} runs at once in ${((Date.now() - started) / 1000).toFixed(0)} s`)
process.exit(results.every((r) => r.code === 0) ? 0 : 1)
