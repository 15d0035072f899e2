import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const source = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

// CI asks for a JSON report beside the console output, to print the pass/fail counts.
const report = process.env["EVENTCORE_VITEST_REPORT"]

export default defineConfig({
  // The package by its name, from its sources (no build needed): see ADR 12.
  resolve: {
    alias: [
      { find: /^eventcore$/, replacement: source("index.ts") },
      { find: /^eventcore\/(memory|postgres|testing|testing\/postgres)$/, replacement: source("$1/index.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // Guards against hangs only: waits are on conditions, never on time, and a loaded machine
    // (npm run test:stress runs the suite twice at once) may take several times longer.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    ...(report === undefined ? {} : { reporters: ["default", "json"], outputFile: { json: report } })
  }
})
