import { defineConfig } from "vitest/config"

// CI asks for a JSON report beside the console output, to print the pass/fail counts.
const report = process.env["EVENTCORE_VITEST_REPORT"]

export default defineConfig({
  resolve: { conditions: ["source"] },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // Guards against hangs only: waits are on conditions, never on time, and a loaded machine
    // (npm run test:stress runs the suite twice at once) may take several times longer.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    ...(report === undefined ? {} : { reporters: ["default", "json"], outputFile: { json: report } })
  }
})
