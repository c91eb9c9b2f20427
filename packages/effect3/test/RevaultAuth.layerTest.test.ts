import { inspect } from "node:util"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as AuthConfig from "../src/AuthConfig.js"
import * as AuthError from "../src/AuthError.js"
import { AuthHttpClient } from "../src/AuthHttpClient.js"
import { AuthService } from "../src/AuthService.js"
import * as RevaultAuth from "../src/RevaultAuth.js"

const token = "tok-do-not-print-7f3a"
const operator = () => Response.json({ id: "usr_1", name: "Ada", role: "API_OPERATOR", workspace: "test" })

const renderings = (value: unknown): ReadonlyArray<string> => [
  String(value),
  JSON.stringify(value),
  inspect(value, { depth: null }),
  inspect(value, { depth: null, showHidden: true })
]

describe("RevaultAuth.layerTest", () => {
  it.effect("serves the program's calls from the handler, URLs under the test base URL", () =>
    Effect.gen(function* () {
      const user = yield* RevaultAuth.me
      assert.strictEqual(user.name, "Ada")
      const requests = yield* RevaultAuth.testRequests
      assert.deepStrictEqual(
        requests.map((request) => [request.method, request.url, request.headers.accept]),
        [["GET", "https://revault.test/v1/rest/users/me", "application/json"]]
      )
      const log = yield* RevaultAuth.TestRequests
      assert.strictEqual(yield* log.invalidations, 0)
    }).pipe(Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(operator()))))
  )

  it.effect("the handler sees the bearer; the recorded requests never render it", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const response = yield* client.execute(
        HttpClientRequest.post("/things").pipe(HttpClientRequest.bodyUnsafeJson({ name: "thing" }))
      )
      assert.strictEqual(response.status, 201)
      const requests = yield* RevaultAuth.testRequests
      assert.strictEqual(requests.length, 1)
      assert.strictEqual(requests[0]?.headers.authorization, "<redacted>")
      assert.strictEqual(requests[0]?.body._tag, "Uint8Array")
      for (const text of [...renderings(requests), ...renderings(requests[0])]) assert.notInclude(text, token)
    }).pipe(
      Effect.provide(
        RevaultAuth.layerTest(
          (request) =>
            request.headers.authorization === `Bearer ${token}`
              ? Effect.succeed(new Response(null, { status: 201 }))
              : Effect.die(`unexpected authorization ${request.headers.authorization}`),
          { token: Redacted.make(token) }
        )
      )
    )
  )

  it.effect("the response handed back names the request with its bearer redacted", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const response = yield* client.get("/users/me")
      assert.strictEqual(response.status, 200)
      for (const text of renderings(response.request)) assert.notInclude(text, token)
    }).pipe(Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(operator()), { token })))
  )

  it.effect("accepts an HttpClientResponse from the handler, and a handler with requirements", () => {
    class Users extends Context.Tag("test/Users")<Users, { readonly name: string }>() {}
    return Effect.gen(function* () {
      assert.strictEqual((yield* RevaultAuth.me).name, "Grace")
    }).pipe(
      Effect.provide(
        RevaultAuth.layerTest((request) =>
          Effect.map(Users, (users) => HttpClientResponse.fromWeb(request, Response.json({ id: 2, name: users.name })))
        ).pipe(Layer.provide(Layer.succeed(Users, { name: "Grace" })))
      )
    )
  })

  it.effect("a handler's failure reaches the caller as it is, its request redacted", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(RevaultAuth.me)
      assert.strictEqual(error._tag, "RequestError")
      assert.isTrue(error._tag === "RequestError" && error.reason === "Transport")
      for (const text of renderings(error)) assert.notInclude(text, token)
      assert.strictEqual((yield* RevaultAuth.testRequests).length, 1)
    }).pipe(
      Effect.provide(
        RevaultAuth.layerTest(
          (request) =>
            Effect.fail(
              new HttpClientError.RequestError({ request, reason: "Transport", cause: new Error("ECONNRESET") })
            ),
          { token }
        )
      )
    )
  )

  it.effect("a failing token fails the call before the handler is reached", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(RevaultAuth.me)
      assert.strictEqual(error._tag, "UnauthorizedError")
      assert.strictEqual(error.message, "Invalid API key")
      assert.deepStrictEqual(yield* RevaultAuth.testRequests, [])
    }).pipe(
      Effect.provide(
        RevaultAuth.layerTest(() => Effect.succeed(operator()), {
          token: Effect.fail(AuthError.unauthorized("Invalid API key"))
        })
      )
    )
  )

  it.effect("a 401 from the handler is replayed once, after the token is invalidated", () =>
    Effect.gen(function* () {
      const calls = yield* Ref.make(0)
      const user = yield* RevaultAuth.me.pipe(
        Effect.provide(
          RevaultAuth.layerTest(() =>
            Effect.map(
              Ref.getAndUpdate(calls, (n) => n + 1),
              (n) => (n === 0 ? new Response("expired", { status: 401 }) : operator())
            )
          )
        )
      )
      assert.strictEqual(user.name, "Ada")
      assert.strictEqual(yield* Ref.get(calls), 2)
    })
  )

  it.effect("a handler that always answers 401: two requests, one invalidation, the 401 handed back", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const response = yield* client.get("/users/me")
      assert.strictEqual(response.status, 401)
      const log = yield* RevaultAuth.TestRequests
      assert.deepStrictEqual(
        (yield* log.requests).map((request) => request.url),
        ["https://revault.test/v1/rest/users/me", "https://revault.test/v1/rest/users/me"]
      )
      assert.strictEqual(yield* log.invalidations, 1)
    }).pipe(Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(new Response(null, { status: 401 })))))
  )

  it.effect("the bearer goes under baseUrl only: a URL outside it is refused and never reaches the handler", () =>
    Effect.gen(function* () {
      const client = yield* AuthHttpClient
      const outside = yield* Effect.flip(client.get("https://elsewhere.test/v1/rest/users/me"))
      assert.isTrue(outside._tag === "RequestError" && outside.reason === "InvalidUrl")
      const inside = yield* client.get("https://api.example.com/v2/users/me")
      assert.strictEqual(inside.status, 200)
      assert.deepStrictEqual(
        (yield* RevaultAuth.testRequests).map((request) => request.url),
        ["https://api.example.com/v2/users/me"]
      )
    }).pipe(
      Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(operator()), { baseUrl: "https://api.example.com/v2" }))
    )
  )

  it.effect("provides AuthService with the stub token and AuthConfig with the options", () =>
    Effect.gen(function* () {
      const auth = yield* AuthService
      assert.strictEqual(Redacted.value(yield* auth.accessToken), token)
      const config = yield* AuthConfig.AuthConfig
      assert.deepStrictEqual([config.workspace, config.baseUrl], ["ws-9", "https://revault.test/v1/rest"])
    }).pipe(Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(operator()), { token, workspace: "ws-9" })))
  )

  it.effect("an invalid baseUrl fails the layer with an AuthConfigError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Layer.build(RevaultAuth.layerTest(() => Effect.succeed(operator()), { baseUrl: "http://example.com" }))
      )
      assert.strictEqual(error._tag, "AuthConfigError")
    }).pipe(Effect.scoped)
  )
})
