import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Option from "effect/Option"
import {
  AuthConfigError,
  type AuthError,
  BadRequestError,
  ForbiddenError,
  InternalServerError,
  isAuthError,
  ResponseDecodeError,
  TransportError,
  UnauthorizedError,
  UnexpectedStatusError
} from "../src/AuthError.js"

const serverFields = {
  operation: "authenticate",
  status: 401,
  code: "BAD_KEY",
  message: "invalid api key",
  issues: []
} as const

const oneOfEach: ReadonlyArray<AuthError> = [
  new BadRequestError({
    ...serverFields,
    status: 400,
    code: "INVALID",
    issues: [{ message: "workspace is required" }]
  }),
  new UnauthorizedError(serverFields),
  new ForbiddenError({ ...serverFields, status: 403, code: "FORBIDDEN", message: "no access to workspace" }),
  new InternalServerError({ ...serverFields, operation: "refresh", status: 500, code: "OOPS", message: "boom" }),
  new UnexpectedStatusError({ operation: "refresh", status: 503, body: "down", retryAfter: Option.none() }),
  new ResponseDecodeError({ operation: "authenticate", status: 200, cause: "expiresInSeconds: expected a number" }),
  new TransportError({ operation: "authenticate", reason: "Transport", cause: new Error("ECONNRESET") })
]

describe("AuthError", () => {
  it("server errors render tag, operation, status, code and the server's message", () => {
    const e = new UnauthorizedError(serverFields)
    assert.strictEqual(e.toString(), "UnauthorizedError [authenticate 401 BAD_KEY]: invalid api key")
    assert.strictEqual(String(e), "UnauthorizedError [authenticate 401 BAD_KEY]: invalid api key")
    assert.strictEqual(e.message, "invalid api key")
    assert.strictEqual(e._tag, "UnauthorizedError")
    assert.instanceOf(e, Error)
  })

  it("each server error class renders its own tag", () => {
    assert.strictEqual(
      String(new BadRequestError({ ...serverFields, status: 400, code: "INVALID", message: "bad input" })),
      "BadRequestError [authenticate 400 INVALID]: bad input"
    )
    assert.strictEqual(
      String(new ForbiddenError({ ...serverFields, operation: "refresh", status: 403, code: "NOPE", message: "no" })),
      "ForbiddenError [refresh 403 NOPE]: no"
    )
    assert.strictEqual(
      String(new InternalServerError({ ...serverFields, status: 500, code: "ERR", message: "server exploded" })),
      "InternalServerError [authenticate 500 ERR]: server exploded"
    )
  })

  it("UnexpectedStatusError reads well, with and without Retry-After and body", () => {
    const withWait = new UnexpectedStatusError({
      operation: "authenticate",
      status: 429,
      body: "slow down",
      retryAfter: Option.some(Duration.seconds(7))
    })
    assert.strictEqual(withWait.message, "unexpected status 429 (retry after 7s): slow down")
    assert.strictEqual(
      String(withWait),
      "UnexpectedStatusError [authenticate 429]: unexpected status 429 (retry after 7s): slow down"
    )

    const bare = new UnexpectedStatusError({ operation: "refresh", status: 502, body: "", retryAfter: Option.none() })
    assert.strictEqual(bare.message, "unexpected status 502")
    assert.strictEqual(String(bare), "UnexpectedStatusError [refresh 502]: unexpected status 502")
  })

  it("UnexpectedStatusError's message shows at most 200 characters of the body", () => {
    const body = "x".repeat(1024)
    const e = new UnexpectedStatusError({ operation: "refresh", status: 503, body, retryAfter: Option.none() })
    assert.strictEqual(e.body.length, 1024)
    assert.strictEqual(e.message, `unexpected status 503: ${"x".repeat(200)}`)
  })

  it("ResponseDecodeError reads well", () => {
    const e = new ResponseDecodeError({
      operation: "refresh",
      status: 200,
      cause: "expiresInSeconds: Expected a positive number, actual -1"
    })
    assert.strictEqual(
      e.message,
      "invalid token set in 200 response: expiresInSeconds: Expected a positive number, actual -1"
    )
    assert.strictEqual(
      String(e),
      "ResponseDecodeError [refresh 200]: invalid token set in 200 response: expiresInSeconds: Expected a positive number, actual -1"
    )
  })

  it("TransportError reads well for both reasons", () => {
    const transport = new TransportError({
      operation: "authenticate",
      reason: "Transport",
      cause: new Error("ECONNREFUSED")
    })
    assert.strictEqual(transport.message, "transport failure: ECONNREFUSED")
    assert.strictEqual(String(transport), "TransportError [authenticate Transport]: transport failure: ECONNREFUSED")

    const timeout = new TransportError({
      operation: "refresh",
      reason: "Timeout",
      cause: new Cause.TimeoutError("no answer within 10s")
    })
    assert.strictEqual(timeout.message, "no answer in time: no answer within 10s")
    assert.strictEqual(String(timeout), "TransportError [refresh Timeout]: no answer in time: no answer within 10s")

    const odd = new TransportError({ operation: "refresh", reason: "Transport", cause: "socket closed" })
    assert.strictEqual(odd.message, "transport failure: socket closed")
  })

  it("TransportError from the HTTP client: its codes and where, not its wording again", () => {
    const refused = new TransportError({
      operation: "authenticate",
      reason: "Transport",
      cause: new HttpClientError.HttpClientError({
        reason: new HttpClientError.TransportError({
          request: HttpClientRequest.post("http://127.0.0.1:9/v1/rest/auth/token"),
          cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" })
        })
      })
    })
    assert.strictEqual(refused.message, "transport failure: ECONNREFUSED (POST http://127.0.0.1:9/v1/rest/auth/token)")
    assert.notInclude(refused.message, "Transport error")
  })

  it("AuthConfigError names the field", () => {
    const e = new AuthConfigError({ field: "baseUrl", message: "baseUrl is not a URL" })
    assert.strictEqual(String(e), "AuthConfigError [baseUrl]: baseUrl is not a URL")
    assert.strictEqual(e.message, "baseUrl is not a URL")
  })

  it("isAuthError is true for each of the seven classes", () => {
    assert.strictEqual(oneOfEach.length, 7)
    assert.deepStrictEqual(new Set(oneOfEach.map((e) => e._tag)).size, 7)
    for (const e of oneOfEach) {
      assert.isTrue(isAuthError(e), e._tag)
    }
  })

  it("isAuthError is false for everything else", () => {
    const others: ReadonlyArray<unknown> = [
      new AuthConfigError({ field: "workspace", message: "workspace must not be empty" }),
      new Error("invalid api key"),
      null,
      undefined,
      "UnauthorizedError",
      { _tag: "UnauthorizedError" },
      { ...new UnauthorizedError(serverFields) }
    ]
    for (const u of others) {
      assert.isFalse(isAuthError(u), String(u))
    }
  })

  it.effect("Effect.catchTag recovers each error by its tag", () =>
    Effect.gen(function* () {
      for (const error of oneOfEach) {
        const failing: Effect.Effect<string, AuthError> = Effect.fail(error)
        const recovered = yield* failing.pipe(
          Effect.catchTag("UnauthorizedError", (e) => Effect.succeed(`unauthorized ${e.code}`)),
          Effect.catchTag("BadRequestError", (e) => Effect.succeed(`bad request ${e.issues.length}`)),
          Effect.catchTag("ForbiddenError", (e) => Effect.succeed(`forbidden ${e.status}`)),
          Effect.catchTag("InternalServerError", (e) => Effect.succeed(`internal ${e.operation}`)),
          Effect.catchTag("UnexpectedStatusError", (e) => Effect.succeed(`unexpected ${e.status}`)),
          Effect.catchTag("ResponseDecodeError", (e) => Effect.succeed(`decode ${e.status}`)),
          Effect.catchTag("TransportError", (e) => Effect.succeed(`transport ${e.reason}`))
        )
        assert.strictEqual(
          recovered,
          {
            BadRequestError: "bad request 1",
            UnauthorizedError: "unauthorized BAD_KEY",
            ForbiddenError: "forbidden 403",
            InternalServerError: "internal refresh",
            UnexpectedStatusError: "unexpected 503",
            ResponseDecodeError: "decode 200",
            TransportError: "transport Transport"
          }[error._tag]
        )
      }
    })
  )

  it.effect("Effect.catchTag leaves other tags in the error channel", () =>
    Effect.gen(function* () {
      const failing: Effect.Effect<string, AuthError> = Effect.fail(
        new ForbiddenError({ ...serverFields, status: 403 })
      )
      const error = yield* failing.pipe(
        Effect.catchTag("UnauthorizedError", () => Effect.succeed("recovered")),
        Effect.flip
      )
      assert.strictEqual(error._tag, "ForbiddenError")
      assert.instanceOf(error, ForbiddenError)
    })
  )

  it.effect("an error can be yielded directly in Effect.gen", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.gen(function* () {
          return yield* new UnauthorizedError(serverFields)
        })
      )
      assert.instanceOf(error, UnauthorizedError)
      assert.strictEqual(error.code, "BAD_KEY")
    })
  )
})
