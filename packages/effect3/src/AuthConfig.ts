/**
 * The validated options every other module reads: where the API is, which key to use for which
 * workspace, and the timing policy of the token manager.
 *
 * @since 0.1.0
 * @module
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"
import { AuthConfigError, type AuthError } from "./AuthError.js"
import type { AuthSession } from "./AuthService.js"
import { nonNegativeDuration, optionalEnv, orEnv } from "./internal/config.js"
import { variables } from "./internal/shared/cliHelp.js"

/**
 * The options accepted by {@link layer} and {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The API base *including* the `/v1/rest` prefix, e.g. `https://api.example.com/v1/rest`. */
  readonly baseUrl: string | URL
  readonly workspace: string
  readonly apiKeyId: string
  readonly apiKeySecret: Redacted.Redacted<string> | string
  /** Bound on each token request. Default 10 seconds. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /**
   * Fraction of an access token's lifetime at which it is refreshed ahead. Default 0.8. The
   * shorthand for `refreshSchedule: refreshAhead(refreshAt)`; with a `refreshSchedule`, it is the
   * rule that takes over once that schedule is done.
   */
  readonly refreshAt?: number | undefined
  /**
   * When the next refresh ahead is due: stepped once with each session obtained, its delay is the
   * time from then until the background refresh. Default {@link refreshAhead}(`refreshAt`). The
   * manager clamps it: never later than the moment the token stops being handed out (`expirySkew`
   * before expiry), never sooner than {@link minRefreshInterval} after the token was obtained.
   */
  readonly refreshSchedule?: Schedule.Schedule<unknown, AuthSession> | undefined
  /** A token within this of its expiry is never handed out. Default 30 seconds. */
  readonly expirySkew?: Duration.DurationInput | undefined
  /** Spacing of the token manager's retries after a transient failure. Default {@link defaultRetrySchedule}. */
  readonly retrySchedule?: Schedule.Schedule<unknown, AuthError> | undefined
  /**
   * Spacing of the token manager's attempts after the API key is refused (400/401/403 from
   * `/auth/token`). Default {@link defaultPermanentRetrySchedule}.
   */
  readonly permanentRetrySchedule?: Schedule.Schedule<unknown, AuthError> | undefined
}

/**
 * The validated configuration.
 *
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The API base including `/v1/rest`, without a trailing slash. */
  readonly baseUrl: string
  readonly workspace: string
  readonly apiKeyId: string
  readonly apiKeySecret: Redacted.Redacted<string>
  readonly requestTimeout: Duration.Duration
  readonly refreshAt: number
  readonly refreshSchedule: Schedule.Schedule<unknown, AuthSession>
  readonly expirySkew: Duration.Duration
  readonly retrySchedule: Schedule.Schedule<unknown, AuthError>
  readonly permanentRetrySchedule: Schedule.Schedule<unknown, AuthError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AuthConfig extends Context.Tag("effect-revault-auth/AuthConfig")<AuthConfig, Service>() {}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultRequestTimeout: Duration.Duration = Duration.seconds(10)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultRefreshAt = 0.8

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultExpirySkew: Duration.Duration = Duration.seconds(30)

/**
 * Exponential backoff from 250 ms with jitter, each delay capped at 30 s. It never gives up:
 * the token manager keeps trying for as long as it lives.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, AuthError> = Schedule.exponential("250 millis").pipe(
  Schedule.jittered,
  Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.seconds(30)))
)

/**
 * Exponential backoff from 1 s with jitter, each delay capped at 60 s: a refused key is not
 * retried in a tight loop, and is picked up again within a minute once it is fixed.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPermanentRetrySchedule: Schedule.Schedule<unknown, AuthError> = Schedule.exponential(
  "1 second"
).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.seconds(60)))
)

/**
 * The shortest time between a token's arrival and the background refresh that replaces it,
 * whatever `refreshSchedule` says: a schedule that asks for no delay refreshes once a second, not
 * in a request loop. A token whose usable time ends sooner is still refreshed by then.
 *
 * @since 1.1.0
 * @category constants
 */
export const minRefreshInterval: Duration.Duration = Duration.seconds(1)

const refreshAtMessage = (refreshAt: number) => `refreshAt must be a number strictly between 0 and 1 (got ${refreshAt})`

const isRefreshAt = (refreshAt: number): boolean => Number.isFinite(refreshAt) && refreshAt > 0 && refreshAt < 1

/**
 * The default refresh rule as a `Schedule` for `refreshSchedule`: the next refresh ahead is due
 * `refreshAt` × the token's lifetime after its request was sent (`AuthSession.sentAt`); the
 * manager moves it no later than the token's usable time. Outputs the delay. It never ends.
 *
 * Throws a `RangeError` when `refreshAt` is not strictly between 0 and 1: a bug in the program.
 *
 * @since 1.1.0
 * @category constructors
 */
export const refreshAhead = (refreshAt: number): Schedule.Schedule<Duration.Duration, AuthSession> => {
  if (!isRefreshAt(refreshAt)) throw new RangeError(`AuthConfig.refreshAhead: ${refreshAtMessage(refreshAt)}`)
  return Schedule.makeWithState(undefined, (now, session: AuthSession) => {
    const sentAt = session.sentAt.getTime()
    const due = Math.max(now, sentAt + refreshAt * (session.expiresAt.getTime() - sentAt))
    return Effect.succeed([
      undefined,
      Duration.millis(due - now),
      ScheduleDecision.continueWith(ScheduleInterval.after(due))
    ] as const)
  })
}

const loopbackHost = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

const fail = (field: string, message: string) => Effect.fail(new AuthConfigError({ field, message }))

const nonEmpty = (field: string, value: string) =>
  value.trim().length === 0 ? fail(field, `${field} must not be empty`) : Effect.succeed(value)

const validBaseUrl = (input: string | URL): Effect.Effect<string, AuthConfigError> => {
  const text = String(input)
  if (!URL.canParse(text)) return fail("baseUrl", `baseUrl is not a URL: ${JSON.stringify(text.slice(0, 200))}`)
  const url = new URL(text)
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return fail("baseUrl", `baseUrl must use https: (got ${url.protocol})`)
  }
  if (url.protocol === "http:" && !loopbackHost(url.hostname)) {
    return fail("baseUrl", `baseUrl must use https: for ${url.hostname}; plain http: is allowed on loopback only`)
  }
  if (url.username !== "" || url.password !== "") {
    return fail("baseUrl", "baseUrl must not carry credentials")
  }
  return Effect.succeed(`${url.origin}${url.pathname.replace(/\/+$/, "")}`)
}

// `Duration.decode` clamps a negative or NaN input to zero, so the sign is read from the raw input.
const negativeInput = (input: Duration.DurationInput): boolean => {
  if (Duration.isDuration(input)) return false
  if (typeof input === "number") return !(input >= 0)
  if (typeof input === "bigint") return input < BigInt(0)
  if (typeof input === "string") return input.trim().startsWith("-")
  return !(input[0] * 1e9 + input[1] >= 0)
}

const nonNegative = (field: string, input: Duration.DurationInput | undefined, fallback: Duration.Duration) => {
  if (input === undefined) return Effect.succeed(fallback)
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return fail(field, `${field} is not a duration`)
  const millis = Duration.toMillis(decoded.value)
  return negativeInput(input) || Number.isNaN(millis) || millis < 0
    ? fail(field, `${field} must be a non-negative duration`)
    : Effect.succeed(decoded.value)
}

const validRefreshAt = (input: number | undefined) =>
  input === undefined
    ? Effect.succeed(defaultRefreshAt)
    : isRefreshAt(input)
      ? Effect.succeed(input)
      : fail("refreshAt", refreshAtMessage(input))

/**
 * Validates options. Fails with an {@link AuthConfigError} naming the field; no message ever
 * contains the secret.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Service, AuthConfigError> =>
  Effect.map(
    Effect.all({
      baseUrl: validBaseUrl(options.baseUrl),
      workspace: nonEmpty("workspace", options.workspace),
      apiKeyId: nonEmpty("apiKeyId", options.apiKeyId),
      apiKeySecret: Effect.map(
        nonEmpty(
          "apiKeySecret",
          Redacted.isRedacted(options.apiKeySecret) ? Redacted.value(options.apiKeySecret) : options.apiKeySecret
        ),
        Redacted.make
      ),
      requestTimeout: nonNegative("requestTimeout", options.requestTimeout, defaultRequestTimeout),
      refreshAt: validRefreshAt(options.refreshAt),
      expirySkew: nonNegative("expirySkew", options.expirySkew, defaultExpirySkew),
      retrySchedule: Effect.succeed(options.retrySchedule ?? defaultRetrySchedule),
      permanentRetrySchedule: Effect.succeed(options.permanentRetrySchedule ?? defaultPermanentRetrySchedule)
    }),
    (config): Service => ({ ...config, refreshSchedule: options.refreshSchedule ?? refreshAhead(config.refreshAt) })
  )

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<AuthConfig, AuthConfigError> =>
  Layer.effect(AuthConfig, make(options))

/**
 * The environment variables {@link layerConfig} reads (the CLI's help lists the same object,
 * from the shared folder, without loading the library).
 *
 * @since 0.1.0
 * @category constants
 */
export const env = variables

/**
 * Reads the options from the environment (`REVAULT_API_BASE_URL`, `REVAULT_WORKSPACE`,
 * `REVAULT_API_KEY_ID`, `REVAULT_API_KEY_SECRET`, and the optional `REVAULT_REQUEST_TIMEOUT`,
 * `REVAULT_REFRESH_AT`, `REVAULT_EXPIRY_SKEW`). An option given in `overrides` wins over its
 * variable, which is then not required.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig = (overrides: Partial<Options> = {}): Config.Config<Options> =>
  Config.all({
    baseUrl: orEnv(overrides.baseUrl, Config.string(env.baseUrl)),
    workspace: orEnv(overrides.workspace, Config.string(env.workspace)),
    apiKeyId: orEnv(overrides.apiKeyId, Config.string(env.apiKeyId)),
    apiKeySecret: orEnv(overrides.apiKeySecret, Config.redacted(env.apiKeySecret)),
    requestTimeout: optionalEnv(overrides.requestTimeout, nonNegativeDuration(env.requestTimeout)),
    refreshAt: optionalEnv(overrides.refreshAt, Config.number(env.refreshAt)),
    expirySkew: optionalEnv(overrides.expirySkew, nonNegativeDuration(env.expirySkew)),
    refreshSchedule: Config.succeed(overrides.refreshSchedule),
    retrySchedule: Config.succeed(overrides.retrySchedule),
    permanentRetrySchedule: Config.succeed(overrides.permanentRetrySchedule)
  })

/**
 * {@link layer} with the options read by {@link fromConfig}: a missing or malformed variable
 * fails with a `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  overrides?: Partial<Options>
): Layer.Layer<AuthConfig, ConfigError.ConfigError | AuthConfigError> =>
  Layer.effect(AuthConfig, Effect.flatMap(fromConfig(overrides), make))
