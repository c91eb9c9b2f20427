/**
 * The errors of the token operations: one tagged class per failure a caller can act on, with
 * the facts as fields. Recover with `Effect.catchTag("UnauthorizedError", ...)`.
 *
 * No error holds the request that caused it (its body carries the API key secret or the refresh
 * token), and none renders a secret.
 *
 * @since 0.1.0
 * @module
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { codesOf, transportDetail } from "./internal/shared/transportDetail.js"
import { ErrorIssue } from "./TokenSet.js"

/**
 * The token operation that failed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Operation = Schema.Literal("authenticate", "refresh")

/**
 * @since 0.1.0
 * @category models
 */
export type Operation = typeof Operation.Type

const serverErrorFields = {
  operation: Operation,
  status: Schema.Number,
  code: Schema.String,
  message: Schema.String,
  issues: Schema.Array(ErrorIssue)
}

const renderServerError = (e: {
  readonly _tag: string
  readonly operation: Operation
  readonly status: number
  readonly code: string
  readonly message: string
}): string => `${e._tag} [${e.operation} ${e.status} ${e.code}]: ${e.message}`

/**
 * HTTP 400 with the documented error body: the request was malformed.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequestError extends Schema.TaggedError<BadRequestError>()("BadRequestError", serverErrorFields) {
  override toString(): string {
    return renderServerError(this)
  }
}

/**
 * HTTP 401 with the documented error body: unknown API key, wrong secret, or a dead refresh token.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnauthorizedError extends Schema.TaggedError<UnauthorizedError>()("UnauthorizedError", serverErrorFields) {
  override toString(): string {
    return renderServerError(this)
  }
}

/**
 * HTTP 403 with the documented error body: the key may not act on the workspace.
 *
 * @since 0.1.0
 * @category errors
 */
export class ForbiddenError extends Schema.TaggedError<ForbiddenError>()("ForbiddenError", serverErrorFields) {
  override toString(): string {
    return renderServerError(this)
  }
}

/**
 * HTTP 500 with the documented error body.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalServerError extends Schema.TaggedError<InternalServerError>()(
  "InternalServerError",
  serverErrorFields
) {
  override toString(): string {
    return renderServerError(this)
  }
}

/**
 * The most of an unexpected body an {@link UnexpectedStatusError} keeps, in characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxBodyLength = 1024

/**
 * Any other non-2xx status (429, 502, 503, 504, ...), or a documented status whose body is not
 * the documented shape (an HTML page from a proxy, an empty body).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnexpectedStatusError extends Schema.TaggedError<UnexpectedStatusError>()("UnexpectedStatusError", {
  operation: Operation,
  status: Schema.Number,
  /** The response body as text, cut to {@link maxBodyLength} characters. */
  body: Schema.String,
  /** How long the server asked us to wait (`Retry-After`, seconds or HTTP date). */
  retryAfter: Schema.OptionFromSelf(Schema.DurationFromSelf)
}) {
  override get message(): string {
    const wait = this.retryAfter._tag === "Some" ? ` (retry after ${Duration.format(this.retryAfter.value)})` : ""
    return `unexpected status ${this.status}${wait}${this.body.length > 0 ? `: ${this.body.slice(0, 200)}` : ""}`
  }
  override toString(): string {
    return `UnexpectedStatusError [${this.operation} ${this.status}]: ${this.message}`
  }
}

/**
 * A 2xx answer whose body is not a valid token set: not JSON, a missing field, a wrong type, a
 * lifetime that is not a positive finite number or is longer than one year
 * (`TokenSet.maxLifetimeSeconds`).
 *
 * @since 0.1.0
 * @category errors
 */
export class ResponseDecodeError extends Schema.TaggedError<ResponseDecodeError>()("ResponseDecodeError", {
  operation: Operation,
  status: Schema.Number,
  /** A readable description of what did not parse. */
  cause: Schema.String
}) {
  override get message(): string {
    return `invalid token set in ${this.status} response: ${this.cause}`
  }
  override toString(): string {
    return `ResponseDecodeError [${this.operation} ${this.status}]: ${this.message}`
  }
}

// The HTTP client's own message ("Transport error (POST ...)") says again what this error says;
// what it adds is its description, the codes below it and where the request went. Any other
// cause: its message and the codes below it ("fetch failed" alone hides the ECONNREFUSED).
const describeCause = (cause: unknown): string => {
  const request = cause
  if (Predicate.hasProperty(request, "methodAndUrl") && typeof request.methodAndUrl === "string") {
    const description =
      Predicate.hasProperty(request, "description") && typeof request.description === "string"
        ? request.description
        : undefined
    const below = Predicate.hasProperty(request, "cause") ? request.cause : undefined
    return transportDetail([description, ...codesOf(below)], request.methodAndUrl)
  }
  const own =
    Predicate.hasProperty(cause, "code") && typeof cause.code === "string"
      ? []
      : [Predicate.hasProperty(cause, "message") ? String(cause.message) : String(cause)]
  return [...own, ...codesOf(cause)].join(": ")
}

/**
 * The request never got an answer: connection refused or reset, DNS failure, a body cut
 * mid-stream (`reason: "Transport"`), or no answer within `requestTimeout` (`reason: "Timeout"`).
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  operation: Operation,
  reason: Schema.Literal("Timeout", "Transport"),
  /** The underlying error, stripped of the request body. */
  cause: Schema.Unknown
}) {
  override get message(): string {
    const detail = describeCause(this.cause)
    return this.reason === "Timeout" ? `no answer in time: ${detail}` : `transport failure: ${detail}`
  }
  override toString(): string {
    return `TransportError [${this.operation} ${this.reason}]: ${this.message}`
  }
}

/**
 * Every error a token operation can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type AuthError =
  | BadRequestError
  | UnauthorizedError
  | ForbiddenError
  | InternalServerError
  | UnexpectedStatusError
  | ResponseDecodeError
  | TransportError

const authErrorClasses = [
  BadRequestError,
  UnauthorizedError,
  ForbiddenError,
  InternalServerError,
  UnexpectedStatusError,
  ResponseDecodeError,
  TransportError
] as const

/**
 * @since 0.1.0
 * @category guards
 */
export const isAuthError = (u: unknown): u is AuthError => authErrorClasses.some((C) => u instanceof C)

/**
 * A token was asked of an `AuthService` (directly, or through `AuthHttpClient`, `RevaultAuth` or
 * an `AuthPool` entry) after the layer or scope that built it was closed. That is a bug in the
 * program, which no retry can fix, so it is not an {@link AuthError}: the read dies with this
 * error as its defect, at once.
 *
 * @since 0.1.1
 * @category errors
 */
export class AuthServiceClosedError extends Schema.TaggedError<AuthServiceClosedError>()("AuthServiceClosedError", {
  workspace: Schema.String
}) {
  override get message(): string {
    return `the token manager of workspace ${this.workspace} was used after its layer or scope was closed`
  }
  override toString(): string {
    return `AuthServiceClosedError [${this.workspace}]: ${this.message}`
  }
}

/**
 * Invalid options given to `AuthConfig` (or `RevaultAuth`), naming the field.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthConfigError extends Schema.TaggedError<AuthConfigError>()("AuthConfigError", {
  field: Schema.String,
  message: Schema.String
}) {
  override toString(): string {
    return `AuthConfigError [${this.field}]: ${this.message}`
  }
}

/**
 * What a constructor of a server error ({@link badRequest}, {@link unauthorized},
 * {@link forbidden}, {@link internalServerError}) may set besides the message. Each field
 * defaults to what the vendor's API answers: operation `"authenticate"`, the class's status and
 * its documented code, no issues.
 *
 * @since 1.1.0
 * @category constructors
 */
export interface ServerErrorOverrides {
  readonly operation?: Operation | undefined
  readonly status?: number | undefined
  readonly code?: string | undefined
  readonly issues?: ReadonlyArray<ErrorIssue> | undefined
}

const serverError =
  <A>(
    make: (fields: {
      readonly operation: Operation
      readonly status: number
      readonly code: string
      readonly message: string
      readonly issues: ReadonlyArray<ErrorIssue>
    }) => A,
    status: number,
    code: string,
    defaultMessage: string
  ) =>
  (message: string = defaultMessage, overrides: ServerErrorOverrides = {}): A =>
    make({
      operation: overrides.operation ?? "authenticate",
      status: overrides.status ?? status,
      code: overrides.code ?? code,
      message,
      issues: overrides.issues ?? []
    })

/**
 * A {@link BadRequestError} in one call, for tests and stubs: `badRequest("workspace is required")`
 * is a 400 `BAD_REQUEST` from `authenticate` (see {@link ServerErrorOverrides}).
 *
 * @since 1.1.0
 * @category constructors
 */
export const badRequest: (message?: string, overrides?: ServerErrorOverrides) => BadRequestError = serverError(
  (fields) => new BadRequestError(fields),
  400,
  "BAD_REQUEST",
  "Invalid input data"
)

/**
 * An {@link UnauthorizedError} in one call, for tests and stubs: `unauthorized("Invalid API key")`
 * is a 401 `UNAUTHORIZED` from `authenticate` (see {@link ServerErrorOverrides}).
 *
 * @since 1.1.0
 * @category constructors
 */
export const unauthorized: (message?: string, overrides?: ServerErrorOverrides) => UnauthorizedError = serverError(
  (fields) => new UnauthorizedError(fields),
  401,
  "UNAUTHORIZED",
  "Authorization not provided"
)

/**
 * A {@link ForbiddenError} in one call, for tests and stubs: `forbidden("no access to workspace")`
 * is a 403 `FORBIDDEN` from `authenticate` (see {@link ServerErrorOverrides}).
 *
 * @since 1.1.0
 * @category constructors
 */
export const forbidden: (message?: string, overrides?: ServerErrorOverrides) => ForbiddenError = serverError(
  (fields) => new ForbiddenError(fields),
  403,
  "FORBIDDEN",
  "Insufficient access"
)

/**
 * An {@link InternalServerError} in one call, for tests and stubs: a 500 `INTERNAL_SERVER_ERROR`
 * from `authenticate` (see {@link ServerErrorOverrides}).
 *
 * @since 1.1.0
 * @category constructors
 */
export const internalServerError: (message?: string, overrides?: ServerErrorOverrides) => InternalServerError =
  serverError((fields) => new InternalServerError(fields), 500, "INTERNAL_SERVER_ERROR", "Internal server error")

/**
 * An {@link UnexpectedStatusError} in one call, for tests and stubs: `unexpectedStatus(503)` is an
 * empty 503 from `authenticate`; `retryAfter` is what a `Retry-After` header would have said.
 *
 * @since 1.1.0
 * @category constructors
 */
export const unexpectedStatus = (
  status: number,
  overrides: {
    readonly operation?: Operation | undefined
    readonly body?: string | undefined
    readonly retryAfter?: Duration.DurationInput | undefined
  } = {}
): UnexpectedStatusError =>
  new UnexpectedStatusError({
    operation: overrides.operation ?? "authenticate",
    status,
    body: (overrides.body ?? "").slice(0, maxBodyLength),
    retryAfter: Option.map(Option.fromNullable(overrides.retryAfter), Duration.decode)
  })

/**
 * A {@link ResponseDecodeError} in one call, for tests and stubs: `responseDecode("accessToken:
 * missing")` is a 200 from `authenticate` whose body did not decode.
 *
 * @since 1.1.0
 * @category constructors
 */
export const responseDecode = (
  cause: string,
  overrides: { readonly operation?: Operation | undefined; readonly status?: number | undefined } = {}
): ResponseDecodeError =>
  new ResponseDecodeError({ operation: overrides.operation ?? "authenticate", status: overrides.status ?? 200, cause })

/**
 * A {@link TransportError} in one call, for tests and stubs: `transport()` is a refused connection
 * on `authenticate`; `transport("no answer", { reason: "Timeout" })` a request that timed out.
 * `cause` is what the message describes (a string, or an error whose `code` is shown).
 *
 * @since 1.1.0
 * @category constructors
 */
export const transport = (
  cause: unknown = "connection refused",
  overrides: {
    readonly operation?: Operation | undefined
    readonly reason?: "Timeout" | "Transport" | undefined
  } = {}
): TransportError =>
  new TransportError({
    operation: overrides.operation ?? "authenticate",
    reason: overrides.reason ?? "Transport",
    cause
  })
