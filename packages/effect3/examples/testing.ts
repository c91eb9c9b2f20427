/**
 * Testing your own program, three ways:
 * 1. `AuthService.layerStub`: no HTTP at all, for code that only needs a token.
 * 2. `RevaultAuth.layerTest`: the authenticated client over a handler of yours, no server.
 * 3. `MockRevault`: a real server on loopback, for code that calls the API, including failures.
 *
 *   npx tsx examples/testing.ts
 */
import * as assert from "node:assert/strict"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthError, AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

// Code under test #1: needs a token for a non-HTTP channel (a websocket handshake, say).
const handshakeHeaders = Effect.map(AuthService.AuthService, (auth) => auth.accessToken).pipe(
  Effect.flatten,
  Effect.map((token) => ({ authorization: `Bearer ${Redacted.value(token)}` }))
)

// Code under test #2: calls the API.
const operatorName = Effect.map(RevaultAuth.me, (user) => user.name ?? String(user.id))

const withStub = Effect.gen(function* () {
  const headers = yield* handshakeHeaders
  assert.deepEqual(headers, { authorization: "Bearer test-token" })
  yield* Console.log("ok - layerStub serves a fixed token without HTTP")
}).pipe(Effect.provide(AuthService.layerStub("test-token")))

const withStubFailing = Effect.gen(function* () {
  const error = yield* Effect.flip(handshakeHeaders)
  assert.equal(String(error), "UnauthorizedError [authenticate 401 UNAUTHORIZED]: Invalid API key")
  yield* Console.log("ok - layerStub fails as the token manager would")
}).pipe(Effect.provide(AuthService.layerStub(Effect.fail(AuthError.unauthorized("Invalid API key")))))

// The handler plays the API: here its first answer is a 401, as for a token revoked meanwhile.
let calls = 0
const revokedOnce = () =>
  Effect.sync(() => (calls++ === 0 ? new Response(null, { status: 401 }) : Response.json({ id: "usr_1", name: "Ada" })))

const withHandler = Effect.gen(function* () {
  assert.equal(yield* operatorName, "Ada")
  // The client dropped the token and replayed once; the log shows both requests, bearer redacted.
  const requests = yield* RevaultAuth.testRequests
  assert.deepEqual(
    requests.map((request) => [request.url, request.headers.authorization]),
    [
      ["https://revault.test/v1/rest/users/me", "<redacted>"],
      ["https://revault.test/v1/rest/users/me", "<redacted>"]
    ]
  )
  yield* Console.log("ok - layerTest: no server, a 401 from the handler, one replay")
}).pipe(Effect.provide(RevaultAuth.layerTest(revokedOnce)))

const withMock = Effect.gen(function* () {
  const mock = yield* MockRevault.MockRevault
  assert.equal(yield* operatorName, "Demo API operator")
  // Script a failure: the next /users/me answers 401; the client replays once with a new token.
  yield* mock.fault("me", MockRevault.Fault.Status({ status: 401 }))
  assert.equal(yield* operatorName, "Demo API operator")
  assert.equal(yield* mock.count("me"), 3)
  yield* Console.log("ok - MockRevault: a real server, a scripted 401, one replay")
}).pipe(
  Effect.provide(
    RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig()).pipe(Layer.provideMerge(MockRevault.layer()))
  ),
  Effect.provide(NodeHttpClient.layerUndici)
)

Effect.all([withStub, withStubFailing, withHandler, withMock], { discard: true }).pipe(NodeRuntime.runMain)
