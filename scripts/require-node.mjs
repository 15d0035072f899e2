// The project needs Node >= 22.12 (vitest 5, @effect/platform-node 4, type stripping).
// `npm install` puts Node 24 from the npm registry (the `node` devDependency) at the front of
// every npm script's PATH. That binary is written by the `node` package's preinstall script, so
// when this check runs on an older Node it says which of the ways that can go wrong happened.
import { existsSync } from "node:fs"
import { join } from "node:path"

const [major, minor] = process.versions.node.split(".").map(Number)
if (major > 22 || (major === 22 && minor >= 12)) process.exit(0)

const root = join(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..")
const installed = existsSync(join(root, "node_modules", "node", "package.json"))
const binary = join(root, "node_modules", "node", "bin", "node")
const reason = !existsSync(join(root, "node_modules"))
  ? "Dependencies are not installed. Run `npm install`: it installs Node 24 from the npm registry\n" +
    "into node_modules/.bin, which every `npm run`/`npm test`/`npm start` script then uses."
  : !installed
  ? "The `node` devDependency is not installed (was it installed with --omit=dev?).\n" +
    "Run `npm install` in the repository."
  : !existsSync(binary)
  ? "The `node` devDependency is installed but its install script did not run, so there is no\n" +
    "Node 24 binary at node_modules/node/bin/node. npm skips install scripts with --ignore-scripts,\n" +
    "`ignore-scripts=true` in an .npmrc, or when a strict npm does not see the package approved\n" +
    "(package.json approves it: allowScripts.node = true). Run `npm rebuild node` to run it now,\n" +
    "or reinstall without --ignore-scripts."
  : "Node 24 is installed at node_modules/.bin/node but this script was not started by npm, which\n" +
    "is what puts node_modules/.bin first on PATH. Run it with `npm run <script>`."

console.error(`eventcore needs Node >= 22.12 but this script runs on ${process.version}.\n${reason}`)
process.exit(1)
