/**
 * The library's own layers wired against a running `MockRevault`, over a real HTTP client.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import type * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as AuthApi from "../../src/AuthApi.js"
import type * as AuthConfig from "../../src/AuthConfig.js"
import * as AuthService from "../../src/AuthService.js"
import * as MockRevault from "../../src/MockRevault.js"

/** `AuthService` (and `AuthConfig`) against `mock` over the given `HttpClient` layer (default undici). */
export const authLayer = (
  mock: MockRevault.Service,
  overrides: Partial<AuthConfig.Options> = {},
  client: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layerUndici
): Layer.Layer<AuthService.AuthService | AuthConfig.AuthConfig | HttpClient.HttpClient> =>
  AuthService.layer.pipe(
    Layer.provideMerge(AuthApi.layer),
    Layer.provideMerge(MockRevault.layerAuthConfig(overrides)),
    Layer.provide(Layer.succeed(MockRevault.MockRevault, mock)),
    Layer.provideMerge(client),
    Layer.orDie
  )
