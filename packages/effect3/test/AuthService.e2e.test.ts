import { inspect } from "node:util"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as AuthApi from "../src/AuthApi.js"
import * as AuthService from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"

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

describe("AuthService end to end against MockRevault", () => {
  it.scoped("its tokens are accepted by /users/me and rotate through refreshes", () =>
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

  it.scoped("logs and metrics describe acquisitions without any secret", () =>
    Effect.gen(function* () {
      const lines: Array<string> = []
      const logger = Logger.make((options) => {
        lines.push(Logger.logfmtLogger.log(options), inspect(Logger.structuredLogger.log(options), { depth: 10 }))
      })
      const mock = yield* MockRevault.MockRevault
      const program = Effect.gen(function* () {
        const auth = yield* AuthService.AuthService
        const token = yield* auth.accessToken
        yield* mock.fault("refresh", MockRevault.Fault.Status({ status: 500 }))
        yield* TestClock.adjust("5 seconds")
        yield* TestClock.adjust("1 second")
        const next = yield* auth.accessToken
        return [token, next] as const
      })
      const [first, second] = yield* program.pipe(
        Effect.provide(
          AuthService.layer.pipe(
            Layer.provideMerge(AuthApi.layer),
            Layer.provideMerge(MockRevault.layerAuthConfig({ expirySkew: "1 second", workspace: "demo" }))
          )
        ),
        Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
        Logger.withMinimumLogLevel(LogLevel.Debug)
      )
      assert.notStrictEqual(Redacted.value(first), Redacted.value(second))
      const text = lines.join("\n")
      assert.include(text, "token obtained")
      assert.include(text, "token acquisition failed")
      assert.include(text, "InternalServerError")
      for (const secret of [Redacted.value(first), Redacted.value(second), MockRevault.demoCredentials.apiKeySecret]) {
        assert.notInclude(text, secret)
      }
      const counters = (yield* Metric.snapshot).filter((m) => m.metricKey.name === "revault_auth_acquisitions_total")
      const outcomes = counters.map((m) => m.metricKey.tags.map((t) => `${t.key}=${t.value}`).join(","))
      assert.isTrue(outcomes.some((o) => o.includes("outcome=success") && o.includes("source=refresh")))
      assert.isTrue(outcomes.some((o) => o.includes("outcome=failure") && o.includes("source=refresh")))
      const gauge = (yield* Metric.snapshot).find((m) => m.metricKey.name === "revault_auth_token_remaining_seconds")
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
