import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import * as Jose from "jose"
import * as MockRevault from "../src/MockRevault.js"

const env = Layer.merge(
  MockRevault.layer({ accessTokenTtl: "60 seconds", refreshTokenTtl: "120 seconds" }),
  FetchHttpClient.layer
)

const post = (path: string, body: unknown) =>
  Effect.gen(function* () {
    const mock = yield* MockRevault.MockRevault
    const response = yield* HttpClient.execute(
      HttpClientRequest.post(`${mock.baseUrl}${path}`).pipe(HttpClientRequest.bodyJsonUnsafe(body))
    )
    return { status: response.status, json: yield* response.json }
  })

const me = (token?: string) =>
  Effect.gen(function* () {
    const mock = yield* MockRevault.MockRevault
    const request = HttpClientRequest.get(`${mock.baseUrl}/users/me`)
    const response = yield* HttpClient.execute(
      token === undefined ? request : HttpClientRequest.bearerToken(request, token)
    )
    return { status: response.status, json: yield* response.json }
  })

const demo = MockRevault.demoCredentials

describe("MockRevault", () => {
  it.effect("listens on loopback with a /v1/rest base URL", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      assert.match(mock.baseUrl, /^http:\/\/127\.0\.0\.1:\d+\/v1\/rest$/)
      assert.strictEqual(Redacted.value(mock.credentials.apiKeySecret), demo.apiKeySecret)
    }).pipe(Effect.provide(env))
  )

  it.effect("validates request bodies as the document says: 400 with issues", () =>
    Effect.gen(function* () {
      const missing = yield* post("/auth/token", { workspace: "demo", apiKeyId: "demo-key-id" })
      assert.strictEqual(missing.status, 400)
      assert.deepInclude(missing.json, { code: "BAD_REQUEST" })
      assert.match(JSON.stringify(missing.json), /apiKeySecret/)
      const wrongType = yield* post("/auth/token/refresh", { workspace: "demo", refreshToken: 42 })
      assert.strictEqual(wrongType.status, 400)
      assert.match(JSON.stringify(wrongType.json), /refreshToken/)
    }).pipe(Effect.provide(env))
  )

  it.effect("401 for an unknown key or wrong secret, 403 for a workspace the key may not use", () =>
    Effect.gen(function* () {
      const unknown = yield* post("/auth/token", { ...demo, apiKeyId: "nobody" })
      assert.strictEqual(unknown.status, 401)
      const wrong = yield* post("/auth/token", { ...demo, apiKeySecret: "wrong" })
      assert.strictEqual(wrong.status, 401)
      const forbidden = yield* post("/auth/token", { ...demo, workspace: "elsewhere" })
      assert.strictEqual(forbidden.status, 403)
      assert.deepInclude(forbidden.json, { code: "FORBIDDEN" })
    }).pipe(Effect.provide(env))
  )

  it.effect("issues HS256 JWTs with exp from the Clock; /users/me checks them in simulated time", () =>
    Effect.gen(function* () {
      const issued = yield* post("/auth/token", demo)
      assert.strictEqual(issued.status, 200)
      const set = issued.json as { accessToken: string; expiresInSeconds: number }
      assert.strictEqual(set.expiresInSeconds, 60)
      const header = Jose.decodeProtectedHeader(set.accessToken)
      assert.strictEqual(header.alg, "HS256")
      const claims = Jose.decodeJwt(set.accessToken)
      assert.strictEqual(claims.exp, 60)
      assert.strictEqual(claims.sub, demo.apiKeyId)
      const ok = yield* me(set.accessToken)
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(ok.json, {
        id: "usr_demo-key-id",
        name: "Demo API operator",
        role: "API_OPERATOR",
        workspace: "demo"
      })
      yield* TestClock.adjust("60 seconds")
      const expired = yield* me(set.accessToken)
      assert.strictEqual(expired.status, 401)
      const missing = yield* me()
      assert.strictEqual(missing.status, 401)
      const malformed = yield* me("not-a-jwt")
      assert.strictEqual(malformed.status, 401)
      const mock = yield* MockRevault.MockRevault
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.filter((e) => e.route === "me").map((e) => e.token),
        ["valid", "expired", "missing", "invalid"]
      )
    }).pipe(Effect.provide(env))
  )

  it.effect("refresh rotates, the refresh token expires, and revocation kills access tokens", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const first = (yield* post("/auth/token", demo)).json as { accessToken: string; refreshToken: string }
      const second = yield* post("/auth/token/refresh", { workspace: "demo", refreshToken: first.refreshToken })
      assert.strictEqual(second.status, 200)
      const reused = yield* post("/auth/token/refresh", { workspace: "demo", refreshToken: first.refreshToken })
      assert.strictEqual(reused.status, 401)
      const next = second.json as { accessToken: string; refreshToken: string }
      yield* TestClock.adjust("120 seconds")
      const dead = yield* post("/auth/token/refresh", { workspace: "demo", refreshToken: next.refreshToken })
      assert.strictEqual(dead.status, 401)
      const fresh = (yield* post("/auth/token", demo)).json as { accessToken: string }
      assert.strictEqual((yield* me(fresh.accessToken)).status, 200)
      yield* mock.revokeAccessTokens
      assert.strictEqual((yield* me(fresh.accessToken)).status, 401)
    }).pipe(Effect.provide(env))
  )

  it.effect("faults apply to the next N calls of a route, in order", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 503 }), 2)
      yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 429, headers: { "retry-after": "3" } }))
      assert.strictEqual((yield* post("/auth/token", demo)).status, 503)
      assert.strictEqual((yield* post("/auth/token", demo)).status, 503)
      assert.strictEqual((yield* post("/auth/token", demo)).status, 429)
      assert.strictEqual((yield* post("/auth/token", demo)).status, 200)
      assert.strictEqual(yield* mock.count("authenticate"), 4)
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.map((e) => e.fault),
        ["Status", "Status", "Status", undefined]
      )
    }).pipe(Effect.provide(env))
  )

  it.effect("spent, expired and revoked refresh grants are dropped: the grant map stays bounded", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      // A chain of rotations holds one grant.
      let refreshToken = ((yield* post("/auth/token", demo)).json as { refreshToken: string }).refreshToken
      for (let i = 0; i < 20; i++) {
        const next = yield* post("/auth/token/refresh", { workspace: "demo", refreshToken })
        assert.strictEqual(next.status, 200)
        refreshToken = (next.json as { refreshToken: string }).refreshToken
      }
      assert.strictEqual(yield* mock.refreshGrants, 1)
      // Exchanges whose refresh tokens are never spent: held until they expire (120 s).
      for (let i = 0; i < 20; i++) yield* post("/auth/token", demo)
      assert.strictEqual(yield* mock.refreshGrants, 21)
      yield* TestClock.adjust("121 seconds")
      yield* post("/auth/token", demo)
      assert.strictEqual(yield* mock.refreshGrants, 1)
      yield* mock.revokeRefreshTokens
      assert.strictEqual(yield* mock.refreshGrants, 0)
    }).pipe(Effect.provide(env))
  )

  it.effect("a fault queued for 0 times (or fewer) never applies", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 503 }), 0)
      yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 503 }), -1)
      assert.strictEqual((yield* post("/auth/token", demo)).status, 200)
      assert.deepStrictEqual(
        (yield* mock.requests).map((e) => e.fault),
        [undefined]
      )
    }).pipe(Effect.provide(env))
  )

  it.effect("a MissingField or Truncate body carries no usable token", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("authenticate", MockRevault.Fault.MissingField({ field: "expiresInSeconds" }))
      const broken = yield* post("/auth/token", demo)
      assert.strictEqual(broken.status, 200)
      const set = broken.json as { accessToken: string; refreshToken: string }
      assert.isString(set.refreshToken)
      assert.strictEqual(
        (yield* post("/auth/token/refresh", { workspace: "demo", refreshToken: set.refreshToken })).status,
        401
      )
      assert.strictEqual((yield* me(set.accessToken)).status, 401)
      yield* mock.fault("authenticate", MockRevault.Fault.Truncate())
      yield* Effect.result(post("/auth/token", demo))
      assert.strictEqual(yield* mock.refreshGrants, 0)
    }).pipe(Effect.provide(env))
  )

  it.effect("the request log never holds a secret", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const set = (yield* post("/auth/token", demo)).json as { accessToken: string; refreshToken: string }
      yield* me(set.accessToken)
      const text = JSON.stringify(yield* mock.requests)
      assert.notInclude(text, demo.apiKeySecret)
      assert.notInclude(text, set.accessToken)
      assert.notInclude(text, set.refreshToken)
      assert.notInclude(String(mock.credentials.apiKeySecret), demo.apiKeySecret)
    }).pipe(Effect.provide(env))
  )

  it.effect("closing the layer closes the server, even with a hung request", () =>
    Effect.gen(function* () {
      const baseUrl = yield* Effect.scoped(
        Effect.gen(function* () {
          const mock = yield* MockRevault.MockRevault
          yield* mock.fault("me", MockRevault.Fault.Hang())
          yield* Effect.forkDetach(Effect.result(me()))
          while ((yield* mock.count("me")) === 0) yield* Effect.yieldNow
          return mock.baseUrl
        }).pipe(Effect.provide(MockRevault.layer()))
      )
      const after = yield* Effect.result(HttpClient.execute(HttpClientRequest.get(`${baseUrl}/users/me`)))
      assert.strictEqual(after._tag, "Failure")
    }).pipe(Effect.provide(FetchHttpClient.layer))
  )
})
