/**
 * One line for users: every layer of the library, wired, from options or from the environment.
 *
 * ```ts
 * program.pipe(Effect.provide(RevaultAuth.layerConfig()), Effect.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 2.0.0
 * @module
 */
import type * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as AuthApi from "./AuthApi.js"
import * as AuthConfig from "./AuthConfig.js"
import type { AuthConfigError, AuthError } from "./AuthError.js"
import * as AuthHttpClient from "./AuthHttpClient.js"
import * as AuthService from "./AuthService.js"

/**
 * Everything {@link layer} provides.
 *
 * @since 2.0.0
 * @category models
 */
export type Services = AuthService.AuthService | AuthHttpClient.AuthHttpClient | AuthApi.AuthApi | AuthConfig.AuthConfig

/**
 * Wires the whole library on top of a layer that provides `AuthConfig`.
 *
 * Every call builds new layers, so each call is its own token manager, even beside another call
 * in the same layer graph (two workspaces in one program). Share one workspace's services by
 * sharing the layer one call returned.
 *
 * @since 2.0.0
 * @category layers
 */
export const fromConfigLayer = <E, R>(
  config: Layer.Layer<AuthConfig.AuthConfig, E, R>
): Layer.Layer<Services, E, R | HttpClient.HttpClient> => {
  // Not the module-level `AuthApi.layer` and the like: Effect memoizes a layer value it meets
  // twice in one graph, whatever feeds it, so a second workspace would get the first one's token.
  const api = Layer.effect(AuthApi.AuthApi, AuthApi.make).pipe(Layer.provideMerge(config))
  const service = Layer.effect(AuthService.AuthService, AuthService.make).pipe(Layer.provideMerge(api))
  return Layer.effect(AuthHttpClient.AuthHttpClient, AuthHttpClient.make).pipe(Layer.provideMerge(service))
}

/**
 * The whole library from `options`: `AuthConfig`, `AuthApi`, the token manager (`AuthService`)
 * and the authenticated client (`AuthHttpClient`), over the `HttpClient` you provide.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import * as Effect from "effect/Effect"
 * import * as Redacted from "effect/Redacted"
 * import { RevaultAuth } from "effect-revault-auth"
 *
 * const auth = RevaultAuth.layer({
 *   baseUrl: "https://api.example.com/v1/rest",
 *   workspace: "acme",
 *   apiKeyId: "acme-key-id",
 *   apiKeySecret: Redacted.make("acme-key-secret")
 * })
 *
 * export const program = RevaultAuth.me.pipe(Effect.provide(auth), Effect.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 2.0.0
 * @category layers
 */
export const layer = (options: AuthConfig.Options): Layer.Layer<Services, AuthConfigError, HttpClient.HttpClient> =>
  fromConfigLayer(AuthConfig.layer(options))

/**
 * {@link layer} with options from the `REVAULT_*` environment variables (see
 * `AuthConfig.layerConfig`); `overrides` win over the variables.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
 * import * as Console from "effect/Console"
 * import * as Effect from "effect/Effect"
 * import { RevaultAuth } from "effect-revault-auth"
 *
 * const program = Effect.gen(function* () {
 *   const user = yield* RevaultAuth.me
 *   yield* Console.log(`Signed in as ${user.name ?? user.id}`)
 * })
 *
 * // REVAULT_API_BASE_URL, REVAULT_WORKSPACE, REVAULT_API_KEY_ID, REVAULT_API_KEY_SECRET; the
 * // override wins over REVAULT_REFRESH_AT.
 * program.pipe(
 *   Effect.provide(RevaultAuth.layerConfig({ refreshAt: 0.75 })),
 *   Effect.provide(NodeHttpClient.layerUndici),
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 2.0.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<AuthConfig.Options>
): Layer.Layer<Services, Config.ConfigError | AuthConfigError, HttpClient.HttpClient> =>
  fromConfigLayer(AuthConfig.layerConfig(overrides))

/**
 * The caller of `GET /users/me`, as much of it as the vendor's guide shows. Other fields are
 * ignored.
 *
 * @since 2.0.0
 * @category schemas
 */
export class User extends Schema.Class<User>("User")({
  id: Schema.Union([Schema.String, Schema.Number]),
  name: Schema.optional(Schema.String),
  role: Schema.optional(Schema.String),
  workspace: Schema.optional(Schema.String)
}) {}

/**
 * `GET /users/me`: who the API key acts as. A non-2xx answer fails with an `HttpClientError`
 * whose reason is a `StatusCodeError`.
 *
 * @since 2.0.0
 * @category accessors
 */
export const me: Effect.Effect<
  User,
  HttpClientError.HttpClientError | AuthError | Schema.SchemaError,
  AuthHttpClient.AuthHttpClient
> = Effect.flatMap(AuthHttpClient.AuthHttpClient, (client) =>
  client
    .get("/users/me")
    .pipe(Effect.flatMap(HttpClientResponse.filterStatusOk), Effect.flatMap(HttpIncomingMessage.schemaBodyJson(User)))
)

/**
 * The options of {@link layerTest}.
 *
 * @since 2.1.0
 * @category models
 */
export interface TestOptions {
  /**
   * The token every request carries: a string, a `Redacted`, or an `Effect` read on every
   * request, which may fail with any `AuthError` (see `AuthService.layerStub`). Default
   * `"test-token"`.
   */
  readonly token?:
    | Redacted.Redacted<string>
    | string
    | Effect.Effect<Redacted.Redacted<string> | string, AuthError>
    | undefined
  /** The API base relative URLs are sent under. Default `https://revault.test/v1/rest`. */
  readonly baseUrl?: string | URL | undefined
  /** The workspace `AuthConfig` names. Default `"test"`. */
  readonly workspace?: string | undefined
}

/**
 * What {@link layerTest} saw.
 *
 * @since 2.1.0
 * @category models
 */
export interface TestRequestLog {
  /**
   * Every request that reached the handler, oldest first, as sent: full URL, headers and body,
   * with the `Authorization` header's value replaced by `<redacted>`. A replay after a 401 is an
   * entry of its own; a request refused before sending (a URL outside `baseUrl`) is none.
   */
  readonly requests: Effect.Effect<ReadonlyArray<HttpClientRequest.HttpClientRequest>>
  /** How many times the client dropped its token after a 401. */
  readonly invalidations: Effect.Effect<number>
}

/**
 * The log of the requests {@link layerTest} handled.
 *
 * @since 2.1.0
 * @category tags
 */
export class TestRequests extends Context.Service<TestRequests, TestRequestLog>()("effect-revault-auth/TestRequests") {}

/**
 * The requests {@link layerTest} handled so far (see {@link TestRequestLog}).
 *
 * @since 2.1.0
 * @category accessors
 */
export const testRequests: Effect.Effect<
  ReadonlyArray<HttpClientRequest.HttpClientRequest>,
  never,
  TestRequests
> = Effect.flatMap(TestRequests, (log) => log.requests)

/**
 * Everything {@link layerTest} provides.
 *
 * @since 2.1.0
 * @category models
 */
export type TestServices =
  | AuthService.AuthService
  | AuthHttpClient.AuthHttpClient
  | AuthConfig.AuthConfig
  | TestRequests

const isClientResponse = (
  response: HttpClientResponse.HttpClientResponse | Response
): response is HttpClientResponse.HttpClientResponse => HttpClientResponse.TypeId in response

// Effect 4 redacts the header where it renders a request, but the value itself is the token:
// the log keeps a copy without it, whatever the caller does with the entries.
const redactAuthorization = (request: HttpClientRequest.HttpClientRequest): HttpClientRequest.HttpClientRequest =>
  request.headers.authorization === undefined
    ? request
    : HttpClientRequest.setHeader(request, "authorization", "<redacted>")

/**
 * A layer for your tests: the real `AuthHttpClient` (relative URLs under `baseUrl`, the bearer
 * only under it, one replay after a 401 with the token invalidated) over a stub token and your
 * `handler` in place of the network. No server, no `HttpClient` to provide.
 *
 * `handler` receives each request as it would be sent, bearer included, and answers with an
 * `HttpClientResponse` or a web `Response` (a new one on every call: a body is read once); its
 * failures reach the caller as they are. What it saw is in {@link TestRequests}, bearer redacted.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import * as Effect from "effect/Effect"
 * import { RevaultAuth } from "effect-revault-auth"
 *
 * it.effect("reads the operator", () =>
 *   Effect.gen(function* () {
 *     const user = yield* RevaultAuth.me
 *     assert.strictEqual(user.name, "Ada")
 *     const [request] = yield* RevaultAuth.testRequests
 *     assert.strictEqual(request?.url, "https://revault.test/v1/rest/users/me")
 *   }).pipe(
 *     Effect.provide(RevaultAuth.layerTest(() => Effect.succeed(Response.json({ id: 1, name: "Ada" }))))
 *   )
 * )
 * ```
 *
 * @since 2.1.0
 * @category layers
 */
export const layerTest = <E extends HttpClientError.HttpClientError = never, R = never>(
  handler: (
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse | Response, E, R>,
  options: TestOptions = {}
): Layer.Layer<TestServices, AuthConfigError, R> =>
  Layer.effectContext(
    Effect.gen(function* () {
      const config = yield* AuthConfig.make({
        baseUrl: options.baseUrl ?? "https://revault.test/v1/rest",
        workspace: options.workspace ?? "test",
        apiKeyId: "test-key-id",
        apiKeySecret: "test-key-secret"
      })
      const stub = yield* Effect.provide(AuthService.AuthService, AuthService.layerStub(options.token ?? "test-token"))
      const seen = yield* Ref.make<ReadonlyArray<HttpClientRequest.HttpClientRequest>>([])
      const invalidated = yield* Ref.make(0)
      const context = yield* Effect.context<R>()
      const auth: AuthService.Service = { ...stub, invalidate: () => Ref.update(invalidated, (n) => n + 1) }
      const network = HttpClient.makeWith<never, never, HttpClientError.HttpClientError, never>(
        (effect) =>
          Effect.flatMap(effect, (request) =>
            Ref.update(seen, (requests) => [...requests, redactAuthorization(request)]).pipe(
              Effect.andThen(Effect.provideContext(handler(request), context)),
              Effect.map((response) =>
                isClientResponse(response) ? response : HttpClientResponse.fromWeb(request, response)
              )
            )
          ),
        Effect.succeed
      )
      const client = yield* AuthHttpClient.make.pipe(
        Effect.provideService(AuthService.AuthService, auth),
        Effect.provideService(AuthConfig.AuthConfig, config),
        Effect.provideService(HttpClient.HttpClient, network)
      )
      return Context.make(AuthService.AuthService, auth).pipe(
        Context.add(AuthConfig.AuthConfig, config),
        Context.add(AuthHttpClient.AuthHttpClient, client),
        Context.add(TestRequests, { requests: Ref.get(seen), invalidations: Ref.get(invalidated) })
      )
    })
  )
