// One file for both lines: each line's bench/soak.ts links here. Run with symlinks preserved (as
// `npm run bench` and `npm run soak` do), it imports the line's own bench/, src/ and effect.
/**
 * `npm run soak [-- --seconds N] [--seed N]`: 200 callers of `GET /users/me` through
 * `AuthHttpClient` against a loopback MockRevault whose token routes fail at random (seeded), for
 * N seconds of real time (default 60). What is measured and what must hold: bench/soak-lib.ts.
 *
 * Prints a summary, writes bench/results/soak.json, exits 0 when every invariant holds, 1 when one
 * fails, 2 when the soak itself does not end in time, 3 when the process does not exit by itself
 * afterwards (something still holds the event loop).
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { parameters, runSoak, type SoakReport } from "./soak-lib.js"

const usage = "usage: npm run soak -- [--seconds N] [--seed N]"

const flag = (name: string, fallback: number): number => {
  const args = process.argv.slice(2)
  const index = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (index === -1) return fallback
  const arg = args[index] ?? ""
  const text = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[index + 1]
  const value = Number(text)
  if (text === undefined || text.trim() === "" || !Number.isInteger(value) || value < 0) {
    console.error(`--${name} needs a non-negative integer (got ${JSON.stringify(text)})\n${usage}`)
    process.exit(64)
  }
  return value
}

const seconds = flag("seconds", 60)
const seed = flag("seed", 1)
if (seconds < 1) {
  console.error(`--seconds must be at least 1\n${usage}`)
  process.exit(64)
}

const resultsFile = join(dirname(fileURLToPath(import.meta.url)), "results", "soak.json")

// Heap figures after a full collection, when V8 lets us ask for one.
v8.setFlagsFromString("--expose-gc")
const exposed: unknown = vm.runInNewContext("typeof gc === 'function' ? gc : undefined")
const gc = typeof exposed === "function" ? () => void exposed() : undefined

// The soak must end by itself: the deadline, the grace for callers to stop, the wait for recovery,
// and a minute for setup and teardown.
const limitMillis = seconds * 1000 + parameters.stopGraceMillis + parameters.recoveryMillis + 60_000
const watchdog = setTimeout(() => {
  console.error(`the soak did not end within ${limitMillis} ms`)
  process.exit(2)
}, limitMillis)
watchdog.unref()

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const total = (counts: Readonly<Record<string, number>>) => Object.values(counts).reduce((a, b) => a + b, 0)
const list = (counts: Readonly<Record<string, number>>) =>
  Object.entries(counts)
    .sort(([, a], [, b]) => b - a)
    .map(([key, count]) => `${key} ${count}`)
    .join(", ") || "none"

const print = (r: SoakReport) => {
  const lines = [
    `soak: ${r.seconds} s, seed ${r.seed}, ${r.parameters.fibers} callers, ${r.parameters.accessTokenTtlMillis / 1000} s access / ${r.parameters.refreshTokenTtlMillis / 1000} s refresh tokens (took ${r.elapsedSeconds} s)`,
    `calls            ${r.callers.calls} (${r.callers.callsPerSecond}/s): ${r.callers.succeeded} succeeded, ${r.callers.failed} failed`,
    `latency          p50 ${r.callers.latencyMillis.p50} ms, p99 ${r.callers.latencyMillis.p99} ms, max ${r.callers.latencyMillis.max} ms`,
    `errors by tag    ${list(r.callers.errorsByTag)}`,
    `server requests  ${list(r.server.requestsByRoute)}`,
    `/users/me tokens ${list(r.server.meByToken)}`,
    `sent expired     ${r.sends.expiredAtSend} of ${r.sends.count} (time left at send: min ${r.sends.remainingAtSendMillis.min} ms, p1 ${r.sends.remainingAtSendMillis.p1} ms)`,
    `expired in transit ${r.sends.expiredInTransit}, replayed ${r.sends.unauthorizedReplays} (send to answer p50 ${r.sends.sendToAnswerMillis.p50} ms, p99 ${r.sends.sendToAnswerMillis.p99} ms; overrun p50 ${r.sends.overrunMillis.p50} ms)`,
    `acquisitions     requests: authenticate ${r.acquisitions.requests.authenticate}, refresh ${r.acquisitions.requests.refresh}; outcomes: ${list(r.acquisitions.outcomes)}`,
    `faults           injected ${total(r.faultsInjected)} (${list(r.faultsInjected)}); met ${total(r.server.faultsApplied)} (${list(r.server.faultsApplied)})`,
    `event loop delay p50 ${r.eventLoopDelayMillis.p50} ms, p99 ${r.eventLoopDelayMillis.p99} ms, max ${r.eventLoopDelayMillis.max} ms`,
    `memory           rss ${mib(r.memory.start.rssBytes)} -> ${mib(r.memory.end.rssBytes)}, heapUsed ${mib(r.memory.start.heapUsedBytes)} -> ${mib(r.memory.end.heapUsedBytes)}${r.memory.gc ? " (after GC)" : ""}`,
    "",
    ...r.invariants.map((i) => `${i.pass ? "PASS" : "FAIL"} ${i.name}: ${i.detail}`),
    "",
    `${r.pass ? "all invariants hold" : "INVARIANT FAILED"}; report: ${resultsFile}`
  ]
  console.log(lines.join("\n"))
}

const exit = await Effect.runPromiseExit(runSoak({ seconds, seed }, gc))
clearTimeout(watchdog)
if (Exit.isFailure(exit)) {
  console.error(`the soak could not run:\n${Cause.pretty(exit.cause)}`)
  process.exit(1)
}
const report = exit.value
mkdirSync(dirname(resultsFile), { recursive: true })
writeFileSync(
  resultsFile,
  `${JSON.stringify({ date: new Date().toISOString(), command: `npm run soak -- --seconds ${seconds} --seed ${seed}`, node: process.version, ...report }, null, 2)}\n`
)
print(report)
process.exitCode = report.pass ? 0 : 1

// Everything is closed: the process now exits by itself, or this fires.
const linger = setTimeout(() => {
  console.error(`the process did not exit after the soak; still active: ${process.getActiveResourcesInfo().join(", ")}`)
  process.exit(3)
}, 10_000)
linger.unref()
