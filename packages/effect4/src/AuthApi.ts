/**
 * The two token operations of the Revault API, one HTTP request each, every answer decoded and
 * every failure typed. No retries here: retry policy belongs to the token manager
 * (`AuthService`). A token request's body goes out once, to `baseUrl`: never along a redirect,
 * even through an `HttpClient` that follows them.
 *
 * @since 2.0.0
 * @module
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpBody from "effect/http/HttpBody"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as HttpTraceContext from "effect/http/HttpTraceContext"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { AuthConfig } from "./AuthConfig.js"
import {
  type AuthError,
  BadRequestError,
  ForbiddenError,
  InternalServerError,
  maxBodyLength,
  type Operation,
  ResponseDecodeError,
  TransportError,
  UnauthorizedError,
  UnexpectedStatusError
} from "./AuthError.js"
import { serverPort } from "./internal/shared/baseUrl.js"
import { parseRetryAfter } from "./internal/shared/retryAfter.js"
import { AuthenticateRequest, ErrorBody, RefreshRequest, TokenSet } from "./TokenSet.js"

/**
 * @since 2.0.0
 * @category models
 */
export interface Service {
  /** `POST {baseUrl}/auth/token`: exchange the API key for a token set. */
  readonly authenticate: Effect.Effect<TokenSet, AuthError>
  /** `POST {baseUrl}/auth/token/refresh`: exchange a refresh token for a new token set. */
  readonly refresh: (refreshToken: Redacted.Redacted<string>) => Effect.Effect<TokenSet, AuthError>
}

/**
 * @since 2.0.0
 * @category tags
 */
export class AuthApi extends Context.Service<AuthApi, Service>()("effect-revault-auth/AuthApi") {}

/**
 * The paths of the two operations, relative to `baseUrl`.
 *
 * @since 2.0.0
 * @category constants
 */
export const paths = {
  authenticate: "/auth/token",
  refresh: "/auth/token/refresh"
} as const

const decodeJson = (text: string): Option.Option<unknown> => {
  try {
    return Option.some(JSON.parse(text))
  } catch {
    return Option.none()
  }
}

const tokenPaths = new Set(["accessToken", "refreshToken"])

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const pathKey = (segment: PropertyKey | { readonly key: PropertyKey }): string =>
  String(typeof segment === "object" ? segment.key : segment)

// Schema messages may quote the offending value; at a token's path that value may be a secret.
// At the root the message may quote the whole body, which may hold the tokens in another shape.
const describeSchemaError = (error: Schema.SchemaError): string =>
  formatIssues(error.issue)
    .issues.map(({ message, path }) => {
      const keys = (path ?? []).map(pathKey)
      if (keys.length === 0) return "body: expected a JSON object"
      const at = keys.join(".")
      return tokenPaths.has(keys[0] ?? "") ? `${at}: expected a non-empty string` : `${at}: ${message.slice(0, 200)}`
    })
    .join("; ")

const decodeTokenSet = Schema.decodeUnknownEffect(TokenSet, { errors: "all" })
const decodeErrorBody = Schema.decodeUnknownOption(ErrorBody)

const retryAfter = (response: HttpClientResponse.HttpClientResponse, now: number): Option.Option<Duration.Duration> =>
  Option.map(Option.fromUndefinedOr(parseRetryAfter(response.headers["retry-after"], now)), Duration.millis)

// A token request's body holds the API key secret or a refresh token. It is a stream that yields
// its bytes once, to the first send: a client that sends the same request again (a redirect it
// follows, to any origin, or a retry layer) finds it spent and fails before any byte of the body
// leaves. As a stream it also renders as `Stream` alone wherever the request is kept (a response,
// an error), never as the JSON it carries.
class TokenRequestResent extends Data.TaggedError("TokenRequestResent") {
  override get message(): string {
    return "the HTTP client sent the token request again (a redirect it follows, or a retry); its body goes out once"
  }
}

const sentOnce = (body: HttpBody.Uint8Array): Effect.Effect<HttpBody.HttpBody> =>
  Effect.map(Ref.make(false), (sent) =>
    HttpBody.stream(
      Stream.unwrap(
        Effect.map(Ref.getAndSet(sent, true), (again) =>
          again ? Stream.fail(new TokenRequestResent()) : Stream.succeed(body.body)
        )
      ),
      body.contentType,
      body.contentLength
    )
  )

// Transports wrap a body's failure in their own errors, a few levels deep.
const resent = (cause: unknown): boolean => {
  let current = cause
  for (let depth = 0; depth < 4 && Predicate.isObject(current); depth++) {
    if (current instanceof TokenRequestResent) return true
    current = Predicate.hasProperty(current, "cause") ? current.cause : undefined
  }
  return false
}

const resentDescription = "refused to send the token request again: its HTTP client follows redirects or retries"

// The request's body is spent or unrenderable already, and a response refers to its request and
// renders it: keep only the request line and the response's status and headers.
const withoutBody = (reason: HttpClientError.HttpClientErrorReason): HttpClientError.HttpClientErrorReason => {
  const request = HttpClientRequest.setBody(reason.request, HttpBody.empty)
  const description = resent(reason.cause) ? resentDescription : reason.description
  const facts = {
    request,
    cause: reason.cause,
    ...(description === undefined ? {} : { description })
  }
  const response = (original: HttpClientResponse.HttpClientResponse) =>
    HttpClientResponse.fromWeb(request, new Response(null, { status: original.status, headers: original.headers }))
  switch (reason._tag) {
    case "TransportError":
      return new HttpClientError.TransportError(facts)
    case "EncodeError":
      return new HttpClientError.EncodeError(facts)
    case "InvalidUrlError":
      return new HttpClientError.InvalidUrlError(facts)
    case "StatusCodeError":
      return new HttpClientError.StatusCodeError({ ...facts, response: response(reason.response) })
    case "DecodeError":
      return new HttpClientError.DecodeError({ ...facts, response: response(reason.response) })
    case "EmptyBodyError":
      return new HttpClientError.EmptyBodyError({ ...facts, response: response(reason.response) })
  }
}

const transportError = (operation: Operation, error: HttpClientError.HttpClientError) =>
  new TransportError({
    operation,
    reason: "Transport",
    cause: new HttpClientError.HttpClientError({ reason: withoutBody(error.reason) })
  })

const unexpectedStatus = (operation: Operation, response: HttpClientResponse.HttpClientResponse, text: string) =>
  Effect.flatMap(
    Clock.currentTimeMillis,
    (now) =>
      new UnexpectedStatusError({
        operation,
        status: response.status,
        body: text.slice(0, maxBodyLength),
        retryAfter: retryAfter(response, now)
      })
  )

type ServerErrorClass =
  | typeof BadRequestError
  | typeof UnauthorizedError
  | typeof ForbiddenError
  | typeof InternalServerError

const serverError =
  (ErrorClass: ServerErrorClass, operation: Operation) =>
  (response: HttpClientResponse.HttpClientResponse, text: string): Effect.Effect<never, AuthError> =>
    Option.match(Option.flatMap(decodeJson(text), decodeErrorBody), {
      onNone: () => unexpectedStatus(operation, response, text),
      onSome: (body) =>
        Effect.fail(
          new ErrorClass({
            operation,
            status: response.status,
            code: body.code,
            message: body.message,
            issues: body.issues ?? []
          })
        )
    })

const tokenSet =
  (operation: Operation) =>
  (response: HttpClientResponse.HttpClientResponse, text: string): Effect.Effect<TokenSet, ResponseDecodeError> =>
    Option.match(decodeJson(text), {
      onNone: () =>
        Effect.fail(
          new ResponseDecodeError({
            operation,
            status: response.status,
            cause: `body is not valid JSON (${text.length} characters)`
          })
        ),
      onSome: (json) =>
        Effect.mapError(
          decodeTokenSet(json),
          (error) => new ResponseDecodeError({ operation, status: response.status, cause: describeSchemaError(error) })
        )
    })

const withText =
  (
    f: (response: HttpClientResponse.HttpClientResponse, text: string) => Effect.Effect<TokenSet, AuthError>
  ): ((
    response: HttpClientResponse.HttpClientResponse
  ) => Effect.Effect<TokenSet, AuthError | HttpClientError.HttpClientError>) =>
  (response) =>
    Effect.flatMap(response.text, (text) => f(response, text))

const interpret = (operation: Operation) =>
  HttpClientResponse.matchStatus({
    "2xx": withText(tokenSet(operation)),
    400: withText(serverError(BadRequestError, operation)),
    401: withText(serverError(UnauthorizedError, operation)),
    403: withText(serverError(ForbiddenError, operation)),
    500: withText(serverError(InternalServerError, operation)),
    orElse: withText((response, text) => unexpectedStatus(operation, response, text))
  })

/**
 * Builds the service from an `HttpClient` and the configuration.
 *
 * @since 2.0.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, AuthConfig | HttpClient.HttpClient> = Effect.gen(function* () {
  const config = yield* AuthConfig
  const client = yield* HttpClient.HttpClient

  // The trace context goes out as the HTTP client's span would send it, from ours.
  const withTraceContext = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.gen(function* () {
      const span = yield* Effect.option(Effect.currentSpan)
      const propagate = (yield* HttpClient.TracerPropagationEnabled) && !(yield* Tracer.DisablePropagation)
      return Option.isSome(span) && propagate
        ? HttpClientRequest.setHeaders(request, HttpTraceContext.toHeaders(span.value))
        : request
    })

  const call = <A, I>(
    operation: Operation,
    schema: Schema.Codec<A, I>,
    body: A
  ): Effect.Effect<TokenSet, AuthError> => {
    const url = `${config.baseUrl}${paths[operation]}`
    const target = new URL(url)
    return HttpBody.jsonSchema(schema)(body).pipe(
      // Encoding a struct of strings cannot fail; a failure here is a bug, not an AuthError.
      Effect.orDie,
      Effect.flatMap(sentOnce),
      Effect.flatMap((encoded) =>
        withTraceContext(
          HttpClientRequest.post(url).pipe(HttpClientRequest.acceptJson, HttpClientRequest.setBody(encoded))
        )
      ),
      Effect.flatMap((request) =>
        // The HTTP client's own span ends with the request and the response, which render the
        // token set they carry: a token request is traced by the `RevaultAuth.*` client span alone.
        client.execute(request).pipe(Effect.provideService(HttpClient.TracerDisabledWhen, () => true))
      ),
      Effect.tap((response) => Effect.annotateCurrentSpan("http.response.status_code", response.status)),
      Effect.flatMap(interpret(operation)),
      Effect.catchIf(HttpClientError.isHttpClientError, (error) => Effect.fail(transportError(operation, error))),
      Effect.timeoutOrElse({
        duration: config.requestTimeout,
        orElse: () =>
          Effect.fail(
            new TransportError({
              operation,
              reason: "Timeout",
              cause: new Cause.TimeoutError(`no answer within ${Duration.format(config.requestTimeout)}`)
            })
          )
      }),
      Effect.withSpan(`RevaultAuth.${operation}`, {
        kind: "client",
        attributes: {
          "revault.operation": operation,
          "revault.workspace": config.workspace,
          "http.request.method": "POST",
          "url.full": url,
          // As OpenTelemetry's HTTP conventions (and Effect's own client spans) have them.
          "server.address": target.hostname,
          "server.port": serverPort(target)
        }
      })
    )
  }

  return AuthApi.of({
    authenticate: Effect.suspend(() =>
      call("authenticate", AuthenticateRequest, {
        workspace: config.workspace,
        apiKeyId: config.apiKeyId,
        apiKeySecret: config.apiKeySecret
      })
    ),
    refresh: (refreshToken) => call("refresh", RefreshRequest, { workspace: config.workspace, refreshToken })
  })
})

/**
 * The service from the `AuthConfig` and `HttpClient` in the context.
 *
 * A layer value, so Effect builds it once per layer graph however many times it appears, with
 * whatever `AuthConfig` the first use was given. For several workspaces in one program, wire
 * each with `RevaultAuth.layer`, `layerConfig` or `fromConfigLayer`, which build new layers on
 * every call.
 *
 * @since 2.0.0
 * @category layers
 */
export const layer: Layer.Layer<AuthApi, never, AuthConfig | HttpClient.HttpClient> = Layer.effect(AuthApi, make)
