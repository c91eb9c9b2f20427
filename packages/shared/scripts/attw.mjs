// `npm run check:package`, last step: "Are the Types Wrong?" on the calling line's packed package
// (`attw --pack`, offline; attw is the line's own, from its node_modules). attw cannot expand the
// `./*` subpath pattern of `exports`, so every public module is named: the root plus each src/*.ts
// but the barrel and the CLI entry (the modules typedoc documents). The ESM-only profile leaves out
// the CommonJS and node10 resolutions, which an ESM-only package does not serve.
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { join } from "node:path"

const root = process.cwd()
const subpaths = readdirSync(join(root, "src"))
  .filter((name) => name.endsWith(".ts") && name !== "index.ts" && name !== "cli.ts")
  .map((name) => `./${name.slice(0, -".ts".length)}`)
  .sort()

const attw = join(root, "node_modules", ".bin", "attw")
const run = spawnSync(
  attw,
  ["--pack", ".", "--profile", "esm-only", "--format", "table-flipped", "--include-entrypoints", ...subpaths],
  {
    cwd: root,
    stdio: "inherit"
  }
)
process.exit(run.status ?? 1)
