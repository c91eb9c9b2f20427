/**
 * `npm run bench` of either line (`tsx ../shared/bench/run.ts`, from packages/effect4 or
 * packages/effect3): runs every benchmark of the calling line's `bench/`, one after the other,
 * each in its own node process (`node --expose-gc --preserve-symlinks --import tsx bench/<file>.ts`,
 * so no run warms up or dirties the heap of the next), then prints a summary of what was judged. Exits 1 if any
 * target was missed.
 *
 * `npm run bench -- b1 b4` runs only those.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { resultsDir } from "./report.js"

const benches = [
  { file: "b1.ts", results: ["b1-cached-read"] },
  { file: "b2.ts", results: ["b2-cold-stampede"] },
  { file: "b2b.ts", results: ["b2b-refresh-stampede"] },
  { file: "b3.ts", results: ["b3-auth-client-overhead", "b3b-client-layers"] },
  { file: "b3c.ts", results: ["b3c-fetch-overhead"] },
  { file: "b4.ts", results: ["b4-seven-days"] },
  { file: "b5.ts", results: ["b5-memory"] },
  { file: "b6.ts", results: ["b6-fleet"] }
] as const

interface Judged {
  readonly metric: string
  readonly value: number
  readonly unit: string
  readonly target: string
  readonly pass: boolean
}

const here = join(process.cwd(), "bench")
// The calling line's benchmarks: B6 (TokenCoordinator on Redis) exists on the Effect 4 line only.
const ofLine = benches.filter((b) => existsSync(join(here, b.file)))
const wanted = process.argv.slice(2).map((a) => a.replace(/\.ts$/, "").toLowerCase())
const selected = wanted.length === 0 ? ofLine : ofLine.filter((b) => wanted.includes(b.file.replace(/\.ts$/, "")))
if (selected.length === 0) {
  console.error(`unknown benchmark(s): ${wanted.join(", ")}; known: ${ofLine.map((b) => b.file).join(", ")}`)
  process.exit(2)
}

const summary: Array<string> = []
let failed = false
for (const bench of selected) {
  const started = Date.now()
  console.log(`\n=== ${bench.file} ===`)
  // A bench file the lines share is a link into packages/shared/bench-linked: preserving symlinks
  // makes it import the line's own bench/support, src and effect.
  const flags = ["--expose-gc", "--preserve-symlinks", "--preserve-symlinks-main", "--import", "tsx"]
  const child = spawnSync(process.execPath, [...flags, join(here, bench.file)], {
    stdio: "inherit",
    timeout: 20 * 60 * 1000
  })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  if (child.status !== 0) failed = true
  summary.push(`${bench.file}: exit ${child.status ?? child.signal ?? "?"} after ${seconds} s`)
  for (const name of bench.results) {
    const file = join(resultsDir, `${name}.json`)
    if (!existsSync(file)) {
      summary.push(`  ${name}: no results file`)
      failed = true
      continue
    }
    const result: { id: string; judged: ReadonlyArray<Judged> } = JSON.parse(readFileSync(file, "utf8"))
    if (result.judged.length === 0) summary.push(`  ${result.id}: reported, not judged`)
    for (const j of result.judged) {
      const value = Number.isInteger(j.value) ? String(j.value) : j.value.toFixed(3)
      summary.push(`  ${result.id} ${j.pass ? "PASS" : "FAIL"}  ${j.metric}: ${value} ${j.unit} (target ${j.target})`)
    }
  }
}

console.log("\n=== summary ===")
for (const line of summary) console.log(line)
process.exitCode = failed ? 1 : 0
