import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { inspect } from "node:util"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthApi from "../src/AuthApi.js"
import * as AuthConfig from "../src/AuthConfig.js"
import { TransportError, UnexpectedStatusError } from "../src/AuthError.js"

// Real loopback servers: `origin` answers every token request with a 307 to `elsewhere`, which
// records every byte it receives. The API key secret and the refresh token must never get there,
// whatever the HTTP client does with the redirect.

const SECRET = "s3cr3t-REDIRECT-9d4c"
const REFRESH_TOKEN = "RT-REDIRECT-51ab"

interface Listening {
  readonly url: string
  /** Every byte received, as text, in arrival order. */
  readonly received: () => string
  readonly requests: () => ReadonlyArray<string>
}

const listen = (answer: (url: string, respond: (status: number, headers: Record<string, string>) => void) => void) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: Server; readonly listening: Listening }>((resume) => {
      const chunks: Array<Buffer> = []
      const requests: Array<string> = []
      const server = createServer((request, response) => {
        requests.push(`${request.method} ${request.url}`)
        // Read the body to the end before answering, as a real server does.
        request.resume()
        request.on("end", () =>
          answer(request.url ?? "", (status, headers) => {
            response.writeHead(status, headers)
            response.end()
          })
        )
      })
      server.on("connection", (socket) => socket.on("data", (chunk: Buffer) => chunks.push(chunk)))
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(
          Effect.succeed({
            server,
            listening: {
              url: `http://127.0.0.1:${port}`,
              received: () => Buffer.concat(chunks).toString("utf8"),
              requests: () => [...requests]
            }
          })
        )
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ listening }) => listening))

/** `origin` redirects every request to the same path on `elsewhere` with `status`. */
const servers = (status: number) =>
  Effect.gen(function* () {
    const elsewhere = yield* listen((_, respond) => respond(200, { "content-type": "application/json" }))
    const origin = yield* listen((url, respond) => respond(status, { location: `${elsewhere.url}${url}` }))
    return { origin, elsewhere }
  })

const clients: ReadonlyArray<readonly [string, Layer.Layer<HttpClient.HttpClient>]> = [
  ["undici", NodeHttpClient.layerUndici],
  ["node:http", NodeHttpClient.layerNodeHttp]
]

const followingRedirects = (layer: Layer.Layer<HttpClient.HttpClient>) =>
  Layer.effect(
    HttpClient.HttpClient,
    Effect.gen(function* () {
      return HttpClient.followRedirects(yield* HttpClient.HttpClient)
    })
  ).pipe(Layer.provide(layer))

// Built in the test's scope: the HTTP client's connection pool lives until the test ends.
const api = (baseUrl: string, client: Layer.Layer<HttpClient.HttpClient>) =>
  Effect.map(
    Layer.build(
      AuthApi.layer.pipe(
        Layer.provide(client),
        Layer.provide(AuthConfig.layer({ baseUrl, workspace: "ws", apiKeyId: "kid", apiKeySecret: SECRET }))
      )
    ),
    Context.get(AuthApi.AuthApi)
  )

const calls = (service: AuthApi.Service) =>
  [
    ["authenticate", service.authenticate],
    ["refresh", service.refresh(Redacted.make(REFRESH_TOKEN))]
  ] as const

const bounded = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.timeoutOrElse(effect, {
    duration: "10 seconds",
    orElse: () => Effect.fail(new Error("no outcome within 10 s"))
  })

describe("AuthApi and redirects (real loopback servers)", () => {
  for (const status of [307, 308]) {
    it.live(`a ${status} from the token endpoints is an UnexpectedStatusError; the target sees nothing`, () =>
      Effect.gen(function* () {
        const { origin, elsewhere } = yield* servers(status)
        const service = yield* api(`${origin.url}/v1/rest`, NodeHttpClient.layerUndici)
        for (const [operation, call] of calls(service)) {
          const error = yield* bounded(Effect.flip(call))
          assert.instanceOf(error, UnexpectedStatusError, operation)
          assert.strictEqual(error instanceof UnexpectedStatusError ? error.status : undefined, status)
        }
        assert.deepStrictEqual(origin.requests(), ["POST /v1/rest/auth/token", "POST /v1/rest/auth/token/refresh"])
        assert.strictEqual(elsewhere.received(), "")
      })
    )
  }

  for (const [name, layer] of clients) {
    it.live(`through ${name} composed with followRedirects, a 307 never carries a secret to another origin`, () =>
      Effect.gen(function* () {
        const { origin, elsewhere } = yield* servers(307)
        const service = yield* api(`${origin.url}/v1/rest`, followingRedirects(layer))
        const errors = []
        for (const [operation, call] of calls(service)) {
          errors.push([operation, yield* bounded(Effect.flip(call))] as const)
        }
        const received = elsewhere.received()
        assert.notInclude(received, SECRET)
        assert.notInclude(received, REFRESH_TOKEN)
        if (name === "undici") {
          // undici writes a request's head with its first body chunk: the target gets no byte at all.
          // node:http writes the head first, so the target sees a request that never gets its body.
          assert.strictEqual(received, "")
          assert.deepStrictEqual(elsewhere.requests(), [])
        }
        assert.strictEqual(origin.requests().length, 2)
        for (const [operation, error] of errors) {
          assert.instanceOf(error, TransportError, `${operation}: ${error}`)
          assert.include(error.message, "refused to send the token request again", operation)
          assert.include(error.message, elsewhere.url, operation)
          // The error keeps the transport's causes, and none of them holds the body.
          const rendered = [String(error), JSON.stringify(error), inspect(error, { depth: 10 })].join("\n")
          assert.notInclude(rendered, SECRET, operation)
          assert.notInclude(rendered, REFRESH_TOKEN, operation)
        }
      })
    )
  }

  it.live("fetch, which follows redirects by itself, never re-posts a secret either", () =>
    Effect.gen(function* () {
      const { origin, elsewhere } = yield* servers(307)
      const service = yield* api(`${origin.url}/v1/rest`, FetchHttpClient.layer)
      for (const [operation, call] of calls(service)) {
        const error = yield* bounded(Effect.flip(call))
        assert.instanceOf(error, TransportError, `${operation}: ${error}`)
      }
      assert.strictEqual(origin.requests().length, 2)
      assert.strictEqual(elsewhere.received(), "")
    })
  )
})
