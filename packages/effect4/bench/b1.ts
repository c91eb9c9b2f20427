/**
 * B1: a cached `AuthService.accessToken` read inside a running program, against the floor of
 * any cache of this shape (`Ref.get` + `Clock.currentTimeMillis` + a compare).
 *
 * Each timed call runs a whole program of 10,000 reads in one `Effect.gen` with `Effect.runSync`.
 * The machine is shared, so the two subjects are measured side by side, interleaved, two ways:
 * - mitata: short `measure` rounds alternating A, B, B, A, ...; the ratio of the two p50s is taken
 *   round by round; the timings table comes from these rounds;
 * - paired runs (judged): A then B back to back, hundreds of times; the median of the per-pair
 *   ratios. A mitata round lasts about 100 ms, long enough for a burst of load from another
 *   process to land on one side only (see the Effect 3 line's README for the numbers).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import { do_not_optimize, measure } from "mitata"
import { median, report } from "./support/report.js"
import { benchConfig, makeService, makeStub } from "./support/stubApi.js"

const reads = 10_000
const rounds = 20
const pairs = 400
const target = 1.5

const scope = Effect.runSync(Scope.make())
const stub = makeStub()
const service = await Effect.runPromise(
  Effect.gen(function* () {
    const config = yield* benchConfig()
    const auth = yield* makeService(stub.api, config)
    // The prefetch started at construction; wait for it so every read below is a cache hit.
    yield* auth.accessToken
    return auth
  }).pipe(Scope.provide(scope))
)

const cached = Effect.gen(function* () {
  let last: Redacted.Redacted<string> | undefined
  for (let i = 0; i < reads; i++) last = yield* service.accessToken
  return last
})

// The floor: the state a cache needs, one Ref read, one clock read, one compare.
const skew = 30_000
const state = Effect.runSync(Ref.make({ token: Redacted.make("AT-FLOOR"), expiresAt: Date.now() + 3_600_000 }))
const floor = Effect.gen(function* () {
  let last: Redacted.Redacted<string> | undefined
  for (let i = 0; i < reads; i++) {
    const s = yield* Ref.get(state)
    const now = yield* Clock.currentTimeMillis
    if (s.expiresAt - skew > now) last = s.token
    else return yield* Effect.die(new Error("floor token expired"))
  }
  return last
})

// Both programs run synchronously (runSync would throw otherwise) and return a token.
if (Effect.runSync(cached) === undefined || Effect.runSync(floor) === undefined) throw new Error("no token read")

const subjects = [
  { name: "AuthService.accessToken", run: () => do_not_optimize(Effect.runSync(cached)) },
  { name: "floor (Ref.get + Clock + compare)", run: () => do_not_optimize(Effect.runSync(floor)) }
] as const

// mitata rounds.
const p50s: [Array<number>, Array<number>] = [[], []]
const ratios: Array<number> = []
for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? ([0, 1] as const) : ([1, 0] as const)
  for (const i of order) {
    const stats = await measure(subjects[i].run, { min_cpu_time: 30 * 1e6, min_samples: 4, warmup_samples: 1 })
    p50s[i].push(stats.p50)
  }
  const ratio = (p50s[0][round] ?? Number.NaN) / (p50s[1][round] ?? Number.NaN)
  ratios.push(ratio)
  console.log(
    `round ${String(round + 1).padStart(2)}/${rounds}: accessToken ${((p50s[0][round] ?? 0) / 1e6).toFixed(2)} ms, floor ${((p50s[1][round] ?? 0) / 1e6).toFixed(2)} ms, ratio ${ratio.toFixed(3)}`
  )
}

// Paired runs.
const paired: Array<number> = []
for (let i = 0; i < pairs; i++) {
  const t0 = process.hrtime.bigint()
  subjects[0].run()
  const t1 = process.hrtime.bigint()
  subjects[1].run()
  const t2 = process.hrtime.bigint()
  paired.push(Number(t1 - t0) / Number(t2 - t1))
}

await Effect.runPromise(Scope.close(scope, Exit.void))

const ratio = median(paired)
const quantile = (values: ReadonlyArray<number>, q: number) =>
  [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))] ?? Number.NaN
const pass = report({
  id: "B1",
  name: "b1-cached-read",
  title: `cached accessToken read vs Ref.get + Clock + compare (${reads.toLocaleString("en-US")} reads per program)`,
  command: "node --expose-gc --import tsx bench/b1.ts",
  rows: [
    ...subjects.flatMap((s, i) => {
      const p50 = median(p50s[i === 0 ? 0 : 1])
      return [
        {
          subject: s.name,
          metric: `p50 per ${reads} reads (median of ${rounds} rounds)`,
          value: p50 / 1e6,
          unit: "ms"
        },
        { subject: s.name, metric: "per read", value: p50 / reads, unit: "ns" }
      ]
    }),
    { subject: "ratio (mitata rounds)", metric: "median", value: median(ratios), unit: "x" },
    { subject: "ratio (mitata rounds)", metric: "p25", value: quantile(ratios, 0.25), unit: "x" },
    { subject: "ratio (mitata rounds)", metric: "p75", value: quantile(ratios, 0.75), unit: "x" },
    { subject: `ratio (${pairs} paired runs)`, metric: "median", value: median(paired), unit: "x" },
    { subject: `ratio (${pairs} paired runs)`, metric: "p25", value: quantile(paired, 0.25), unit: "x" },
    { subject: `ratio (${pairs} paired runs)`, metric: "p75", value: quantile(paired, 0.75), unit: "x" }
  ],
  verdicts: [
    {
      metric: `accessToken / floor (median of ${pairs} paired runs)`,
      value: ratio,
      unit: "x",
      target: `<= ${target}x`,
      pass: ratio <= target
    }
  ],
  notes: [`authenticate calls during the run: ${stub.counts.authenticate} (1 expected: the prefetch)`]
})
process.exitCode = pass ? 0 : 1
