import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { AuthApi, layer as authApiLayer } from "../src/AuthApi.js"
import { layer as authConfigLayer } from "../src/AuthConfig.js"
import * as MockRevault from "../src/MockRevault.js"

const base = Layer.mergeAll(MockRevault.layer())
const env = authApiLayer.pipe(
  Layer.provideMerge(MockRevault.layerAuthConfig()),
  Layer.provideMerge(base),
  Layer.provide(FetchHttpClient.layer)
)

describe("AuthApi against the real MockRevault server", () => {
  it.scoped("authenticate then refresh returns fresh token sets", () =>
    Effect.gen(function* () {
      const api = yield* AuthApi
      const mock = yield* MockRevault.MockRevault
      const first = yield* api.authenticate
      assert.strictEqual(first.expiresInSeconds, 300)
      assert.strictEqual(first.refreshExpiresInSeconds, 1800)
      assert.match(Redacted.value(first.accessToken), /^[\w-]+\.[\w-]+\.[\w-]+$/)
      const second = yield* api.refresh(first.refreshToken)
      assert.notStrictEqual(Redacted.value(second.accessToken), Redacted.value(first.accessToken))
      const requests = yield* mock.requests
      assert.deepStrictEqual(
        requests.map((r) => [r.route, r.bearer]),
        [
          ["authenticate", false],
          ["refresh", false]
        ]
      )
    }).pipe(Effect.provide(env))
  )

  it.scoped("a used refresh token is dead afterwards (rotation)", () =>
    Effect.gen(function* () {
      const api = yield* AuthApi
      const first = yield* api.authenticate
      yield* api.refresh(first.refreshToken)
      const reuse = yield* Effect.flip(api.refresh(first.refreshToken))
      assert.strictEqual(reuse._tag, "UnauthorizedError")
    }).pipe(Effect.provide(env))
  )

  it.scoped("wrong secret → 401, workspace not allowed → 403", () =>
    Effect.gen(function* () {
      const wrongSecret = yield* Effect.flip(
        Effect.flatMap(AuthApi, (api) => api.authenticate).pipe(
          Effect.provide(authApiLayer.pipe(Layer.provide(MockRevault.layerAuthConfig({ apiKeySecret: "nope" }))))
        )
      )
      assert.strictEqual(wrongSecret._tag, "UnauthorizedError")
      const forbidden = yield* Effect.flip(
        Effect.flatMap(AuthApi, (api) => api.authenticate).pipe(
          Effect.provide(authApiLayer.pipe(Layer.provide(MockRevault.layerAuthConfig({ workspace: "other" }))))
        )
      )
      assert.strictEqual(forbidden._tag, "ForbiddenError")
    }).pipe(Effect.provide(Layer.merge(base, FetchHttpClient.layer)))
  )

  it.scoped("scripted faults map to tagged errors, and the next call succeeds", () =>
    Effect.gen(function* () {
      const api = yield* AuthApi
      const mock = yield* MockRevault.MockRevault
      const cases = [
        [MockRevault.Fault.Status({ status: 500 }), "InternalServerError"],
        [MockRevault.Fault.Status({ status: 503, body: "html" }), "UnexpectedStatusError"],
        [MockRevault.Fault.Status({ status: 401, body: "empty" }), "UnexpectedStatusError"],
        [MockRevault.Fault.Body({ text: "not json" }), "ResponseDecodeError"],
        [MockRevault.Fault.MissingField({ field: "refreshToken" }), "ResponseDecodeError"],
        [MockRevault.Fault.Drop(), "TransportError"],
        [MockRevault.Fault.Truncate(), "TransportError"]
      ] as const
      for (const [fault, tag] of cases) {
        yield* mock.fault("authenticate", fault)
        const error = yield* Effect.flip(api.authenticate)
        assert.strictEqual(error._tag, tag, fault._tag)
        const ok = yield* api.authenticate
        assert.strictEqual(ok.expiresInSeconds, 300)
      }
    }).pipe(Effect.provide(env))
  )

  it.scoped("a hung server gives TransportError Timeout, driven by TestClock", () =>
    Effect.gen(function* () {
      const api = yield* AuthApi
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", MockRevault.Fault.Hang())
      const fiber = yield* Effect.fork(Effect.flip(api.authenticate))
      // Let the request reach the server before moving time.
      while ((yield* mock.count("authenticate")) === 0) yield* Effect.yieldNow()
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.reason, "Timeout")
      const ok = yield* api.authenticate
      assert.strictEqual(ok.expiresInSeconds, 300)
    }).pipe(Effect.provide(env))
  )

  it.scoped("connection refused gives TransportError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.flatMap(AuthApi, (api) => api.authenticate).pipe(
          Effect.provide(
            authApiLayer.pipe(
              Layer.provide(
                authConfigLayer({
                  baseUrl: "http://127.0.0.1:1/v1/rest",
                  workspace: "w",
                  apiKeyId: "k",
                  apiKeySecret: "s"
                })
              ),
              Layer.provide(FetchHttpClient.layer)
            )
          )
        )
      )
      assert.strictEqual(error._tag, "TransportError")
    })
  )
})
