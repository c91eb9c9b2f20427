/**
 * An `HttpClient` for the Revault API: URLs relative to `baseUrl`, a bearer token from
 * `AuthService` on every request, and one replay with a new token after a 401.
 *
 * No status filtering or other retries are imposed: compose `HttpClient.filterStatusOk`,
 * `HttpClient.retryTransient` and the like as you would on any client.
 *
 * @since 2.0.0
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import type * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { AuthConfig } from "./AuthConfig.js"
import type { AuthError } from "./AuthError.js"
import { AuthService } from "./AuthService.js"
import { isAbsoluteUrl, isUnder, normalizeBaseUrl } from "./internal/shared/baseUrl.js"

/**
 * The authenticated client. Its service *is* an `HttpClient`.
 *
 * @since 2.0.0
 * @category tags
 */
export class AuthHttpClient extends Context.Service<
  AuthHttpClient,
  HttpClient.HttpClient.With<HttpClientError.HttpClientError | AuthError>
>()("effect-revault-auth/AuthHttpClient") {}

const replays = Metric.counter("revault_auth_unauthorized_replays_total", {
  description: "Requests replayed with a new token after a 401 from a resource",
  incremental: true
})

/**
 * Builds the client from an `HttpClient`, the token manager and the configuration.
 *
 * Every attempt (the first, the replay after a 401, each hop of `HttpClient.followRedirects`
 * composed on top) is checked where the bearer is attached: a URL outside `baseUrl` (another
 * origin, or a path that leaves the base path once `..` and `%2e%2e` are resolved) fails with an
 * `HttpClientError` whose reason is an `InvalidUrlError`, and nothing is sent. The
 * `Authorization` header is redacted wherever Effect renders a request (errors, spans, logs).
 *
 * @since 2.0.0
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

  // `isUnder` parses both URLs, microseconds on every request. The normalized base plus a rest
  // with no dot, percent sign or backslash cannot leave the base (no dot segment, encoded or
  // not), so such a URL skips the parse; any other, or a base not normalized, takes the full check.
  const normalized = normalizeBaseUrl(config.baseUrl)
  const prefix = normalized._tag === "Valid" && normalized.baseUrl === config.baseUrl ? `${config.baseUrl}/` : undefined
  const mayCarryToken = (url: string): boolean =>
    (prefix !== undefined && url.startsWith(prefix) && !/[.%\\]/.test(url.slice(prefix.length))) ||
    isUnder(config.baseUrl, url)

  // Relative URLs go under baseUrl; where a URL may go is checked in `send`, not here, because
  // combinators such as `followRedirects` re-enter after this step with a URL of their own.
  const prepare = (request: HttpClientRequest.HttpClientRequest) => {
    const prefixed = isAbsoluteUrl(request.url) ? request : HttpClientRequest.prependUrl(request, config.baseUrl)
    return Effect.succeed(prefixed.headers.accept === undefined ? HttpClientRequest.acceptJson(prefixed) : prefixed)
  }

  const sendWith = (request: HttpClientRequest.HttpClientRequest, token: Redacted.Redacted<string>) =>
    client.execute(HttpClientRequest.bearerToken(request, token))

  const send = (
    request: HttpClientRequest.HttpClientRequest
  ): Effect.Effect<HttpClientResponse.HttpClientResponse, HttpClientError.HttpClientError | AuthError> =>
    Effect.gen(function* () {
      // Both attempts below send this request's URL: the check covers the replay too.
      if (!mayCarryToken(request.url)) {
        return yield* new HttpClientError.HttpClientError({
          reason: new HttpClientError.InvalidUrlError({
            request,
            description: `refusing to send the Revault token outside ${config.baseUrl}`
          })
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
      yield* Metric.update(replays, 1)
      return yield* sendWith(request, yield* auth.accessToken)
    })

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
 * @since 2.0.0
 * @category layers
 */
export const layer: Layer.Layer<AuthHttpClient, never, AuthService | AuthConfig | HttpClient.HttpClient> = Layer.effect(
  AuthHttpClient,
  make
)
