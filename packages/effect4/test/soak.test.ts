/**
 * The soak of `npm run soak` (bench/soak-lib.ts), for 5 s of real time: 200 callers through
 * injected token faults. It asserts the invariants, not the speed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/testing/TestClock"
import { runSoak } from "../bench/soak-lib.js"
import * as MockRevault from "../src/MockRevault.js"

const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length

const sum = (counts: Readonly<Record<string, number>>) => Object.values(counts).reduce((a, b) => a + b, 0)

describe("Soak", () => {
  it.live(
    "5 s, 200 callers, faults on the token routes: no expired token sent, typed errors only, stops, recovers",
    () =>
      Effect.gen(function* () {
        const before = timers()
        // Seed 6 draws: 503 ×2 on refresh at 2 s, 401 ×2 on refresh at 3 s (API-key fallback), 429 on /auth/token at 4 s.
        const report = yield* runSoak({ seconds: 5, seed: 6 })
        for (const invariant of report.invariants) {
          assert.isTrue(invariant.pass, `${invariant.name}: ${invariant.detail}`)
        }
        assert.strictEqual(report.sends.expiredAtSend, 0)
        assert.strictEqual(report.server.meByToken.invalid ?? 0, 0)
        // Every request that reached /users/me went through the observed transport.
        assert.strictEqual(report.sends.count, report.server.requestsByRoute.me)
        // It did what a soak must: calls served, tokens refreshed, faults met and survived.
        assert.isAbove(report.callers.succeeded, 0)
        assert.isAbove(report.acquisitions.requests.refresh, 0)
        assert.isAbove(sum(report.faultsInjected), 0)
        assert.isAbove(sum(report.server.faultsApplied), 0)
        assert.isAbove(report.acquisitions.outcomes["refresh:success"] ?? 0, 0)
        assert.isBelow(report.elapsedSeconds, 30)
        // Nothing is left to keep the process alive: no TCP handle (the `stopped` invariant) and
        // no timer beyond those there before.
        assert.strictEqual(report.tcpHandlesAfterClose, 0)
        assert.isAtMost(timers(), before)
      }),
    30_000
  )

  it.effect("MockRevault.takeRequests hands over the log and empties it", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.make()
      const post = (path: string) =>
        Effect.promise(() =>
          fetch(`${mock.baseUrl}${path}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(MockRevault.demoCredentials)
          }).then((r) => r.text())
        )
      yield* post("/auth/token")
      yield* post("/auth/token")
      const first = yield* mock.takeRequests
      assert.deepStrictEqual(
        first.map((e) => [e.route, e.at]),
        [
          ["authenticate", 0],
          ["authenticate", 0]
        ]
      )
      assert.deepStrictEqual(yield* mock.requests, [])
      assert.strictEqual(yield* mock.count("authenticate"), 0)
      yield* TestClock.adjust("1 second")
      yield* post("/auth/token")
      assert.deepStrictEqual(
        (yield* mock.takeRequests).map((e) => [e.route, e.at]),
        [["authenticate", 1_000]]
      )
      assert.deepStrictEqual(yield* mock.takeRequests, [])
    })
  )

  it.live("dropped, cut and hung requests leave nothing that keeps the process alive once the mock is closed", () =>
    Effect.gen(function* () {
      const before = timers()
      const outcomes = yield* Effect.scoped(
        Effect.gen(function* () {
          const mock = yield* MockRevault.make()
          const outcomes: Array<string> = []
          for (const fault of [MockRevault.Fault.Drop(), MockRevault.Fault.Truncate(), MockRevault.Fault.Hang()]) {
            yield* mock.fault("authenticate", fault)
            outcomes.push(
              yield* Effect.promise(() =>
                fetch(`${mock.baseUrl}/auth/token`, {
                  method: "POST",
                  headers: { "content-type": "application/json" },
                  body: JSON.stringify(MockRevault.demoCredentials),
                  signal: AbortSignal.timeout(300)
                })
                  .then((r) => r.text())
                  .then(
                    () => "answered",
                    () => "failed"
                  )
              )
            )
          }
          return outcomes
        })
      )
      assert.deepStrictEqual(outcomes, ["failed", "failed", "failed"])
      // Sockets and the server close asynchronously. No timer is left holding the event loop open
      // (each such request used to leave one, for ever).
      yield* Effect.sleep("200 millis")
      assert.isAtMost(timers(), before)
    })
  )
})
