// `npm run check:package`, last step: "Are the Types Wrong?" on the packed package (`attw --pack`,
// offline). attw cannot expand the `./*` subpath pattern of `exports`, so every public module is
// named: the root plus each src/*.ts but the barrel and the CLI entry (the modules typedoc
// documents). The ESM-only profile leaves out the CommonJS and node10 resolutions, which an ESM-only
// package does not serve.
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const subpaths = readdirSync(new URL("../src/", import.meta.url))
  .filter((name) => name.endsWith(".ts") && name !== "index.ts" && name !== "cli.ts")
  .map((name) => `./${name.slice(0, -".ts".length)}`)
  .sort()

const attw = fileURLToPath(new URL("../node_modules/.bin/attw", import.meta.url))
const run = spawnSync(
  attw,
  ["--pack", ".", "--profile", "esm-only", "--format", "table-flipped", "--include-entrypoints", ...subpaths],
  {
    cwd: root,
    stdio: "inherit"
  }
)
process.exit(run.status ?? 1)
