/**
 * The raw-SQL baseline: pgbench running a script against the same database and schema, so a
 * report can state the library's share of what PostgreSQL itself does with the same SQL.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { latencies } from "../Measure.ts"

export interface PgbenchResult {
  readonly tps: number
  readonly transactions: number
  readonly seconds: number
  readonly latencyMs: ReturnType<typeof latencies>
  readonly failed: number
}

/** libpq-style connection arguments from a postgres:// URL. */
const connectionArgs = (url: string): Array<string> => {
  const u = new URL(url)
  return [
    "-h",
    u.hostname,
    "-p",
    u.port || "5432",
    "-U",
    decodeURIComponent(u.username || "postgres"),
    u.pathname.slice(1)
  ]
}

/**
 * Runs `script` with pgbench (`-n -M prepared`) and returns tps and per-transaction latency
 * percentiles (from pgbench's transaction log).
 */
export const run = (options: {
  readonly url: string
  readonly script: string
  readonly clients: number
  readonly threads: number
  readonly seconds: number
}): Promise<PgbenchResult> => {
  const dir = mkdtempSync(join(tmpdir(), "eventcore-pgbench-"))
  const scriptFile = join(dir, "script.sql")
  writeFileSync(scriptFile, options.script)
  const args = [
    "-n",
    "-M",
    "prepared",
    "-c",
    String(options.clients),
    "-j",
    String(options.threads),
    "-T",
    String(options.seconds),
    "-f",
    scriptFile,
    "--log",
    `--log-prefix=${join(dir, "log")}`,
    ...connectionArgs(options.url)
  ]
  return new Promise((resolve, reject) => {
    execFile("pgbench", args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      try {
        if (error !== null) throw new Error(`pgbench failed: ${error.message}\n${stderr}`)
        const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? Number.NaN)
        const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0)
        const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0)
        if (!Number.isFinite(tps)) throw new Error(`could not read tps from pgbench output:\n${stdout}\n${stderr}`)
        // Each log line: client_id transaction_no time_us script_no epoch epoch_us
        const samples: Array<number> = []
        for (const file of readdirSync(dir).filter((f) => f.startsWith("log"))) {
          for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
            const micros = Number(line.split(" ")[2])
            if (Number.isFinite(micros) && line.length > 0) samples.push(micros / 1000)
          }
        }
        resolve({ tps, transactions, seconds: options.seconds, latencyMs: latencies(samples), failed })
      } catch (cause) {
        reject(cause)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })
}
