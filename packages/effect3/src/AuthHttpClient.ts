/**
 * An `HttpClient` for the Revault API: URLs relative to `baseUrl`, a bearer token from
 * `AuthService` on every request, and one replay with a new token after a 401.
 *
 * No status filtering or other retries are imposed: compose `HttpClient.filterStatusOk`,
 * `HttpClient.retryTransient` and the like as you would on any client.
 *
 * @since 0.1.0
 * @module
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { AuthConfig } from "./AuthConfig.js"
import type { AuthError } from "./AuthError.js"
import { AuthService } from "./AuthService.js"
import { redactError, redactResponse } from "./internal/redactedRequest.js"
import { isUnder } from "./internal/shared/baseUrl.js"

/**
 * The authenticated client. Its service *is* an `HttpClient`.
 *
 * @since 0.1.0
 * @category tags
 */
export class AuthHttpClient extends Context.Tag("effect-revault-auth/AuthHttpClient")<
  AuthHttpClient,
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | AuthError>
>() {}

const replays = Metric.counter("revault_auth_unauthorized_replays_total", {
  description: "Requests replayed with a new token after a 401 from a resource",
  incremental: true
})

const isAbsolute = (url: string): boolean => /^[a-z][a-z\d+.-]*:/i.test(url)

/**
 * Builds the client from an `HttpClient`, the token manager and the configuration.
 *
 * Every attempt (the first, the replay after a 401, each hop of `HttpClient.followRedirects`
 * composed on top) is checked where the bearer is attached: a URL outside `baseUrl` (another
 * origin, or a path that leaves the base path once `..` and `%2e%2e` are resolved) fails with a
 * `RequestError` (`InvalidUrl`) and nothing is sent. Responses and errors handed back name the
 * request with its `Authorization` header redacted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | AuthError>,
  never,
  AuthService | AuthConfig | HttpClient.HttpClient
> = Effect.gen(function* () {
  const auth = yield* AuthService
  const config = yield* AuthConfig
  const client = yield* HttpClient.HttpClient

  // Relative URLs go under baseUrl; where a URL may go is checked in `send`, not here, because
  // combinators such as `followRedirects` re-enter after this step with a URL of their own.
  const prepare = (request: HttpClientRequest.HttpClientRequest) => {
    const prefixed = isAbsolute(request.url) ? request : HttpClientRequest.prependUrl(request, config.baseUrl)
    return Effect.succeed(prefixed.headers.accept === undefined ? HttpClientRequest.acceptJson(prefixed) : prefixed)
  }

  const sendWith = (request: HttpClientRequest.HttpClientRequest, token: Redacted.Redacted<string>) =>
    client.execute(HttpClientRequest.bearerToken(request, token))

  const send = (
    request: HttpClientRequest.HttpClientRequest
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError | AuthError> =>
    Effect.gen(function* () {
      // Both attempts below send this request's URL: the check covers the replay too.
      if (!isUnder(config.baseUrl, request.url)) {
        return yield* new HttpClientError.RequestError({
          request,
          reason: "InvalidUrl",
          description: `refusing to send the Revault token outside ${config.baseUrl}`
        })
      }
      const token = yield* auth.accessToken
      const response = yield* sendWith(request, token)
      if (response.status !== 401) return response
      // Compare-and-invalidate: a burst of 401s for one token drops it once.
      yield* auth.invalidate(token)
      // A stream body was consumed by the first attempt and cannot be sent again.
      if (request.body._tag === "Stream") return response
      // An unread body holds its connection: on a bounded pool the replay would wait for it forever.
      yield* Effect.ignore(Stream.runDrain(response.stream))
      yield* Metric.increment(replays)
      return yield* sendWith(request, yield* auth.accessToken)
    }).pipe(
      Effect.map(redactResponse),
      Effect.mapError((error) => (HttpClientError.isHttpClientError(error) ? redactError(error) : error))
    )

  return HttpClient.makeWith((request) => Effect.flatMap(request, send), prepare)
})

/**
 * The client from the `AuthService`, `AuthConfig` and `HttpClient` in the context.
 *
 * A layer value, so Effect builds it once per layer graph however many times it appears, with
 * whatever `AuthConfig` the first use was given. For several workspaces in one program, wire
 * each with `RevaultAuth.layer`, `layerConfig` or `fromConfigLayer`, which build new layers on
 * every call.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AuthHttpClient, never, AuthService | AuthConfig | HttpClient.HttpClient> = Layer.effect(
  AuthHttpClient,
  make
)
