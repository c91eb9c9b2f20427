// Start-up time of the built CLI: `node dist/cli.js <args>` (default `--version`) against a bare
// `node -e 0`, interleaved in one loop so that a busy machine slows both alike. Prints the medians
// in milliseconds and the CLI's overhead over bare node. Run from packages/effect4 or packages/effect3
// (its dist/cli.js): node ../shared/scripts/cli-startup.mjs [runs] [args...]
import { spawnSync } from "node:child_process"
import { join } from "node:path"

const runs = Number(process.argv[2] ?? 10)
const args = process.argv.length > 3 ? process.argv.slice(3) : ["--version"]
const cli = join(process.cwd(), "dist", "cli.js")

const time = (argv) => {
  const start = process.hrtime.bigint()
  const result = spawnSync(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] })
  if (result.status !== 0) throw new Error(`${argv.join(" ")} exited with ${result.status}: ${result.stderr}`)
  return Number(process.hrtime.bigint() - start) / 1e6
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

const bare = []
const command = []
for (let i = 0; i < runs; i++) {
  bare.push(time(["-e", "0"]))
  command.push(time([cli, ...args]))
}
const round = (ms) => Math.round(ms)
console.log(`node ${process.version}, ${runs} runs each`)
console.log(`node -e 0:                 median ${round(median(bare))} ms`)
console.log(`revault-auth ${args.join(" ")}: median ${round(median(command))} ms`)
console.log(`overhead:                  ${round(median(command) - median(bare))} ms`)
