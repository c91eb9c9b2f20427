import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import { AuthApi, type Service as AuthApiService } from "../../src/AuthApi.js"
import { AuthConfig, make as makeConfig, type Options } from "../../src/AuthConfig.js"
import type { AuthError, Operation } from "../../src/AuthError.js"
import { make as makeAuthService } from "../../src/AuthService.js"
import { TokenSet } from "../../src/TokenSet.js"

export interface Issued {
  readonly token: string
  readonly operation: Operation
  readonly issuedAt: number
  readonly expiresAt: number
}

export interface StubOptions {
  readonly latency?: Duration.Input
  readonly expiresInSeconds?: number
  readonly refreshExpiresInSeconds?: number
  /** Refresh tokens keep the lifetime of the API-key exchange that started the chain (no renewal). */
  readonly absoluteRefreshLifetime?: boolean
}

/**
 * A scripted, counting AuthApi: every call takes `latency` on the Clock, records how many calls
 * were in flight at once, and answers with the next scripted error for its operation, or a fresh
 * token set.
 */
export const makeStubApi = (options: StubOptions = {}) =>
  Effect.gen(function* () {
    const latency = Duration.fromInputUnsafe(options.latency ?? 0)
    const calls = yield* Ref.make<ReadonlyArray<{ operation: Operation; at: number }>>([])
    const inflight = yield* Ref.make(0)
    const maxInflight = yield* Ref.make(0)
    const issued = yield* Ref.make<ReadonlyArray<Issued>>([])
    const script = yield* Ref.make<ReadonlyArray<{ operation: Operation; error: AuthError }>>([])
    const lifetimes = yield* Ref.make({
      access: options.expiresInSeconds ?? 300,
      refresh: options.refreshExpiresInSeconds ?? 1800
    })
    let serial = 0
    let chainExpiresAt = 0

    const call = (operation: Operation) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        yield* Ref.update(calls, (list) => [...list, { operation, at }])
        const now = yield* Ref.updateAndGet(inflight, (n) => n + 1)
        yield* Ref.update(maxInflight, (m) => Math.max(m, now))
        if (Duration.toMillis(latency) > 0) yield* Effect.sleep(latency)
        const scripted = yield* Ref.modify(script, (list) => {
          const index = list.findIndex((entry) => entry.operation === operation)
          const entry = list[index]
          return entry === undefined ? [undefined, list] : [entry.error, list.filter((_, i) => i !== index)]
        })
        if (scripted !== undefined) return yield* Effect.fail(scripted)
        const { access, refresh: refreshLifetime } = yield* Ref.get(lifetimes)
        if (operation === "authenticate" || !options.absoluteRefreshLifetime)
          chainExpiresAt = at + refreshLifetime * 1000
        const refresh = (chainExpiresAt - at) / 1000
        serial += 1
        const token = `AT-SECRET-${serial}`
        yield* Ref.update(issued, (list) => [
          ...list,
          { token, operation, issuedAt: at, expiresAt: at + access * 1000 }
        ])
        return new TokenSet({
          accessToken: Redacted.make(token),
          expiresInSeconds: access,
          refreshToken: Redacted.make(`RT-SECRET-${serial}`),
          refreshExpiresInSeconds: refresh
        })
      }).pipe(Effect.ensuring(Ref.update(inflight, (n) => n - 1)))

    const api: AuthApiService = AuthApi.of({
      authenticate: call("authenticate"),
      refresh: () => call("refresh")
    })

    return {
      api,
      calls: Ref.get(calls),
      count: (operation?: Operation) =>
        Effect.map(
          Ref.get(calls),
          (list) => list.filter((c) => operation === undefined || c.operation === operation).length
        ),
      maxInflight: Ref.get(maxInflight),
      issued: Ref.get(issued),
      /** Make the next `times` calls of `operation` fail with `error`. */
      fail: (operation: Operation, error: AuthError, times = 1) =>
        Ref.update(script, (list) => [...list, ...Array.from({ length: times }, () => ({ operation, error }))]),
      clearScript: Ref.set(script, []),
      setLifetimes: (access: number, refresh: number) => Ref.set(lifetimes, { access, refresh })
    }
  })

export const testConfig = (overrides: Partial<Options> = {}) =>
  makeConfig({
    baseUrl: "https://api.example.com/v1/rest",
    workspace: "ws",
    apiKeyId: "kid",
    apiKeySecret: "API-KEY-SECRET",
    ...overrides
  }).pipe(Effect.orDie)

/** A stub API and an AuthService on it, built in the current scope. */
export const setup = (options: StubOptions & { readonly config?: Partial<Options> } = {}) =>
  Effect.gen(function* () {
    const stub = yield* makeStubApi(options)
    const config = yield* testConfig(options.config)
    const service = yield* makeAuthService.pipe(
      Effect.provideService(AuthApi, stub.api),
      Effect.provideService(AuthConfig, config)
    )
    return { stub, service, config }
  })

/** Lets every runnable fiber run until the system is idle at the current TestClock time. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})
