// The project needs Node >= 22.12 (vitest 5, @effect/platform-node 4, type stripping).
// `npm install` puts Node 24 from the npm registry (the `node` devDependency) at the front of
// every npm script's PATH, so this only fails when that install step did not happen.
const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `eventcore needs Node >= 22.12 but this script runs on ${process.version}.\n` +
      "Run `npm install` first: it installs Node 24 from the npm registry into node_modules/.bin,\n" +
      "which every `npm run`/`npm test`/`npm start` script then uses."
  )
  process.exit(1)
}
