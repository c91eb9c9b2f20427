/**
 * One line for users: every layer of the library, wired, from options or from the environment.
 *
 * ```ts
 * program.pipe(Effect.provide(RevaultAuth.layerConfig()), Effect.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 2.0.0
 */
import type * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import type * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as Layer from "effect/Layer"
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
 * @since 2.0.0
 * @category layers
 */
export const layer = (options: AuthConfig.Options): Layer.Layer<Services, AuthConfigError, HttpClient.HttpClient> =>
  fromConfigLayer(AuthConfig.layer(options))

/**
 * {@link layer} with options from the `REVAULT_*` environment variables (see
 * `AuthConfig.layerConfig`); `overrides` win over the variables.
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
