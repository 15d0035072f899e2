import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), "utf8")

describe("README", () => {
  // The type check compiles examples/quickstart/main.ts; this keeps the README's copy identical.
  it("shows the example that examples/quickstart/main.ts compiles", () => {
    const readme = read("README.md")
    const start = readme.indexOf("```ts\nimport { NodeRuntime }")
    assert.isAtLeast(start, 0, "the README's complete example is missing")
    const code = readme.slice(start + "```ts\n".length, readme.indexOf("```", start + 5))
    const example = read("examples/quickstart/main.ts").split("\n").slice(1).join("\n")
    assert.strictEqual(code, example)
  })
})
