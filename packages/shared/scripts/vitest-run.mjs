// Runs the calling line's suite once (`node ../shared/scripts/vitest-run.mjs [vitest args]` from
// packages/effect4 or packages/effect3), then prints the plain `tests: N passed, N failed` line CI
// logs are read for. vitest is the calling line's own (this folder has no node_modules). A watchdog
// bounds the run: a test that starves the event loop is beyond vitest's own timeouts, and CI must
// fail fast and say so rather than run into its time limit.
import { spawn } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

const limitMinutes = Number(process.env.VITEST_WATCHDOG_MINUTES ?? 40)
const report = ".vitest-report.json"
rmSync(report, { force: true })

// vitest 5 exports no `./vitest.mjs`: its CLI is found through its package.json's `bin`.
const vitestPackage = createRequire(join(process.cwd(), "package.json")).resolve("vitest/package.json")
const vitest = join(dirname(vitestPackage), JSON.parse(readFileSync(vitestPackage, "utf8")).bin.vitest)
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
