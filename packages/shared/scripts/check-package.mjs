// `npm run check:package` of either line (run from packages/effect4 or packages/effect3): build,
// then publint --strict, then attw (attw.mjs beside this file) on the packed package. The tools are
// the calling line's own: npm scripts put its node_modules/.bin first on PATH.
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const attw = fileURLToPath(new URL("./attw.mjs", import.meta.url))
for (const [command, ...args] of [
  ["npm", "run", "build"],
  ["publint", "--strict"],
  [process.execPath, attw]
]) {
  const run = spawnSync(command, args, { stdio: "inherit" })
  if (run.status !== 0) process.exit(run.status ?? 1)
}
