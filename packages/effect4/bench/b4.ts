/**
 * B4: 7 simulated days, 300 s access tokens (30 min refresh tokens), a reader every simulated
 * second. Judged: no expired token is ever served; the number of token requests is within 1 % of
 * 7 d / 240 s (refresh at 80 % of 300 s); `heapUsed` after GC at day 7 is within 5 % of day 1.
 *
 * Time: the `Clock` is `SimClock` (support/simClock.ts, provided as the `Clock.Clock` reference), a
 * deterministic simulated clock that wakes sleepers in time order and yields (`Effect.yieldNow`)
 * until the woken fibers go quiet. A cross-check runs the first 10 simulated minutes with the
 * real `TestClock` (`TestClock.layer()`, `TestClock.adjust("1 second")` per reader tick) and
 * compares the token requests' times.
 *
 * The stub AuthApi answers after 50 ms of simulated time and keeps the expiry of every token it
 * issued, so the reader checks each token it is served against the server's view of its expiry.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Result from "effect/Result"
import * as TestClock from "effect/testing/TestClock"
import { heapAfterGc, type Row, report, requireGc } from "./support/report.js"
import { SimClock } from "./support/simClock.js"
import { benchConfig, makeService, makeStub, type Stub } from "./support/stubApi.js"

const gc = requireGc()
const second = 1_000
const day = 86_400 * second
const days = Number(process.env.B4_DAYS ?? 7)
const lifetimeSeconds = 300
const skewMillis = 30 * second
const expectedPosts = (days * day) / (0.8 * lifetimeSeconds * second)
const crossCheckMinutes = 10

interface ReadStats {
  reads: number
  expired: number
  inSkew: number
  failures: number
}

/** An AuthService on a fresh stub, and a reader that reads the token every simulated second. */
const setup = Effect.gen(function* () {
  const stub = makeStub({ latency: "50 millis", expiresInSeconds: lifetimeSeconds, refreshExpiresInSeconds: 1800 })
  const auth = yield* makeService(stub.api, yield* benchConfig({ expirySkew: `${skewMillis} millis` }))
  const stats: ReadStats = { reads: 0, expired: 0, inSkew: 0, failures: 0 }
  const read = Effect.gen(function* () {
    const token = yield* Effect.result(auth.accessToken)
    const now = yield* Clock.currentTimeMillis
    stats.reads++
    if (Result.isFailure(token)) {
      stats.failures++
      return
    }
    const expiresAt = stub.expiresAt(token.success)
    if (expiresAt === undefined || now >= expiresAt) stats.expired++
    else if (now >= expiresAt - skewMillis) stats.inSkew++
  })
  const reader = yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(`${second} millis`), read)))
  return { stub, stats, reader }
})

const posts = (stub: Stub) => stub.counts.authenticate + stub.counts.refresh

// The simulation on SimClock.
const clock = new SimClock(0)
const simulation = Effect.scoped(
  Effect.gen(function* () {
    const { stats, stub } = yield* setup
    yield* clock.settle
    const heap: Array<number> = [heapAfterGc(gc)]
    const wallStart = performance.now()
    let crossCheck: ReadonlyArray<number> = []
    for (let d = 1; d <= days; d++) {
      const dayStart = performance.now()
      if (d === 1) {
        yield* clock.advanceTo(crossCheckMinutes * 60 * second)
        crossCheck = stub.firstCalls.map((c) => c.at)
      }
      yield* clock.advanceTo(d * day)
      heap.push(heapAfterGc(gc))
      console.log(
        `day ${d}: ${((performance.now() - dayStart) / 1000).toFixed(1)} s real, reads ${stats.reads}, POSTs ${posts(stub)}, expired ${stats.expired}, heapUsed ${((heap[d] ?? 0) / 1e6).toFixed(2)} MB`
      )
    }
    return {
      stats: { ...stats },
      posts: posts(stub),
      counts: { ...stub.counts },
      heap,
      wall: performance.now() - wallStart,
      crossCheck
    }
  })
).pipe(Effect.provideService(Clock.Clock, clock))

// The cross-check on the real TestClock: the first minutes, one adjust per reader tick.
const withTestClock = Effect.scoped(
  Effect.gen(function* () {
    const { reader, stats, stub } = yield* setup
    const t0 = performance.now()
    for (let s = 0; s < crossCheckMinutes * 60; s++) yield* TestClock.adjust(`${second} millis`)
    const wall = performance.now() - t0
    yield* Fiber.interrupt(reader)
    return { calls: stub.firstCalls.map((c) => c.at), stats: { ...stats }, wall }
  })
).pipe(Effect.provide(TestClock.layer()))

const result = await Effect.runPromise(simulation)
const testClock = await Effect.runPromise(withTestClock)

const day1 = result.heap[1] ?? Number.NaN
const dayN = result.heap[days] ?? Number.NaN
const heapDrift = (dayN - day1) / day1
const postDrift = (result.posts - expectedPosts) / expectedPosts
const sameSchedule =
  testClock.calls.length === result.crossCheck.length && testClock.calls.every((at, i) => result.crossCheck[i] === at)

const rows: Array<Row> = [
  { subject: "simulation", metric: "simulated time", value: days * 24, unit: "h" },
  { subject: "simulation", metric: "real time", value: result.wall / 1000, unit: "s" },
  { subject: "simulation", metric: "SimClock wake-ups", value: clock.wakeUps, unit: "wake-ups" },
  { subject: "simulation", metric: "real time per wake-up", value: (result.wall * 1000) / clock.wakeUps, unit: "us" },
  { subject: "simulation", metric: "settling yields per wake-up", value: clock.yields / clock.wakeUps, unit: "yields" },
  { subject: "reader", metric: "reads", value: result.stats.reads, unit: "reads" },
  { subject: "reader", metric: "expired tokens served", value: result.stats.expired, unit: "reads" },
  { subject: "reader", metric: "tokens served within expirySkew of expiry", value: result.stats.inSkew, unit: "reads" },
  { subject: "reader", metric: "failed reads", value: result.stats.failures, unit: "reads" },
  { subject: "AuthApi", metric: "POST /auth/token", value: result.counts.authenticate, unit: "requests" },
  { subject: "AuthApi", metric: "POST /auth/token/refresh", value: result.counts.refresh, unit: "requests" },
  ...result.heap.map((h, i) => ({ subject: "heapUsed after GC", metric: `day ${i}`, value: h / 1e6, unit: "MB" })),
  {
    subject: `TestClock cross-check (${crossCheckMinutes} min)`,
    metric: "real time",
    value: testClock.wall / 1000,
    unit: "s"
  },
  {
    subject: `TestClock cross-check (${crossCheckMinutes} min)`,
    metric: "reads / expired",
    value: testClock.stats.reads,
    unit: `reads / ${testClock.stats.expired} expired`
  },
  {
    subject: `TestClock cross-check (${crossCheckMinutes} min)`,
    metric: "token requests at the same simulated times as SimClock",
    value: sameSchedule ? 1 : 0,
    unit: `(1 = yes; ${testClock.calls.length} requests)`
  }
]

const pass = report({
  id: "B4",
  name: "b4-seven-days",
  title: `${days} simulated days, ${lifetimeSeconds} s tokens, a reader every simulated second`,
  command: "node --expose-gc --import tsx bench/b4.ts",
  rows,
  verdicts: [
    {
      metric: "expired tokens served",
      value: result.stats.expired,
      unit: "reads",
      target: "0",
      pass: result.stats.expired === 0 && result.stats.failures === 0
    },
    {
      metric: "token requests (POSTs)",
      value: result.posts,
      unit: "requests",
      target: `${expectedPosts} +/- 1 %`,
      pass: Math.abs(postDrift) <= 0.01
    },
    {
      metric: `heapUsed after GC, day ${days} vs day 1`,
      value: heapDrift * 100,
      unit: "%",
      target: "within +/- 5 %",
      pass: Math.abs(heapDrift) <= 0.05
    },
    {
      metric: "SimClock agrees with TestClock (first minutes)",
      value: testClock.calls.length,
      unit: "requests",
      target: "same request times",
      pass: sameSchedule && testClock.stats.expired === 0
    }
  ],
  notes: [
    `token request times, first ${crossCheckMinutes} simulated minutes (ms): SimClock ${result.crossCheck.join(", ")}; TestClock ${testClock.calls.join(", ")}`
  ]
})
process.exitCode = pass ? 0 : 1
