import { defineConfig } from "vitest/config"

// CI asks for a JSON report beside the console output, to print the pass/fail counts.
const report = process.env["EVENTCORE_VITEST_REPORT"]

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    ...(report === undefined ? {} : { reporters: ["default", "json"], outputFile: { json: report } })
  }
})
