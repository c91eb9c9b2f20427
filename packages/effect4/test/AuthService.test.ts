import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import { AuthApi } from "../src/AuthApi.js"
import { AuthConfig } from "../src/AuthConfig.js"
import { InternalServerError, TransportError, UnauthorizedError, UnexpectedStatusError } from "../src/AuthError.js"
import * as AuthService from "../src/AuthService.js"
import { makeStubApi, settle, setup, testConfig } from "./support/StubAuthApi.js"

const unauthorized = (operation: "authenticate" | "refresh") =>
  new UnauthorizedError({ operation, status: 401, code: "UNAUTHORIZED", message: "invalid api key", issues: [] })
const serverError = (operation: "authenticate" | "refresh") =>
  new InternalServerError({ operation, status: 500, code: "INTERNAL_SERVER_ERROR", message: "boom", issues: [] })
const unavailable = (operation: "authenticate" | "refresh", retryAfter?: Duration.Input) =>
  new UnexpectedStatusError({
    operation,
    status: retryAfter === undefined ? 503 : 429,
    body: "",
    retryAfter: retryAfter === undefined ? Option.none() : Option.some(Duration.fromInputUnsafe(retryAfter))
  })

const value = Redacted.value

describe("AuthService", () => {
  it.effect("prefetches at start; a cache hit does no request", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* settle
      assert.strictEqual(yield* stub.count("authenticate"), 1)
      const first = yield* service.accessToken
      const second = yield* service.accessToken
      assert.strictEqual(value(first), "AT-SECRET-1")
      assert.strictEqual(value(second), "AT-SECRET-1")
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("layer: the prefetch's request is under way when the service is handed over", () =>
    Effect.gen(function* () {
      // Not after a turn the program's own first burst of fibers (10,000 cold readers) would hold.
      const stub = yield* makeStubApi({ latency: "20 millis" })
      const config = yield* testConfig()
      yield* Layer.build(
        AuthService.layer.pipe(
          Layer.provide(Layer.succeed(AuthApi, stub.api)),
          Layer.provide(Layer.succeed(AuthConfig, config))
        )
      )
      assert.strictEqual(yield* stub.count("authenticate"), 1)
    })
  )

  it.effect("building never fails when the server is down; readers get the error", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "20 millis" })
      yield* stub.fail("authenticate", serverError("authenticate"))
      const reader = yield* Effect.forkChild(Effect.flip(service.accessToken))
      yield* settle
      yield* TestClock.adjust("20 millis")
      const error = yield* Fiber.join(reader)
      assert.strictEqual(error._tag, "InternalServerError")
      assert.strictEqual(yield* stub.count("authenticate"), 1)
    })
  )

  it.effect("10,000 concurrent cold readers cause exactly one POST and share its token", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "20 millis" })
      const readers = yield* Effect.forkChild(
        Effect.all(
          Array.from({ length: 10_000 }, () => service.accessToken),
          { concurrency: "unbounded" }
        )
      )
      yield* settle
      yield* TestClock.adjust("20 millis")
      const tokens = yield* Fiber.join(readers)
      assert.strictEqual(tokens.length, 10_000)
      assert.isTrue(tokens.every((t) => value(t) === "AT-SECRET-1"))
      assert.strictEqual(yield* stub.count(), 1)
      assert.strictEqual(yield* stub.maxInflight, 1)
    })
  )

  it.effect("10,000 readers at the instant of expiry cause exactly one refresh", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "20 millis", config: { refreshAt: 0.99 } })
      yield* settle
      yield* TestClock.adjust("20 millis")
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      // Jump past the usable lifetime (300 s - 30 s skew) before the background refresh runs.
      yield* TestClock.setTime(280_000)
      const readers = yield* Effect.forkChild(
        Effect.all(
          Array.from({ length: 10_000 }, () => service.accessToken),
          { concurrency: "unbounded" }
        )
      )
      yield* settle
      yield* TestClock.adjust("20 millis")
      const tokens = yield* Fiber.join(readers)
      assert.isTrue(tokens.every((t) => value(t) === "AT-SECRET-2"))
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.strictEqual(yield* stub.count("authenticate"), 1)
      assert.strictEqual(yield* stub.maxInflight, 1)
    })
  )

  it.effect("session: expiry times count from the moment the request was sent", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(1_000_000)
      const { service } = yield* setup({ latency: "2 seconds" })
      yield* settle
      yield* TestClock.adjust("2 seconds")
      const session = yield* service.session
      assert.strictEqual(session.expiresAt.getTime(), 1_000_000 + 300_000)
      assert.strictEqual(session.refreshExpiresAt.getTime(), 1_000_000 + 1_800_000)
      assert.strictEqual(session.obtainedAt.getTime(), 1_002_000)
      assert.strictEqual(session.source, "authenticate")
    })
  )

  it.effect("refreshes ahead at 80 % of the lifetime, through the refresh token", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* settle
      yield* TestClock.adjust("239 seconds")
      assert.strictEqual(yield* stub.count(), 1)
      yield* TestClock.adjust("1 second")
      yield* settle
      const calls = yield* stub.calls
      assert.deepStrictEqual(
        calls.map((c) => [c.operation, c.at]),
        [
          ["authenticate", 0],
          ["refresh", 240_000]
        ]
      )
      const session = yield* service.session
      assert.strictEqual(session.source, "refresh")
      assert.strictEqual(value(session.accessToken), "AT-SECRET-2")
    })
  )

  it.effect("24 simulated hours: POSTs = 24 h / 240 s ± 1, never a token within skew of expiry", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ absoluteRefreshLifetime: true })
      const skew = 30_000
      const served = yield* Ref.make(0)
      // A reader every 70 simulated seconds (prime to the 240 s cycle, so it samples every phase of
      // a token's life), checking each token against what the server issued.
      const reader = Effect.gen(function* () {
        const token = value(yield* service.accessToken)
        const now = yield* Clock.currentTimeMillis
        const issued = (yield* stub.issued).find((i) => i.token === token)
        if (issued === undefined || issued.expiresAt - skew <= now) {
          return yield* Effect.die(new Error(`token ${token} handed out within skew at ${now}`))
        }
        yield* Ref.update(served, (n) => n + 1)
      })
      const readers = yield* Effect.forkChild(Effect.repeat(reader, Schedule.spaced("70 seconds")))
      yield* TestClock.adjust("24 hours")
      const done = readers.pollUnsafe()
      assert.isUndefined(done, done === undefined ? "" : String(done))
      assert.isAtLeast(yield* Ref.get(served), Math.floor(86_400 / 70))
      const calls = yield* stub.calls
      assert.isAtMost(Math.abs(calls.length - 86_400 / 240), 1, `${calls.length} calls`)
      // Refresh tokens live 1,800 s from the API-key exchange: refresh while one lives, then the key.
      let lastAuth = 0
      for (const [i, call] of calls.entries()) {
        const expected = i === 0 || call.at - lastAuth >= 1_800_000 - skew ? "authenticate" : "refresh"
        assert.strictEqual(call.operation, expected, `call ${i} at ${call.at}`)
        if (call.operation === "authenticate") lastAuth = call.at
      }
      assert.isAtLeast(yield* stub.count("authenticate"), 40)
    })
  )

  it.effect("a token within skew of expiry is never handed out: readers wait for the refresh in flight", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "5 seconds", config: { refreshAt: 0.95 } })
      yield* settle
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      // The usable lifetime ends at 300 s - 30 s skew = 270 s, when the refresh starts.
      yield* TestClock.adjust("266 seconds")
      assert.strictEqual(yield* stub.count("refresh"), 1)
      const reader = yield* Effect.forkChild(service.accessToken)
      yield* settle
      assert.isUndefined(reader.pollUnsafe())
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual(value(yield* Fiber.join(reader)), "AT-SECRET-2")
    })
  )

  it.effect("a refresh failing for 50 s while the token is valid: old token served, backoff, then replaced", () =>
    Effect.gen(function* () {
      // Refresh at half the lifetime, so the token stays valid through 50 s of failures.
      const { service, stub } = yield* setup({ config: { refreshAt: 0.5 } })
      yield* settle
      yield* stub.fail("refresh", serverError("refresh"), 1_000)
      yield* TestClock.adjust("150 seconds")
      for (let s = 0; s < 50; s++) {
        yield* TestClock.adjust("1 second")
        assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      }
      const attempts = (yield* stub.calls).filter((c) => c.operation === "refresh").map((c) => c.at)
      // Exponential from 250 ms with jitter (0.8-1.2×): gaps grow, so 50 s holds few attempts.
      assert.isAtLeast(attempts.length, 5)
      assert.isAtMost(attempts.length, 12)
      for (let i = 2; i < attempts.length; i++) {
        const gap = (attempts[i] ?? 0) - (attempts[i - 1] ?? 0)
        const previous = (attempts[i - 1] ?? 0) - (attempts[i - 2] ?? 0)
        assert.isTrue(gap >= previous || gap >= 20_000, `gaps ${previous} then ${gap}`)
      }
      yield* stub.clearScript
      yield* TestClock.adjust("30 seconds")
      yield* settle
      const token = value(yield* service.accessToken)
      assert.notStrictEqual(token, "AT-SECRET-1")
    })
  )

  it.effect("failing past expiry: readers get the error; recovery afterwards", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* settle
      yield* stub.fail("refresh", serverError("refresh"), 10_000)
      yield* stub.fail("authenticate", serverError("authenticate"), 10_000)
      yield* TestClock.adjust("271 seconds")
      const error = yield* Effect.flip(service.accessToken)
      assert.strictEqual(error._tag, "InternalServerError")
      yield* stub.clearScript
      yield* TestClock.adjust("31 seconds")
      yield* settle
      assert.match(value(yield* service.accessToken), /^AT-SECRET-\d+$/)
    })
  )

  it.effect("a refresh answered 401 falls back to /auth/token once", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* settle
      yield* stub.fail("refresh", unauthorized("refresh"))
      yield* TestClock.adjust("240 seconds")
      yield* settle
      assert.deepStrictEqual(
        (yield* stub.calls).map((c) => c.operation),
        ["authenticate", "refresh", "authenticate"]
      )
      const session = yield* service.session
      assert.strictEqual(session.source, "authenticate")
    })
  )

  it.effect("/auth/token answering 401: readers get UnauthorizedError, attempts spaced by the backoff", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* stub.fail("authenticate", unauthorized("authenticate"), 1_000)
      yield* settle
      for (let s = 0; s < 600; s++) {
        const error = yield* Effect.flip(service.accessToken)
        assert.strictEqual(error._tag, "UnauthorizedError")
        yield* TestClock.adjust("1 second")
      }
      const attempts = (yield* stub.calls).map((c) => c.at)
      // Ten minutes of a reader every second: backoff from 1 s doubling to a 60 s cap.
      assert.isAtLeast(attempts.length, 8)
      assert.isAtMost(attempts.length, 20)
      const lastGap = (attempts.at(-1) ?? 0) - (attempts.at(-2) ?? 0)
      assert.isAtLeast(lastGap, 40_000)
      assert.isAtMost(lastGap, 61_000)
    })
  )

  it.effect("a 429 with Retry-After waits at least that long, capped at 60 s", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* stub.fail("authenticate", unavailable("authenticate", "20 seconds"))
      yield* stub.fail("authenticate", unavailable("authenticate", "10 minutes"))
      yield* settle
      yield* TestClock.adjust("19 seconds")
      assert.strictEqual(yield* stub.count(), 1)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* stub.count(), 2)
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(yield* stub.count(), 2)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* stub.count(), 3)
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
    })
  )

  it.effect("invalidate then read: one new acquisition, through the refresh token", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      const first = yield* service.accessToken
      yield* Effect.all(
        Array.from({ length: 100 }, () => service.invalidate(first)),
        { concurrency: "unbounded" }
      )
      const tokens = yield* Effect.all(
        Array.from({ length: 100 }, () => service.accessToken),
        { concurrency: "unbounded" }
      )
      assert.isTrue(tokens.every((t) => value(t) === "AT-SECRET-2"))
      assert.deepStrictEqual(
        (yield* stub.calls).map((c) => c.operation),
        ["authenticate", "refresh"]
      )
      yield* service.invalidate(first)
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-2")
      assert.strictEqual(yield* stub.count(), 2)
    })
  )

  it.effect("after a failure a reader started, the background driver retries on its own", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      const first = yield* service.accessToken
      yield* stub.fail("refresh", serverError("refresh"))
      yield* service.invalidate(first)
      const error = yield* Effect.flip(service.accessToken)
      assert.strictEqual(error._tag, "InternalServerError")
      // Backoff starts at 250 ms (jittered up to 300 ms); nobody reads in the meantime.
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual(
        (yield* stub.calls).map((c) => c.operation),
        ["authenticate", "refresh", "refresh"]
      )
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-2")
    })
  )

  it.effect("tokens shorter-lived than expirySkew: the skew is capped at half a lifetime, no refresh storm", () =>
    Effect.gen(function* () {
      // 6 s tokens with the default 30 s skew: usable for 3 s each, refreshed every 3 s.
      const { service, stub } = yield* setup({ expiresInSeconds: 6, refreshExpiresInSeconds: 15 })
      for (let s = 0; s < 60; s++) {
        const session = yield* service.session
        const now = s * 1000
        assert.isAbove(session.expiresAt.getTime() - now, 3_000 - 1)
        yield* TestClock.adjust("1 second")
      }
      const calls = yield* stub.count()
      assert.isAtLeast(calls, 19)
      assert.isAtMost(calls, 22)
    })
  )

  it.effect("refresh joins the acquisition in flight", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "1 second" })
      const both = yield* Effect.forkChild(
        Effect.all([service.refresh, service.refresh, service.accessToken], { concurrency: "unbounded" })
      )
      yield* settle
      yield* TestClock.adjust("1 second")
      const [a, b] = yield* Fiber.join(both)
      assert.strictEqual(value(a.accessToken), value(b.accessToken))
      assert.strictEqual(yield* stub.count(), 1)
      const forced = yield* Effect.forkChild(service.refresh)
      yield* settle
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(forced)).source, "refresh")
      assert.strictEqual(yield* stub.count(), 2)
    })
  )

  it.effect("an interrupted or timed-out reader does not cancel the shared acquisition", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ latency: "5 seconds" })
      const impatient = yield* Effect.forkChild(Effect.timeout(service.accessToken, "1 second"))
      const interrupted = yield* Effect.forkChild(service.accessToken)
      const patient = yield* Effect.forkChild(service.accessToken)
      yield* settle
      yield* TestClock.adjust("1 second")
      const timedOut = yield* Fiber.await(impatient)
      assert.isTrue(Exit.isFailure(timedOut))
      yield* Fiber.interrupt(interrupted)
      yield* TestClock.adjust("4 seconds")
      assert.strictEqual(value(yield* Fiber.join(patient)), "AT-SECRET-1")
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("closing the layer stops the background fiber: no POSTs after close", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { service, stub } = yield* Scope.provide(setup(), scope)
      yield* service.accessToken
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("closing the layer while an acquisition is in flight leaves no waiter hanging", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { service, stub } = yield* Scope.provide(setup({ latency: "10 seconds" }), scope)
      const reader = yield* Effect.forkChild(service.accessToken)
      yield* settle
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(reader)
      assert.isTrue(Exit.hasInterrupts(exit))
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("a clock jump past expiry never returns the stale token", () =>
    Effect.gen(function* () {
      const { service } = yield* setup()
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      yield* TestClock.adjust("3 hours")
      const token = value(yield* service.accessToken)
      assert.notStrictEqual(token, "AT-SECRET-1")
    })
  )

  it.effect("fractional clock times: the background driver sleeps, never spins on a sleep that ends at once", () =>
    Effect.gen(function* () {
      // Times from a CI run that froze: at 1990226.057388 ms, a 120 s token's refresh point
      // (expiry less the 30 s skew) is 2080226.0573880002, a hair past the instant the driver's
      // first sleep lands on. A sleep shorter than the float resolution ends as it starts on a
      // TestClock; the driver looped on it without end.
      const testClock = yield* Clock.Clock
      let sleeps = 0
      const counting: Clock.Clock = {
        currentTimeMillisUnsafe: () => testClock.currentTimeMillisUnsafe(),
        currentTimeNanosUnsafe: () => testClock.currentTimeNanosUnsafe(),
        monotonicTimeNanosUnsafe: () => testClock.monotonicTimeNanosUnsafe(),
        currentTimeMillis: testClock.currentTimeMillis,
        currentTimeNanos: testClock.currentTimeNanos,
        monotonicTimeNanos: testClock.monotonicTimeNanos,
        sleep: (duration) =>
          Effect.suspend(() => {
            sleeps++
            return testClock.sleep(duration)
          })
      }
      yield* TestClock.setTime(1_990_226.057388)
      const { stub } = yield* setup({ expiresInSeconds: 120, config: { refreshAt: 0.99 } }).pipe(
        Effect.provideService(Clock.Clock, counting)
      )
      yield* settle
      assert.strictEqual(yield* stub.count("authenticate"), 1)
      yield* TestClock.adjust("90 seconds")
      yield* settle
      const asleep = sleeps
      yield* settle
      assert.strictEqual(sleeps, asleep, "the driver must be asleep, not looping")
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.strictEqual(yield* stub.count("refresh"), 1)
    })
  )

  it.effect("transport failures are transient: retried while the token is valid", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup()
      yield* settle
      yield* stub.fail("refresh", new TransportError({ operation: "refresh", reason: "Timeout", cause: "timeout" }), 2)
      yield* TestClock.adjust("240 seconds")
      yield* settle
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-2")
      assert.strictEqual(yield* stub.count("refresh"), 3)
    })
  )

  it.effect("layer: the service from AuthApi and AuthConfig in the context", () =>
    Effect.gen(function* () {
      const { stub, config } = yield* setup()
      const token = yield* Effect.flatMap(AuthService.AuthService, (auth) => auth.accessToken).pipe(
        Effect.provide(AuthService.layer),
        Effect.provideService(AuthApi, stub.api),
        Effect.provideService(AuthConfig, config)
      )
      assert.match(value(token), /^AT-SECRET-\d+$/)
    })
  )

  it.effect("layerStub serves a fixed token with no HTTP", () =>
    Effect.gen(function* () {
      const service = yield* AuthService.AuthService
      assert.strictEqual(value(yield* service.accessToken), "stub-token")
      const session = yield* service.session
      assert.strictEqual(session.expiresAt.getTime() - session.obtainedAt.getTime(), 3_600_000)
    }).pipe(Effect.provide(AuthService.layerStub("stub-token")))
  )

  it.effect("layerStub serves a failing effect's error", () =>
    Effect.gen(function* () {
      const service = yield* AuthService.AuthService
      const error = yield* Effect.flip(service.accessToken)
      assert.strictEqual(error._tag, "UnauthorizedError")
    }).pipe(Effect.provide(AuthService.layerStub(Effect.fail(unauthorized("authenticate")))))
  )
})
