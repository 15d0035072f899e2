/**
 * Reads what `npm install --loglevel=warn` wrote to stderr and fails on any warning except
 * `EBADENGINE` while npm itself runs on a Node older than the Node 24 the project installs: on
 * such a machine (Node 20 here) npm checks the development tools' engines against that Node, although they
 * only ever run on the Node 24 the install brings (ADR 1, ADR 13). Anything else — a
 * deprecation, an install script npm declined, a peer conflict, an engine warning on a recent
 * Node — is a real problem the project's `.npmrc` would otherwise hide from people.
 *
 * Runs on the machine's Node (before or without the project's), so plain JavaScript.
 */
import { readFileSync } from "node:fs"

const [file] = process.argv.slice(2)
if (file === undefined) {
  console.error("usage: node scripts/install-warnings.mjs <npm-install-stderr>")
  process.exit(2)
}
const lines = readFileSync(file, "utf8").split("\n").filter((line) => line.startsWith("npm warn"))
const oldNode = Number(process.versions.node.split(".")[0]) < 24
const unexpected = lines.filter((line) => !(oldNode && line.startsWith("npm warn EBADENGINE")))
if (unexpected.length > 0) {
  console.error(`npm install warned (running on Node ${process.versions.node}):\n${unexpected.join("\n")}`)
  process.exit(1)
}
const engines = lines.filter((line) => line.includes("package:")).length
console.log(
  `npm install: no warnings${
    engines > 0 ? ` but ${engines} engine warning(s) about this machine's Node ${process.versions.node}` : ""
  }`
)
