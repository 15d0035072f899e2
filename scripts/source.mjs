// Development only (not published): resolves "eventcore" and its subpaths to the sources in
// src/, so that examples, benchmarks and child processes of the tests import the library by
// its package name and run on Node's type stripping without a build. Used as
// `node --import ./scripts/source.mjs <file.ts>`. The type checker does the same with the
// `paths` of tsconfig.json, and vitest with an alias (vitest.config.ts). See ADR 12.
import { registerHooks } from "node:module"

const src = new URL("../src/", import.meta.url)
const subpaths = new Set(["memory", "postgres", "testing", "testing/postgres"])

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === "eventcore") return nextResolve(new URL("index.ts", src).href, context)
    if (specifier.startsWith("eventcore/")) {
      const subpath = specifier.slice("eventcore/".length)
      if (subpaths.has(subpath)) return nextResolve(new URL(`${subpath}/index.ts`, src).href, context)
    }
    return nextResolve(specifier, context)
  }
})
