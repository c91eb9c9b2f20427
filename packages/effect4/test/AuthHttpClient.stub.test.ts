import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as AuthConfig from "../src/AuthConfig.js"
import type { AuthError } from "../src/AuthError.js"
import * as AuthHttpClient from "../src/AuthHttpClient.js"
import * as AuthService from "../src/AuthService.js"

const baseUrl = "http://127.0.0.1:9/v1/rest"

// What the stub transport saw: the URL, the Authorization header and the Accept header.
interface Sent {
  readonly url: string
  readonly authorization: string | undefined
  readonly accept: string | undefined
}

// A transport answering 401 to `rejected` tokens and 200 otherwise; nothing leaves the process.
const stubTransport = (sent: Array<Sent>, rejected: ReadonlySet<string>) =>
  Layer.succeed(
    HttpClient.HttpClient,
    HttpClient.make((request, url) =>
      Effect.sync(() => {
        const authorization = request.headers.authorization
        sent.push({ url: url.href, authorization, accept: request.headers.accept })
        const token = authorization?.replace(/^Bearer /, "") ?? ""
        return HttpClientResponse.fromWeb(request, new Response("{}", { status: rejected.has(token) ? 401 : 200 }))
      })
    )
  )

// An AuthService handing out `tokens` in turn: `invalidate(rejected)` moves on only while
// `rejected` is the current token, as the real one does.
const sequenceAuth = (tokens: ReadonlyArray<string>, reads: { count: number }, invalidated: Array<string>) => {
  let index = 0
  const current = () => Redacted.make(tokens[Math.min(index, tokens.length - 1)] ?? "")
  return Layer.succeed(AuthService.AuthService, {
    accessToken: Effect.sync(() => {
      reads.count++
      return current()
    }),
    session: Effect.die("unused"),
    refresh: Effect.die("unused"),
    invalidate: (rejected) =>
      Effect.sync(() => {
        const value = rejected === undefined ? "<all>" : Redacted.value(rejected)
        invalidated.push(value)
        if (rejected === undefined || value === Redacted.value(current())) index++
      })
  })
}

const setup = (tokens: ReadonlyArray<string>, rejected: ReadonlyArray<string>) => {
  const sent: Array<Sent> = []
  const reads = { count: 0 }
  const invalidated: Array<string> = []
  const layer = AuthHttpClient.layer.pipe(
    Layer.provide(sequenceAuth(tokens, reads, invalidated)),
    Layer.provide(AuthConfig.layer({ baseUrl, workspace: "w", apiKeyId: "k", apiKeySecret: "s" })),
    Layer.provide(stubTransport(sent, new Set(rejected)))
  )
  return { sent, reads, invalidated, layer }
}

const assertInvalidUrl = (error: HttpClientError.HttpClientError | AuthError) => {
  assert.strictEqual(error._tag, "HttpClientError")
  assert.strictEqual(error._tag === "HttpClientError" ? error.reason._tag : undefined, "InvalidUrlError")
}

const replayCount = Effect.map(Metric.snapshot, (snapshots) =>
  snapshots.reduce(
    (sum, snapshot) =>
      snapshot.type === "Counter" && snapshot.id === "revault_auth_unauthorized_replays_total"
        ? sum + Number(snapshot.state.count)
        : sum,
    0
  )
)

const streamBody = HttpBody.stream(Stream.make(new TextEncoder().encode("{}")), "application/json")

describe("AuthHttpClient with a stub AuthService and transport", () => {
  it.effect("a relative URL goes under baseUrl with the bearer and Accept: application/json", () => {
    const { sent, layer } = setup(["t1"], [])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      assert.strictEqual((yield* client.get("/users/me")).status, 200)
      assert.strictEqual((yield* client.get("users/me")).status, 200)
      assert.deepStrictEqual(sent, [
        { url: `${baseUrl}/users/me`, authorization: "Bearer t1", accept: "application/json" },
        { url: `${baseUrl}/users/me`, authorization: "Bearer t1", accept: "application/json" }
      ])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a request's own Accept header is kept", () => {
    const { sent, layer } = setup(["t1"], [])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      yield* client.execute(
        HttpClientRequest.get("/users/me").pipe(HttpClientRequest.setHeader("accept", "text/plain"))
      )
      assert.strictEqual(sent[0]?.accept, "text/plain")
    }).pipe(Effect.provide(layer))
  })

  it.effect("a 401 invalidates exactly the rejected token and replays once with the next", () => {
    const { sent, invalidated, layer } = setup(["t1", "t2"], ["t1"])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      const before = yield* replayCount
      assert.strictEqual((yield* client.get("/users/me")).status, 200)
      assert.deepStrictEqual(invalidated, ["t1"])
      assert.deepStrictEqual(
        sent.map((s) => s.authorization),
        ["Bearer t1", "Bearer t2"]
      )
      assert.strictEqual((yield* replayCount) - before, 1)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a second 401 is returned as the response, never a loop", () => {
    const { sent, invalidated, layer } = setup(["t1", "t2", "t3"], ["t1", "t2"])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      assert.strictEqual((yield* client.get("/users/me")).status, 401)
      assert.strictEqual(sent.length, 2)
      assert.deepStrictEqual(invalidated, ["t1"])
    }).pipe(Effect.provide(layer))
  })

  it.effect("a 401 to a stream body drops the token but is not replayed", () => {
    const { sent, invalidated, layer } = setup(["t1", "t2"], ["t1"])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      const before = yield* replayCount
      const response = yield* client.execute(
        HttpClientRequest.post("/users/me").pipe(HttpClientRequest.setBody(streamBody))
      )
      assert.strictEqual(response.status, 401)
      assert.strictEqual(sent.length, 1)
      assert.deepStrictEqual(invalidated, ["t1"])
      assert.strictEqual((yield* replayCount) - before, 0)
    }).pipe(Effect.provide(layer))
  })

  it.effect("a URL outside baseUrl is refused before any token is read or anything sent", () => {
    const { sent, reads, layer } = setup(["t1"], [])
    return Effect.gen(function* () {
      const client = yield* AuthHttpClient.AuthHttpClient
      for (const url of [
        "http://127.0.0.1:1/elsewhere",
        "/../../admin",
        "/%2e%2e/%2e%2e/admin",
        `${baseUrl}ore/users/me`,
        "http://127.0.0.1:9/v1/rest",
        "https://127.0.0.1:9/v1/rest/users/me"
      ]) {
        const error = yield* Effect.flip(client.get(url))
        assertInvalidUrl(error)
        assert.include(error.message, "refusing to send the Revault token outside")
      }
      assert.strictEqual(reads.count, 0)
      assert.deepStrictEqual(sent, [])
    }).pipe(Effect.provide(layer))
  })
})
