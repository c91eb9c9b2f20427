// Drives the package's two lines from the repository root. Each line is an npm project of its own
// (one node_modules cannot hold two majors of effect for the type checker), so the root installs,
// tests and benchmarks each in turn and sums what their test runs report.
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const lines = ["packages/effect4", "packages/effect3"]
const [command = "", ...rest] = process.argv.slice(2)

/** Runs npm in a line's folder, echoing its output; resolves to its exit code and what it printed. */
const npm = (cwd, args) =>
  new Promise((resolve) => {
    let output = ""
    const child = spawn("npm", args, { cwd, stdio: ["ignore", "pipe", "inherit"] })
    child.stdout.on("data", (chunk) => {
      output += chunk
      process.stdout.write(chunk)
    })
    child.on("close", (code) => resolve({ code: code ?? 1, output }))
  })

const steps = {
  // `npm ci` at the root installs each line from its own lockfile; `npm install` updates them.
  install: () => (process.env.npm_command === "ci" ? ["ci"] : ["install"]),
  test: () => ["test", ...(rest.length > 0 ? ["--", ...rest] : [])],
  bench: () => ["run", "bench"]
}

if (!(command in steps)) {
  process.stderr.write(`usage: node scripts/lines.mjs ${Object.keys(steps).join("|")}\n`)
  process.exit(2)
}

let passed = 0
let failed = 0
let exitCode = 0
for (const line of lines) {
  process.stdout.write(`\n== ${line}: npm ${steps[command]().join(" ")}\n`)
  const { code, output } = await npm(line, steps[command]())
  const counts = [...output.matchAll(/^tests: (\d+) passed, (\d+) failed$/gm)].at(-1)
  if (counts !== undefined) {
    passed += Number(counts[1])
    failed += Number(counts[2])
  }
  if (code !== 0) {
    exitCode = 1
    if (command === "install") break
  }
}
// Both lines' results side by side in bench/README.md; it exits 1 on a missed target too.
if (command === "bench") {
  process.stdout.write("\n== both lines: node scripts/bench-table.mjs\n")
  const table = spawnSync(process.execPath, [fileURLToPath(new URL("bench-table.mjs", import.meta.url))], { stdio: "inherit" })
  if (table.status !== 0) exitCode = 1
}
if (command === "test") {
  if (exitCode !== 0 && failed === 0) failed = 1
  process.stdout.write(`\ntests: ${passed} passed, ${failed} failed\n`)
}
process.exit(exitCode)
