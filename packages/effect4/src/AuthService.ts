/**
 * The token manager: a cached token set, acquired once however many fibers ask, refreshed ahead
 * of expiry in the background, retried with backoff, and never handed out expired.
 *
 * @since 2.0.0
 * @module
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { AuthApi } from "./AuthApi.js"
import { AuthConfig } from "./AuthConfig.js"
import type { AuthError } from "./AuthError.js"
import { coordinatorOf } from "./internal/tokenCoordinator.js"
import * as internal from "./internal/tokenManager.js"
import { TokenCoordinator } from "./TokenCoordinator.js"
import { StoredTokenSet, TokenStore } from "./TokenStore.js"

/**
 * How a token set was obtained: the API-key exchange or the refresh token.
 *
 * @since 2.0.0
 * @category models
 */
export type Source = "authenticate" | "refresh"

/**
 * A token with what the manager knows of it.
 *
 * @since 2.0.0
 * @category models
 */
export class AuthSession extends Data.TaggedClass("AuthSession")<{
  readonly accessToken: Redacted.Redacted<string>
  /** When the request that obtained the token was sent, plus `expiresInSeconds`. */
  readonly expiresAt: Date
  /** When the request that obtained the token was sent, plus `refreshExpiresInSeconds`. */
  readonly refreshExpiresAt: Date
  /**
   * When the request that obtained the token was sent: the token's lifetime counts from then.
   *
   * @since 2.1.0
   */
  readonly sentAt: Date
  /** When the answer arrived. */
  readonly obtainedAt: Date
  readonly source: Source
}> {}

/**
 * @since 2.0.0
 * @category models
 */
export interface Service {
  /**
   * A token valid for at least `expirySkew` longer. Performs no I/O while the cache holds one;
   * otherwise starts, or joins, the single acquisition in flight.
   */
  readonly accessToken: Effect.Effect<Redacted.Redacted<string>, AuthError>
  /** The same as {@link Service.accessToken}, with its metadata. */
  readonly session: Effect.Effect<AuthSession, AuthError>
  /** Obtains a new token set now, or joins the acquisition already in flight. */
  readonly refresh: Effect.Effect<AuthSession, AuthError>
  /**
   * Forgets the access token (after a 401 from a resource, say); the next read obtains a new one,
   * through the refresh token while it is valid. With `rejected`, nothing is dropped unless
   * `rejected` is still the current token, so a burst of 401s for one token costs one acquisition.
   */
  readonly invalidate: (rejected?: Redacted.Redacted<string>) => Effect.Effect<void>
}

/**
 * @since 2.0.0
 * @category tags
 */
export class AuthService extends Context.Service<AuthService, Service>()("effect-revault-auth/AuthService") {}

/**
 * Builds the token manager in the current scope. It starts fetching the first token at once, in
 * the background: building never fails because the server is down. Closing the scope stops every
 * fiber it started.
 *
 * With a `TokenStore` in the context, it first reads the set stored for its workspace and key, and
 * uses it instead of a request while its access token is usable (or spends its refresh token
 * while that lives); it writes every set it obtains. Store failures are logged, never returned.
 *
 * With a `TokenCoordinator` in the context, it shares its token set with every process that uses
 * the same workspace and key (see `TokenCoordinator`).
 *
 * @since 2.0.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, AuthApi | AuthConfig | Scope.Scope> = Effect.gen(function* () {
  const api = yield* AuthApi
  const config = yield* AuthConfig
  const store = yield* Effect.serviceOption(TokenStore)
  const key = { workspace: config.workspace, apiKeyId: config.apiKeyId, apiKeySecret: config.apiKeySecret }
  const coordinator = Option.flatMapNullishOr(yield* Effect.serviceOption(TokenCoordinator), coordinatorOf)
  const coordination = Option.isSome(coordinator) ? yield* coordinator.value.join(key) : undefined
  const manager = yield* internal.make<AuthSession>({
    api,
    config,
    coordination,
    refreshSchedule: config.refreshSchedule,
    persistence: Option.getOrUndefined(
      Option.map(
        store,
        (tokenStore): internal.Persistence => ({
          load: tokenStore.get(key),
          save: (acquired) => Effect.suspend(() => tokenStore.set(key, new StoredTokenSet(acquired)))
        })
      )
    ),
    toSession: (cached) =>
      new AuthSession({
        accessToken: cached.tokenSet.accessToken,
        expiresAt: new Date(cached.expiresAt),
        refreshExpiresAt: new Date(cached.refreshExpiresAt),
        sentAt: new Date(cached.sentAt),
        obtainedAt: new Date(cached.obtainedAt),
        source: cached.source
      })
  })
  return AuthService.of(manager)
})

/**
 * The token manager from the `AuthApi` and `AuthConfig` in the context (see {@link make}).
 *
 * A layer value, so Effect builds it once per layer graph however many times it appears, with
 * whatever `AuthConfig` the first use was given. For several workspaces in one program, wire
 * each with `RevaultAuth.layer`, `layerConfig` or `fromConfigLayer`, which build new layers on
 * every call.
 *
 * @since 2.0.0
 * @category layers
 */
export const layer: Layer.Layer<AuthService, never, AuthApi | AuthConfig> = Layer.effect(
  AuthService,
  // Three turns of the event loop (the prefetch starts and dispatches, the socket connects, the
  // request is written), so the first token request is on the wire when the service is handed
  // over: the program's first burst of fibers (B2: 10,000 cold readers) would otherwise hold the
  // loop, and the request with it, while they start. B2 measured 48 ms without, 34 ms with.
  Effect.tap(make, () => Effect.andThen(Effect.yieldNow, Effect.andThen(Effect.yieldNow, Effect.yieldNow)))
)

/**
 * A layer for your tests: serves a fixed token, or the result of `token` on every read, with no
 * HTTP at all. Sessions say the token expires an hour after the read.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import * as Effect from "effect/Effect"
 * import * as Redacted from "effect/Redacted"
 * import { AuthError, AuthService } from "effect-revault-auth"
 *
 * it.effect("serves the stub token", () =>
 *   Effect.gen(function* () {
 *     const auth = yield* AuthService.AuthService
 *     assert.strictEqual(Redacted.value(yield* auth.accessToken), "test-token")
 *   }).pipe(Effect.provide(AuthService.layerStub("test-token")))
 * )
 *
 * it.effect("fails as a refused key does", () =>
 *   Effect.gen(function* () {
 *     const auth = yield* AuthService.AuthService
 *     const error = yield* Effect.flip(auth.accessToken)
 *     assert.strictEqual(error._tag, "UnauthorizedError")
 *   }).pipe(Effect.provide(AuthService.layerStub(Effect.fail(AuthError.unauthorized("Invalid API key")))))
 * )
 * ```
 *
 * @since 2.0.0
 * @category layers
 */
export const layerStub = (
  token: Redacted.Redacted<string> | string | Effect.Effect<Redacted.Redacted<string> | string, AuthError>
): Layer.Layer<AuthService> => {
  const read: Effect.Effect<Redacted.Redacted<string>, AuthError> = Effect.map(
    Effect.isEffect(token) ? token : Effect.succeed(token),
    (value) => (Redacted.isRedacted(value) ? value : Redacted.make(value))
  )
  const session = Effect.flatMap(read, (accessToken) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      const expiresAt = new Date(now + 3_600_000)
      return new AuthSession({
        accessToken,
        expiresAt,
        refreshExpiresAt: expiresAt,
        sentAt: new Date(now),
        obtainedAt: new Date(now),
        source: "authenticate"
      })
    })
  )
  return Layer.succeed(AuthService, { accessToken: read, session, refresh: session, invalidate: () => Effect.void })
}
