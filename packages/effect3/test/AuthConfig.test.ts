import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as Intervals from "effect/ScheduleIntervals"
import * as AuthConfig from "../src/AuthConfig.js"
import { AuthConfigError, type AuthError } from "../src/AuthError.js"

const secret = "s3cr3t-SECRET"

const valid: AuthConfig.Options = {
  baseUrl: "https://api.example.com/v1/rest",
  workspace: "ws",
  apiKeyId: "kid",
  apiKeySecret: secret
}

/** Every rendering of a value a log line or a crash report might use. */
const renderings = (u: unknown): ReadonlyArray<string> => [
  String(u),
  JSON.stringify(u) ?? "",
  inspect(u, { depth: 10 })
]

const assertNoSecret = (u: unknown): void => {
  for (const text of renderings(u)) {
    assert.notInclude(text, secret)
  }
}

/** Runs `make` expecting a failure on `field`; the error must never show the secret. */
const rejects = (options: AuthConfig.Options, field: string) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(AuthConfig.make(options))
    assert.instanceOf(error, AuthConfigError)
    assert.strictEqual(error.field, field)
    assert.include(String(error), field)
    assertNoSecret(error)
    return error
  })

describe("AuthConfig.make", () => {
  it.effect("accepts valid options and applies the defaults", () =>
    Effect.gen(function* () {
      const config = yield* AuthConfig.make(valid)
      assert.strictEqual(config.baseUrl, "https://api.example.com/v1/rest")
      assert.strictEqual(config.workspace, "ws")
      assert.strictEqual(config.apiKeyId, "kid")
      assert.isTrue(Redacted.isRedacted(config.apiKeySecret))
      assert.strictEqual(Redacted.value(config.apiKeySecret), secret)
      assert.isTrue(Duration.equals(config.requestTimeout, Duration.seconds(10)))
      assert.strictEqual(config.refreshAt, 0.8)
      assert.isTrue(Duration.equals(config.expirySkew, Duration.seconds(30)))
      assert.strictEqual(config.retrySchedule, AuthConfig.defaultRetrySchedule)
      assertNoSecret(config)
    })
  )

  it.effect("accepts a Redacted secret and explicit timing options", () =>
    Effect.gen(function* () {
      const config = yield* AuthConfig.make({
        ...valid,
        apiKeySecret: Redacted.make(secret),
        requestTimeout: "3 seconds",
        refreshAt: 0.5,
        expirySkew: 0
      })
      assert.strictEqual(Redacted.value(config.apiKeySecret), secret)
      assert.isTrue(Duration.equals(config.requestTimeout, Duration.seconds(3)))
      assert.strictEqual(config.refreshAt, 0.5)
      assert.isTrue(Duration.equals(config.expirySkew, Duration.zero))
    })
  )

  describe("required strings", () => {
    for (const field of ["workspace", "apiKeyId", "apiKeySecret"] as const) {
      it.effect(`rejects an empty ${field}`, () => rejects({ ...valid, [field]: "" }, field))
      it.effect(`rejects a whitespace-only ${field}`, () => rejects({ ...valid, [field]: " \t\n " }, field))
    }
    it.effect("rejects an empty Redacted apiKeySecret", () =>
      rejects({ ...valid, apiKeySecret: Redacted.make("   ") }, "apiKeySecret")
    )
  })

  describe("baseUrl", () => {
    it.effect("rejects a value that is not a URL", () =>
      rejects({ ...valid, baseUrl: "api.example.com/v1/rest" }, "baseUrl")
    )
    it.effect("rejects an empty baseUrl", () => rejects({ ...valid, baseUrl: "" }, "baseUrl"))
    it.effect("rejects plain http: to a non-loopback host", () =>
      rejects({ ...valid, baseUrl: "http://api.example.com/v1/rest" }, "baseUrl")
    )
    it.effect("rejects plain http: to a host that only starts like a loopback address", () =>
      rejects({ ...valid, baseUrl: "http://127.0.0.1.example.com/v1/rest" }, "baseUrl")
    )
    it.effect("rejects ftp:", () => rejects({ ...valid, baseUrl: "ftp://api.example.com/v1/rest" }, "baseUrl"))
    it.effect("rejects credentials in the URL", () =>
      rejects({ ...valid, baseUrl: "https://user:pw@api.example.com/v1/rest" }, "baseUrl")
    )

    for (const baseUrl of ["http://127.0.0.1", "http://127.5.6.7", "http://[::1]", "http://localhost"]) {
      it.effect(`accepts plain http: to loopback ${baseUrl}`, () =>
        Effect.gen(function* () {
          const config = yield* AuthConfig.make({ ...valid, baseUrl: `${baseUrl}:8080/v1/rest` })
          assert.strictEqual(config.baseUrl, `${baseUrl}:8080/v1/rest`)
          const bare = yield* AuthConfig.make({ ...valid, baseUrl })
          assert.strictEqual(bare.baseUrl, baseUrl)
        })
      )
    }

    it.effect("removes a trailing slash", () =>
      Effect.gen(function* () {
        const config = yield* AuthConfig.make({ ...valid, baseUrl: "https://api.example.com/v1/rest/" })
        assert.strictEqual(config.baseUrl, "https://api.example.com/v1/rest")
      })
    )

    it.effect("accepts a URL object", () =>
      Effect.gen(function* () {
        const config = yield* AuthConfig.make({ ...valid, baseUrl: new URL("https://api.example.com/v1/rest/") })
        assert.strictEqual(config.baseUrl, "https://api.example.com/v1/rest")
      })
    )
  })

  describe("refreshAt", () => {
    for (const refreshAt of [0, 1, -0.1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it.effect(`rejects ${refreshAt}`, () => rejects({ ...valid, refreshAt }, "refreshAt"))
    }
    it.effect("accepts 0.5", () =>
      Effect.gen(function* () {
        const config = yield* AuthConfig.make({ ...valid, refreshAt: 0.5 })
        assert.strictEqual(config.refreshAt, 0.5)
      })
    )
  })

  describe("durations", () => {
    for (const field of ["requestTimeout", "expirySkew"] as const) {
      it.effect(`rejects a negative ${field} in millis`, () => rejects({ ...valid, [field]: -1 }, field))
      it.effect(`rejects a negative ${field} as text`, () => rejects({ ...valid, [field]: "-5 seconds" }, field))
      it.effect(`rejects a NaN ${field}`, () => rejects({ ...valid, [field]: Number.NaN }, field))
      it.effect(`accepts a zero ${field}`, () =>
        Effect.gen(function* () {
          const config = yield* AuthConfig.make({ ...valid, [field]: 0 })
          assert.isTrue(Duration.equals(config[field], Duration.zero))
        })
      )
    }
  })

  it.effect("no error message contains the secret, whichever field fails", () =>
    Effect.gen(function* () {
      const bad: ReadonlyArray<readonly [Partial<AuthConfig.Options>, string]> = [
        [{ baseUrl: "nope" }, "baseUrl"],
        [{ baseUrl: "http://example.com" }, "baseUrl"],
        [{ workspace: "" }, "workspace"],
        [{ apiKeyId: " " }, "apiKeyId"],
        [{ refreshAt: 2 }, "refreshAt"],
        [{ requestTimeout: -1 }, "requestTimeout"],
        [{ expirySkew: -1 }, "expirySkew"]
      ]
      for (const [override, field] of bad) {
        const error = yield* rejects({ ...valid, ...override }, field)
        const exit = yield* Effect.exit(AuthConfig.make({ ...valid, ...override }))
        assert.strictEqual(exit._tag, "Failure")
        assertNoSecret(exit)
        assertNoSecret(error.message)
      }
    })
  )

  it.effect("layer provides the validated service", () =>
    Effect.gen(function* () {
      const config = yield* AuthConfig.AuthConfig
      assert.strictEqual(config.baseUrl, "https://api.example.com/v1/rest")
    }).pipe(Effect.provide(AuthConfig.layer({ ...valid, baseUrl: "https://api.example.com/v1/rest/" })))
  )

  it.effect("layer fails with the AuthConfigError", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Effect.provide(AuthConfig.AuthConfig, AuthConfig.layer({ ...valid, workspace: "" }))
      )
      assert.instanceOf(error, AuthConfigError)
      assert.strictEqual(error.field, "workspace")
    })
  )
})

const envEntries: ReadonlyArray<readonly [string, string]> = [
  ["REVAULT_API_BASE_URL", "https://api.example.com/v1/rest/"],
  ["REVAULT_WORKSPACE", "env-ws"],
  ["REVAULT_API_KEY_ID", "env-kid"],
  ["REVAULT_API_KEY_SECRET", secret],
  ["REVAULT_REQUEST_TIMEOUT", "5 seconds"]
]

const provider = (entries: ReadonlyArray<readonly [string, string]>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const fromEnv = (entries: ReadonlyArray<readonly [string, string]>, overrides?: Partial<AuthConfig.Options>) =>
  Effect.provide(AuthConfig.AuthConfig, AuthConfig.layerConfig(overrides).pipe(Layer.provide(provider(entries))))

const without = (name: string) => envEntries.filter(([key]) => key !== name)

describe("AuthConfig.layerConfig", () => {
  it.effect("reads every variable", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv(envEntries)
      assert.strictEqual(config.baseUrl, "https://api.example.com/v1/rest")
      assert.strictEqual(config.workspace, "env-ws")
      assert.strictEqual(config.apiKeyId, "env-kid")
      assert.strictEqual(Redacted.value(config.apiKeySecret), secret)
      assert.isTrue(Duration.equals(config.requestTimeout, Duration.seconds(5)))
      assert.strictEqual(config.refreshAt, 0.8)
      assert.isTrue(Duration.equals(config.expirySkew, Duration.seconds(30)))
    })
  )

  it.effect("a negative duration in the environment is a ConfigError naming the variable, not zero", () =>
    Effect.gen(function* () {
      for (const name of ["REVAULT_REQUEST_TIMEOUT", "REVAULT_EXPIRY_SKEW"]) {
        const error = yield* Effect.flip(fromEnv([...without(name), [name, "-5 seconds"]]))
        assert.isTrue(ConfigError.isConfigError(error), String(error))
        assert.include(String(error), name)
        assert.include(String(error), "non-negative")
      }
      const skew = yield* fromEnv([...envEntries, ["REVAULT_EXPIRY_SKEW", "2 seconds"]])
      assert.isTrue(Duration.equals(skew.expirySkew, Duration.seconds(2)))
    })
  )

  it.effect("the env variable names are the documented ones", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(
        [AuthConfig.env.baseUrl, AuthConfig.env.workspace, AuthConfig.env.apiKeyId, AuthConfig.env.apiKeySecret],
        ["REVAULT_API_BASE_URL", "REVAULT_WORKSPACE", "REVAULT_API_KEY_ID", "REVAULT_API_KEY_SECRET"]
      )
      assert.strictEqual(AuthConfig.env.requestTimeout, "REVAULT_REQUEST_TIMEOUT")
    })
  )

  it.effect("works through Effect.withConfigProvider too", () =>
    Effect.gen(function* () {
      const config = yield* Effect.provide(AuthConfig.AuthConfig, AuthConfig.layerConfig()).pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(envEntries)))
      )
      assert.strictEqual(config.workspace, "env-ws")
    })
  )

  it.effect("REVAULT_REQUEST_TIMEOUT is optional", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv(without("REVAULT_REQUEST_TIMEOUT"))
      assert.isTrue(Duration.equals(config.requestTimeout, Duration.seconds(10)))
    })
  )

  for (const name of ["REVAULT_API_BASE_URL", "REVAULT_WORKSPACE", "REVAULT_API_KEY_ID", "REVAULT_API_KEY_SECRET"]) {
    it.effect(`a missing ${name} is a ConfigError naming it`, () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(fromEnv(without(name)))
        assert.isTrue(ConfigError.isConfigError(error))
        assert.isTrue(ConfigError.isConfigError(error) && ConfigError.isMissingDataOnly(error))
        assert.include(String(error), name)
        assertNoSecret(error)
      })
    )
  }

  it.effect("a malformed REVAULT_REQUEST_TIMEOUT is a ConfigError naming it", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        fromEnv([...without("REVAULT_REQUEST_TIMEOUT"), ["REVAULT_REQUEST_TIMEOUT", "soon"]])
      )
      assert.isTrue(ConfigError.isConfigError(error))
      assert.include(String(error), "REVAULT_REQUEST_TIMEOUT")
      assertNoSecret(error)
    })
  )

  it.effect("an invalid value from env is an AuthConfigError without the secret", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        fromEnv([...without("REVAULT_API_BASE_URL"), ["REVAULT_API_BASE_URL", "http://api.example.com"]])
      )
      assert.instanceOf(error, AuthConfigError)
      assert.strictEqual(error instanceof AuthConfigError ? error.field : undefined, "baseUrl")
      assertNoSecret(error)
    })
  )

  it.effect("overrides win over the environment", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv(envEntries, {
        workspace: "override-ws",
        apiKeySecret: Redacted.make("override-secret"),
        requestTimeout: "1 second"
      })
      assert.strictEqual(config.workspace, "override-ws")
      assert.strictEqual(config.apiKeyId, "env-kid")
      assert.strictEqual(Redacted.value(config.apiKeySecret), "override-secret")
      assert.isTrue(Duration.equals(config.requestTimeout, Duration.seconds(1)))
    })
  )

  it.effect("an overridden variable is not required", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv(
        envEntries.filter(([key]) => key !== "REVAULT_WORKSPACE" && key !== "REVAULT_API_KEY_SECRET"),
        { workspace: "override-ws", apiKeySecret: "override-secret" }
      )
      assert.strictEqual(config.workspace, "override-ws")
      assert.strictEqual(Redacted.value(config.apiKeySecret), "override-secret")
      const onlyOverrides = yield* fromEnv([], valid)
      assert.strictEqual(onlyOverrides.workspace, "ws")
    })
  )

  it.effect("the secret from env is Redacted and never rendered", () =>
    Effect.gen(function* () {
      const config = yield* fromEnv(envEntries)
      assert.isTrue(Redacted.isRedacted(config.apiKeySecret))
      assert.strictEqual(String(config.apiKeySecret), "<redacted>")
      assertNoSecret(config)
      assertNoSecret(config.apiKeySecret)
      assert.strictEqual(Redacted.value(config.apiKeySecret), secret)
    })
  )
})

describe("default retry schedules", () => {
  const delays = (schedule: Schedule.Schedule<unknown, AuthError>, steps: number) =>
    Effect.gen(function* () {
      let state = schedule.initial
      const out: Array<number> = []
      for (let i = 0; i < steps; i++) {
        const [next, , decision] = yield* schedule.step(0, undefined as never, state)
        state = next
        out.push(ScheduleDecision.isDone(decision) ? -1 : Intervals.start(decision.intervals))
      }
      return out
    })

  it.live("the transient schedule is exponential from 250 ms, jittered (0.8-1.2×), capped at 30 s", () =>
    Effect.gen(function* () {
      const runs = yield* Effect.all(Array.from({ length: 20 }, () => delays(AuthConfig.defaultRetrySchedule, 12)))
      for (const run of runs) {
        run.forEach((delay, i) => {
          const nominal = 250 * 2 ** i
          assert.isAtLeast(delay, Math.min(nominal * 0.8, 30_000) - 1)
          assert.isAtMost(delay, Math.min(nominal * 1.2, 30_000) + 1)
        })
      }
      // Jitter: the first delays are not all the nominal value.
      assert.isTrue(runs.some((run) => run[0] !== 250 || run[1] !== 500))
      assert.isTrue(runs.every((run) => run[11] === 30_000))
    })
  )

  it.live("the permanent schedule starts at 1 s and is capped at 60 s", () =>
    Effect.gen(function* () {
      const run = yield* delays(AuthConfig.defaultPermanentRetrySchedule, 10)
      assert.isAtLeast(run[0] ?? 0, 799)
      assert.isAtMost(run[0] ?? 0, 1201)
      assert.strictEqual(run[9], 60_000)
    })
  )
})
