/**
 * B2b: 10,000 concurrent callers at the instant the cached token stops being usable (the
 * refresh path), against the real `MockRevault` over loopback, real clock, undici.
 *
 * How the instant is made: the mock issues 20 s access tokens and the AuthService runs with a 10 s
 * `expirySkew`, so a token is handed out for 10 s after its request was sent (`usableUntil`). The
 * bench reads the first token, sleeps (real time) until `usableUntil`, and releases the 10,000
 * callers then, with `POST /auth/token/refresh` answering after 20 ms so that they pile up on the
 * one refresh. The background driver's refresh point is the same instant (it refreshes at
 * min(80 % of the lifetime, usableUntil)), so the callers race the driver for it, as they would in
 * production; the log says which one started the refresh. The new token stays usable for 10 s,
 * longer than the stampede takes on this machine even under load (a loaded run took 4.5 s), so a
 * second refresh would be a real duplicate and not the next scheduled one.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as AuthService from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import { fanOutFloor } from "./support/floor.js"
import { authLayer } from "./support/mock.js"
import { median, report } from "./support/report.js"

const callers = 10_000
const rounds = 3
const serverDelayMillis = 20
const accessTokenTtl = "20 seconds"
const expirySkewMillis = 10_000

interface Round {
  readonly refreshPosts: number
  readonly authenticatePosts: number
  readonly served: number
  readonly distinct: number
  readonly renewed: boolean
  readonly lateMillis: number
  readonly wall: number
  readonly floor: number
  readonly reasons: ReadonlyArray<string>
}

// Which path started each acquisition: the "token obtained" debug log carries the reason.
const reasons: Array<string> = []
const captureReasons = Logger.make(({ fiber, message }) => {
  const text = Array.isArray(message) ? message.join(" ") : String(message)
  if (text !== "token obtained") return
  const annotations = fiber.getRef(References.CurrentLogAnnotations)
  reasons.push(`${String(annotations.source ?? "?")}:${String(annotations.reason ?? "?")}`)
})

const floorRound = fanOutFloor(callers, serverDelayMillis)

const serviceRound = (mock: MockRevault.Service) =>
  Effect.scoped(
    Effect.gen(function* () {
      const context = yield* Layer.build(authLayer(mock, { expirySkew: `${expirySkewMillis} millis` }))
      const auth = Context.get(context, AuthService.AuthService)
      const first = yield* auth.session
      yield* mock.fault("refresh", MockRevault.Fault.Delay({ duration: `${serverDelayMillis} millis` }))
      const usableUntil = first.expiresAt.getTime() - expirySkewMillis
      yield* Effect.sleep(`${Math.max(0, usableUntil - Date.now())} millis`)
      // Timers may fire a millisecond early: step until the instant has passed (bounded).
      for (let i = 0; i < 50 && Date.now() < usableUntil; i++) yield* Effect.sleep("1 millis")
      const refreshBefore = yield* mock.count("refresh")
      const authenticateBefore = yield* mock.count("authenticate")
      reasons.length = 0
      const lateMillis = Date.now() - usableUntil
      const t1 = performance.now()
      const tokens = yield* Effect.forEach(Array.from({ length: callers }), () => auth.accessToken, {
        concurrency: "unbounded"
      })
      const wall = performance.now() - t1
      const values = new Set(tokens.map(Redacted.value))
      return {
        refreshPosts: (yield* mock.count("refresh")) - refreshBefore,
        authenticatePosts: (yield* mock.count("authenticate")) - authenticateBefore,
        served: tokens.length,
        distinct: values.size,
        renewed: !values.has(Redacted.value(first.accessToken)),
        lateMillis,
        wall,
        floor: Number.NaN,
        reasons: [...reasons]
      } satisfies Round
    })
  )

const results = await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const mock = yield* MockRevault.make({ accessTokenTtl })
      const out: Array<Round> = []
      for (let i = 0; i < rounds; i++) {
        const measured = yield* serviceRound(mock)
        const r = { ...measured, floor: yield* floorRound }
        console.log(
          `round ${i + 1}/${rounds}: callers released ${r.lateMillis} ms after usableUntil; served ${r.served} (${r.distinct} distinct token, renewed ${r.renewed}) in ${r.wall.toFixed(1)} ms; POST /auth/token/refresh x${r.refreshPosts}, POST /auth/token x${r.authenticatePosts}; started by ${r.reasons.join(", ") || "?"}; runtime floor ${r.floor.toFixed(1)} ms`
        )
        out.push(r)
      }
      return out
    })
  ).pipe(Effect.provide(Logger.layer([captureReasons])), Effect.provideService(References.MinimumLogLevel, "Debug"))
)

const refreshPosts = results.map((r) => r.refreshPosts)
const pass = report({
  id: "B2b",
  name: "b2b-refresh-stampede",
  title: `${callers.toLocaleString("en-US")} concurrent callers at the instant of expiry (refresh path, MockRevault, undici)`,
  command: "node --expose-gc --import tsx bench/b2b.ts",
  rows: [
    ...results.flatMap((r, i) => [
      { subject: `round ${i + 1}`, metric: "POST /auth/token/refresh", value: r.refreshPosts, unit: "requests" },
      { subject: `round ${i + 1}`, metric: "POST /auth/token", value: r.authenticatePosts, unit: "requests" },
      { subject: `round ${i + 1}`, metric: "callers released after usableUntil", value: r.lateMillis, unit: "ms" },
      { subject: `round ${i + 1}`, metric: "wall from callers start", value: r.wall, unit: "ms" },
      { subject: `round ${i + 1}`, metric: "runtime floor (10,000 fibers, 20 ms Deferred)", value: r.floor, unit: "ms" }
    ]),
    { subject: "all rounds", metric: "wall p50", value: median(results.map((r) => r.wall)), unit: "ms" },
    {
      subject: "all rounds",
      metric: "refreshes started by the readers (reason expired)",
      value: results.filter((r) => r.reasons.some((x) => x.endsWith(":expired"))).length,
      unit: `of ${rounds}`
    }
  ],
  verdicts: [
    {
      metric: "POST /auth/token/refresh per round",
      value: Math.max(...refreshPosts),
      unit: "requests",
      target: "exactly 1 in every round",
      pass: refreshPosts.every((p) => p === 1) && results.every((r) => r.authenticatePosts === 0)
    },
    {
      metric: "callers served with the one new token",
      value: Math.min(...results.map((r) => r.served)),
      unit: "callers",
      target: `all ${callers}, one token, not the old one`,
      pass: results.every((r) => r.served === callers && r.distinct === 1 && r.renewed)
    }
  ],
  notes: [
    ...results.map(
      (r, i) => `round ${i + 1}: acquisitions during the stampede (source:reason): ${r.reasons.join(", ")}`
    ),
    "reason 'expired' = a reader found the token unusable and started the refresh; 'ahead' = the background driver did"
  ]
})
process.exitCode = pass ? 0 : 1
