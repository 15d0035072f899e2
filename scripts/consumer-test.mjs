#!/usr/bin/env node
// `npm run test:consumer` (and CI): the package as a user gets it. Packs the tarball, installs
// it with its peers into a fresh project (the install must print no warning), and there:
//   0. checks what the package holds: dist, its source maps and the sources they point to;
//   1. runs a command on the memory store and on PostgreSQL from dist, as plain ESM, on Node;
//      and the package's bin: `npx eventcore --help`, `migrate` and `doctor` against PostgreSQL;
//      without @effect/sql-pg, the bin says in one line to install it (exit 5);
//   2. type-checks a consumer file under moduleResolution `nodenext` and `bundler`, with
//      `skipLibCheck: false` (with lib DOM, which effect's declarations need, and @types/node,
//      which @effect/sql-pg's need);
//   3. installs it beside another effect 4.x and expects npm to refuse (a peer dependency
//      conflict), never a silent second copy of effect;
//   4. runs the same smoke script under Bun and Deno, both installed from npm;
//   5. imports eventcore/testing without its optional peers and expects an error naming them;
//      then, with them, runs the backend contract suite on the memory store from the tarball.
// Everything happens in a temporary directory; the repository is left as it was (but dist/).
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"

const root = new URL("..", import.meta.url).pathname
const work = mkdtempSync(join(tmpdir(), "eventcore-consumer-"))
const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const version = (name) => JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")).version
const quiet = { encoding: "utf8", stdio: "pipe" }
// `--loglevel=warn` explicitly: `npm run` passes this project's `loglevel=error` (.npmrc) on to
// child processes as npm_config_loglevel, which would hide the warnings this test looks for.
const npm = (args, cwd) => spawnSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=warn"], { ...quiet, cwd })
const results = []

const step = (name, run) => {
  const started = Date.now()
  try {
    run()
    results.push(`ok    ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
  } catch (error) {
    results.push(
      `FAIL  ${name}\n${String(error?.stdout ?? "")}${String(error?.stderr ?? "")}${error?.message ?? error}`
    )
  }
}

const mustSucceed = (result, what) => {
  if (result.status !== 0) throw new Error(`${what} exited ${result.status}\n${result.stdout}\n${result.stderr}`)
  return result
}

const writeProject = (dir, pkg, files = {}) => {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "package.json"), JSON.stringify({ private: true, type: "module", ...pkg }, null, 2))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
}

// What a user writes, as plain ESM JavaScript: no TypeScript, no source conditions.
const smoke = `
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { Command, CommandExecutor, Event, EventStore, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { PostgresEventStore } from "eventcore/postgres"
import { PostgresTesting } from "eventcore/testing/postgres"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Deposit = Command.make("Deposit", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Int }),
  events: Event.catalog(Deposited),
  streams: ({ account }) => ({ account }),
  initial: 0,
  apply: (balance, event) => balance + event.amount,
  handle: ({ input, streams }) => Effect.succeed([streams.account.append(Deposited.make({ amount: input.amount }))])
})

const run = Effect.gen(function*() {
  yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 5 })
  const result = yield* CommandExecutor.execute(Deposit, { account: "acc-1", amount: 7 })
  const read = yield* EventStore.readStream(StreamId.makeUnsafe("acc-1"))
  if (read.version !== 2 || result.events[0]?.streamVersion !== 2) throw new Error("unexpected: " + JSON.stringify(read))
  return read.version
})

await Effect.runPromise(run.pipe(Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(MemoryEventStore.layer)))))
console.log("memory ok")

const schema = "ec_consumer_" + Math.random().toString(36).slice(2, 10)
const Pg = PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "${databaseUrl}"), maxConnections: 3 })
await Effect.runPromise(
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* run.pipe(
      Effect.provide(CommandExecutor.layer().pipe(Layer.provideMerge(PostgresEventStore.layer({ schema })))),
      Effect.ensuring(Effect.orDie(sql.unsafe("drop schema if exists " + schema + " cascade")))
    )
  }).pipe(Effect.provide(Pg))
)
console.log("postgres ok")
`

// What a TypeScript user writes; type-checked, not run.
const consumerTs = `
import { Effect, Layer, Schema } from "effect"
import { BusinessRuleViolation, Command, CommandExecutor, Event, StreamId } from "eventcore"
import { MemoryEventStore } from "eventcore/memory"
import { PostgresEventStore } from "eventcore/postgres"
import { PostgresTesting } from "eventcore/testing/postgres"

const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Int })
const Withdrawn = Schema.TaggedStruct("Withdrawn", { amount: Schema.Int })
const Withdraw = Command.make("Withdraw", {
  input: Schema.Struct({ account: StreamId.StreamId, amount: Schema.Int }),
  events: Event.catalog(Deposited, Withdrawn),
  streams: ({ account }) => ({ account }),
  initial: 0,
  apply: (balance, event) => balance + (event._tag === "Deposited" ? event.amount : -event.amount),
  handle: ({ input, state, streams }) =>
    state < input.amount
      ? Effect.fail(new BusinessRuleViolation({ rule: "insufficient-funds", message: "no" }))
      : Effect.succeed([streams.account.append(Withdrawn.make({ amount: input.amount }))])
})

export const program: Effect.Effect<number | undefined, never> = CommandExecutor.execute(Withdraw, { account: "a", amount: 1 }).pipe(
  Effect.map((result) => result.events.length),
  Effect.catchTag("BusinessRuleViolation", () => Effect.succeed(undefined)),
  Effect.orDie,
  Effect.provide(CommandExecutor.layer().pipe(Layer.provide(MemoryEventStore.layer)))
)
export const pg = PostgresEventStore.layerFromUrl("postgres://localhost/app")
export const pgTests = PostgresTesting.layer({ maxConnections: 2 })
`

const tsconfig = (resolution) =>
  JSON.stringify({
    compilerOptions: {
      target: "ES2022",
      module: resolution === "bundler" ? "preserve" : "nodenext",
      moduleResolution: resolution,
      // effect's own types use the web platform's (CryptoKey, ReadableStream): lib DOM
      lib: ["ES2023", "DOM"],
      types: ["node"],
      strict: true,
      exactOptionalPropertyTypes: true,
      skipLibCheck: false,
      noEmit: true
    },
    files: ["consumer.ts"]
  })

let tarball = ""
step("npm pack (builds dist)", () => {
  const packed = mustSucceed(
    spawnSync("npm", ["pack", "--json", "--pack-destination", work], { ...quiet, cwd: root }),
    "npm pack"
  )
  tarball = join(work, JSON.parse(packed.stdout)[0].filename)
})

const app = join(work, "app")
step("install the tarball with its peers into a fresh project", () => {
  writeProject(app, {
    dependencies: {
      eventcore: `file:${tarball}`,
      effect: version("effect"),
      "@effect/sql-pg": version("@effect/sql-pg")
    },
    // @effect/sql-pg's declarations import node:stream and node:tls: a TypeScript user of
    // eventcore/postgres installs @types/node, as for any program using @effect/sql-pg
    devDependencies: { typescript: version("typescript"), "@types/node": version("@types/node") }
  }, {
    "smoke.mjs": smoke,
    "consumer.ts": consumerTs,
    "tsconfig.nodenext.json": tsconfig("nodenext"),
    "tsconfig.bundler.json": tsconfig("bundler")
  })
  const installed = mustSucceed(npm(["install", "--strict-allow-scripts"], app), "npm install")
  if (/npm warn/i.test(installed.stderr)) throw new Error(`the install printed warnings:\n${installed.stderr}`)
  const effects = execFileSync("npm", ["ls", "effect", "--all", "--parseable"], { ...quiet, cwd: app }).trim().split(
    "\n"
  )
  if (effects.length !== 1) throw new Error(`more than one copy of effect:\n${effects.join("\n")}`)
})

step("the package holds dist, its source maps and the sources they point to, and nothing else", () => {
  const pkg = join(app, "node_modules", "eventcore")
  const files = readdirSync(pkg, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(pkg, join(entry.parentPath, entry.name)))
  const unexpected = files.filter((file) =>
    !/^(dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|src\/.+\.ts|LICENSE|README\.md|package\.json)$/.test(file) ||
    file.endsWith(".test.ts")
  )
  if (unexpected.length > 0) throw new Error(`unexpected files in the package:\n${unexpected.join("\n")}`)
  const maps = files.filter((file) => file.endsWith(".map"))
  if (maps.length === 0) throw new Error("no source maps in the package")
  for (const map of maps) {
    for (const source of JSON.parse(readFileSync(join(pkg, map), "utf8")).sources) {
      if (!existsSync(join(pkg, dirname(map), source))) {
        throw new Error(`${map} points at ${source}, which is not shipped`)
      }
    }
  }
})

step("Node: a command on memory and on PostgreSQL, from dist, as plain ESM", () => {
  const out = mustSucceed(spawnSync(process.execPath, ["smoke.mjs"], { ...quiet, cwd: app }), "node smoke.mjs").stdout
  if (!out.includes("memory ok") || !out.includes("postgres ok")) throw new Error(out)
})

step("the eventcore CLI from the tarball: npx eventcore --help, migrate and doctor against PostgreSQL", () => {
  const schema = "ec_consumer_cli_" + Math.random().toString(36).slice(2, 10)
  // --no-install: the package's own bin, never one fetched from the registry; this Node first.
  const env = { ...process.env, DATABASE_URL: databaseUrl, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }
  const npx = (args) =>
    spawnSync("npx", ["--no-install", "eventcore", ...args, "--schema", schema], { ...quiet, cwd: app, env })
  try {
    const help = mustSucceed(npx(["--help"]), "npx eventcore --help").stdout
    if (!help.includes("doctor") || !help.includes("dead-letters")) throw new Error(help)
    mustSucceed(npx(["migrate"]), "npx eventcore migrate")
    const report = JSON.parse(mustSucceed(npx(["doctor", "--json"]), "npx eventcore doctor").stdout)
    if (!report.ready || report.status === "unhealthy") throw new Error(JSON.stringify(report, null, 2))
  } finally {
    writeFileSync(
      join(app, "drop-schema.mjs"),
      `import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { SqlClient } from "effect/sql"
await Effect.runPromise(Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.unsafe("drop schema if exists ${schema} cascade")
}).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL), maxConnections: 1 }))))
`
    )
    mustSucceed(spawnSync(process.execPath, ["drop-schema.mjs"], { ...quiet, cwd: app, env }), "drop the CLI's schema")
  }
})

step("the eventcore CLI without @effect/sql-pg: one line saying to install it, exit 5", () => {
  const bare = join(work, "no-sql-pg")
  // @effect/sql-pg is an optional peer: npm does not install it unasked.
  writeProject(bare, { dependencies: { eventcore: `file:${tarball}`, effect: version("effect") } })
  mustSucceed(npm(["install"], bare), "npm install without @effect/sql-pg")
  if (existsSync(join(bare, "node_modules", "@effect", "sql-pg"))) throw new Error("npm installed @effect/sql-pg")
  const env = { ...process.env, DATABASE_URL: databaseUrl, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }
  const result = spawnSync("npx", ["--no-install", "eventcore", "doctor"], { ...quiet, cwd: bare, env })
  const expected = "eventcore: @effect/sql-pg is not installed, and the CLI needs it to reach PostgreSQL: " +
    "npm install @effect/sql-pg\n"
  if (result.status !== 5 || result.stderr !== expected || result.stdout !== "") {
    throw new Error(`exit ${result.status}\n${result.stdout}\n${result.stderr}`)
  }
})

for (const resolution of ["nodenext", "bundler"]) {
  step(`type-check a consumer, moduleResolution ${resolution}, skipLibCheck false`, () => {
    const tsc = join(app, "node_modules", "typescript", "bin", "tsc")
    mustSucceed(
      spawnSync(process.execPath, [tsc, "-p", `tsconfig.${resolution}.json`, "--pretty", "false"], {
        ...quiet,
        cwd: app
      }),
      "tsc"
    )
  })
}

step("another effect 4.x beside it: npm refuses the install (peer dependency conflict)", () => {
  const other = join(work, "other-effect")
  writeProject(other, { dependencies: { eventcore: `file:${tarball}`, effect: "4.0.6" } })
  const result = npm(["install"], other)
  if (result.status === 0) throw new Error("npm installed eventcore beside effect 4.0.6")
  const output = `${result.stdout}${result.stderr}`
  if (!/ERESOLVE/.test(output) || !/peer effect@"\^4\.1\.0"/.test(output)) throw new Error(output)
})

step("eventcore/testing without its optional peers fails naming what is missing", () => {
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", `import("eventcore/testing")`], {
    ...quiet,
    cwd: app
  })
  const output = `${result.stdout}${result.stderr}`
  const named = /optional peer dependencies of eventcore.*Missing: vitest, @effect\/vitest, fast-check/s
  if (result.status === 0 || !named.test(output)) throw new Error(output)
})

step("with its peers installed, eventcore/testing runs the contract suite on the memory store", () => {
  mustSucceed(
    npm([
      "install",
      "--save-dev",
      `vitest@${version("vitest")}`,
      `@effect/vitest@${version("@effect/vitest")}`,
      `fast-check@${version("fast-check")}`
    ], app),
    "npm install the test kit's peers"
  )
  writeFileSync(
    join(app, "contract.test.mjs"),
    `import { MemoryEventStore } from "eventcore/memory"
import { EventStoreContract } from "eventcore/testing"
EventStoreContract.suite("memory, from the tarball", MemoryEventStore.layer)
`
  )
  const vitest = join(app, "node_modules", "vitest", "vitest.mjs")
  const env = { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" }
  const out = mustSucceed(
    spawnSync(process.execPath, [vitest, "run", "contract.test.mjs"], { ...quiet, cwd: app, env }),
    "vitest"
  )
    .stdout
  if (!/Tests\s+\d+ passed/.test(out) || /failed/i.test(out)) throw new Error(out)
})

const runtimes = join(work, "runtimes")
step("install Bun and Deno from npm", () => {
  writeProject(runtimes, { dependencies: { bun: "1", deno: "2" }, allowScripts: { bun: true, deno: true } })
  mustSucceed(npm(["install"], runtimes), "npm install bun deno")
})
for (const [runtime, args] of [["bun", ["smoke.mjs"]], ["deno", ["run", "--allow-all", "smoke.mjs"]]]) {
  step(`${runtime === "bun" ? "Bun" : "Deno"}: the same smoke script`, () => {
    const bin = join(runtimes, "node_modules", ".bin", runtime)
    const out =
      mustSucceed(spawnSync(bin, args, { ...quiet, cwd: app, env: { ...process.env, NO_COLOR: "1" } }), runtime)
        .stdout
    if (!out.includes("memory ok") || !out.includes("postgres ok")) throw new Error(out)
  })
}

const failed = results.some((line) => line.startsWith("FAIL"))
console.log(results.join("\n"))
if (failed) {
  console.log(`consumer test FAILED (its projects are kept in ${work})`)
  process.exit(1)
}
rmSync(work, { recursive: true, force: true })
console.log("consumer test passed")
