/**
 * One line for users: every layer of the library, wired, from options or from the environment.
 *
 * ```ts
 * program.pipe(Effect.provide(RevaultAuth.layerConfig()), Effect.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AuthApi from "./AuthApi.js"
import * as AuthConfig from "./AuthConfig.js"
import type { AuthConfigError, AuthError } from "./AuthError.js"
import * as AuthHttpClient from "./AuthHttpClient.js"
import * as AuthService from "./AuthService.js"

/**
 * Everything {@link layer} provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Services = AuthService.AuthService | AuthHttpClient.AuthHttpClient | AuthApi.AuthApi | AuthConfig.AuthConfig

/**
 * Wires the whole library on top of a layer that provides `AuthConfig`.
 *
 * @since 0.1.0
 * @category layers
 */
export const fromConfigLayer = <E, R>(
  config: Layer.Layer<AuthConfig.AuthConfig, E, R>
): Layer.Layer<Services, E, R | HttpClient.HttpClient> => {
  const api = AuthApi.layer.pipe(Layer.provideMerge(config))
  const service = AuthService.layer.pipe(Layer.provideMerge(api))
  return AuthHttpClient.layer.pipe(Layer.provideMerge(service))
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: AuthConfig.Options): Layer.Layer<Services, AuthConfigError, HttpClient.HttpClient> =>
  fromConfigLayer(AuthConfig.layer(options))

/**
 * {@link layer} with options from the `REVAULT_*` environment variables (see
 * `AuthConfig.layerConfig`); `overrides` win over the variables.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<AuthConfig.Options>
): Layer.Layer<Services, ConfigError.ConfigError | AuthConfigError, HttpClient.HttpClient> =>
  fromConfigLayer(AuthConfig.layerConfig(overrides))

/**
 * The caller of `GET /users/me`, as much of it as the vendor's guide shows. Other fields are
 * ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export class User extends Schema.Class<User>("User")({
  id: Schema.Union(Schema.String, Schema.Number),
  name: Schema.optional(Schema.String),
  role: Schema.optional(Schema.String),
  workspace: Schema.optional(Schema.String)
}) {}

/**
 * `GET /users/me`: who the API key acts as. A non-2xx answer fails with a `ResponseError`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const me: Effect.Effect<
  User,
  HttpClientError.HttpClientError | AuthError | ParseResult.ParseError,
  AuthHttpClient.AuthHttpClient
> = Effect.flatMap(AuthHttpClient.AuthHttpClient, (client) =>
  client
    .get("/users/me")
    .pipe(Effect.flatMap(HttpClientResponse.filterStatusOk), Effect.flatMap(HttpClientResponse.schemaBodyJson(User)))
)
