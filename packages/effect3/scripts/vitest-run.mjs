// Runs the suite once, then prints the plain `tests: N passed, N failed` line CI logs are read for.
// A watchdog bounds the run: a test that starves the event loop is beyond vitest's own timeouts,
// and CI must fail fast and say so rather than run into its time limit.
import { spawn } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"

const limitMinutes = Number(process.env.VITEST_WATCHDOG_MINUTES ?? 40)
const report = ".vitest-report.json"
rmSync(report, { force: true })

const vitest = createRequire(import.meta.url).resolve("vitest/vitest.mjs")
const child = spawn(
  process.execPath,
  [vitest, "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...process.argv.slice(2)],
  // Its own process group, so that the watchdog stops the workers too.
  { stdio: "inherit", detached: true }
)

let timedOut = false
const watchdog = setTimeout(() => {
  timedOut = true
  process.stderr.write(
    `\nvitest-run: the suite did not finish within ${limitMinutes} minutes; stopping it. ` +
      "The file that hung is the one missing from the list above.\n"
  )
  process.kill(-child.pid, "SIGKILL")
}, limitMinutes * 60_000)

child.on("exit", (code) => {
  clearTimeout(watchdog)
  let passed = 0
  let failed = 0
  try {
    const json = JSON.parse(readFileSync(report, "utf8"))
    passed = json.numPassedTests
    failed = json.numFailedTests
  } catch {
    failed = 1
  }
  process.stdout.write(`tests: ${passed} passed, ${failed} failed\n`)
  process.exit(!timedOut && code === 0 && failed === 0 && passed > 0 ? 0 : 1)
})
