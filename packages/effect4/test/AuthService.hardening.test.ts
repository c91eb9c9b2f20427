import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import { AuthApi } from "../src/AuthApi.js"
import { AuthConfig } from "../src/AuthConfig.js"
import {
  type AuthError,
  AuthServiceClosedError,
  BadRequestError,
  ForbiddenError,
  InternalServerError,
  isAuthError,
  type Operation,
  UnauthorizedError
} from "../src/AuthError.js"
import { make as makeAuthService } from "../src/AuthService.js"
import type { TokenSet } from "../src/TokenSet.js"
import { captureLogs } from "./support/captureLogs.js"
import { makeStubApi, settle, setup, testConfig } from "./support/StubAuthApi.js"

const value = Redacted.value

const serverError = (operation: Operation) =>
  new InternalServerError({ operation, status: 500, code: "INTERNAL_SERVER_ERROR", message: "boom", issues: [] })

const refused = (status: 400 | 401 | 403): AuthError => {
  const fields = { operation: "authenticate" as const, status, code: "NO", message: "refused", issues: [] }
  return status === 400
    ? new BadRequestError(fields)
    : status === 401
      ? new UnauthorizedError(fields)
      : new ForbiddenError(fields)
}

/** An AuthService on an AuthApi whose every call runs `call`, in the current scope. */
const onApi = (call: Effect.Effect<TokenSet, AuthError>) =>
  Effect.gen(function* () {
    const config = yield* testConfig()
    return yield* makeAuthService.pipe(
      Effect.provideService(AuthApi, AuthApi.of({ authenticate: call, refresh: () => call })),
      Effect.provideService(AuthConfig, config)
    )
  })

/** The attempt times of the stub, in milliseconds. */
const attemptTimes = (calls: ReadonlyArray<{ readonly at: number }>) => calls.map((c) => c.at)

/** The current (test) clock with `sleep` replaced. */
const withSleep = (clock: Clock.Clock, sleep: Clock.Clock["sleep"]): Clock.Clock => ({
  currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
  currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
  monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
  currentTimeMillis: clock.currentTimeMillis,
  currentTimeNanos: clock.currentTimeNanos,
  monotonicTimeNanos: clock.monotonicTimeNanos,
  sleep
})

describe("AuthService: a defect or an interruption inside an acquisition", () => {
  for (const [kind, outcome] of [
    ["a defect", Effect.die(new Error("middleware threw"))],
    ["an interruption", Effect.interrupt]
  ] as const) {
    it.effect(`${kind}: backs off, a handful of attempts in 5 simulated seconds, and a timer beside it fires`, () =>
      Effect.gen(function* () {
        let attempts = 0
        let fired = false
        const timer = setTimeout(() => {
          fired = true
        }, 0)
        yield* Effect.addFinalizer(() => Effect.sync(() => clearTimeout(timer)))
        // Past 50 attempts the API hangs: a driver that retries at once then stops here, and the
        // count below fails the test instead of the loop freezing it.
        const service = yield* onApi(
          Effect.suspend(() => {
            attempts++
            return attempts > 50 ? Effect.never : outcome
          })
        )
        const waiting = yield* Effect.forkChild(service.accessToken)
        yield* TestClock.adjust("5 seconds")
        // retrySchedule: 250 ms, 500 ms, 1 s, 2 s, ... (jittered): attempts at about 0, 0.25, 0.75, 1.75, 3.75 s.
        assert.isAtMost(attempts, 6, `${attempts} attempts`)
        assert.isAtLeast(attempts, 3, `${attempts} attempts`)
        // The reader waiting for the first attempt got what it was, not a hang.
        const exit = waiting.pollUnsafe()
        assert.isDefined(exit, "the waiting reader must have an answer")
        if (exit !== undefined) {
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            assert.isTrue(
              kind === "a defect" ? Cause.hasDies(exit.cause) : Cause.hasInterruptsOnly(exit.cause),
              Cause.pretty(exit.cause)
            )
          }
        }
        // A reader during the backoff gets it at once.
        const during = yield* Effect.forkChild(service.accessToken)
        yield* settle
        assert.isDefined(during.pollUnsafe(), "a reader during the backoff must not wait")
        // Let the macrotask queue run once: the run loop must not have starved it.
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 0)))
        assert.isTrue(fired, "a timer set beside the manager must fire")
      })
    )
  }

  it.effect("a defect, then a working API: the attempt after the backoff serves the token", () =>
    Effect.gen(function* () {
      let attempts = 0
      const stub = yield* makeStubApi({ latency: "100 millis" })
      const service = yield* onApi(
        Effect.suspend(() => {
          attempts++
          return attempts === 1 ? Effect.die(new Error("once")) : stub.api.authenticate
        })
      )
      const defect = yield* Effect.exit(service.accessToken)
      assert.isTrue(Exit.isFailure(defect) && Cause.hasDies(defect.cause))
      yield* TestClock.adjust("500 millis")
      yield* settle
      assert.strictEqual(attempts, 2)
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
    })
  )
})

describe("AuthService: the background driver's sleeps", () => {
  it.effect("a token living 40 days is refreshed ahead at 32 days: no sleep reaches 2^31 ms", () =>
    Effect.gen(function* () {
      // A clock that treats a sleep beyond 2^31 - 1 ms as infinite, as a naive timer-based Clock
      // would, on top of the TestClock, and records the longest sleep asked for.
      const testClock = yield* Clock.Clock
      let longest = 0
      const naive = withSleep(testClock, (duration) =>
        Effect.suspend(() => {
          const millis = Duration.toMillis(duration)
          longest = Math.max(longest, millis)
          return millis > 2 ** 31 - 1 ? Effect.never : testClock.sleep(duration)
        })
      )
      const days = 86_400
      const { stub } = yield* setup({ expiresInSeconds: 40 * days, refreshExpiresInSeconds: 80 * days }).pipe(
        Effect.provideService(Clock.Clock, naive)
      )
      yield* settle
      yield* TestClock.adjust(Duration.subtract(Duration.days(32), Duration.seconds(1)))
      assert.strictEqual(yield* stub.count("refresh"), 0)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.isBelow(longest, 2 ** 31 - 1)
    })
  )
})

describe("AuthService: answers slower than the token's usable time", () => {
  it.effect("10 s tokens, 6 s answers: the reader gets the token, the next attempt waits for the backoff", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { service, stub } = yield* withLogs(
        setup({ latency: "6 seconds", expiresInSeconds: 10, refreshExpiresInSeconds: 60 })
      )
      const reader = yield* Effect.forkChild(service.accessToken)
      yield* TestClock.adjust("6 seconds")
      yield* settle
      // The token landed at 6 s, past its usable time (5 s) but before its expiry (10 s).
      const first = reader.pollUnsafe()
      assert.isDefined(first, "the reader that waited must get the token")
      assert.isTrue(first !== undefined && Exit.isSuccess(first) && value(first.value) === "AT-SECRET-1")
      assert.isTrue(
        lines.some((line) => line.includes("slow token answer: 6000 ms")),
        "a warning names the slow answer"
      )
      // A reader now finds no usable token and no attempt due: the error at once, not a new request.
      const error = yield* Effect.flip(service.accessToken)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" ? error.reason : "", "Timeout")
      assert.strictEqual(yield* stub.count(), 1)
      // Readers at every phase for 100 s: each is answered within one answer's time (6 s).
      for (let i = 0; i < 15; i++) {
        const read = yield* Effect.forkChild(Effect.result(service.accessToken))
        yield* TestClock.adjust("6 seconds")
        yield* settle
        assert.isDefined(read.pollUnsafe(), `reader ${i} still waiting`)
        yield* TestClock.adjust("700 millis")
      }
      const times = attemptTimes(yield* stub.calls)
      for (let i = 1; i < times.length; i++) {
        const gap = (times[i] ?? 0) - ((times[i - 1] ?? 0) + 6_000)
        assert.isAtLeast(gap, 200, `attempt ${i} started ${gap} ms after the previous answer`)
      }
      assert.isAtMost(times.length, 20)
    })
  )

  it.effect(
    "5 s tokens, 6 s answers: tokens land expired; one retry at once, then an error, never a wait forever",
    () =>
      Effect.gen(function* () {
        const { service, stub } = yield* setup({
          latency: "6 seconds",
          expiresInSeconds: 5,
          refreshExpiresInSeconds: 60
        })
        const reader = yield* Effect.forkChild(Effect.flip(service.accessToken))
        // The first token lands expired: maybe the clock jumped while it was on the wire, so the
        // manager asks again at once; the second lands expired too: that is a slow server.
        yield* TestClock.adjust("12 seconds")
        yield* settle
        const result = reader.pollUnsafe()
        assert.isDefined(result, "the reader must not wait forever")
        const error = result !== undefined && Exit.isSuccess(result) ? result.value : undefined
        assert.isTrue(isAuthError(error))
        assert.strictEqual(error?._tag, "TransportError")
        assert.include(String(error), "past the token's expiry")
        assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 6_000])
        yield* TestClock.adjust("30 seconds")
        const times = attemptTimes(yield* stub.calls)
        for (let i = 2; i < times.length; i++) {
          const gap = (times[i] ?? 0) - ((times[i - 1] ?? 0) + 6_000)
          assert.isAtLeast(gap, 200, `attempt ${i} started ${gap} ms after the previous answer`)
        }
      })
  )
})

describe("AuthService: a manager used after its scope closed", () => {
  it.effect("every read fails at once with AuthServiceClosedError, as a defect", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { service, stub } = yield* Scope.provide(setup(), scope)
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      yield* Scope.close(scope, Exit.void)
      const reads: ReadonlyArray<Effect.Effect<unknown, AuthError>> = [
        service.accessToken,
        service.session,
        service.refresh
      ]
      for (const read of reads) {
        const fiber = yield* Effect.forkChild(read)
        yield* settle
        const exit = fiber.pollUnsafe()
        assert.isDefined(exit, "a read after close must not hang")
        assert.isTrue(exit !== undefined && Exit.isFailure(exit))
        if (exit !== undefined && Exit.isFailure(exit)) {
          const defect = Cause.findDefect(exit.cause)
          assert.isTrue(Result.isSuccess(defect), Cause.pretty(exit.cause))
          const error = Result.isSuccess(defect) ? defect.success : undefined
          assert.instanceOf(error, AuthServiceClosedError)
          assert.include(String(error), "after its layer or scope was closed")
          assert.include(String(error), "ws")
          assert.isFalse(isAuthError(error))
        }
      }
      yield* service.invalidate()
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("closed while a failure is recorded: the read fails with the closed error, not the old one", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { service, stub } = yield* Scope.provide(setup(), scope)
      yield* stub.fail("authenticate", serverError("authenticate"), 100)
      yield* settle
      assert.strictEqual((yield* Effect.flip(service.accessToken))._tag, "InternalServerError")
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Effect.exit(service.accessToken)
      assert.isTrue(Exit.isFailure(exit) && Result.isSuccess(Cause.findDefect(exit.cause)))
    })
  )
})

describe("AuthService: the timing rules, pinned", () => {
  it.effect("at the exact instant a token's usable time ends, it is not handed out", () =>
    Effect.gen(function* () {
      // 300 s tokens, 30 s skew: usable until 270 s, when the refresh (1 s on the wire) starts.
      const { service, stub } = yield* setup({ latency: "1 second", config: { refreshAt: 0.99 } })
      yield* TestClock.adjust("1 second")
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      yield* TestClock.setTime(270_000)
      assert.strictEqual(yield* stub.count("refresh"), 1)
      const reader = yield* Effect.forkChild(service.accessToken)
      yield* settle
      assert.isUndefined(reader.pollUnsafe(), "the reader must wait for the refresh")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(value(yield* Fiber.join(reader)), "AT-SECRET-2")
    })
  )

  it.effect("the refresh point counts from when the request was sent, not from the answer", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({ latency: "10 seconds" })
      yield* TestClock.adjust("240 seconds")
      yield* settle
      assert.deepStrictEqual(
        (yield* stub.calls).map((c) => [c.operation, c.at]),
        [
          ["authenticate", 0],
          ["refresh", 240_000]
        ]
      )
    })
  )

  it.effect("a success resets the backoff: failure, success, new failure retries after the first delay", () =>
    Effect.gen(function* () {
      // Answers take 1 s (with none, a manager that forgot to clear a failure would spin).
      const { service, stub } = yield* setup({
        latency: "1 second",
        config: { retrySchedule: Schedule.exponential("1 second") }
      })
      // Refresh due at 240 s fails at 241 s; retried 1 s later, successfully.
      yield* stub.fail("refresh", serverError("refresh"))
      yield* TestClock.adjust("243 seconds")
      yield* settle
      assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 240_000, 242_000])
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-2")
      // The next refresh, due 240 s after 242 s, fails: retried after 1 s again, not 2 s.
      yield* stub.fail("refresh", serverError("refresh"))
      yield* TestClock.adjust("241 seconds")
      yield* settle
      assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 240_000, 242_000, 482_000, 484_000])
    })
  )

  it.effect("a retry schedule that gives up: attempts go on, a minute apart", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({ config: { retrySchedule: Schedule.recurs(1) } })
      yield* stub.fail("authenticate", serverError("authenticate"), 100)
      yield* settle
      yield* TestClock.adjust("150 seconds")
      yield* settle
      // recurs(1): one retry with no delay, then the schedule is done and 60 s separate attempts.
      assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 0, 60_000, 120_000])
    })
  )

  for (const status of [400, 401, 403] as const) {
    it.effect(`a ${status} from /auth/token is permanent: retried on permanentRetrySchedule`, () =>
      Effect.gen(function* () {
        const { stub } = yield* setup({
          config: {
            retrySchedule: Schedule.spaced("1 second"),
            permanentRetrySchedule: Schedule.spaced("10 seconds")
          }
        })
        yield* stub.fail("authenticate", refused(status), 100)
        yield* TestClock.adjust("25 seconds")
        yield* settle
        assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 10_000, 20_000])
      })
    )
  }

  it.effect("a success clears the failure: after a retry succeeds, no request until the refresh is due", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({
        latency: "1 second",
        config: { retrySchedule: Schedule.spaced("1 second") }
      })
      yield* stub.fail("authenticate", serverError("authenticate"))
      yield* TestClock.adjust("3 seconds")
      yield* settle
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 2_000])
      yield* TestClock.adjust("100 seconds")
      yield* settle
      assert.deepStrictEqual(attemptTimes(yield* stub.calls), [0, 2_000])
    })
  )

  it.effect("a token shorter-lived than twice the skew is usable for half its lifetime, with no request", () =>
    Effect.gen(function* () {
      // 6 s tokens, 30 s skew: the skew is capped at 3 s, so the token serves from 0 to 3 s.
      const { service, stub } = yield* setup({ expiresInSeconds: 6, refreshExpiresInSeconds: 60 })
      const first = value(yield* service.accessToken)
      for (const millis of [1_000, 1_000, 900]) {
        yield* TestClock.adjust(millis)
        assert.strictEqual(value(yield* service.accessToken), first)
      }
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("a refresh token past its usable time is not spent: the API key is used instead", () =>
    Effect.gen(function* () {
      // Refresh tokens living 100 s (usable until 70 s); the access token's refresh is due at 240 s.
      const { stub } = yield* setup({ refreshExpiresInSeconds: 100 })
      yield* TestClock.adjust("240 seconds")
      yield* settle
      assert.deepStrictEqual(
        (yield* stub.calls).map((c) => c.operation),
        ["authenticate", "authenticate"]
      )
    })
  )
})

describe("AuthService: the wall clock stepping back", () => {
  // A clock whose wall time can be stepped back while its monotonic time (and its timers) go on,
  // as an NTP step or a restored VM does to a live process.
  const steppingClock = Effect.clockWith((testClock) => {
    let back = 0
    const wall = () => testClock.currentTimeMillisUnsafe() - back
    const clock: Clock.Clock = {
      ...withSleep(testClock, (duration) => testClock.sleep(duration)),
      currentTimeMillisUnsafe: wall,
      currentTimeMillis: Effect.sync(wall)
    }
    return Effect.succeed({
      onClock: Effect.provideService(Clock.Clock, clock),
      stepBack: (millis: number) => Effect.sync(() => (back += millis))
    })
  })

  it.effect("a step back of 200 s does not stretch the token's life: refreshed at its real refresh point", () =>
    Effect.gen(function* () {
      const { onClock, stepBack } = yield* steppingClock
      yield* TestClock.setTime(1_000_000)
      const { service, stub } = yield* onClock(setup())
      assert.strictEqual(value(yield* onClock(service.accessToken)), "AT-SECRET-1")
      yield* TestClock.adjust("100 seconds")
      yield* stepBack(200_000)
      // 240 s after the request (40 s on the stepped wall clock): the refresh is due.
      yield* TestClock.adjust("140 seconds")
      yield* settle
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.strictEqual(value(yield* onClock(service.accessToken)), "AT-SECRET-2")
      const session = yield* onClock(service.session)
      assert.strictEqual(session.expiresAt.getTime(), 1_040_000 + 300_000)
    })
  )

  it.effect("a step back during a long backoff: the failing token is not served past its real usable time", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { onClock, stepBack } = yield* steppingClock
      yield* TestClock.setTime(1_000_000)
      const { service, stub } = yield* withLogs(
        onClock(setup({ config: { retrySchedule: Schedule.spaced("5 minutes") } }))
      )
      assert.strictEqual(value(yield* onClock(service.accessToken)), "AT-SECRET-1")
      yield* stub.fail("refresh", serverError("refresh"), 10)
      yield* stub.fail("authenticate", serverError("authenticate"), 10)
      // The refresh at 240 s fails; the next attempt is 5 minutes away.
      yield* TestClock.adjust("250 seconds")
      yield* stepBack(100_000)
      // 271 s after the request, 171 s on the stepped clock: the token is past its usable time.
      yield* TestClock.adjust("21 seconds")
      yield* settle
      const result = yield* Effect.result(onClock(service.accessToken))
      assert.isTrue(Result.isFailure(result), "the token must not be served past its real usable time")
      assert.strictEqual(Result.isFailure(result) ? result.failure._tag : "", "InternalServerError")
      assert.isTrue(
        lines.some((line) => line.includes("the clock stepped back") && line.includes("stepMillis=100000")),
        lines.join("\n")
      )
    })
  )
})
