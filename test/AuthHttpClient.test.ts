import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { AuthHttpClient } from "../src/AuthHttpClient.js"
import * as MockRevault from "../src/MockRevault.js"
import * as RevaultAuth from "../src/RevaultAuth.js"
import { recordingTracer } from "./support/RecordingTracer.js"

const env = (mock: MockRevault.Options = {}, overrides: Parameters<typeof MockRevault.layerAuthConfig>[0] = {}) =>
  RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig(overrides)).pipe(
    Layer.provideMerge(MockRevault.layer(mock)),
    Layer.provide(NodeHttpClient.layerUndici)
  )

const getMe = Effect.flatMap(AuthHttpClient, (client) => client.get("/users/me"))

const acquisitions = Effect.flatMap(MockRevault.MockRevault, (mock) =>
  Effect.zipWith(mock.count("authenticate"), mock.count("refresh"), (a, r) => a + r)
)

describe("AuthHttpClient against the real MockRevault server", () => {
  it.scoped("relative URLs reach the mock with a valid bearer and Accept: application/json", () =>
    Effect.gen(function* () {
      const user = yield* RevaultAuth.me
      assert.strictEqual(user.id, "usr_demo-key-id")
      assert.strictEqual(user.workspace, "demo")
      const mock = yield* MockRevault.MockRevault
      const log = yield* mock.requests
      assert.deepStrictEqual(
        log.map((e) => [e.route, e.bearer, e.token]),
        [
          ["authenticate", false, undefined],
          ["me", true, "valid"]
        ]
      )
    }).pipe(Effect.provide(env()))
  )

  it.scoped("a 401 from a resource: invalidate, new token, one replay that succeeds", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* RevaultAuth.me
      yield* mock.revokeAccessTokens
      const response = yield* getMe
      assert.strictEqual(response.status, 200)
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
    }).pipe(Effect.provide(env()))
  )

  it.scoped("a second 401 is returned as the response, never a loop", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* mock.fault("me", MockRevault.Fault.Status({ status: 401 }), 2)
      const response = yield* getMe
      assert.strictEqual(response.status, 401)
      assert.strictEqual(yield* mock.count("me"), 2)
      assert.strictEqual((yield* getMe).status, 200)
    }).pipe(Effect.provide(env()))
  )

  it.scoped("100 concurrent requests rejected for one revoked token: one acquisition, each replayed once", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      yield* RevaultAuth.me
      const before = yield* acquisitions
      yield* mock.revokeAccessTokens
      const responses = yield* Effect.all(
        Array.from({ length: 100 }, () => getMe),
        { concurrency: "unbounded" }
      )
      assert.isTrue(responses.every((r) => r.status === 200))
      assert.strictEqual((yield* acquisitions) - before, 1)
      assert.strictEqual(yield* mock.count("me"), 1 + 200)
    }).pipe(Effect.provide(env()))
  )

  it.scoped("1,000 concurrent requests while the token expires: all succeed, one acquisition", () =>
    Effect.gen(function* () {
      yield* RevaultAuth.me
      const before = yield* acquisitions
      // Past the usable lifetime (300 s - 30 s skew) but before the server-side expiry.
      yield* TestClock.setTime(280_000)
      const responses = yield* Effect.all(
        Array.from({ length: 1_000 }, () => getMe),
        { concurrency: "unbounded" }
      )
      assert.isTrue(responses.every((r) => r.status === 200))
      assert.strictEqual((yield* acquisitions) - before, 1)
    }).pipe(Effect.provide(env({}, { refreshAt: 0.99 })))
  )

  it.scoped("no request reaches /users/me with an expired token over a simulated hour", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      for (let minute = 0; minute < 60; minute++) {
        yield* TestClock.adjust("29 seconds")
        assert.strictEqual((yield* getMe).status, 200)
        yield* TestClock.adjust("31 seconds")
        assert.strictEqual((yield* getMe).status, 200)
      }
      const me = (yield* mock.requests).filter((e) => e.route === "me")
      assert.strictEqual(me.length, 120)
      assert.isTrue(me.every((e) => e.token === "valid"))
      assert.isAtLeast(yield* mock.count("refresh"), 10)
    }).pipe(Effect.provide(env({ accessTokenTtl: "120 seconds", refreshTokenTtl: "600 seconds" })))
  )

  it.scoped("a request with a stream body is not replayed", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const client = yield* AuthHttpClient
      yield* mock.fault("me", MockRevault.Fault.Status({ status: 401 }))
      const response = yield* client.execute(
        HttpClientRequest.get("/users/me").pipe(
          HttpClientRequest.setBody(HttpBody.stream(Stream.make(new TextEncoder().encode("{}")), "application/json"))
        )
      )
      assert.strictEqual(response.status, 401)
      assert.strictEqual(yield* mock.count("me"), 1)
    }).pipe(Effect.provide(env()))
  )

  it.scoped("an absolute URL outside baseUrl is refused before any token is sent", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const error = yield* Effect.flip(client.get("http://127.0.0.1:1/elsewhere"))
      assert.strictEqual(error._tag, "RequestError")
      assert.strictEqual(error._tag === "RequestError" && error.reason, "InvalidUrl")
      const mock = yield* MockRevault.MockRevault
      const ok = yield* client.get(`${mock.baseUrl}/users/me`)
      assert.strictEqual(ok.status, 200)
    }).pipe(Effect.provide(env()))
  )

  it.scoped("a request's own Accept header is kept", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const response = yield* client.execute(
        HttpClientRequest.get("/users/me").pipe(HttpClientRequest.setHeader("accept", "text/plain"))
      )
      assert.strictEqual(response.request.headers.accept, "text/plain")
      const plain = yield* client.get("/users/me")
      assert.strictEqual(plain.request.headers.accept, "application/json")
    }).pipe(Effect.provide(env()))
  )

  it.scoped("the Authorization header is redacted in span attributes", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      const response = yield* getMe.pipe(Effect.withTracer(tracer))
      assert.strictEqual(response.status, 200)
      const auth = spans.flatMap((span) => {
        const value = span.attributes.get("http.request.header.authorization")
        return value === undefined ? [] : [value]
      })
      assert.isAbove(auth.length, 0)
      assert.isTrue(auth.every((value) => value === "<redacted>"))
      const text = JSON.stringify(spans.map((span) => [...span.attributes]))
      assert.notMatch(text, /eyJ[\w-]+\.[\w-]+\.[\w-]+/)
      assert.notInclude(text, MockRevault.demoCredentials.apiKeySecret)
    }).pipe(Effect.provide(env()))
  )
})
