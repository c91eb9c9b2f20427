import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/testing/TestClock"
import { AuthApi } from "../src/AuthApi.js"
import * as AuthConfig from "../src/AuthConfig.js"
import { InternalServerError } from "../src/AuthError.js"
import * as AuthPool from "../src/AuthPool.js"
import type { AuthSession } from "../src/AuthService.js"
import * as AuthService from "../src/AuthService.js"
import { TokenStore } from "../src/TokenStore.js"
import { makeStubApi, settle, setup, testConfig } from "./support/StubAuthApi.js"
import { storedSet } from "./support/storedSet.js"

// Tokens live 300 s (the stub's default), the skew is 30 s: usable until 270 s after the request,
// refreshed ahead at 240 s by the default rule.

/**
 * Moves the TestClock forward in steps of at most ten seconds, letting every fiber run after each;
 * within a step, `TestClock.adjust` wakes each sleeper at its own time.
 */
const advance = (seconds: number) =>
  Effect.gen(function* () {
    for (let done = 0; done < seconds; done += 10) {
      yield* TestClock.adjust(Duration.seconds(Math.min(10, seconds - done)))
      yield* settle
    }
  })

const requestTimes = (stub: { readonly calls: Effect.Effect<ReadonlyArray<{ readonly at: number }>> }) =>
  Effect.map(stub.calls, (calls) => calls.map((call) => call.at))

const serverError = new InternalServerError({
  operation: "refresh",
  status: 500,
  code: "INTERNAL_SERVER_ERROR",
  message: "boom",
  issues: []
})

describe("AuthConfig.refreshSchedule", () => {
  it.effect("the default is refreshAhead(refreshAt): the same request times as an explicit one", () =>
    Effect.gen(function* () {
      const implicit = yield* setup()
      const explicit = yield* setup({ config: { refreshSchedule: AuthConfig.refreshAhead(0.8) } })
      yield* settle
      yield* advance(500)
      const expected = [0, 240_000, 480_000]
      assert.deepStrictEqual(yield* requestTimes(implicit.stub), expected)
      assert.deepStrictEqual(yield* requestTimes(explicit.stub), expected)
    })
  )

  it.effect("refreshAt is the shorthand: refreshAt 0.5 refreshes at half the lifetime", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({ config: { refreshAt: 0.5 } })
      yield* settle
      yield* advance(450)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 150_000, 300_000, 450_000])
    })
  )

  it.effect("the schedule's input is the session just obtained, with when its request was sent", () =>
    Effect.gen(function* () {
      const seen: Array<AuthSession> = []
      const recording = AuthConfig.refreshAhead(0.8).pipe(
        Schedule.tap(({ input }) => Effect.sync(() => seen.push(input)))
      )
      const { service } = yield* setup({ latency: "2 seconds", config: { refreshSchedule: recording } })
      yield* settle
      yield* advance(2)
      const session = yield* service.session
      assert.strictEqual(seen.length, 1)
      assert.strictEqual(seen[0]?.sentAt.getTime(), 0)
      assert.strictEqual(seen[0]?.obtainedAt.getTime(), 2000)
      assert.strictEqual(session.sentAt.getTime(), 0)
      assert.strictEqual(Redacted.value(session.accessToken), Redacted.value(seen[0]?.accessToken ?? Redacted.make("")))
    })
  )

  it.effect("Schedule.jittered spreads the refresh around the default point, within the usable time", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({ config: { refreshSchedule: Schedule.jittered(AuthConfig.refreshAhead(0.8)) } })
      yield* settle
      yield* advance(1200)
      const times = yield* requestTimes(stub)
      const intervals = times.slice(1).map((t, i) => t - (times[i] ?? 0))
      assert.isAtLeast(intervals.length, 4)
      for (const interval of intervals) {
        // 240 s × [0.8, 1.2], never past the 270 s usable time.
        assert.isAtLeast(interval, 192_000)
        assert.isAtMost(interval, 270_000)
      }
      assert.isTrue(intervals.some((interval) => interval !== 240_000))
    })
  )

  it.effect("Schedule.min with Schedule.spaced('1 minute') caps the interval at a minute", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({
        config: { refreshSchedule: Schedule.min([AuthConfig.refreshAhead(0.8), Schedule.spaced("1 minute")]) }
      })
      yield* settle
      yield* advance(300)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 60_000, 120_000, 180_000, 240_000, 300_000])
    })
  )

  it.effect("a schedule later than the usable time is clamped: no token within the skew of its expiry", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({ config: { refreshSchedule: Schedule.spaced("1 hour") } })
      yield* settle
      // No reader: the background driver alone refreshes at the usable time, not an hour later.
      yield* advance(300)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 270_000])
      for (let second = 0; second < 300; second++) {
        const session = yield* service.session
        const now = yield* Clock.currentTimeMillis
        assert.isAbove(session.expiresAt.getTime() - now, 30_000, `at ${now} ms`)
        yield* advance(1)
      }
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 270_000, 540_000])
    })
  )

  it.effect("a schedule that is done hands over to the default rule", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({
        config: { refreshSchedule: Schedule.spaced("1 minute").pipe(Schedule.upTo({ times: 2 })) }
      })
      yield* settle
      yield* advance(600)
      // Two spaced refreshes, then 240 s after each request.
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 60_000, 120_000, 360_000, 600_000])
    })
  )

  it.effect("a schedule that dies hands over to the default rule; readers never see it", () =>
    Effect.gen(function* () {
      const dying: Schedule.Schedule<unknown, AuthSession> = Schedule.fromStep(
        Effect.succeed(() => Effect.die(new Error("schedule bug")))
      )
      const { service, stub } = yield* setup({ config: { refreshSchedule: dying } })
      yield* settle
      const exit = yield* Effect.exit(service.accessToken)
      assert.isTrue(Exit.isSuccess(exit))
      yield* advance(500)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 240_000, 480_000])
    })
  )

  it.effect("a schedule with no delay is not a request loop: one refresh per minRefreshInterval", () =>
    Effect.gen(function* () {
      assert.strictEqual(Duration.toMillis(AuthConfig.minRefreshInterval), 1000)
      const { service, stub } = yield* setup({ config: { refreshSchedule: Schedule.forever } })
      yield* settle
      assert.strictEqual(yield* stub.count(), 1)
      yield* advance(5)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 1000, 2000, 3000, 4000, 5000])
      assert.strictEqual(yield* stub.maxInflight, 1)
      assert.strictEqual(Redacted.value(yield* service.accessToken), "AT-SECRET-6")
    })
  )

  it.effect("the interval counts from the answer: a slow server is not asked again at once", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({ latency: "3 seconds", config: { refreshSchedule: Schedule.forever } })
      yield* settle
      yield* advance(12)
      // Each answer takes 3 s; the next request waits a second after it.
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 4000, 8000, 12_000])
    })
  )

  it.effect("a usable token read from a TokenStore is refreshed when the schedule says, stepped with it", () =>
    Effect.gen(function* () {
      const stored = storedSet({ sentAt: 0, obtainedAt: 0, expiresAt: 300_000, refreshExpiresAt: 1_800_000 })
      const store = TokenStore.of({
        get: () => Effect.succeed(Option.some(stored)),
        set: () => Effect.void,
        remove: () => Effect.void
      })
      yield* TestClock.adjust("10 seconds")
      const seen: Array<AuthSession> = []
      const refreshSchedule = Schedule.min([
        AuthConfig.refreshAhead(0.8).pipe(Schedule.tap(({ input }) => Effect.sync(() => seen.push(input)))),
        Schedule.spaced("1 minute")
      ])
      const stub = yield* makeStubApi()
      const config = yield* testConfig({ refreshSchedule })
      const service = yield* AuthService.make.pipe(
        Effect.provideService(AuthApi, stub.api),
        Effect.provideService(AuthConfig.AuthConfig, config),
        Effect.provideService(TokenStore, store)
      )
      assert.strictEqual(Redacted.value(yield* service.accessToken), "AT-STORED")
      assert.strictEqual(seen[0]?.sentAt.getTime(), 0)
      // Restored at 10 s: a minute later, not at once, and not 240 s after it was sent.
      yield* advance(59)
      assert.deepStrictEqual(yield* requestTimes(stub), [])
      yield* advance(1)
      assert.deepStrictEqual(
        (yield* stub.calls).map((call) => [call.operation, call.at]),
        [["refresh", 70_000]]
      )
    })
  )

  it.effect("invalidation still wakes the driver at once; the schedule then counts from the new session", () =>
    Effect.gen(function* () {
      const { service, stub } = yield* setup({
        config: { refreshSchedule: Schedule.min([AuthConfig.refreshAhead(0.8), Schedule.spaced("1 minute")]) }
      })
      yield* settle
      yield* advance(10)
      yield* service.invalidate()
      yield* settle
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 10_000])
      yield* advance(60)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 10_000, 70_000])
    })
  )

  it.effect("a failed refresh is retried by retrySchedule, as before; a success resumes the schedule", () =>
    Effect.gen(function* () {
      const { stub } = yield* setup({
        config: {
          refreshSchedule: Schedule.min([AuthConfig.refreshAhead(0.8), Schedule.spaced("1 minute")]),
          retrySchedule: Schedule.spaced("5 seconds")
        }
      })
      yield* settle
      yield* stub.fail("refresh", serverError)
      yield* advance(130)
      assert.deepStrictEqual(yield* requestTimes(stub), [0, 60_000, 65_000, 125_000])
    })
  )
})

describe("AuthConfig.refreshAhead", () => {
  for (const refreshAt of [0, 1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses ${refreshAt} with a RangeError naming the function`, () => {
      assert.throws(() => AuthConfig.refreshAhead(refreshAt), RangeError, /AuthConfig\.refreshAhead: refreshAt must be/)
    })
  }

  it.effect("its delay is refreshAt × lifetime after the request was sent, less the time since", () =>
    Effect.gen(function* () {
      const step = yield* Schedule.toStep(AuthConfig.refreshAhead(0.5))
      const session = {
        sentAt: new Date(1000),
        expiresAt: new Date(101_000)
      } as AuthSession
      const [, delay] = yield* step(3000, session)
      assert.strictEqual(Duration.toMillis(delay), 48_000)
      const [, late] = yield* step(90_000, session)
      assert.strictEqual(Duration.toMillis(late), 0)
    })
  )

  it.effect("AuthConfig.make: refreshSchedule given wins; refreshAt is still validated", () =>
    Effect.gen(function* () {
      const base = { baseUrl: "https://api.example.com/v1/rest", workspace: "ws", apiKeyId: "kid", apiKeySecret: "s" }
      const custom = Schedule.spaced("1 minute")
      const config = yield* AuthConfig.make({ ...base, refreshSchedule: custom })
      assert.strictEqual(config.refreshSchedule, custom)
      const error = yield* Effect.flip(AuthConfig.make({ ...base, refreshSchedule: custom, refreshAt: 1 }))
      assert.strictEqual(error.field, "refreshAt")
      const failure = yield* Effect.exit(AuthConfig.make({ ...base, refreshAt: 2 }))
      assert.isTrue(Exit.isFailure(failure) && !Cause.hasDies(failure.cause))
    })
  )

  it.effect("layerConfig and AuthPool.fromConfig carry a refreshSchedule override", () =>
    Effect.gen(function* () {
      const custom = Schedule.spaced("1 minute")
      const config = yield* Effect.provide(AuthConfig.AuthConfig, AuthConfig.layerConfig({ refreshSchedule: custom }))
      assert.strictEqual(config.refreshSchedule, custom)
      const pool = yield* AuthPool.fromConfig({ refreshSchedule: custom })
      assert.strictEqual(pool.refreshSchedule, custom)
    }).pipe(
      Effect.provideService(
        ConfigProvider.ConfigProvider,
        ConfigProvider.fromEnvRecord({
          REVAULT_API_BASE_URL: "https://api.example.com/v1/rest",
          REVAULT_WORKSPACE: "ws",
          REVAULT_API_KEY_ID: "kid",
          REVAULT_API_KEY_SECRET: "s"
        })
      )
    )
  )
})
