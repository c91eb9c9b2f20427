// The side-by-side table of the two lines' benchmarks: reads every `bench/results/*.json` of
// packages/effect3 and packages/effect4 and writes one table (per benchmark: value, target, pass
// on each line) into bench/README.md, between the markers, with the date, machine and load.
// `node scripts/lines.mjs bench` runs it after both lines' benchmarks; run it alone to rebuild the
// table from the results on disk. Exits 1 if a judged target is missed on either line, or if a
// line has no results.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const lines = [
  // B6 (TokenCoordinator, fleet-wide tokens on Redis) exists on the Effect 4 line only.
  { name: "Effect 3", dir: "packages/effect3", absent: new Set(["B6"]) },
  { name: "Effect 4", dir: "packages/effect4", absent: new Set() }
]
const start = "<!-- bench-table:start -->"
const end = "<!-- bench-table:end -->"
const readme = join(root, "bench", "README.md")

// The order of the table, and for the benchmarks reported but not judged, the row that sums them up.
const order = ["B1", "B2", "B2b", "B3", "B3b", "B3c", "B4", "B5", "B6"]
const headline = {
  B3b: { subject: "NodeHttpClient.layerUndici, static header", metric: "vs plain fetch (median latency)" },
  B3c: { subject: "FetchHttpClient", metric: "vs plain fetch (median of rounds)" },
  B5: { subject: "AuthService", metric: "per instance (median of rounds)" }
}

/** Every benchmark result of a line, by id (files without an id, such as the soak's, are not benchmarks). */
const load = (line) => {
  const dir = join(root, line.dir, "bench", "results")
  const results = new Map()
  if (!existsSync(dir)) return results
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const result = JSON.parse(readFileSync(join(dir, file), "utf8"))
    if (typeof result.id === "string" && Array.isArray(result.judged)) results.set(result.id, result)
  }
  return results
}

const format = (value, unit) => {
  if (typeof value !== "number" || Number.isNaN(value)) return "n/a"
  const digits = Math.abs(value) >= 100 || Number.isInteger(value) ? 0 : Math.abs(value) >= 10 ? 1 : 3
  const text = value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 })
  return unit === "x" ? `${text}×` : `${text} ${unit}`
}

const cell = (result, metric) => {
  if (result === undefined) return { value: "not run", pass: "" }
  const judged = result.judged.find((j) => j.metric === metric)
  if (judged === undefined) return { value: "n/a", pass: "" }
  return { value: format(judged.value, judged.unit), pass: judged.pass ? "PASS" : "**FAIL**" }
}

const reportedCell = (result, pick) => {
  if (result === undefined) return { value: "not run", pass: "" }
  const row = result.results.find((r) => r.subject === pick.subject && r.metric === pick.metric)
  return { value: row === undefined ? "n/a" : format(row.value, row.unit), pass: "reported" }
}

const byLine = lines.map((line) => ({ ...line, results: load(line) }))
const missing = byLine.filter((line) => line.results.size === 0)
const ids = order.filter((id) => byLine.some((line) => line.results.has(id)))

const rows = []
let failed = missing.length > 0
for (const id of ids) {
  const results = byLine.map((line) => line.results.get(id))
  // Each line's verdicts, in the order the first line that ran it gives them.
  const metrics = [...new Set(results.flatMap((r) => (r === undefined ? [] : r.judged.map((j) => j.metric))))]
  if (metrics.length === 0 && id in headline) {
    const cells = results.map((r) => reportedCell(r, headline[id]))
    rows.push([id, `${headline[id].subject}: ${headline[id].metric}`, "report", ...cells.flatMap((c) => [c.value, c.pass])])
    continue
  }
  for (const metric of metrics) {
    const target = results.flatMap((r) => r?.judged.filter((j) => j.metric === metric).map((j) => j.target) ?? [])[0]
    const cells = results.map((r, i) =>
      r === undefined && byLine[i]?.absent.has(id) ? { value: "not on this line", pass: "" } : cell(r, metric)
    )
    if (results.some((r) => r?.judged.some((j) => j.metric === metric && !j.pass))) failed = true
    rows.push([id, metric, target ?? "", ...cells.flatMap((c) => [c.value, c.pass])])
  }
}

const escape = (text) => String(text).replaceAll("|", "\\|")
const header = ["id", "judged", "target", ...byLine.flatMap((line) => [line.name, "pass"])]
const table = [
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...rows.map((row) => `| ${row.map(escape).join(" | ")} |`)
].join("\n")

// When and where: each line's results carry their own date, Node and load average at the end of
// each benchmark.
const span = (values) => {
  const sorted = values.filter((v) => typeof v === "number").sort((a, b) => a - b)
  return sorted.length === 0 ? "n/a" : `${sorted[0]}-${sorted.at(-1)}`
}
const about = byLine.map((line) => {
  const all = [...line.results.values()]
  if (all.length === 0) return `- ${line.name} (${line.dir}): no results`
  const dates = all.map((r) => r.date).sort()
  const nodes = [...new Set(all.map((r) => r.environment?.node))].join(", ")
  const loads = span(all.map((r) => r.environment?.loadAverage?.[0]))
  return `- ${line.name} (${line.dir}/bench/results): ${all.length} results from ${dates[0]} to ${dates.at(-1)}, Node ${nodes}, 1-minute load average ${loads} as each benchmark finished`
})
const first = [...byLine.flatMap((line) => [...line.results.values()])][0]
const environment = first?.environment ?? {}
const machine = `${environment.platform ?? `${process.platform} ${process.arch}`}, ${environment.cpus ?? os.cpus().length} × ${environment.cpu ?? os.cpus()[0]?.model ?? "unknown"}`

const block = [
  start,
  "",
  `Written by \`scripts/bench-table.mjs\` on ${new Date().toISOString()}; machine: ${machine}; load average when written: ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}.`,
  "",
  ...about,
  "",
  table,
  "",
  failed ? "**At least one target was missed** (`npm run bench` exits 1)." : "Every judged target was met.",
  "",
  end
].join("\n")

const intro = `# Benchmarks of both lines

\`npm run bench\` at the repository root runs each line's benchmarks (\`packages/effect4\`, then
\`packages/effect3\`), then \`scripts/bench-table.mjs\`, which writes the table below from both lines'
\`bench/results/*.json\`. How each benchmark is measured: \`packages/effect3/bench/README.md\` and
\`packages/effect4/bench/README.md\`. Not part of \`npm test\`.

${start}
${end}
`
mkdirSync(dirname(readme), { recursive: true })
const current = existsSync(readme) ? readFileSync(readme, "utf8") : intro
const from = current.indexOf(start)
const to = current.indexOf(end)
const next =
  from === -1 || to === -1 || to < from
    ? `${current.trimEnd()}\n\n${block}\n`
    : `${current.slice(0, from)}${block}${current.slice(to + end.length)}`
writeFileSync(readme, next)
process.stdout.write(`\n${table}\n\nwrote ${readme}${failed ? " (a target was missed)" : ""}\n`)
for (const line of missing) process.stderr.write(`no results for ${line.name} in ${line.dir}/bench/results\n`)
process.exit(failed ? 1 : 0)
