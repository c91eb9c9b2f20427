import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import type * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/testing/TestClock"
import * as AuthApi from "../src/AuthApi.js"
import * as AuthConfig from "../src/AuthConfig.js"
import {
  type AuthError,
  BadRequestError,
  ForbiddenError,
  InternalServerError,
  type Operation,
  ResponseDecodeError,
  TransportError,
  UnauthorizedError,
  UnexpectedStatusError
} from "../src/AuthError.js"
import { TokenSet } from "../src/TokenSet.js"
import { recordingTracer } from "./support/RecordingTracer.js"

// --- Fixtures ---

const SECRET = "s3cr3t-SECRET"
const ACCESS_TOKEN = "AT-SECRET-123"
const REFRESH_TOKEN = "RT-SECRET-456"
/** The refresh token the caller hands to `refresh`. */
const REFRESH_TOKEN_IN = "RT-IN-789"
const secrets = [SECRET, ACCESS_TOKEN, REFRESH_TOKEN, REFRESH_TOKEN_IN] as const

const options: AuthConfig.Options = {
  baseUrl: "https://api.example.com/v1/rest",
  workspace: "ws",
  apiKeyId: "kid",
  apiKeySecret: SECRET
}

const tokenSetJson = {
  accessToken: ACCESS_TOKEN,
  expiresInSeconds: 300,
  refreshToken: REFRESH_TOKEN,
  refreshExpiresInSeconds: 1800
}
const tokenSetBody = JSON.stringify(tokenSetJson)

const html = "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"

const operations: ReadonlyArray<Operation> = ["authenticate", "refresh"]

// --- Stub transport ---

type Reply =
  | {
      readonly _tag: "Respond"
      readonly status: number
      readonly body: string
      readonly headers: Readonly<Record<string, string>>
    }
  /** The connection fails before any answer. */
  | { readonly _tag: "Fail" }
  /** Status and headers arrive, then the body stream breaks after `partial`. */
  | { readonly _tag: "Cut"; readonly partial: string }
  /** No answer, ever. */
  | { readonly _tag: "Never" }

const respond = (status: number, body = "", headers: Readonly<Record<string, string>> = {}): Reply => ({
  _tag: "Respond",
  status,
  body,
  headers
})
const json = (status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): Reply =>
  respond(status, JSON.stringify(value), { "content-type": "application/json", ...headers })
const ok: Reply = respond(200, tokenSetBody, { "content-type": "application/json" })
const connectionRefused: Reply = { _tag: "Fail" }
const never: Reply = { _tag: "Never" }
const cut: Reply = { _tag: "Cut", partial: tokenSetBody.slice(0, 40) }
const redirect: Reply = respond(307, "", { location: "https://elsewhere.example/steal" })

interface Recorded {
  readonly method: string
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly contentType: string | undefined
  readonly body: string
}

/** Reads the body as a transport would; a stream body is consumed. */
const bodyText = (
  request: HttpClientRequest.HttpClientRequest
): Effect.Effect<string, HttpClientError.HttpClientError> => {
  const body = request.body
  switch (body._tag) {
    case "Uint8Array":
      return Effect.succeed(new TextDecoder().decode(body.body))
    case "Empty":
      return Effect.succeed("")
    case "Stream":
      return body.stream.pipe(
        Stream.decodeText,
        Stream.mkString,
        Effect.mapError(
          (cause) =>
            new HttpClientError.HttpClientError({ reason: new HttpClientError.EncodeError({ request, cause }) })
        )
      )
    default:
      return Effect.succeed(`<${body._tag} body>`)
  }
}

const webResponse = (reply: Reply): Response => {
  switch (reply._tag) {
    case "Respond":
      return new Response(reply.body, { status: reply.status, headers: reply.headers })
    case "Cut": {
      const partial = new TextEncoder().encode(reply.partial)
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(partial)
          controller.error(new Error("socket hang up"))
        }
      })
      return new Response(stream, { status: 200, headers: { "content-type": "application/json" } })
    }
    default:
      throw new Error(`${reply._tag} has no web response`)
  }
}

/** An HttpClient that records every request and answers from a script, in order. */
const stubClient = (replies: ReadonlyArray<Reply>) => {
  const script = [...replies]
  const requests: Array<Recorded> = []
  const client = HttpClient.make((request, url) =>
    Effect.gen(function* () {
      requests.push({
        method: request.method,
        url: url.href,
        headers: { ...request.headers },
        contentType:
          request.body._tag === "Uint8Array" || request.body._tag === "Stream" ? request.body.contentType : undefined,
        body: yield* bodyText(request)
      })
      const reply = script.shift()
      if (reply === undefined) return yield* Effect.die(new Error("the stub has no scripted reply left"))
      switch (reply._tag) {
        case "Fail":
          return yield* Effect.fail(
            new HttpClientError.HttpClientError({
              reason: new HttpClientError.TransportError({
                request,
                cause: new Error("connect ECONNREFUSED 203.0.113.7:443")
              })
            })
          )
        case "Never":
          return yield* Effect.never
        default:
          return HttpClientResponse.fromWeb(request, webResponse(reply))
      }
    })
  )
  return { client, requests, remaining: () => script.length }
}

/** The AuthApi service over a stub answering `replies`. */
const setup = (
  replies: ReadonlyArray<Reply>,
  overrides: Partial<AuthConfig.Options> = {},
  /** What the user composes onto the transport, e.g. `HttpClient.followRedirects()`. */
  compose: (client: HttpClient.HttpClient) => HttpClient.HttpClient = (client) => client
) =>
  Effect.gen(function* () {
    const stub = stubClient(replies)
    const api = yield* Effect.provide(
      AuthApi.AuthApi,
      AuthApi.layer.pipe(
        Layer.provide(Layer.succeed(HttpClient.HttpClient, compose(stub.client))),
        Layer.provide(AuthConfig.layer({ ...options, ...overrides }))
      )
    )
    return { api, requests: stub.requests, remaining: stub.remaining }
  })

const call = (api: AuthApi.Service, operation: Operation): Effect.Effect<TokenSet, AuthError> =>
  operation === "authenticate" ? api.authenticate : api.refresh(Redacted.make(REFRESH_TOKEN_IN))

/** Runs a call to completion, moving the TestClock past the default request timeout if needed. */
const settle = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const fiber = yield* Effect.forkChild(effect)
    yield* TestClock.adjust(AuthConfig.defaultRequestTimeout)
    return yield* Fiber.join(fiber)
  })

/** One call against a stub answering `reply`, expected to fail. */
const failure = (operation: Operation, reply: Reply) =>
  Effect.gen(function* () {
    const { api } = yield* setup([reply])
    return yield* Effect.flip(settle(call(api, operation)))
  })

// --- Secret hygiene helpers ---

/** Every string reachable from a value through its own data properties, bytes decoded as UTF-8. */
const reachableText = (root: unknown): string => {
  const seen = new Set<unknown>()
  const out: Array<string> = []
  const visit = (u: unknown, depth: number): void => {
    if (depth > 30) return
    if (typeof u === "string") {
      out.push(u)
      return
    }
    if (!Predicate.isObject(u) || seen.has(u)) return
    seen.add(u)
    if (u instanceof Uint8Array) {
      out.push(new TextDecoder().decode(u))
      return
    }
    if (u instanceof Map) {
      for (const [k, v] of u) {
        visit(k, depth + 1)
        visit(v, depth + 1)
      }
    }
    for (const key of Reflect.ownKeys(u)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(u, key)
      if (descriptor !== undefined && "value" in descriptor) visit(descriptor.value, depth + 1)
    }
  }
  visit(root, 0)
  return out.join("\n")
}

/** The ways an error is commonly turned into text: by hand, by a JSON log, by node, by Effect. */
const renderings = (error: unknown): ReadonlyArray<readonly [string, string]> => [
  ["String", String(error)],
  ["JSON.stringify", JSON.stringify(error) ?? ""],
  ["util.inspect", inspect(error, { depth: 10 })],
  ["Cause.pretty", Cause.pretty(Cause.fail(error))],
  ["reachable data", reachableText(error)]
]

const assertNoSecretIn = (label: string, text: string): void => {
  for (const secret of secrets) {
    assert.notInclude(text, secret, `${label} shows ${secret}`)
  }
}

const assertNoSecrets = (error: unknown): void => {
  for (const [how, text] of renderings(error)) {
    assertNoSecretIn(how, text)
  }
}

/** A logger writing every entry in each of Effect's built-in formats into `lines`. */
const captureLogger = (lines: Array<string>) =>
  Logger.make((entry) => {
    lines.push(
      Logger.formatSimple.log(entry),
      Logger.formatLogFmt.log(entry),
      Logger.formatJson.log(entry),
      inspect(Logger.formatStructured.log(entry), { depth: 10 })
    )
  })

// --- Tests ---

describe("AuthApi against a stub HttpClient", () => {
  describe("requests", () => {
    it.effect("authenticate POSTs the API key as JSON to /auth/token and decodes the token set", () =>
      Effect.gen(function* () {
        const { api, requests } = yield* setup([ok])
        const tokens = yield* api.authenticate

        assert.strictEqual(requests.length, 1)
        const [request] = requests
        assert.strictEqual(request?.method, "POST")
        assert.strictEqual(request?.url, "https://api.example.com/v1/rest/auth/token")
        assert.strictEqual(request?.headers.accept, "application/json")
        assert.notProperty(request?.headers ?? {}, "authorization")
        assert.strictEqual(request?.contentType, "application/json")
        assert.deepStrictEqual(JSON.parse(request?.body ?? ""), {
          workspace: "ws",
          apiKeyId: "kid",
          apiKeySecret: SECRET
        })
        assert.include(request?.body, `"apiKeySecret":"${SECRET}"`)

        assert.instanceOf(tokens, TokenSet)
        assert.isTrue(Redacted.isRedacted(tokens.accessToken))
        assert.isTrue(Redacted.isRedacted(tokens.refreshToken))
        assert.strictEqual(Redacted.value(tokens.accessToken), ACCESS_TOKEN)
        assert.strictEqual(Redacted.value(tokens.refreshToken), REFRESH_TOKEN)
        assert.strictEqual(tokens.expiresInSeconds, 300)
        assert.strictEqual(tokens.refreshExpiresInSeconds, 1800)
      })
    )

    it.effect("refresh POSTs the refresh token as JSON to /auth/token/refresh", () =>
      Effect.gen(function* () {
        const { api, requests } = yield* setup([ok])
        const tokens = yield* api.refresh(Redacted.make(REFRESH_TOKEN_IN))

        assert.strictEqual(requests.length, 1)
        const [request] = requests
        assert.strictEqual(request?.method, "POST")
        assert.strictEqual(request?.url, "https://api.example.com/v1/rest/auth/token/refresh")
        assert.strictEqual(request?.headers.accept, "application/json")
        assert.notProperty(request?.headers ?? {}, "authorization")
        assert.strictEqual(request?.contentType, "application/json")
        assert.deepStrictEqual(JSON.parse(request?.body ?? ""), { workspace: "ws", refreshToken: REFRESH_TOKEN_IN })
        assert.notInclude(request?.body, SECRET)
        assert.strictEqual(Redacted.value(tokens.accessToken), ACCESS_TOKEN)
      })
    )

    it.effect("a baseUrl given with a trailing slash does not double the slash", () =>
      Effect.gen(function* () {
        const { api, requests } = yield* setup([ok], { baseUrl: "https://api.example.com/v1/rest/" })
        yield* api.authenticate
        assert.strictEqual(requests[0]?.url, "https://api.example.com/v1/rest/auth/token")
      })
    )

    it.effect("extra fields in the token set are ignored", () =>
      Effect.gen(function* () {
        const { api } = yield* setup([json(200, { ...tokenSetJson, tokenType: "Bearer", scope: "all" })])
        const tokens = yield* api.authenticate
        assert.strictEqual(Redacted.value(tokens.accessToken), ACCESS_TOKEN)
      })
    )

    it.effect("any 2xx status is read as a token set", () =>
      Effect.gen(function* () {
        const { api } = yield* setup([respond(201, tokenSetBody)])
        const tokens = yield* api.authenticate
        assert.strictEqual(tokens.expiresInSeconds, 300)
      })
    )
  })

  describe("documented error answers", () => {
    const documented = [
      [400, BadRequestError, "INVALID_INPUT"],
      [401, UnauthorizedError, "BAD_KEY"],
      [403, ForbiddenError, "NO_ACCESS"],
      [500, InternalServerError, "INTERNAL"]
    ] as const

    for (const operation of operations) {
      for (const [status, ErrorClass, code] of documented) {
        it.effect(`${operation}: ${status} with the documented body is a ${ErrorClass.name}`, () =>
          Effect.gen(function* () {
            const issues = [{ message: "workspace: required" }, { message: "apiKeyId: too short" }]
            const error = yield* failure(operation, json(status, { message: `server says ${status}`, code, issues }))
            assert.isTrue(error instanceof ErrorClass, `expected a ${ErrorClass.name}, got ${error._tag}`)
            if (!(error instanceof ErrorClass)) return
            assert.strictEqual(error._tag, ErrorClass.name)
            assert.strictEqual(error.operation, operation)
            assert.strictEqual(error.status, status)
            assert.strictEqual(error.code, code)
            assert.strictEqual(error.message, `server says ${status}`)
            assert.deepStrictEqual(error.issues, issues)
            assert.strictEqual(
              String(error),
              `${ErrorClass.name} [${operation} ${status} ${code}]: server says ${status}`
            )
          })
        )

        it.effect(`${operation}: ${status} without issues has issues []`, () =>
          Effect.gen(function* () {
            const error = yield* failure(operation, json(status, { message: "no issues here", code }))
            assert.isTrue(error instanceof ErrorClass, `expected a ${ErrorClass.name}, got ${error._tag}`)
            if (!(error instanceof ErrorClass)) return
            assert.deepStrictEqual(error.issues, [])
            assert.strictEqual(error.code, code)
            assert.strictEqual(error.message, "no issues here")
          })
        )
      }
    }
  })

  describe("unexpected answers", () => {
    const undocumentedBodies: ReadonlyArray<readonly [string, string]> = [
      ["an empty body", ""],
      ["an HTML body", html],
      ["JSON of another shape", JSON.stringify({ error: "nope" })],
      ["JSON with a non-string code", JSON.stringify({ message: "m", code: 42 })]
    ]

    for (const operation of operations) {
      for (const status of [400, 401, 403, 500]) {
        for (const [what, body] of undocumentedBodies) {
          it.effect(`${operation}: ${status} with ${what} is an UnexpectedStatusError`, () =>
            Effect.gen(function* () {
              const error = yield* failure(operation, respond(status, body, { "content-type": "text/html" }))
              assert.instanceOf(error, UnexpectedStatusError)
              if (!(error instanceof UnexpectedStatusError)) return
              assert.strictEqual(error.operation, operation)
              assert.strictEqual(error.status, status)
              assert.strictEqual(error.body, body)
              assert.isTrue(Option.isNone(error.retryAfter))
            })
          )
        }
      }

      for (const status of [429, 502, 503, 504, 404, 302]) {
        it.effect(`${operation}: ${status} is an UnexpectedStatusError`, () =>
          Effect.gen(function* () {
            const error = yield* failure(operation, respond(status, html))
            assert.instanceOf(error, UnexpectedStatusError)
            if (!(error instanceof UnexpectedStatusError)) return
            assert.strictEqual(error.operation, operation)
            assert.strictEqual(error.status, status)
            assert.strictEqual(error.body, html)
            assert.isTrue(Option.isNone(error.retryAfter))
          })
        )
      }
    }

    it.effect("502 with a documented-looking body is still an UnexpectedStatusError", () =>
      Effect.gen(function* () {
        const error = yield* failure("authenticate", json(502, { message: "m", code: "C" }))
        assert.instanceOf(error, UnexpectedStatusError)
      })
    )

    const retryAfterOf = (error: AuthError): Option.Option<Duration.Duration> => {
      assert.instanceOf(error, UnexpectedStatusError)
      return error instanceof UnexpectedStatusError ? error.retryAfter : Option.none()
    }

    it.effect("429 with Retry-After in seconds", () =>
      Effect.gen(function* () {
        const error = yield* failure("authenticate", respond(429, "slow down", { "retry-after": "7" }))
        assert.deepStrictEqual(retryAfterOf(error), Option.some(Duration.seconds(7)))
        assert.include(String(error), "retry after 7s")
      })
    )

    it.effect("503 with Retry-After in seconds, padded", () =>
      Effect.gen(function* () {
        const error = yield* failure("refresh", respond(503, "", { "retry-after": " 120 " }))
        assert.deepStrictEqual(retryAfterOf(error), Option.some(Duration.seconds(120)))
      })
    )

    it.effect("429 with Retry-After as an HTTP date 30 s after the clock's now", () =>
      Effect.gen(function* () {
        // The TestClock starts at 0, i.e. 1970-01-01T00:00:00Z.
        const date = new Date(30_000).toUTCString()
        assert.strictEqual(date, "Thu, 01 Jan 1970 00:00:30 GMT")
        const error = yield* failure("authenticate", respond(429, "", { "retry-after": date }))
        assert.deepStrictEqual(retryAfterOf(error), Option.some(Duration.seconds(30)))
      })
    )

    it.effect("Retry-After as an HTTP date is measured from the TestClock, not the wall clock", () =>
      Effect.gen(function* () {
        yield* TestClock.adjust("1 hour")
        const date = new Date(3_600_000 + 30_000).toUTCString()
        const error = yield* failure("refresh", respond(429, "", { "retry-after": date }))
        assert.deepStrictEqual(retryAfterOf(error), Option.some(Duration.seconds(30)))
      })
    )

    it.effect("Retry-After as an HTTP date in the past is zero", () =>
      Effect.gen(function* () {
        yield* TestClock.adjust("1 hour")
        const error = yield* failure("authenticate", respond(503, "", { "retry-after": new Date(0).toUTCString() }))
        assert.deepStrictEqual(retryAfterOf(error), Option.some(Duration.zero))
      })
    )

    it.effect("an unreadable Retry-After is ignored", () =>
      Effect.gen(function* () {
        const error = yield* failure("authenticate", respond(429, "", { "retry-after": "soon-ish" }))
        assert.isTrue(Option.isNone(retryAfterOf(error)))
      })
    )

    it.effect("a body longer than 1024 characters is cut to 1024", () =>
      Effect.gen(function* () {
        const body = `${"a".repeat(1024)}${"b".repeat(4000)}`
        const error = yield* failure("authenticate", respond(502, body))
        assert.instanceOf(error, UnexpectedStatusError)
        if (!(error instanceof UnexpectedStatusError)) return
        assert.strictEqual(error.body.length, 1024)
        assert.strictEqual(error.body, "a".repeat(1024))
      })
    )

    it.effect("an undocumented body of a documented status is cut to 1024 too", () =>
      Effect.gen(function* () {
        const body = "<p>".repeat(1000)
        const error = yield* failure("refresh", respond(401, body))
        assert.instanceOf(error, UnexpectedStatusError)
        if (!(error instanceof UnexpectedStatusError)) return
        assert.strictEqual(error.body, body.slice(0, 1024))
      })
    )
  })

  describe("invalid token sets", () => {
    const { refreshExpiresInSeconds: _omitted, ...missingField } = tokenSetJson
    const invalidBodies: ReadonlyArray<readonly [string, string, string]> = [
      ["a non-JSON body", "<html>OK</html>", "not valid JSON"],
      ["an empty body", "", "not valid JSON"],
      ["a missing field", JSON.stringify(missingField), "refreshExpiresInSeconds"],
      ["a string for a number", JSON.stringify({ ...tokenSetJson, expiresInSeconds: "300" }), "expiresInSeconds"],
      ["a negative lifetime", JSON.stringify({ ...tokenSetJson, expiresInSeconds: -1 }), "expiresInSeconds"],
      [
        "a zero refresh lifetime",
        JSON.stringify({ ...tokenSetJson, refreshExpiresInSeconds: 0 }),
        "refreshExpiresInSeconds"
      ],
      [
        "a lifetime of 1e13 seconds",
        JSON.stringify({ ...tokenSetJson, expiresInSeconds: 1e13 }),
        "expiresInSeconds: Expected a lifetime of at most one year"
      ],
      [
        "a refresh lifetime over one year",
        JSON.stringify({ ...tokenSetJson, refreshExpiresInSeconds: 31_536_001 }),
        "refreshExpiresInSeconds: Expected a lifetime of at most one year"
      ],
      ["an empty access token", JSON.stringify({ ...tokenSetJson, accessToken: "" }), "accessToken"],
      ["a number for the access token", JSON.stringify({ ...tokenSetJson, accessToken: 42 }), "accessToken"],
      ["a JSON array", JSON.stringify([tokenSetJson]), "body: expected a JSON object"]
    ]

    for (const operation of operations) {
      for (const [what, body, mentions] of invalidBodies) {
        it.effect(`${operation}: 200 with ${what} is a ResponseDecodeError`, () =>
          Effect.gen(function* () {
            const error = yield* failure(operation, respond(200, body, { "content-type": "application/json" }))
            assert.instanceOf(error, ResponseDecodeError)
            if (!(error instanceof ResponseDecodeError)) return
            assert.strictEqual(error.operation, operation)
            assert.strictEqual(error.status, 200)
            assert.include(error.cause, mentions)
            assert.include(error.message, "invalid token set in 200 response")
          })
        )
      }
    }

    const leakyBodies: ReadonlyArray<readonly [string, string]> = [
      ["a negative lifetime", JSON.stringify({ ...tokenSetJson, expiresInSeconds: -1 })],
      ["a string for a number", JSON.stringify({ ...tokenSetJson, refreshExpiresInSeconds: "1800" })],
      ["a missing field", JSON.stringify({ accessToken: ACCESS_TOKEN, refreshToken: REFRESH_TOKEN })],
      ["truncated JSON", tokenSetBody.slice(0, 40)],
      [
        "tokens of the wrong type",
        JSON.stringify({ ...tokenSetJson, accessToken: [ACCESS_TOKEN], refreshToken: { value: REFRESH_TOKEN } })
      ],
      ["the token set wrapped in an array", JSON.stringify([tokenSetJson])],
      ["a bare token string", JSON.stringify(ACCESS_TOKEN)]
    ]

    for (const [what, body] of leakyBodies) {
      it.effect(`the decode error for ${what} never shows a token from the body`, () =>
        Effect.gen(function* () {
          assert.include(body, ACCESS_TOKEN.slice(0, 13))
          const error = yield* failure("authenticate", respond(200, body, { "content-type": "application/json" }))
          assert.instanceOf(error, ResponseDecodeError)
          assertNoSecrets(error)
        })
      )
    }
  })

  describe("transport failures", () => {
    for (const operation of operations) {
      it.effect(`${operation}: a failed connection is a TransportError (Transport) without the request body`, () =>
        Effect.gen(function* () {
          const { api, requests } = yield* setup([connectionRefused])
          const error = yield* Effect.flip(call(api, operation))
          assert.instanceOf(error, TransportError)
          if (!(error instanceof TransportError)) return
          assert.strictEqual(error.operation, operation)
          assert.strictEqual(error.reason, "Transport")
          assert.include(error.message, "transport failure")
          assert.isTrue(HttpClientError.isHttpClientError(error.cause) && error.cause.reason._tag === "TransportError")
          // The request really carried the secret; the error must not.
          assert.include(requests[0]?.body, operation === "authenticate" ? SECRET : REFRESH_TOKEN_IN)
          assertNoSecrets(error)
        })
      )

      it.effect(`${operation}: a body cut mid-stream is a TransportError (Transport) without the request body`, () =>
        Effect.gen(function* () {
          const { api, requests } = yield* setup([cut])
          const error = yield* Effect.flip(call(api, operation))
          assert.instanceOf(error, TransportError)
          if (!(error instanceof TransportError)) return
          assert.strictEqual(error.reason, "Transport")
          // The cause still tells what happened: a response error on a 200.
          const cause = error.cause
          assert.isTrue(HttpClientError.isHttpClientError(cause) && cause.response !== undefined)
          assert.strictEqual(HttpClientError.isHttpClientError(cause) ? cause.response?.status : undefined, 200)
          assert.include(requests[0]?.body, operation === "authenticate" ? SECRET : REFRESH_TOKEN_IN)
          assertNoSecrets(error)
        })
      )

      it.effect(`${operation}: no answer is a TransportError (Timeout) after exactly requestTimeout`, () =>
        Effect.gen(function* () {
          const { api } = yield* setup([never])
          const fiber = yield* Effect.forkChild(call(api, operation))
          yield* TestClock.adjust("9 seconds")
          assert.isUndefined(fiber.pollUnsafe(), "still waiting after 9 s")
          yield* TestClock.adjust("10 seconds")
          const error = yield* Effect.flip(Fiber.join(fiber))
          assert.instanceOf(error, TransportError)
          if (!(error instanceof TransportError)) return
          assert.strictEqual(error.operation, operation)
          assert.strictEqual(error.reason, "Timeout")
          assert.include(error.message, "no answer in time")
          assert.include(error.message, "10s")
          assertNoSecrets(error)
        })
      )
    }

    it.effect("the timeout follows requestTimeout", () =>
      Effect.gen(function* () {
        const { api } = yield* setup([never], { requestTimeout: "2 seconds" })
        const fiber = yield* Effect.forkChild(api.authenticate)
        yield* TestClock.adjust("1999 millis")
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.instanceOf(error, TransportError)
        assert.strictEqual(error instanceof TransportError ? error.reason : undefined, "Timeout")
      })
    )

    it.effect("the timeout bounds reading the body, not only the status line", () =>
      Effect.gen(function* () {
        const stub = HttpClient.make((request) =>
          Effect.succeed(
            HttpClientResponse.fromWeb(
              request,
              new Response(
                new ReadableStream<Uint8Array>({
                  // The status line arrives; the body never does.
                  pull: () => new Promise<void>(() => {})
                }),
                { status: 200 }
              )
            )
          )
        )
        const api = yield* Effect.provide(
          AuthApi.AuthApi,
          AuthApi.layer.pipe(
            Layer.provide(Layer.succeed(HttpClient.HttpClient, stub)),
            Layer.provide(AuthConfig.layer(options))
          )
        )
        const fiber = yield* Effect.forkChild(api.authenticate)
        yield* TestClock.adjust("10 seconds")
        const error = yield* Effect.flip(Fiber.join(fiber))
        assert.instanceOf(error, TransportError)
        assert.strictEqual(error instanceof TransportError ? error.reason : undefined, "Timeout")
      })
    )
  })

  describe("every HttpClientError reason", () => {
    type Reason = HttpClientError.HttpClientErrorReason
    const answered = (request: HttpClientRequest.HttpClientRequest) =>
      HttpClientResponse.fromWeb(request, new Response(tokenSetBody, { status: 200, headers: { "x-kept": "yes" } }))
    const reasons: ReadonlyArray<readonly [Reason["_tag"], (request: HttpClientRequest.HttpClientRequest) => Reason]> =
      [
        ["TransportError", (request) => new HttpClientError.TransportError({ request, cause: new Error("reset") })],
        ["EncodeError", (request) => new HttpClientError.EncodeError({ request, cause: new Error("encode") })],
        ["InvalidUrlError", (request) => new HttpClientError.InvalidUrlError({ request, description: "bad url" })],
        [
          "StatusCodeError",
          (request) => new HttpClientError.StatusCodeError({ request, response: answered(request), description: "s" })
        ],
        ["DecodeError", (request) => new HttpClientError.DecodeError({ request, response: answered(request) })],
        ["EmptyBodyError", (request) => new HttpClientError.EmptyBodyError({ request, response: answered(request) })]
      ]

    for (const operation of operations) {
      for (const [tag, reason] of reasons) {
        it.effect(`${operation}: a ${tag} is a TransportError keeping the reason, without the request body`, () =>
          Effect.gen(function* () {
            const client = HttpClient.make((request) =>
              Effect.fail(new HttpClientError.HttpClientError({ reason: reason(request) }))
            )
            const api = yield* Effect.provide(
              AuthApi.AuthApi,
              AuthApi.layer.pipe(
                Layer.provide(Layer.succeed(HttpClient.HttpClient, client)),
                Layer.provide(AuthConfig.layer(options))
              )
            )
            const error = yield* Effect.flip(call(api, operation))
            assert.instanceOf(error, TransportError)
            if (!(error instanceof TransportError)) return
            assert.strictEqual(error.reason, "Transport")
            const cause = error.cause
            assert.isTrue(HttpClientError.isHttpClientError(cause))
            if (!HttpClientError.isHttpClientError(cause)) return
            assert.strictEqual(cause.reason._tag, tag)
            assert.strictEqual(cause.request.body._tag, "Empty")
            assert.strictEqual(cause.request.url, `https://api.example.com/v1/rest${AuthApi.paths[operation]}`)
            if (cause.response !== undefined) {
              assert.strictEqual(cause.response.status, 200)
              assert.strictEqual(cause.response.headers["x-kept"], "yes")
              assert.strictEqual(cause.response.request.body._tag, "Empty")
            }
            assertNoSecrets(error)
          })
        )
      }
    }
  })

  describe("recovery", () => {
    const failureKinds: ReadonlyArray<readonly [string, Reply, AuthError["_tag"]]> = [
      ["a 400", json(400, { message: "bad", code: "BAD" }), "BadRequestError"],
      ["a 401", json(401, { message: "invalid api key", code: "BAD_KEY" }), "UnauthorizedError"],
      ["a 403", json(403, { message: "forbidden", code: "NO" }), "ForbiddenError"],
      ["a 500", json(500, { message: "oops", code: "ERR" }), "InternalServerError"],
      ["a 502 HTML page", respond(502, html), "UnexpectedStatusError"],
      [
        "an invalid token set",
        respond(200, JSON.stringify({ ...tokenSetJson, expiresInSeconds: -1 })),
        "ResponseDecodeError"
      ],
      ["a failed connection", connectionRefused, "TransportError"],
      ["a body cut mid-stream", cut, "TransportError"],
      ["no answer", never, "TransportError"]
    ]

    for (const operation of operations) {
      for (const [what, reply, tag] of failureKinds) {
        it.effect(`${operation}: the call after ${what} succeeds`, () =>
          Effect.gen(function* () {
            const { api, requests, remaining } = yield* setup([reply, ok])
            const error = yield* Effect.flip(settle(call(api, operation)))
            assert.strictEqual(error._tag, tag)
            const tokens = yield* settle(call(api, operation))
            assert.strictEqual(Redacted.value(tokens.accessToken), ACCESS_TOKEN)
            assert.strictEqual(requests.length, 2)
            assert.strictEqual(requests[1]?.body, requests[0]?.body)
            assert.strictEqual(remaining(), 0)
          })
        )
      }
    }
  })

  describe("spans", () => {
    for (const operation of operations) {
      it.effect(`${operation} runs inside the RevaultAuth.${operation} client span`, () =>
        Effect.gen(function* () {
          const { spans, tracer } = recordingTracer()
          const { api, requests } = yield* setup([ok])
          yield* call(api, operation).pipe(Effect.withTracer(tracer))

          const span = spans.find((s) => s.name === `RevaultAuth.${operation}`)
          assert.isDefined(span)
          if (span === undefined) return
          assert.strictEqual(span.kind, "client")
          assert.strictEqual(span.attributes.get("revault.operation"), operation)
          assert.strictEqual(span.attributes.get("revault.workspace"), "ws")
          assert.strictEqual(span.attributes.get("http.response.status_code"), 200)
          assert.strictEqual(span.status._tag, "Ended")
          assert.isTrue(span.status._tag === "Ended" && span.status.exit._tag === "Success")

          // Ours is the only span: the HTTP client's own span would end with the request and the
          // response, which render the token set. Ours carries its HTTP attributes instead, and the
          // trace context goes out from it.
          assert.deepStrictEqual(
            spans.map((s) => s.name),
            [`RevaultAuth.${operation}`]
          )
          assert.strictEqual(span.attributes.get("http.request.method"), "POST")
          assert.strictEqual(
            span.attributes.get("url.full"),
            `https://api.example.com/v1/rest${AuthApi.paths[operation]}`
          )
          assert.strictEqual(span.attributes.get("server.address"), "api.example.com")
          assert.strictEqual(span.attributes.get("server.port"), 443)
          assert.include(requests[0]?.headers.traceparent, span.spanId)
        })
      )
    }

    it.effect("a failed call ends its span with the failure", () =>
      Effect.gen(function* () {
        const { spans, tracer } = recordingTracer()
        const { api } = yield* setup([json(401, { message: "invalid api key", code: "BAD_KEY" })])
        yield* Effect.flip(api.authenticate.pipe(Effect.withTracer(tracer)))
        const span = spans.find((s) => s.name === "RevaultAuth.authenticate")
        assert.isDefined(span)
        assert.strictEqual(span?.attributes.get("http.response.status_code"), 401)
        assert.isTrue(span?.status._tag === "Ended" && span.status.exit._tag === "Failure")
      })
    )

    it.effect("no span attribute or event ever holds a secret", () => {
      const { spans, tracer } = recordingTracer()
      return Effect.gen(function* () {
        const { api } = yield* setup([
          ok,
          ok,
          connectionRefused,
          connectionRefused,
          cut,
          never,
          respond(200, tokenSetBody.slice(0, 40))
        ])
        yield* settle(Effect.all([api.authenticate, api.refresh(Redacted.make(REFRESH_TOKEN_IN))]))
        for (let i = 0; i < 5; i++) {
          yield* Effect.result(settle(i % 2 === 0 ? api.authenticate : api.refresh(Redacted.make(REFRESH_TOKEN_IN))))
        }
        assert.strictEqual(spans.length, 7)
        for (const span of spans) {
          const text = inspect({ attributes: span.attributes, events: span.events }, { depth: 10 })
          assertNoSecretIn(`span ${span.name}`, text)
          assertNoSecretIn(`span ${span.name}`, reachableText([...span.attributes.values(), span.events]))
        }
      }).pipe(Effect.withTracer(tracer))
    })
  })

  describe("span exits", () => {
    /** Every way a tracer or its exporter may turn a span's exit into text. */
    const exitRenderings = (exit: Exit.Exit<unknown, unknown>): ReadonlyArray<readonly [string, string]> => [
      ["String", String(exit)],
      ["JSON.stringify", JSON.stringify(exit) ?? ""],
      ["util.inspect", inspect(exit, { depth: 10 })],
      ["Cause.pretty", Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""]
    ]

    it.effect("no span's exit, attribute or event renders the request body or a token, whatever the outcome", () => {
      const { spans, tracer } = recordingTracer()
      return Effect.gen(function* () {
        const replies: ReadonlyArray<Reply> = [
          ok,
          json(401, { message: "invalid api key", code: "BAD_KEY" }),
          respond(502, html),
          redirect,
          connectionRefused,
          cut,
          never
        ]
        for (const operation of operations) {
          for (const reply of replies) {
            const { api } = yield* setup([reply])
            yield* Effect.result(settle(call(api, operation)))
          }
          // A client composed to follow the redirect holds the request of every hop.
          const { api } = yield* setup([redirect, ok], {}, HttpClient.followRedirects())
          yield* Effect.result(settle(call(api, operation)))
        }
        const ended = spans.flatMap((span) => (span.status._tag === "Ended" ? [[span, span.status.exit] as const] : []))
        assert.strictEqual(ended.length, spans.length, "every span ended")
        assert.isAtLeast(ended.length, 2 * (replies.length + 1))
        for (const [span, exit] of ended) {
          for (const [how, text] of exitRenderings(exit)) {
            assertNoSecretIn(`the exit of ${span.name}, by ${how}`, text)
          }
          // Deeper than any renderer: no data reachable from the span holds the request body or a token.
          const reachable = reachableText([exit, [...span.attributes.values()], span.events])
          assertNoSecretIn(`the data of ${span.name}`, reachable)
        }
      }).pipe(Effect.withTracer(tracer))
    })
  })

  describe("secret hygiene", () => {
    for (const operation of operations) {
      it.effect(
        `${operation}: a client following a redirect cannot send the body again; the error holds no secret`,
        () =>
          Effect.gen(function* () {
            const { api, requests, remaining } = yield* setup([redirect, ok], {}, HttpClient.followRedirects())
            const error = yield* Effect.flip(call(api, operation))
            // The second hop found the body spent (the stub records a request once it has read its
            // body): only the first send carried it.
            assert.strictEqual(requests.length, 1)
            assert.strictEqual(remaining(), 1)
            assert.include(requests[0]?.body, operation === "authenticate" ? SECRET : REFRESH_TOKEN_IN)
            assert.instanceOf(error, TransportError)
            assert.strictEqual(error instanceof TransportError ? error.reason : undefined, "Transport")
            assert.include(error.message, "refused to send the token request again")
            assert.include(error.message, "https://elsewhere.example/steal")
            assertNoSecrets(error)
          })
      )
    }

    const errorReplies: ReadonlyArray<readonly [string, Reply]> = [
      ["400", json(400, { message: "bad", code: "BAD", issues: [{ message: "workspace" }] })],
      ["401", json(401, { message: "invalid api key", code: "BAD_KEY" })],
      ["403", json(403, { message: "forbidden", code: "NO" })],
      ["500", json(500, { message: "oops", code: "ERR" })],
      ["502 HTML", respond(502, html, { "content-type": "text/html" })],
      ["429 Retry-After", respond(429, "", { "retry-after": "7" })],
      ["200 with a negative lifetime", json(200, { ...tokenSetJson, expiresInSeconds: -1 })],
      ["200 truncated JSON", respond(200, tokenSetBody.slice(0, 40), { "content-type": "application/json" })],
      ["a failed connection", connectionRefused],
      ["a body cut mid-stream", cut],
      ["no answer", never]
    ]

    for (const operation of operations) {
      for (const [what, reply] of errorReplies) {
        it.effect(`${operation}: ${what} — the error and its log lines hold no secret`, () => {
          const lines: Array<string> = []
          return Effect.gen(function* () {
            const error = yield* failure(operation, reply)
            assertNoSecrets(error)
            yield* Effect.logError(error)
            yield* Effect.logError(Cause.fail(error))
            yield* Effect.logError("token call failed", error)
            yield* Effect.logError(error).pipe(Effect.annotateLogs("error", error))
            yield* Effect.fail(error).pipe(Effect.tapCause(Effect.logError), Effect.result)

            assert.isAtLeast(lines.length, 5 * 4)
            const logged = lines.join("\n")
            assert.include(logged, error._tag)
            assertNoSecretIn("the log", logged)
          }).pipe(Effect.provide(Logger.layer([captureLogger(lines)])))
        })
      }
    }
  })
})
