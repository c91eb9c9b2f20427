/**
 * Reporting for both lines' benchmarks: a console table and `bench/results/<name>.json` of the
 * calling line. Benchmarks run from their line's folder (`npm run bench` in packages/effect4 or
 * packages/effect3), so the results go to that line's `bench/results`.
 */
import { mkdirSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { join } from "node:path"

/** One measured number. */
export interface Row {
  readonly subject: string
  readonly metric: string
  readonly value: number
  readonly unit: string
}

/** One number the benchmark is judged on, with its target. */
export interface Verdict {
  readonly metric: string
  readonly value: number
  readonly unit: string
  readonly target: string
  readonly pass: boolean
}

export interface Report {
  readonly id: string
  readonly name: string
  readonly title: string
  readonly command: string
  readonly rows: ReadonlyArray<Row>
  readonly verdicts: ReadonlyArray<Verdict>
  readonly notes?: ReadonlyArray<string>
}

export const resultsDir = join(process.cwd(), "bench", "results")

const format = (value: number): string =>
  Number.isInteger(value) ? value.toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: 3 })

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>): string =>
  cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ")

const table = (header: ReadonlyArray<string>, body: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)))
  return [
    pad(header, widths),
    pad(
      widths.map((w) => "-".repeat(w)),
      widths
    ),
    ...body.map((row) => pad(row, widths))
  ].join("\n")
}

/** Prints the tables, writes the JSON file and returns whether every verdict passed. */
export const report = (r: Report): boolean => {
  const pass = r.verdicts.every((v) => v.pass)
  console.log(`\n${r.id}: ${r.title}`)
  console.log(
    table(
      ["subject", "metric", "value", "unit"],
      r.rows.map((row) => [row.subject, row.metric, format(row.value), row.unit])
    )
  )
  if (r.verdicts.length > 0) {
    console.log("")
    console.log(
      table(
        ["judged", "value", "target", "result"],
        r.verdicts.map((v) => [v.metric, `${format(v.value)} ${v.unit}`, v.target, v.pass ? "PASS" : "FAIL"])
      )
    )
  }
  for (const note of r.notes ?? []) console.log(`note: ${note}`)
  mkdirSync(resultsDir, { recursive: true })
  const file = join(resultsDir, `${r.name}.json`)
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        id: r.id,
        title: r.title,
        date: new Date().toISOString(),
        command: r.command,
        environment: {
          node: process.version,
          platform: `${process.platform} ${process.arch}`,
          cpus: os.cpus().length,
          cpu: os.cpus()[0]?.model ?? "unknown",
          // The machine is shared: the load average when the benchmark finished says how shared.
          loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100)
        },
        results: r.rows,
        judged: r.verdicts,
        pass,
        notes: r.notes ?? []
      },
      null,
      2
    )}\n`
  )
  console.log(
    `${pass ? "PASS" : "FAIL"}: ${r.id} (wrote ${file}; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")})`
  )
  return pass
}

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const hi = sorted[mid] ?? Number.NaN
  const lo = sorted[mid - 1] ?? hi
  return sorted.length % 2 === 0 ? (lo + hi) / 2 : hi
}

/** `global.gc`, present when node runs with `--expose-gc`. */
export const requireGc = (): (() => void) => {
  const gc = globalThis.gc
  if (gc === undefined) {
    console.error("run with node --expose-gc (npm run bench does)")
    process.exit(2)
  }
  return () => {
    // Several passes: weak references and finalizers free more memory on the later ones.
    for (let i = 0; i < 4; i++) gc()
  }
}

/** `heapUsed` after full garbage collections. */
export const heapAfterGc = (gc: () => void): number => {
  gc()
  return process.memoryUsage().heapUsed
}
