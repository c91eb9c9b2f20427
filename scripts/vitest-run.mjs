// Runs the suite once, then prints the plain `tests: N passed, N failed` line CI logs are read for.
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"

const report = ".vitest-report.json"
rmSync(report, { force: true })
const run = spawnSync(
  "npx",
  ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { stdio: "inherit" }
)
let passed = 0
let failed = 0
try {
  const json = JSON.parse(readFileSync(report, "utf8"))
  passed = json.numPassedTests
  failed = json.numFailedTests
} catch {
  failed = Math.max(failed, 1)
}
process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`)
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1)
