/**
 * A small AuthApi for the benchmarks (a trimmed copy of test/support/StubAuthApi.ts): no HTTP,
 * counters instead of call logs (so a 7-day run does not grow a list), and the expiry of every
 * token it issues written into the token itself (`AT-SECRET-<serial>-exp-<epoch ms>`), so a reader
 * can check what it is served against the server's view without any table that grows.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { AuthApi, type Service as AuthApiService } from "../../src/AuthApi.js"
import { AuthConfig, type Service as AuthConfigService, type Options } from "../../src/AuthConfig.js"
import { make as makeAuthService } from "../../src/AuthService.js"
import { TokenSet } from "../../src/TokenSet.js"
import { testConfig } from "../../test/support/StubAuthApi.js"

export interface StubOptions {
  /** Time each call takes on the `Clock`. Default 0. */
  readonly latency?: Duration.Input
  /** Default 300. */
  readonly expiresInSeconds?: number
  /** Default 1,800. */
  readonly refreshExpiresInSeconds?: number
  /** Pad access tokens to this many characters (a JWT's size) as a flat string. Default: no padding. */
  readonly accessTokenLength?: number
}

export interface Stub {
  readonly api: AuthApiService
  readonly counts: { authenticate: number; refresh: number }
  /** The first calls (at most 64), with the `Clock` time each was sent at. */
  readonly firstCalls: Array<{ readonly operation: "authenticate" | "refresh"; readonly at: number }>
  /** When a token this stub issued expires (epoch ms on the `Clock` it ran on). */
  readonly expiresAt: (token: Redacted.Redacted<string>) => number | undefined
}

export const makeStub = (options: StubOptions = {}): Stub => {
  const latency = Duration.fromInputUnsafe(options.latency ?? 0)
  const access = options.expiresInSeconds ?? 300
  const refreshLifetime = options.refreshExpiresInSeconds ?? 1800
  const counts = { authenticate: 0, refresh: 0 }
  const firstCalls: Stub["firstCalls"] = []
  let serial = 0
  // A JSON round trip flattens the string, as a token decoded from a response body would be.
  const token = (core: string): string =>
    options.accessTokenLength === undefined
      ? core
      : JSON.parse(JSON.stringify(`${"J".repeat(Math.max(0, options.accessTokenLength - core.length))}${core}`))

  const call = (operation: "authenticate" | "refresh") =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      counts[operation] += 1
      if (firstCalls.length < 64) firstCalls.push({ operation, at })
      if (Duration.toMillis(latency) > 0) yield* Effect.sleep(latency)
      serial += 1
      return new TokenSet({
        accessToken: Redacted.make(token(`AT-SECRET-${serial}-exp-${at + access * 1000}`)),
        expiresInSeconds: access,
        refreshToken: Redacted.make(`RT-SECRET-${serial}`),
        refreshExpiresInSeconds: refreshLifetime
      })
    })

  const api = AuthApi.of({ authenticate: call("authenticate"), refresh: () => call("refresh") })
  const expiresAt = (token: Redacted.Redacted<string>) => {
    const match = /-exp-(\d+)$/.exec(Redacted.value(token))
    return match?.[1] === undefined ? undefined : Number(match[1])
  }
  return { api, counts, firstCalls, expiresAt }
}

// The same configuration the tests use.
export const benchConfig: (overrides?: Partial<Options>) => Effect.Effect<AuthConfigService> = testConfig

/** An AuthService on `api` in the current scope. */
export const makeService = (api: AuthApiService, config: AuthConfigService) =>
  makeAuthService.pipe(Effect.provideService(AuthApi, api), Effect.provideService(AuthConfig, config))
