// One file for both lines: each line's test/AuthError.constructors.test.ts links here, and with
// preserveSymlinks `../src` is the line's own src.
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as AuthErrors from "../src/AuthError.js"
import {
  type AuthError,
  BadRequestError,
  ForbiddenError,
  InternalServerError,
  isAuthError,
  maxBodyLength,
  ResponseDecodeError,
  TransportError,
  UnauthorizedError,
  UnexpectedStatusError
} from "../src/AuthError.js"

describe("AuthError constructors", () => {
  it("server errors: the message, and the status and code the vendor's API answers", () => {
    const made = [
      AuthErrors.badRequest("workspace is required"),
      AuthErrors.unauthorized("Invalid API key"),
      AuthErrors.forbidden("no access to workspace"),
      AuthErrors.internalServerError("boom")
    ]
    assert.deepStrictEqual(
      made.map((e) => [e.constructor, e._tag, e.operation, e.status, e.code, e.message, e.issues]),
      [
        [BadRequestError, "BadRequestError", "authenticate", 400, "BAD_REQUEST", "workspace is required", []],
        [UnauthorizedError, "UnauthorizedError", "authenticate", 401, "UNAUTHORIZED", "Invalid API key", []],
        [ForbiddenError, "ForbiddenError", "authenticate", 403, "FORBIDDEN", "no access to workspace", []],
        [InternalServerError, "InternalServerError", "authenticate", 500, "INTERNAL_SERVER_ERROR", "boom", []]
      ]
    )
    assert.strictEqual(String(made[1]), "UnauthorizedError [authenticate 401 UNAUTHORIZED]: Invalid API key")
    assert.isTrue(made.every(isAuthError))
  })

  it("server errors: a default message, and overrides for every other field", () => {
    assert.deepStrictEqual(
      [
        AuthErrors.badRequest(),
        AuthErrors.unauthorized(),
        AuthErrors.forbidden(),
        AuthErrors.internalServerError()
      ].map((e) => e.message),
      ["Invalid input data", "Authorization not provided", "Insufficient access", "Internal server error"]
    )
    const e = AuthErrors.unauthorized("refresh token expired", {
      operation: "refresh",
      status: 499,
      code: "TOKEN_EXPIRED",
      issues: [{ message: "expired" }]
    })
    assert.deepStrictEqual(
      e,
      new UnauthorizedError({
        operation: "refresh",
        status: 499,
        code: "TOKEN_EXPIRED",
        message: "refresh token expired",
        issues: [{ message: "expired" }]
      })
    )
  })

  it("unexpectedStatus: an empty body and no Retry-After unless given", () => {
    const plain = AuthErrors.unexpectedStatus(503)
    assert.instanceOf(plain, UnexpectedStatusError)
    assert.deepStrictEqual([plain.operation, plain.status, plain.body], ["authenticate", 503, ""])
    assert.isTrue(Option.isNone(plain.retryAfter))
    assert.strictEqual(plain.message, "unexpected status 503")
    const throttled = AuthErrors.unexpectedStatus(429, {
      operation: "refresh",
      body: "slow down",
      retryAfter: "20 seconds"
    })
    assert.deepStrictEqual(throttled.retryAfter, Option.some(Duration.seconds(20)))
    assert.strictEqual(
      String(throttled),
      "UnexpectedStatusError [refresh 429]: unexpected status 429 (retry after 20s): slow down"
    )
    assert.strictEqual(AuthErrors.unexpectedStatus(502, { body: "x".repeat(5000) }).body.length, maxBodyLength)
  })

  it("responseDecode: a 200 whose body did not decode", () => {
    const e = AuthErrors.responseDecode("accessToken: missing")
    assert.instanceOf(e, ResponseDecodeError)
    assert.strictEqual(
      String(e),
      "ResponseDecodeError [authenticate 200]: invalid token set in 200 response: accessToken: missing"
    )
    assert.strictEqual(AuthErrors.responseDecode("x", { operation: "refresh", status: 201 }).status, 201)
  })

  it("transport: a refused connection by default, a timeout on request", () => {
    const refused = AuthErrors.transport()
    assert.instanceOf(refused, TransportError)
    assert.strictEqual(
      String(refused),
      "TransportError [authenticate Transport]: transport failure: connection refused"
    )
    const cause = Object.assign(new Error("connect failed"), { code: "ECONNREFUSED" })
    assert.strictEqual(AuthErrors.transport(cause).cause, cause)
    assert.strictEqual(AuthErrors.transport(cause).message, "transport failure: ECONNREFUSED")
    const timeout = AuthErrors.transport("no answer", { operation: "refresh", reason: "Timeout" })
    assert.strictEqual(String(timeout), "TransportError [refresh Timeout]: no answer in time: no answer")
  })

  it.effect("a constructed error is caught by its tag", () =>
    Effect.gen(function* () {
      const failing: Effect.Effect<string, AuthError> = Effect.fail(AuthErrors.forbidden())
      const recovered = yield* failing.pipe(Effect.catchTag("ForbiddenError", (e) => Effect.succeed(e.code)))
      assert.strictEqual(recovered, "FORBIDDEN")
    })
  )
})
