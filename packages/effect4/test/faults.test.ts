/**
 * Fault tests: one per row of the fault table (issue 6). Each drives the real MockRevault server
 * (or, for the 10,000-caller row, the stub API) under TestClock, and ends with the next call
 * succeeding.
 *
 * The auth layers are built after the fault script is queued, so the prefetch meets the fault.
 * Token requests get a one-day timeout: TestClock jumps here must not time out a real request
 * still on its way over loopback.
 */
import * as Net from "node:net"
import { inspect } from "node:util"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import type { Options as AuthConfigOptions } from "../src/AuthConfig.js"
import { type AuthError, InternalServerError } from "../src/AuthError.js"
import { AuthHttpClient } from "../src/AuthHttpClient.js"
import { AuthService, type Service as AuthServiceApi } from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import * as RevaultAuth from "../src/RevaultAuth.js"
import { fiberTracker } from "./support/fiberTracker.js"
import { settle, setup } from "./support/StubAuthApi.js"

const { Fault } = MockRevault
const value = Redacted.value

/** Every library layer against the MockRevault in context, over undici. */
const authLayer = (overrides: Partial<AuthConfigOptions> = {}) =>
  RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig({ requestTimeout: "1 day", ...overrides })).pipe(
    Layer.provide(NodeHttpClient.layerUndici)
  )

/** Builds the auth layers in the current scope (the prefetch starts now) and hands out what tests use. */
const start = (overrides: Partial<AuthConfigOptions> = {}) =>
  Effect.gen(function* () {
    const mock = yield* MockRevault.MockRevault
    const context = yield* Layer.build(authLayer(overrides))
    const client = Context.get(context, AuthHttpClient)
    return { mock, auth: Context.get(context, AuthService), getMe: client.get("/users/me") }
  })

const withMock = MockRevault.layer()

/** The routes the mock saw, in order. */
const routes = (mock: MockRevault.Service) => Effect.map(mock.requests, (log) => log.map((e) => e.route))

/** When each request to `route` reached the mock, on its (Test)Clock. */
const arrivals = (mock: MockRevault.Service, route: MockRevault.Route) =>
  Effect.map(mock.requests, (log) => log.filter((e) => e.route === route).map((e) => e.at))

/** Yields to the scheduler until `check` holds, so that real loopback I/O can progress; bounded. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 1_000_000; i++) {
      if (yield* check) return
      yield* Effect.yieldNow
    }
    return yield* Effect.die(new Error(`gave up waiting for ${what}`))
  })

const countAtLeast = (mock: MockRevault.Service, route: MockRevault.Route, n: number) =>
  eventually(
    Effect.map(mock.count(route), (count) => count >= n),
    `${n} request(s) to ${route}`
  )

/** Moves the TestClock by `step` until `check` holds, letting real I/O progress after each move; bounded. */
const advanceUntil = <E, R>(check: Effect.Effect<boolean, E, R>, step: Duration.Input, what: string) =>
  Effect.gen(function* () {
    for (let moves = 0; moves < 50; moves++) {
      for (let i = 0; i < 20_000; i++) {
        if (yield* check) return
        yield* Effect.yieldNow
      }
      yield* TestClock.adjust(step)
    }
    return yield* eventually(check, what)
  })

/** The typed failure of an exit, if it has one. */
const failureOf = <A, E>(exit: Exit.Exit<A, E>): Option.Option<E> =>
  Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()

/** The typed failure of an exit that must have one. */
const errorOf = <A, E>(exit: Exit.Exit<A, E>) =>
  Option.match(failureOf(exit), {
    onNone: () => Effect.die(new Error("expected a typed failure")),
    onSome: (error) => Effect.succeed(error)
  })

/**
 * Moves the TestClock 50 ms at a time, reading at each step, until the read no longer fails with
 * `previous` (the same object: no new attempt was made). A read past the backoff waits for the
 * attempt it joins or starts, so time never moves while a request is on its way.
 */
const nextOutcome = (auth: AuthServiceApi, previous: AuthError) =>
  Effect.gen(function* () {
    for (let step = 0; step < 400; step++) {
      yield* TestClock.adjust("50 millis")
      const exit = yield* Effect.exit(auth.accessToken)
      if (Exit.isSuccess(exit) || Option.getOrUndefined(failureOf(exit)) !== previous) return exit
    }
    return yield* Effect.die(new Error("no new attempt within 20 s"))
  })

/** A port nothing listens on: bound, read, then released. */
const freePort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const retryAfterMillis = (error: AuthError) =>
  error._tag === "UnexpectedStatusError" ? Option.map(error.retryAfter, Duration.toMillis) : Option.none()

const gaps = (times: ReadonlyArray<number>) => times.slice(1).map((t, i) => t - (times[i] ?? 0))

describe("Faults", () => {
  it.effect("server down at start: connection refused, then the server comes up and the next read succeeds", () =>
    Effect.gen(function* () {
      const port = yield* freePort
      const context = yield* Layer.build(
        RevaultAuth.layer({
          baseUrl: `http://127.0.0.1:${port}/v1/rest`,
          workspace: MockRevault.demoCredentials.workspace,
          apiKeyId: MockRevault.demoCredentials.apiKeyId,
          apiKeySecret: MockRevault.demoCredentials.apiKeySecret,
          requestTimeout: "1 day"
        }).pipe(Layer.provide(NodeHttpClient.layerUndici))
      )
      const auth = Context.get(context, AuthService)
      const client = Context.get(context, AuthHttpClient)
      // Building did not fail; the reader gets the prefetch's failure as a typed error.
      const error = yield* Effect.flip(client.get("/users/me"))
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Transport")
      assert.strictEqual(error._tag === "TransportError" && error.operation, "authenticate")
      // Within the backoff, readers get the same error without a new attempt.
      assert.strictEqual(yield* Effect.flip(auth.accessToken), error)
      // The server comes up on that port; past the backoff the next read succeeds.
      const mock = yield* MockRevault.make({ port })
      yield* TestClock.adjust("1 second")
      const response = yield* client.get("/users/me")
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(yield* routes(mock), ["authenticate", "me"])
    })
  )

  it.effect("500 during refresh while the token is valid: the old token is served, then replaced", () =>
    Effect.gen(function* () {
      const { auth, getMe, mock } = yield* start()
      const first = value(yield* auth.accessToken)
      yield* mock.fault("refresh", Fault.Status({ status: 500 }), 2)
      // The refresh is due at 80 % of 300 s; the token is handed out until 270 s.
      yield* TestClock.adjust("240 seconds")
      yield* countAtLeast(mock, "refresh", 1)
      assert.strictEqual(value(yield* auth.accessToken), first)
      assert.strictEqual((yield* getMe).status, 200)
      // The background driver retries after its backoff (250 ms, then 500 ms, jittered); readers
      // keep the old token until a refresh succeeds.
      const served = new Set<string>()
      yield* advanceUntil(
        Effect.map(auth.accessToken, (token) => {
          served.add(value(token))
          return value(token) !== first
        }),
        "200 millis",
        "the refreshed token"
      )
      assert.strictEqual(served.size, 2)
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.filter((e) => e.route === "refresh").map((e) => e.fault),
        ["Status", "Status", undefined]
      )
      assert.strictEqual((yield* auth.session).source, "refresh")
      assert.strictEqual(yield* mock.count("authenticate"), 1)
      assert.strictEqual((yield* getMe).status, 200)
      const me = (yield* mock.requests).filter((e) => e.route === "me")
      assert.deepStrictEqual(
        me.map((e) => e.token),
        ["valid", "valid"]
      )
    }).pipe(Effect.provide(withMock))
  )

  it.effect("503 burst past expiry: readers get UnexpectedStatusError and send nothing, then recover", () =>
    Effect.gen(function* () {
      const { auth, getMe, mock } = yield* start()
      yield* auth.accessToken
      yield* mock.fault("refresh", Fault.Status({ status: 503 }), 1_000)
      // Past the usable lifetime (300 s - 30 s skew); the refresh started at 240 s meets the burst.
      yield* TestClock.adjust("280 seconds")
      yield* countAtLeast(mock, "refresh", 1)
      const errors = yield* Effect.all(
        Array.from({ length: 100 }, () => Effect.flip(getMe)),
        { concurrency: "unbounded" }
      )
      for (const error of errors) {
        assert.strictEqual(error._tag, "UnexpectedStatusError")
        assert.strictEqual(error._tag === "UnexpectedStatusError" && error.status, 503)
        assert.strictEqual(error._tag === "UnexpectedStatusError" && error.operation, "refresh")
      }
      // No request went out with the expired token.
      assert.strictEqual(yield* mock.count("me"), 0)
      yield* mock.clearFaults
      // Past any backoff (each delay is capped at 30 s).
      yield* TestClock.adjust("31 seconds")
      assert.strictEqual((yield* getMe).status, 200)
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.filter((e) => e.route === "me").map((e) => e.token),
        ["valid"]
      )
      assert.strictEqual(yield* mock.count("authenticate"), 1)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("429 with Retry-After: no attempt before it, and it is capped at 60 s", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Status({ status: 429, headers: { "retry-after": "20" } }))
      yield* mock.fault("authenticate", Fault.Status({ status: 429, headers: { "retry-after": "600" } }))
      const { auth, getMe } = yield* start()
      const first = yield* Effect.flip(auth.accessToken)
      assert.strictEqual(first._tag, "UnexpectedStatusError")
      assert.strictEqual(first._tag === "UnexpectedStatusError" && first.status, 429)
      assert.deepStrictEqual(retryAfterMillis(first), Option.some(20_000))
      yield* TestClock.adjust("19999 millis")
      assert.strictEqual(yield* Effect.flip(auth.accessToken), first)
      yield* TestClock.adjust("1 millis")
      const second = yield* Effect.flip(auth.accessToken)
      assert.notStrictEqual(second, first)
      assert.deepStrictEqual(retryAfterMillis(second), Option.some(600_000))
      // Asked for 10 minutes; waits 60 s.
      yield* TestClock.adjust("59999 millis")
      assert.strictEqual(yield* Effect.flip(auth.accessToken), second)
      yield* TestClock.adjust("1 millis")
      assert.match(value(yield* auth.accessToken), /^[\w-]+\.[\w-]+\.[\w-]+$/)
      assert.deepStrictEqual(yield* arrivals(mock, "authenticate"), [0, 20_000, 80_000])
      assert.strictEqual((yield* getMe).status, 200)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("429 without Retry-After: attempts spaced by the exponential backoff", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Status({ status: 429 }), 3)
      const { auth, getMe } = yield* start()
      let last = yield* Effect.flip(auth.accessToken)
      const errors = [last]
      let token: string | undefined
      while (token === undefined && errors.length <= 3) {
        const exit = yield* nextOutcome(auth, last)
        if (Exit.isSuccess(exit)) token = value(exit.value)
        else {
          last = yield* errorOf(exit)
          errors.push(last)
        }
      }
      assert.isDefined(token)
      assert.deepStrictEqual(
        errors.map((e) => `${e._tag} ${e._tag === "UnexpectedStatusError" && e.status} ${retryAfterMillis(e)._tag}`),
        Array.from({ length: 3 }, () => "UnexpectedStatusError 429 None")
      )
      const times = yield* arrivals(mock, "authenticate")
      assert.strictEqual(times.length, 4)
      // 250 ms, 500 ms, 1 s, each jittered by 0.8-1.2; an arrival and the failure it records are
      // each seen at most one 50 ms step late.
      const [a, b, c] = gaps(times)
      assert.isTrue(a !== undefined && a >= 200 && a <= 400, `first gap ${a}`)
      assert.isTrue(b !== undefined && b >= 400 && b <= 700, `second gap ${b}`)
      assert.isTrue(c !== undefined && c >= 800 && c <= 1300, `third gap ${c}`)
      assert.strictEqual((yield* getMe).status, 200)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("body cut mid-stream: TransportError, then the next read succeeds", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Truncate())
      const { auth, getMe } = yield* start()
      const error = yield* Effect.flip(auth.accessToken)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Transport")
      assert.strictEqual(error._tag === "TransportError" && error.operation, "authenticate")
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* getMe).status, 200)
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.map((e) => [e.route, e.fault]),
        [
          ["authenticate", "Truncate"],
          ["authenticate", undefined],
          ["me", undefined]
        ]
      )
    }).pipe(Effect.provide(withMock))
  )

  it.effect("HTML error pages from a proxy: UnexpectedStatusError with the page, never a parse crash", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Status({ status: 502, body: "html" }))
      // A documented status with an undocumented body is not mistaken for the server's error.
      yield* mock.fault("authenticate", Fault.Status({ status: 500, body: "html" }))
      const { auth, getMe } = yield* start()
      const bad = yield* Effect.flip(auth.accessToken)
      assert.strictEqual(bad._tag, "UnexpectedStatusError")
      assert.strictEqual(bad._tag === "UnexpectedStatusError" && bad.status, 502)
      assert.include(bad._tag === "UnexpectedStatusError" ? bad.body : "", "upstream proxy error")
      const internal = yield* errorOf(yield* nextOutcome(auth, bad))
      assert.strictEqual(internal._tag, "UnexpectedStatusError")
      assert.strictEqual(internal._tag === "UnexpectedStatusError" && internal.status, 500)
      assert.include(internal._tag === "UnexpectedStatusError" ? internal.body : "", "<html>")
      assert.isTrue(Exit.isSuccess(yield* nextOutcome(auth, internal)))
      assert.strictEqual((yield* getMe).status, 200)
      assert.strictEqual(yield* mock.count("authenticate"), 3)
    }).pipe(Effect.provide(withMock))
  )

  // Rows the fault table shares with the AuthApi tests, here through every layer: the caller of
  // the authenticated client gets the tagged error, with its operation and status, and the attempt
  // after the backoff serves the call.
  const tokenRouteRows: ReadonlyArray<{
    readonly name: string
    readonly fault: MockRevault.Fault
    readonly expect: string
  }> = [
    { name: "malformed JSON", fault: Fault.Body({ text: '{"accessToken":' }), expect: "ResponseDecodeError 200" },
    {
      name: "a missing field",
      fault: Fault.MissingField({ field: "expiresInSeconds" }),
      expect: "ResponseDecodeError 200"
    },
    { name: "an undocumented status (418)", fault: Fault.Status({ status: 418 }), expect: "UnexpectedStatusError 418" },
    { name: "an empty 503", fault: Fault.Status({ status: 503, body: "empty" }), expect: "UnexpectedStatusError 503" },
    { name: "a dropped connection", fault: Fault.Drop(), expect: "TransportError Transport" }
  ]
  for (const row of tokenRouteRows) {
    it.effect(`${row.name} on /auth/token: a tagged error naming the operation, then the next call succeeds`, () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        yield* mock.fault("authenticate", row.fault)
        const { getMe } = yield* start()
        const error = yield* Effect.flip(getMe)
        const detail =
          error._tag === "ResponseDecodeError" || error._tag === "UnexpectedStatusError"
            ? error.status
            : error._tag === "TransportError"
              ? error.reason
              : "?"
        assert.strictEqual(`${error._tag} ${detail}`, row.expect)
        assert.strictEqual("operation" in error && error.operation, "authenticate")
        assert.include(String(error), "[authenticate")
        // The request carried the API key secret in its body; the error never does.
        const secret = MockRevault.demoCredentials.apiKeySecret
        for (const rendered of [String(error), error.message, JSON.stringify(error), inspect(error, { depth: 10 })]) {
          assert.notInclude(rendered, secret)
        }
        assert.strictEqual(yield* mock.count("me"), 0)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* getMe).status, 200)
        assert.strictEqual(yield* mock.count("authenticate"), 2)
      }).pipe(Effect.provide(withMock))
    )
  }

  it.effect("hung token server: TransportError Timeout after requestTimeout, then the next call succeeds", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Hang())
      const { getMe } = yield* start({ requestTimeout: "10 seconds" })
      const reader = yield* Effect.forkChild(Effect.flip(getMe))
      yield* countAtLeast(mock, "authenticate", 1)
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(reader)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Timeout")
      assert.strictEqual(error._tag === "TransportError" && error.operation, "authenticate")
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* getMe).status, 200)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("access token revoked server-side: the 401 from a resource is replayed once with a new token", () =>
    Effect.gen(function* () {
      const { getMe, mock } = yield* start()
      assert.strictEqual((yield* getMe).status, 200)
      yield* mock.revokeAccessTokens
      assert.strictEqual((yield* getMe).status, 200)
      assert.deepStrictEqual(
        (yield* mock.requests).map((e) => [e.route, e.token]),
        [
          ["authenticate", undefined],
          ["me", "valid"],
          ["me", "invalid"],
          ["refresh", undefined],
          ["me", "valid"]
        ]
      )
      assert.strictEqual((yield* getMe).status, 200)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("refresh token rejected (401): one fallback to the API key, no reader sees an error", () =>
    Effect.gen(function* () {
      const { auth, getMe, mock } = yield* start()
      const first = value(yield* auth.accessToken)
      yield* mock.fault("refresh", Fault.Status({ status: 401 }))
      yield* TestClock.adjust("240 seconds")
      yield* countAtLeast(mock, "authenticate", 2)
      yield* eventually(
        Effect.map(auth.accessToken, (token) => value(token) !== first),
        "the token from the fallback"
      )
      assert.strictEqual((yield* auth.session).source, "authenticate")
      assert.deepStrictEqual(yield* routes(mock), ["authenticate", "refresh", "authenticate"])
      assert.deepStrictEqual(yield* arrivals(mock, "authenticate"), [0, 240_000])
      assert.strictEqual((yield* getMe).status, 200)
      // The new chain refreshes through its own refresh token again.
      yield* TestClock.adjust("240 seconds")
      yield* countAtLeast(mock, "refresh", 2)
      yield* eventually(
        Effect.map(auth.session, (session) => session.source === "refresh"),
        "the next refresh"
      )
      assert.strictEqual(yield* mock.count("authenticate"), 2)
    }).pipe(Effect.provide(withMock))
  )

  it.effect("API key revoked (401 on /auth/token): UnauthorizedError, attempts spaced by backoff, then recovery", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", Fault.Status({ status: 401 }), 1_000)
      const { auth, getMe } = yield* start()
      // A reader every 250 ms for 16 s: each fails with UnauthorizedError.
      for (let step = 0; step < 64; step++) {
        const error = yield* Effect.flip(getMe)
        assert.strictEqual(error._tag, "UnauthorizedError", `step ${step}`)
        assert.strictEqual(error._tag === "UnauthorizedError" && error.operation, "authenticate")
        assert.strictEqual(error._tag === "UnauthorizedError" && error.status, 401)
        yield* TestClock.adjust("250 millis")
      }
      assert.strictEqual(yield* mock.count("me"), 0)
      // 1 s, 2 s, 4 s, 8 s (jittered by 0.8-1.2), each seen up to two 250 ms steps late: not one
      // attempt per reader.
      const times = yield* arrivals(mock, "authenticate")
      assert.isAtLeast(times.length, 4)
      assert.isAtMost(times.length, 5)
      const bases = [1_000, 2_000, 4_000, 8_000]
      for (const [i, gap] of gaps(times).entries()) {
        const base = bases[i] ?? 0
        assert.isTrue(gap >= 0.8 * base && gap <= 1.2 * base + 500, `gap ${i}: ${gap}`)
      }
      // The key works again: a later read succeeds once the backoff lets an attempt through.
      yield* mock.clearFaults
      let status = 0
      for (let step = 0; step < 30 && status !== 200; step++) {
        yield* TestClock.adjust("1 second")
        const exit = yield* Effect.exit(getMe)
        if (Exit.isSuccess(exit)) status = exit.value.status
      }
      assert.strictEqual(status, 200)
      assert.strictEqual((yield* auth.session).source, "authenticate")
    }).pipe(Effect.provide(withMock))
  )

  it.effect("clock jump of +3 h with a refresh in flight: readers get a fresh token, never the stale one", () =>
    Effect.gen(function* () {
      const { auth, getMe, mock } = yield* start()
      const first = value(yield* auth.accessToken)
      // The refresh sent at 240 s is answered only once the clock has jumped (at 271 s + 3 h), with a
      // token the manager must judge by when it asked: 300 s from 240 s, long gone.
      yield* mock.fault("refresh", Fault.Delay({ duration: Duration.sum(Duration.hours(3), Duration.seconds(31)) }))
      yield* TestClock.adjust("240 seconds")
      yield* countAtLeast(mock, "refresh", 1)
      // At 271 s the first token is no longer handed out: this reader waits for the refresh.
      yield* TestClock.adjust("31 seconds")
      const waiting = yield* Effect.forkChild(auth.session)
      yield* settle
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("3 hours")
      const now = 271_000 + 3 * 3_600_000
      const during = yield* Fiber.join(waiting)
      const next = yield* auth.session
      for (const session of [during, next]) {
        assert.notStrictEqual(value(session.accessToken), first)
        assert.isAtLeast(session.expiresAt.getTime(), now + 300_000)
      }
      assert.strictEqual(value(during.accessToken), value(next.accessToken))
      // One more refresh, sent after the jump, through the refresh token the late answer carried.
      assert.deepStrictEqual(yield* arrivals(mock, "refresh"), [240_000, now])
      assert.strictEqual(yield* mock.count("authenticate"), 1)
      assert.strictEqual((yield* getMe).status, 200)
      const me = (yield* mock.requests).filter((e) => e.route === "me")
      assert.deepStrictEqual(
        me.map((e) => [e.token, e.at]),
        [["valid", now]]
      )
    }).pipe(Effect.provide(MockRevault.layer({ refreshTokenTtl: "1 day" })))
  )

  it.effect("10,000 callers during a failing refresh share one error from one request", () =>
    Effect.gen(function* () {
      // Refresh due at the end of the usable lifetime (270 s), so readers wait on it.
      const { service, stub } = yield* setup({ latency: "20 millis", config: { refreshAt: 0.99 } })
      yield* settle
      yield* TestClock.adjust("20 millis")
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-1")
      yield* stub.fail(
        "refresh",
        new InternalServerError({
          operation: "refresh",
          status: 500,
          code: "INTERNAL_SERVER_ERROR",
          message: "boom",
          issues: []
        })
      )
      yield* TestClock.setTime(270_000)
      yield* settle
      const readers = yield* Effect.forkChild(
        Effect.all(
          Array.from({ length: 10_000 }, () => Effect.flip(service.accessToken)),
          { concurrency: "unbounded" }
        )
      )
      yield* settle
      assert.isUndefined(readers.pollUnsafe())
      yield* TestClock.adjust("20 millis")
      const errors = yield* Fiber.join(readers)
      assert.strictEqual(errors.length, 10_000)
      const shared = errors[0]
      assert.strictEqual(shared?._tag, "InternalServerError")
      assert.isTrue(errors.every((e) => e === shared))
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.strictEqual(yield* stub.maxInflight, 1)
      // The background retry after the backoff succeeds.
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(value(yield* service.accessToken), "AT-SECRET-2")
      assert.strictEqual(yield* stub.count("refresh"), 2)
    })
  )

  it.effect("layer closed while a refresh is in flight: waiters interrupted, nothing left running or sent", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const rejections: Array<unknown> = []
      const onRejection = (reason: unknown) => {
        rejections.push(reason)
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on("unhandledRejection", onRejection)),
        () => Effect.sync(() => process.off("unhandledRejection", onRejection))
      )
      const tracked = fiberTracker(yield* Effect.tracer)
      const scope = yield* Scope.make()
      // Built in a fiber of its own, so that the fibers noted are the layers' (this one ends).
      const builder = yield* Effect.forkChild(
        Layer.buildWithScope(authLayer(), scope).pipe(Effect.withTracer(tracked.tracer))
      )
      const context = yield* Fiber.join(builder)
      const auth = Context.get(context, AuthService)
      yield* auth.accessToken
      yield* mock.fault("refresh", Fault.Hang())
      yield* TestClock.adjust("240 seconds")
      yield* countAtLeast(mock, "refresh", 1)
      const waiters = yield* Effect.forEach(Array.from({ length: 100 }), () => Effect.forkChild(auth.refresh))
      yield* settle
      for (const waiter of waiters) assert.isUndefined(waiter.pollUnsafe())
      assert.isAbove(tracked.running().length, 0)

      yield* Scope.close(scope, Exit.void)
      for (const waiter of waiters) assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(waiter)))
      // Every fiber the layers started has ended: the driver, the acquisition, the HTTP request.
      yield* eventually(
        Effect.sync(() => tracked.running().length === 0),
        "the layer's fibers to end"
      )
      const sent = (yield* mock.requests).length
      yield* TestClock.adjust("1 hour")
      for (let i = 0; i < 10_000; i++) yield* Effect.yieldNow
      assert.strictEqual((yield* mock.requests).length, sent)
      assert.deepStrictEqual(rejections, [])

      // The next call, through new layers on the same server, succeeds.
      const response = yield* Effect.flatMap(AuthHttpClient, (client) => client.get("/users/me")).pipe(
        Effect.provide(authLayer())
      )
      assert.strictEqual(response.status, 200)
    }).pipe(Effect.provide(withMock))
  )
})
