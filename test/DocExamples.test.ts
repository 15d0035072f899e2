import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

interface Example {
  readonly file: string
  // The source line of the example's first line of code.
  readonly line: number
  readonly code: string
}

// Every ```ts block in a JSDoc comment under src/.
const examples = (): ReadonlyArray<Example> => {
  const found: Array<Example> = []
  const files = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })
    .filter((file) => file.endsWith(".ts"))
    .toSorted()
  for (const file of files) {
    const source = readFileSync(join(root, "src", file), "utf8")
    for (const comment of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const first = source.slice(0, comment.index).split("\n").length
      const lines = comment[0].split("\n").map((line) => line.replace(/^\s*(?:\/\*\*|\*\/|\*) ?/, ""))
      let start: number | undefined
      lines.forEach((line, i) => {
        if (start === undefined && line.trimEnd() === "```ts") start = i + 1
        else if (start !== undefined && line.trimEnd() === "```") {
          found.push({ file: `src/${file}`, line: first + start, code: lines.slice(start, i).join("\n") })
          start = undefined
        }
      })
    }
  }
  return found
}

// An example's top-level declarations are what it shows: exporting them keeps noUnusedLocals to the
// imports and locals it does not use. `declare`d names stand for the reader's own and must be used.
const exported = (code: string) => {
  const values: Array<string> = []
  const types: Array<string> = []
  for (const line of code.split("\n")) {
    const value = /^(?:const|let|(?:async\s+)?function\*?|class|enum)\s+([A-Za-z_$][\w$]*)/.exec(line)
    if (value?.[1] !== undefined) values.push(value[1])
    // `const { a, b: c } = …` binds a and c.
    const destructured = /^(?:const|let)\s+[{[]([^=]*)[}\]]\s*=/.exec(line)
    for (const element of destructured?.[1]?.split(",") ?? []) {
      const name = /([A-Za-z_$][\w$]*)\s*$/.exec(element)?.[1]
      if (name !== undefined) values.push(name)
    }
    const type = /^(?:type|interface)\s+([A-Za-z_$][\w$]*)/.exec(line)
    if (type?.[1] !== undefined) types.push(type[1])
  }
  return [
    values.length > 0 ? `export { ${values.join(", ")} }` : "export {}",
    ...(types.length > 0 ? [`export type { ${types.join(", ")} }`] : [])
  ].join("\n")
}

describe("JSDoc examples", () => {
  it("every ```ts example in src/ compiles under the project's compiler options", () => {
    const all = examples()
    assert.isAtLeast(all.length, 100, "the examples were not found")
    const dir = mkdtempSync(join(tmpdir(), "eventcore-doc-examples-"))
    try {
      symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "junction")
      writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }))
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          // "eventcore" and its subpaths resolve to src/ through the project's `paths`.
          extends: join(root, "tsconfig.json"),
          compilerOptions: { noEmit: true },
          include: ["*.ts"]
        })
      )
      const origins = new Map<string, Example>()
      all.forEach((example, i) => {
        const name = `example${i}.ts`
        origins.set(name, example)
        writeFileSync(join(dir, name), `${example.code}\n${exported(example.code)}\n`)
      })
      // Exit 0 and no output, or the diagnostics (and a non-zero exit) to report.
      let output = ""
      try {
        const tsc = join(root, "node_modules/typescript/bin/tsc")
        execFileSync(process.execPath, [tsc, "-p", dir, "--pretty", "false"], {
          cwd: dir,
          encoding: "utf8",
          stdio: "pipe"
        })
      } catch (error) {
        const failed = error as { stdout?: string; stderr?: string; message: string }
        output = `${failed.stdout ?? ""}${failed.stderr ?? ""}` || failed.message
      }
      // tsc reports `example3.ts(2,7): error TS…`; point at the line in src/ instead.
      const report = output.replace(/^(example\d+\.ts)\((\d+),(\d+)\)/gm, (whole, name: string, row, column) => {
        const example = origins.get(name)
        return example === undefined ? whole : `${example.file}:${example.line + Number(row) - 1}:${column}`
      })
      if (report !== "") assert.fail(`JSDoc examples that do not compile:\n${report}`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
