/**
 * One process, many workspaces: a token manager per API key, created on first use, shared by
 * every concurrent user of that key, and stopped after it has sat idle for `idleTimeToLive`.
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const client = yield* AuthPool.client({ workspace: "acme", apiKeyId, apiKeySecret })
 *   return yield* client.get("/users/me")
 * }).pipe(Effect.scoped)
 *
 * program.pipe(Effect.provide(AuthPool.layerConfig()), Effect.provide(NodeHttpClient.layerUndici))
 * ```
 *
 * Entries are isolated: each has its own token, state, retries and backoff, so a refused key or
 * a failing workspace never delays another. With a `TokenStore` in the pool's context, each entry
 * reads and writes its own stored set.
 *
 * @since 0.1.0
 * @module
 */
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as AuthApi from "./AuthApi.js"
import * as AuthConfig from "./AuthConfig.js"
import { AuthConfigError, type AuthError } from "./AuthError.js"
import * as AuthHttpClient from "./AuthHttpClient.js"
import * as AuthService from "./AuthService.js"
import { nonNegativeDuration, optionalEnv, orEnv } from "./internal/config.js"
import * as RefCountedMap from "./internal/refCountedMap.js"
import { MetricsByWorkspace } from "./internal/tokenManager.js"
import { TokenStore } from "./TokenStore.js"

/**
 * The key of a pool entry. Equal by value (the secret included, so a rotated secret gets a new
 * entry), and printed without the secret: `toString`, `toJSON` and `util.inspect` show the
 * workspace and key id only.
 *
 * @since 0.1.0
 * @category models
 */
export class Credentials extends Data.Class<{
  readonly workspace: string
  readonly apiKeyId: string
  readonly apiKeySecret: Redacted.Redacted<string>
}> {
  /**
   * Accepts a plain secret too, which is wrapped in `Redacted` at once.
   *
   * @since 0.1.0
   */
  static from(input: CredentialsInput): Credentials {
    return input instanceof Credentials
      ? input
      : new Credentials({
          workspace: input.workspace,
          apiKeyId: input.apiKeyId,
          apiKeySecret: Redacted.isRedacted(input.apiKeySecret) ? input.apiKeySecret : Redacted.make(input.apiKeySecret)
        })
  }
  /** @since 0.1.0 */
  toJSON(): { readonly _id: "Credentials"; readonly workspace: string; readonly apiKeyId: string } {
    return { _id: "Credentials", workspace: this.workspace, apiKeyId: this.apiKeyId }
  }
  /** @since 0.1.0 */
  override toString(): string {
    return `Credentials(${this.workspace}, ${this.apiKeyId})`
  }
  /** @since 0.1.0 */
  [NodeInspectSymbol](): unknown {
    return this.toJSON()
  }
}

/**
 * What {@link Service.get} accepts: {@link Credentials}, or the same fields with the secret as a
 * string or `Redacted`.
 *
 * @since 0.1.0
 * @category models
 */
export type CredentialsInput =
  | Credentials
  | {
      readonly workspace: string
      readonly apiKeyId: string
      readonly apiKeySecret: Redacted.Redacted<string> | string
    }

/**
 * The pool already holds `capacity` entries (in use, or idle and waiting out `idleTimeToLive`)
 * and was asked for another key.
 *
 * @since 0.1.0
 * @category errors
 */
export class AuthPoolCapacityError extends Schema.TaggedError<AuthPoolCapacityError>()("AuthPoolCapacityError", {
  capacity: Schema.Number,
  /** The workspace that was refused an entry. */
  workspace: Schema.String,
  apiKeyId: Schema.String
}) {
  override get message(): string {
    return `the auth pool holds its capacity of ${this.capacity} API keys; no entry for workspace ${this.workspace} (key ${this.apiKeyId})`
  }
}

/**
 * Every error of {@link Service.get}: a full pool, or credentials that do not validate (an empty
 * workspace, say).
 *
 * @since 0.1.0
 * @category models
 */
export type AuthPoolError = AuthPoolCapacityError | AuthConfigError

/**
 * @since 0.1.0
 * @category guards
 */
export const isAuthPoolError = (u: unknown): u is AuthPoolError =>
  Predicate.isTagged(u, "AuthPoolCapacityError") || Predicate.isTagged(u, "AuthConfigError")

/**
 * The options of every entry (everything in `AuthConfig.Options` but the credentials), and of the
 * pool.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Omit<AuthConfig.Options, "workspace" | "apiKeyId" | "apiKeySecret"> {
  /** How long an entry no scope holds is kept, its token refreshed, before it is stopped. Default 5 minutes. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
  /**
   * The most entries alive at once, idle ones included (an invalidated one that scopes still hold
   * no longer counts). Default unbounded.
   */
  readonly capacity?: number | undefined
  /**
   * Tag each entry's metrics with its workspace. Default `false`: the counters are summed over the
   * pool and the remaining-seconds gauge is not recorded, because Effect's metric registry keeps
   * every tag value it has seen for the life of the process.
   */
  readonly metricsByWorkspace?: boolean | undefined
}

/**
 * The authenticated client {@link Service.client} hands out.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = HttpClient.HttpClient.With<HttpClientError.HttpClientError | AuthError>

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /**
   * The token manager for `credentials`, created on first use. The scope holds it: once no scope
   * does, it lives on for `idleTimeToLive`, then its background refresh stops.
   */
  readonly get: (credentials: CredentialsInput) => Effect.Effect<AuthService.Service, AuthPoolError, Scope.Scope>
  /** An `HttpClient` for `credentials`' workspace, as `AuthHttpClient` builds it, held like {@link Service.get}. */
  readonly client: (credentials: CredentialsInput) => Effect.Effect<Client, AuthPoolError, Scope.Scope>
  /**
   * Drops the entry for `credentials` (a revoked key, say): it stops as soon as no scope holds it,
   * and the next {@link Service.get} creates a new one.
   */
  readonly invalidate: (credentials: CredentialsInput) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuthPool extends Context.Tag("effect-revault-auth/AuthPool")<AuthPool, Service>() {}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultIdleTimeToLive: Duration.Duration = Duration.minutes(5)

interface Entry {
  readonly service: AuthService.Service
  readonly client: Client
}

// Options are checked once when the pool is built, with stand-in credentials: only the shared
// options can fail there, and each `get` then only has the credentials left to check.
const placeholder = { workspace: "pool", apiKeyId: "pool", apiKeySecret: "pool" } as const

const validCapacity = (capacity: number | undefined): Effect.Effect<number | undefined, AuthConfigError> =>
  capacity === undefined || (Number.isInteger(capacity) && capacity > 0)
    ? Effect.succeed(capacity)
    : Effect.fail(
        new AuthConfigError({ field: "capacity", message: `capacity must be a positive integer (got ${capacity})` })
      )

/**
 * Builds the pool in the current scope; closing it stops every entry it made, held or idle,
 * invalidated ones included. A `TokenStore` in the context is used by every entry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, AuthConfigError, HttpClient.HttpClient | Scope.Scope> =>
  Effect.gen(function* () {
    const { capacity: requestedCapacity, idleTimeToLive, metricsByWorkspace, ...shared } = options
    const capacity = yield* validCapacity(requestedCapacity)
    yield* AuthConfig.make({ ...shared, ...placeholder })
    const httpClient = yield* HttpClient.HttpClient
    const store = yield* Effect.serviceOption(TokenStore)

    const configFor = (credentials: Credentials) =>
      AuthConfig.make({
        ...shared,
        workspace: credentials.workspace,
        apiKeyId: credentials.apiKeyId,
        apiKeySecret: credentials.apiKeySecret
      })

    const withStore = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Option.match(store, {
        onNone: () => effect,
        onSome: (tokenStore) => Effect.provideService(effect, TokenStore, tokenStore)
      })

    // An entry sees exactly the services the pool chose: it is built in a fiber forked from
    // whichever caller happened to create it, and would otherwise inherit that caller's services
    // (its TokenStore, say) and span, which would parent the background refreshes of an entry
    // that outlives it.
    const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>, context: Context.Context<R>) =>
      Effect.mapInputContext(effect, (_: Context.Context<never>) => context)

    const lookup = (credentials: Credentials): Effect.Effect<Entry, never, Scope.Scope> =>
      Effect.gen(function* () {
        // `get` checked the credentials before asking for the entry: a failure here is a bug.
        const config = yield* Effect.orDie(configFor(credentials))
        const scope = yield* Effect.scope
        const context = Context.make(AuthConfig.AuthConfig, config).pipe(
          Context.add(HttpClient.HttpClient, httpClient),
          Context.add(Scope.Scope, scope),
          Context.add(MetricsByWorkspace, metricsByWorkspace ?? false)
        )
        const api = yield* isolated(AuthApi.make, context)
        // Inherited by the entry's background fibers: every log line says which workspace it is about.
        const service = yield* isolated(withStore(AuthService.make), Context.add(context, AuthApi.AuthApi, api)).pipe(
          Effect.annotateLogs("workspace", credentials.workspace)
        )
        const client = yield* isolated(AuthHttpClient.make, Context.add(context, AuthService.AuthService, service))
        return { service, client }
      })

    const map = yield* RefCountedMap.make({
      lookup,
      idleTimeToLive: idleTimeToLive ?? defaultIdleTimeToLive,
      capacity: capacity ?? Number.POSITIVE_INFINITY
    })

    const entry = (input: CredentialsInput): Effect.Effect<Entry, AuthPoolError, Scope.Scope> =>
      Effect.suspend(() => {
        const credentials = Credentials.from(input)
        // Checked before the map is asked, so that bad credentials never take a slot.
        return Effect.zipRight(
          configFor(credentials),
          map.get(credentials).pipe(
            Effect.catchTag(
              "ExceededCapacityException",
              () =>
                new AuthPoolCapacityError({
                  capacity: capacity ?? Number.POSITIVE_INFINITY,
                  workspace: credentials.workspace,
                  apiKeyId: credentials.apiKeyId
                })
            )
          )
        )
      })

    return AuthPool.of({
      get: (credentials) => Effect.map(entry(credentials), (e) => e.service),
      client: (credentials) => Effect.map(entry(credentials), (e) => e.client),
      invalidate: (credentials) => Effect.suspend(() => map.invalidate(Credentials.from(credentials)))
    })
  })

/**
 * The token manager for `credentials` from the pool in the context. See {@link Service.get}.
 *
 * @since 0.1.0
 * @category accessors
 */
export const get = (
  credentials: CredentialsInput
): Effect.Effect<AuthService.Service, AuthPoolError, AuthPool | Scope.Scope> =>
  Effect.flatMap(AuthPool, (pool) => pool.get(credentials))

/**
 * An authenticated client for `credentials`' workspace from the pool in the context. See
 * {@link Service.client}.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import * as Effect from "effect/Effect"
 * import { AuthPool } from "effect-revault-auth"
 *
 * // One tenant's key: the pool keeps one token manager per key, shared by every caller.
 * const meOf = (tenant: { workspace: string; apiKeyId: string; apiKeySecret: string }) =>
 *   Effect.gen(function* () {
 *     const client = yield* AuthPool.client(tenant)
 *     const response = yield* client.get("/users/me")
 *     return yield* response.json
 *   }).pipe(Effect.scoped)
 *
 * // REVAULT_API_BASE_URL, and the pool's optional REVAULT_* settings.
 * export const program = meOf({ workspace: "acme", apiKeyId: "acme-key-id", apiKeySecret: "acme-key-secret" }).pipe(
 *   Effect.provide(AuthPool.layerConfig()),
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 *
 * @since 0.1.0
 * @category accessors
 */
export const client = (credentials: CredentialsInput): Effect.Effect<Client, AuthPoolError, AuthPool | Scope.Scope> =>
  Effect.flatMap(AuthPool, (pool) => pool.client(credentials))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AuthPool, AuthConfigError, HttpClient.HttpClient> =>
  Layer.scoped(AuthPool, make(options))

/**
 * The environment variables {@link fromConfig} reads besides `AuthConfig.env`'s
 * `REVAULT_API_BASE_URL`, `REVAULT_REQUEST_TIMEOUT`, `REVAULT_REFRESH_AT` and `REVAULT_EXPIRY_SKEW`.
 *
 * @since 0.1.0
 * @category constants
 */
export const env = {
  idleTimeToLive: "REVAULT_POOL_IDLE_TIME_TO_LIVE",
  capacity: "REVAULT_POOL_CAPACITY"
} as const

/**
 * Reads the pool's options from the environment: `REVAULT_API_BASE_URL`, and the optional
 * `REVAULT_REQUEST_TIMEOUT`, `REVAULT_REFRESH_AT`, `REVAULT_EXPIRY_SKEW`,
 * `REVAULT_POOL_IDLE_TIME_TO_LIVE` and `REVAULT_POOL_CAPACITY`. The credentials are not read:
 * each `get` brings its own. An option given in `overrides` wins over its variable.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig = (overrides: Partial<Options> = {}): Config.Config<Options> =>
  Config.all({
    baseUrl: orEnv(overrides.baseUrl, Config.string(AuthConfig.env.baseUrl)),
    requestTimeout: optionalEnv(overrides.requestTimeout, nonNegativeDuration(AuthConfig.env.requestTimeout)),
    refreshAt: optionalEnv(overrides.refreshAt, Config.number(AuthConfig.env.refreshAt)),
    expirySkew: optionalEnv(overrides.expirySkew, nonNegativeDuration(AuthConfig.env.expirySkew)),
    refreshSchedule: Config.succeed(overrides.refreshSchedule),
    retrySchedule: Config.succeed(overrides.retrySchedule),
    permanentRetrySchedule: Config.succeed(overrides.permanentRetrySchedule),
    idleTimeToLive: optionalEnv(overrides.idleTimeToLive, nonNegativeDuration(env.idleTimeToLive)),
    capacity: optionalEnv(overrides.capacity, Config.integer(env.capacity)),
    metricsByWorkspace: Config.succeed(overrides.metricsByWorkspace)
  })

/**
 * {@link layer} with the options read by {@link fromConfig}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Options>
): Layer.Layer<AuthPool, ConfigError.ConfigError | AuthConfigError, HttpClient.HttpClient> =>
  Layer.scoped(AuthPool, Effect.flatMap(fromConfig(overrides), make))
