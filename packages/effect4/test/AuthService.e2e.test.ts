import { inspect } from "node:util"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/testing/TestClock"
import * as AuthApi from "../src/AuthApi.js"
import * as AuthService from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import { captureLogs } from "./support/captureLogs.js"
import { recordingTracer } from "./support/RecordingTracer.js"

const env = AuthService.layer.pipe(
  Layer.provideMerge(AuthApi.layer),
  Layer.provideMerge(MockRevault.layerAuthConfig({ expirySkew: "1 second" })),
  Layer.provideMerge(MockRevault.layer({ accessTokenTtl: "6 seconds", refreshTokenTtl: "15 seconds" })),
  Layer.provideMerge(NodeHttpClient.layerUndici)
)

const me = (token: Redacted.Redacted<string>) =>
  Effect.flatMap(MockRevault.MockRevault, (mock) =>
    HttpClient.execute(HttpClientRequest.get(`${mock.baseUrl}/users/me`).pipe(HttpClientRequest.bearerToken(token)))
  )

/** Waits, on the live clock, until `done` holds (at most 5 s). */
const untilLive = (done: () => boolean) =>
  TestClock.withLive(
    Effect.suspend(() => (done() ? Effect.void : Effect.fail("not yet"))).pipe(
      Effect.retry(Schedule.spaced("10 millis")),
      Effect.timeout("5 seconds")
    )
  )

describe("AuthService end to end against MockRevault", () => {
  it.effect("its tokens are accepted by /users/me and rotate through refreshes", () =>
    Effect.gen(function* () {
      const auth = yield* AuthService.AuthService
      const mock = yield* MockRevault.MockRevault
      const seen = new Set<string>()
      for (let step = 0; step < 12; step++) {
        const session = yield* auth.session
        seen.add(Redacted.value(session.accessToken))
        assert.strictEqual((yield* me(session.accessToken)).status, 200)
        yield* TestClock.adjust("1 second")
      }
      // 6 s tokens refreshed at 80 %: 4.8 s and 9.6 s.
      assert.isAtLeast(yield* mock.count("refresh"), 2)
      assert.isAtLeast(seen.size, 3)
      const log = yield* mock.requests
      assert.isTrue(log.filter((e) => e.route === "me").every((e) => e.token === "valid"))
    }).pipe(Effect.provide(env))
  )

  it.effect("logs, spans and metrics describe acquisitions without any secret", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { spans, tracer } = recordingTracer()
      const mock = yield* MockRevault.MockRevault
      const program = Effect.gen(function* () {
        const auth = yield* AuthService.AuthService
        const token = yield* auth.accessToken
        yield* mock.fault("refresh", MockRevault.Fault.Status({ status: 500 }))
        yield* TestClock.adjust("5 seconds")
        // The refresh at 4.8 s is real I/O, which the TestClock does not wait for: let its
        // failure land at 5 s before moving on, so the retry is due at about 5.25 s.
        yield* untilLive(() => lines.some((line) => line.includes("token acquisition failed")))
        yield* TestClock.adjust("1 second")
        const next = yield* auth.accessToken
        return [token, next] as const
      })
      const [first, second] = yield* withLogs(
        program.pipe(
          Effect.provide(
            AuthService.layer.pipe(
              Layer.provideMerge(AuthApi.layer),
              Layer.provideMerge(MockRevault.layerAuthConfig({ expirySkew: "1 second", workspace: "demo" }))
            )
          )
        )
      ).pipe(Effect.withTracer(tracer))
      assert.notStrictEqual(Redacted.value(first), Redacted.value(second))
      const text = lines.join("\n")
      assert.include(text, "token obtained")
      assert.include(text, "token acquisition failed")
      assert.include(text, "InternalServerError")
      const acquire = spans.filter((s) => s.name === "RevaultAuth.acquire")
      assert.isAtLeast(acquire.length, 2)
      assert.isTrue(acquire.some((s) => s.attributes.get("revault.source") === "refresh"))
      assert.isTrue(acquire.every((s) => s.attributes.get("revault.workspace") === "demo"))
      // Every span, exits included: a token request is traced by its RevaultAuth span alone.
      assert.isTrue(
        spans.every((s) => s.name.startsWith("RevaultAuth.")),
        spans.map((s) => s.name).join(", ")
      )
      const spanText = inspect(
        spans.map((s) => [s.name, [...s.attributes], s.events, s.status]),
        { depth: 10 }
      )
      for (const secret of [Redacted.value(first), Redacted.value(second), MockRevault.demoCredentials.apiKeySecret]) {
        assert.notInclude(text, secret)
        assert.notInclude(spanText, secret)
      }
      const snapshot = yield* Metric.snapshot
      const counters = snapshot.filter((m) => m.id === "revault_auth_acquisitions_total")
      const outcomes = counters.map((m) => JSON.stringify(m.attributes ?? {}))
      assert.isTrue(outcomes.some((o) => o.includes('"outcome":"success"') && o.includes('"source":"refresh"')))
      assert.isTrue(outcomes.some((o) => o.includes('"outcome":"failure"') && o.includes('"source":"refresh"')))
      assert.isTrue(outcomes.every((o) => o.includes('"workspace":"demo"')))
      const gauge = snapshot.find((m) => m.id === "revault_auth_token_remaining_seconds")
      assert.isDefined(gauge)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          MockRevault.layer({ accessTokenTtl: "6 seconds", refreshTokenTtl: "15 seconds" }),
          NodeHttpClient.layerUndici
        )
      )
    )
  )
})
