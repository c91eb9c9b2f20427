// One file for both lines: each line's bench/b2.ts links here. Run with symlinks preserved (as
// `npm run bench` and `npm run soak` do), it imports the line's own bench/, src/ and effect.
/**
 * B2: 10,000 concurrent cold callers of `accessToken` against the real `MockRevault` over
 * loopback, its token endpoint answering after 20 ms; HTTP by `NodeHttpClient.layerUndici`,
 * real clock.
 *
 * The AuthService starts its first acquisition while it is built (a prefetch), so the clock
 * starts when the layer build starts; the time from the moment the callers start is reported
 * too. Each round builds a fresh AuthService (and undici agent) against one mock server; round 1
 * runs on a cold process (nothing JIT-compiled yet) and is reported separately.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthService from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import { fanOutFloor } from "./support/floor.js"
import { authLayer } from "./support/mock.js"
import { median, type Row, report } from "./support/report.js"

const callers = 10_000
const rounds = Number(process.env.B2_ROUNDS ?? 11)
const serverDelayMillis = 20
const budgetMillis = serverDelayMillis + 30

interface Round {
  /** The runtime floor of the same round: 10,000 fibers awaiting one Deferred completed after 20 ms. */
  readonly floor: number
  readonly build: number
  readonly fromBuild: number
  readonly fromCallers: number
  readonly posts: number
  readonly served: number
  readonly distinct: number
  readonly cold: boolean
}

const floorRound = fanOutFloor(callers, serverDelayMillis)

const serviceRound = (mock: MockRevault.Service) =>
  Effect.scoped(
    Effect.gen(function* () {
      yield* mock.fault("authenticate", MockRevault.Fault.Delay({ duration: `${serverDelayMillis} millis` }))
      const before = yield* mock.count("authenticate")
      const t0 = performance.now()
      const context = yield* Layer.build(authLayer(mock))
      const auth = Context.get(context, AuthService.AuthService)
      const t1 = performance.now()
      const callersStartedAt = Date.now()
      const tokens = yield* Effect.forEach(Array.from({ length: callers }), () => auth.accessToken, {
        concurrency: "unbounded"
      })
      const t2 = performance.now()
      const session = yield* auth.session
      return {
        floor: Number.NaN,
        build: t1 - t0,
        fromBuild: t2 - t0,
        fromCallers: t2 - t1,
        posts: (yield* mock.count("authenticate")) - before,
        served: tokens.length,
        distinct: new Set(tokens.map(Redacted.value)).size,
        // The token arrived after the callers started: every one of them found the cache empty.
        cold: session.obtainedAt.getTime() >= callersStartedAt
      } satisfies Round
    })
  )

const results = await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const mock = yield* MockRevault.make()
      const out: Array<Round> = []
      for (let i = 0; i < rounds; i++) {
        // Interleaved with the runtime floor, alternating which goes first.
        const floorFirst = i % 2 === 1
        const floorBefore = floorFirst ? yield* floorRound : Number.NaN
        const measured = yield* serviceRound(mock)
        const floor = floorFirst ? floorBefore : yield* floorRound
        const r = { ...measured, floor }
        console.log(
          `round ${String(i + 1).padStart(2)}/${rounds}: build ${r.build.toFixed(1)} ms, served ${r.served} (${r.distinct} distinct token) in ${r.fromBuild.toFixed(1)} ms from build, ${r.fromCallers.toFixed(1)} ms from callers; POST /auth/token x${r.posts}; cold ${r.cold}; runtime floor ${r.floor.toFixed(1)} ms`
        )
        out.push(r)
      }
      return out
    })
  )
)

const warm = results.slice(1)
const first = results[0]
const stat = (subject: string, metric: string, pick: (r: Round) => number): ReadonlyArray<Row> => [
  {
    subject,
    metric: `${metric}, round 1 (cold process)`,
    value: first === undefined ? Number.NaN : pick(first),
    unit: "ms"
  },
  { subject, metric: `${metric}, p50 rounds 2-${rounds}`, value: median(warm.map(pick)), unit: "ms" },
  { subject, metric: `${metric}, max rounds 2-${rounds}`, value: Math.max(...warm.map(pick)), unit: "ms" }
]
const wall = median(warm.map((r) => r.fromBuild))
const posts = results.map((r) => r.posts)
const allServed = results.every((r) => r.served === callers && r.distinct === 1)
const pass = report({
  id: "B2",
  name: "b2-cold-stampede",
  title: `${callers.toLocaleString("en-US")} concurrent cold callers, token endpoint answering after ${serverDelayMillis} ms (MockRevault, undici)`,
  command: "node --expose-gc --preserve-symlinks --preserve-symlinks-main --import tsx bench/b2.ts",
  rows: [
    ...stat("layer build", "time", (r) => r.build),
    ...stat("wall from layer build", "time", (r) => r.fromBuild),
    ...stat("wall from callers start", "time", (r) => r.fromCallers),
    ...stat("runtime floor (10,000 fibers awaiting a Deferred, 20 ms timer)", "time", (r) => r.floor),
    {
      subject: "wall from layer build / runtime floor",
      metric: `p50 of per-round ratios, rounds 2-${rounds}`,
      value: median(warm.map((r) => r.fromBuild / r.floor)),
      unit: "x"
    },
    { subject: "POST /auth/token", metric: "per round (max)", value: Math.max(...posts), unit: "requests" },
    {
      subject: "callers served",
      metric: "per round (min)",
      value: Math.min(...results.map((r) => r.served)),
      unit: "callers"
    },
    {
      subject: "rounds where every caller found the cache empty",
      metric: "count",
      value: results.filter((r) => r.cold).length,
      unit: `of ${rounds}`
    }
  ],
  verdicts: [
    {
      metric: "POST /auth/token per round",
      value: Math.max(...posts),
      unit: "requests",
      target: "exactly 1 in every round",
      pass: posts.every((p) => p === 1)
    },
    {
      metric: "callers served with the one token",
      value: Math.min(...results.map((r) => r.served)),
      unit: "callers",
      target: `all ${callers} in every round`,
      pass: allServed
    },
    {
      metric: `wall from layer build (p50 rounds 2-${rounds})`,
      value: wall,
      unit: "ms",
      target: `<= ${budgetMillis} ms (${serverDelayMillis} + 30)`,
      pass: wall <= budgetMillis
    }
  ]
})
process.exitCode = pass ? 0 : 1
