import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import { AuthApi } from "../src/AuthApi.js"
import { AuthConfig } from "../src/AuthConfig.js"
import { make as makeAuthService, type Service } from "../src/AuthService.js"
import { MetricsByWorkspace } from "../src/internal/tokenManager.js"
import { type Key, type StoredTokenSet, TokenStore, TokenStoreError } from "../src/TokenStore.js"
import { captureLogs } from "./support/captureLogs.js"
import { makeStubApi, settle, testConfig } from "./support/StubAuthApi.js"
import { storedSet } from "./support/storedSet.js"

/** A TokenStore in memory, one entry per workspace and key id, counting its calls. */
const memoryStore = () => {
  const entries = new Map<string, StoredTokenSet>()
  const calls = { get: 0, set: 0 }
  const id = (key: Key) => `${key.workspace}/${key.apiKeyId}`
  const store = TokenStore.of({
    get: (key) =>
      Effect.sync(() => {
        calls.get++
        return Option.fromUndefinedOr(entries.get(id(key)))
      }),
    set: (key, value) =>
      Effect.sync(() => {
        calls.set++
        entries.set(id(key), value)
      }),
    remove: (key) => Effect.sync(() => void entries.delete(id(key)))
  })
  return { store, entries, calls }
}

/**
 * One "process": a stub API and an AuthService on `store`, used by `use` then stopped. The stub
 * is returned so the test can count its requests.
 */
const run = <A, E>(store: TokenStore["Service"], use: (auth: Service) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const stub = yield* makeStubApi()
    const config = yield* testConfig()
    const scope = yield* Scope.make()
    const auth = yield* makeAuthService.pipe(
      Effect.provideService(AuthApi, stub.api),
      Effect.provideService(AuthConfig, config),
      Effect.provideService(TokenStore, store),
      Scope.provide(scope)
    )
    const result = yield* use(auth).pipe(Effect.ensuring(Scope.close(scope, Exit.void)))
    return { result, calls: yield* stub.calls }
  })

const token = (auth: Service) => Effect.map(auth.accessToken, Redacted.value)

describe("AuthService with a TokenStore", () => {
  it.effect("the set obtained is saved before it is handed out; the next process reuses it", () =>
    Effect.gen(function* () {
      const { calls, entries, store } = memoryStore()
      const first = yield* run(store, (auth) =>
        Effect.tap(token(auth), () => Effect.sync(() => assert.strictEqual(calls.set, 1)))
      )
      assert.strictEqual(first.result, "AT-SECRET-1")
      assert.strictEqual(entries.size, 1)
      const second = yield* run(store, token)
      assert.strictEqual(second.result, "AT-SECRET-1")
      assert.deepStrictEqual(second.calls, [])
    })
  )

  it.effect("a restarted process judges the stored set by its absolute times", () =>
    Effect.gen(function* () {
      const { store } = memoryStore()
      yield* run(store, token)
      // 200 s later the token (300 s, 30 s skew) is usable: no request.
      yield* TestClock.setTime(200_000)
      assert.deepStrictEqual((yield* run(store, token)).calls, [])
      // The refresh-ahead point comes from the stored send time (240 s), not from the restart.
      const ahead = yield* run(store, (auth) =>
        Effect.gen(function* () {
          yield* settle
          yield* TestClock.adjust("39 seconds")
          yield* TestClock.adjust("1 second")
          yield* settle
          return yield* auth.session
        })
      )
      assert.deepStrictEqual(
        ahead.calls.map((c) => [c.operation, c.at]),
        [["refresh", 240_000]]
      )
      assert.strictEqual(ahead.result.source, "refresh")
      // Past the access token's usable time, within the refresh token's: one refresh at start.
      yield* TestClock.setTime(520_000)
      assert.deepStrictEqual(
        (yield* run(store, token)).calls.map((c) => c.operation),
        ["refresh"]
      )
      // Hours later both tokens are dead: the stored set is ignored and the API key exchanged.
      yield* TestClock.setTime(5 * 3_600_000)
      assert.deepStrictEqual(
        (yield* run(store, token)).calls.map((c) => c.operation),
        ["authenticate"]
      )
    })
  )

  it.effect("a stored set beyond the largest Date, or with times out of order, is ignored with a debug log", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { entries, store } = memoryStore()
      const cases = [
        [{ sentAt: 0, obtainedAt: 100, expiresAt: 1e16, refreshExpiresAt: 1e16 }, "time-out-of-range"],
        [{ sentAt: 0, obtainedAt: 100, expiresAt: 0, refreshExpiresAt: 1_800_000 }, "times-out-of-order"]
      ] as const
      for (const [times, reason] of cases) {
        entries.set("ws/kid", storedSet(times))
        const { calls, result } = yield* withLogs(run(store, token))
        assert.strictEqual(result, "AT-SECRET-1")
        assert.deepStrictEqual(
          calls.map((c) => c.operation),
          ["authenticate"]
        )
        assert.isTrue(
          lines.some((l) => l.includes("level=DEBUG") && l.includes(`reason=${reason}`)),
          lines.join("\n")
        )
      }
    })
  )

  it.effect("a set written under a clock 10 minutes ahead is not trusted; 500 ms ahead is", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { entries, store } = memoryStore()
      yield* TestClock.setTime(3_600_000)
      const now = 3_600_000
      const ahead = (millis: number) =>
        storedSet({
          sentAt: now + millis - 200,
          obtainedAt: now + millis,
          expiresAt: now + millis - 200 + 300_000,
          refreshExpiresAt: now + millis - 200 + 1_800_000
        })
      entries.set("ws/kid", ahead(600_000))
      const untrusted = yield* withLogs(run(store, token))
      // Not even its refresh token is spent: the API key is exchanged.
      assert.deepStrictEqual(
        untrusted.calls.map((c) => c.operation),
        ["authenticate"]
      )
      assert.isTrue(
        lines.some((l) => l.includes("reason=obtained-in-the-future")),
        lines.join("\n")
      )
      entries.set("ws/kid", ahead(500))
      const trusted = yield* run(store, token)
      assert.strictEqual(trusted.result, "AT-STORED")
      assert.deepStrictEqual(trusted.calls, [])
    })
  )

  it.effect("a store that fails, dies or hangs never fails a token read; nothing it logs holds a secret", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const failure = (operation: "get" | "set" | "remove") =>
        new TokenStoreError({ operation, cause: new Error("permission denied") })
      const failing = TokenStore.of({
        get: () => Effect.fail(failure("get")),
        set: () => Effect.fail(failure("set")),
        remove: () => Effect.fail(failure("remove"))
      })
      assert.strictEqual((yield* withLogs(run(failing, token))).result, "AT-SECRET-1")
      const warnings = lines.filter((l) => l.includes("level=WARN"))
      assert.isTrue(
        warnings.some((l) => l.includes("could not be read")),
        lines.join("\n")
      )
      assert.isTrue(
        warnings.some((l) => l.includes("could not be written")),
        lines.join("\n")
      )
      assert.notInclude(lines.join("\n"), "AT-SECRET")
      assert.notInclude(lines.join("\n"), "API-KEY-SECRET")

      const dying = TokenStore.of({
        get: () => Effect.die(new Error("bug in the store")),
        set: () => Effect.die(new Error("bug in the store")),
        remove: () => Effect.void
      })
      assert.strictEqual((yield* run(dying, token)).result, "AT-SECRET-1")

      // A store that never answers costs a bounded wait (2 s on the Clock), at start and after the request.
      const hanging = TokenStore.of({ get: () => Effect.never, set: () => Effect.never, remove: () => Effect.never })
      const reader = yield* Effect.forkChild(run(hanging, token))
      yield* settle
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.isUndefined(reader.pollUnsafe(), "the read waits for the write")
      yield* TestClock.adjust("2 seconds")
      yield* settle
      const exit = reader.pollUnsafe()
      assert.isTrue(exit !== undefined && Exit.isSuccess(exit) && exit.value.result === "AT-SECRET-1")
    })
  )
})

describe("AuthService metrics", () => {
  it.effect("MetricsByWorkspace off: counters carry no workspace attribute, and no gauge is recorded", () =>
    Effect.gen(function* () {
      const { store } = memoryStore()
      yield* run(store, token).pipe(Effect.provideService(MetricsByWorkspace, false))
      const snapshot = yield* Metric.snapshot
      const counters = snapshot.filter((m) => m.id === "revault_auth_acquisitions_total")
      assert.isAtLeast(counters.length, 1)
      assert.isTrue(counters.every((m) => m.attributes === undefined || !("workspace" in m.attributes)))
      assert.isUndefined(snapshot.find((m) => m.id === "revault_auth_token_remaining_seconds"))
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )

  it.effect("by default: counters and the gauge carry the workspace", () =>
    Effect.gen(function* () {
      const { store } = memoryStore()
      yield* run(store, token)
      const snapshot = yield* Metric.snapshot
      const counter = snapshot.find((m) => m.id === "revault_auth_acquisitions_total")
      assert.deepStrictEqual(counter?.attributes, { source: "authenticate", outcome: "success", workspace: "ws" })
      const gauge = snapshot.find((m) => m.id === "revault_auth_token_remaining_seconds")
      assert.deepStrictEqual(gauge?.attributes, { workspace: "ws" })
      assert.isTrue(gauge?.type === "Gauge" && gauge.state.value === 300)
    }).pipe(Effect.provideService(Metric.MetricRegistry, new Map()))
  )
})
