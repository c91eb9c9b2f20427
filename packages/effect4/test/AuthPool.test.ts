import { inspect } from "node:util"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import * as AuthPool from "../src/AuthPool.js"
import * as MockRevault from "../src/MockRevault.js"
import * as TokenStore from "../src/TokenStore.js"
import { captureLogs } from "./support/captureLogs.js"
import { type RecordingSpan, recordingTracer } from "./support/RecordingTracer.js"

const keyA = { apiKeyId: "key-a", apiKeySecret: "secret-a", workspaces: ["ws-a"] }
const keyB = { apiKeyId: "key-b", apiKeySecret: "secret-b", workspaces: ["ws-b"] }
const credsA = { workspace: "ws-a", apiKeyId: "key-a", apiKeySecret: "secret-a" }
const credsB = { workspace: "ws-b", apiKeyId: "key-b", apiKeySecret: "secret-b" }

const mockLayer = MockRevault.layer({ keys: [keyA, keyB] })

// Tests that move the clock while a request is on the wire set a long `requestTimeout`: the
// timeout runs on the Clock, and would otherwise fire whenever the wire is slower than the jump.
const env = (options: Partial<AuthPool.Options> = {}) =>
  Layer.unwrap(
    Effect.map(MockRevault.MockRevault, (mock) => AuthPool.layer({ baseUrl: mock.baseUrl, ...options }))
  ).pipe(Layer.provideMerge(mockLayer), Layer.provide(NodeHttpClient.layerUndici))

const acquisitions = Effect.flatMap(MockRevault.MockRevault, (mock) =>
  Effect.all({ authenticate: mock.count("authenticate"), refresh: mock.count("refresh") })
)

const token = (credentials: AuthPool.CredentialsInput) =>
  Effect.scoped(Effect.flatMap(AuthPool.get(credentials), (auth) => Effect.map(auth.accessToken, Redacted.value)))

const me = (credentials: AuthPool.CredentialsInput) =>
  Effect.scoped(
    Effect.flatMap(AuthPool.client(credentials), (client) =>
      Effect.flatMap(client.get("/users/me"), (response) =>
        response.status === 200
          ? Effect.map(response.json, (body) => ({
              status: 200,
              workspace: Predicate.hasProperty(body, "workspace") ? String(body.workspace) : ""
            }))
          : Effect.succeed({ status: response.status, workspace: "" })
      )
    )
  )

/** Lets every runnable fiber run until the system is idle at the current TestClock time. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** A TokenStore in memory, as a process would keep one. */
const memoryStore = Layer.sync(TokenStore.TokenStore, () => {
  const entries = new Map<string, TokenStore.StoredTokenSet>()
  const id = (key: TokenStore.Key) => `${key.workspace}/${key.apiKeyId}`
  return {
    get: (key) => Effect.sync(() => Option.fromNullishOr(entries.get(id(key)))),
    set: (key, value) =>
      Effect.sync(() => {
        entries.set(id(key), value)
      }),
    remove: (key) =>
      Effect.sync(() => {
        entries.delete(id(key))
      })
  }
})

describe("AuthPool", () => {
  it.effect("100 concurrent gets of one key share one AuthService and one POST", () =>
    Effect.gen(function* () {
      const services = yield* Effect.all(
        Array.from({ length: 100 }, () => AuthPool.get(credsA)),
        { concurrency: "unbounded" }
      )
      assert.isTrue(services.every((s) => s === services[0]))
      const tokens = yield* Effect.all(
        services.map((s) => s.accessToken),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(new Set(tokens.map(Redacted.value)).size, 1)
      // The same key given as a Redacted secret, or as Credentials, is the same entry.
      const again = yield* AuthPool.get({ ...credsA, apiKeySecret: Redacted.make(credsA.apiKeySecret) })
      const asClass = yield* AuthPool.get(AuthPool.Credentials.from(credsA))
      assert.strictEqual(again, services[0])
      assert.strictEqual(asClass, services[0])
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 1, refresh: 0 })
    }).pipe(Effect.provide(env()))
  )

  it.effect("an idle entry is released after idleTimeToLive and its background refresh stops", () =>
    Effect.gen(function* () {
      const first = yield* Effect.scoped(AuthPool.get(credsA))
      yield* Effect.scoped(Effect.flatMap(AuthPool.get(credsA), (auth) => auth.accessToken))
      // Within the idle time: the same entry, no new request.
      yield* TestClock.adjust("59 seconds")
      assert.strictEqual(yield* Effect.scoped(AuthPool.get(credsA)), first)
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 1, refresh: 0 })
      // Idle for a full minute: released. Hours later its 240 s refresh-ahead has never run.
      yield* TestClock.adjust("1 minute")
      yield* settle
      yield* TestClock.adjust("3 hours")
      yield* settle
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 1, refresh: 0 })
      // The next get builds a new entry, with a new token.
      const second = yield* Effect.scoped(
        Effect.flatMap(AuthPool.get(credsA), (auth) => Effect.as(auth.accessToken, auth))
      )
      assert.notStrictEqual(second, first)
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 2, refresh: 0 })
    }).pipe(Effect.provide(env({ idleTimeToLive: "1 minute" })))
  )

  it.effect("an entry held by a scope is kept and refreshed however long it lives", () =>
    Effect.gen(function* () {
      const auth = yield* AuthPool.get(credsA)
      const first = Redacted.value(yield* auth.accessToken)
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.strictEqual(yield* AuthPool.get(credsA), auth)
      const latest = yield* me(credsA)
      assert.deepStrictEqual(latest, { status: 200, workspace: "ws-a" })
      assert.notStrictEqual(Redacted.value(yield* auth.accessToken), first)
      assert.isAtLeast((yield* acquisitions).refresh, 1)
    }).pipe(Effect.provide(env({ idleTimeToLive: "1 minute", requestTimeout: "1 hour" })))
  )

  it.effect("capacity: a new key beyond it fails with AuthPoolCapacityError; idle entries count until released", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* Scope.provide(AuthPool.get(credsA), scope)
      const error = yield* Effect.flip(Effect.scoped(AuthPool.get(credsB)))
      assert.strictEqual(error._tag, "AuthPoolCapacityError")
      assert.deepInclude(error, { capacity: 1, workspace: "ws-b", apiKeyId: "key-b" })
      assert.include(error.message, "capacity of 1")
      assert.notInclude(error.message, "secret")
      // A key already in the pool is not refused.
      yield* Effect.scoped(AuthPool.get(credsA))
      // Released by its holder but idle: it still takes the slot.
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* Effect.flip(Effect.scoped(AuthPool.get(credsB))))._tag, "AuthPoolCapacityError")
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.deepStrictEqual(yield* me(credsB), { status: 200, workspace: "ws-b" })
    }).pipe(Effect.provide(env({ capacity: 1, idleTimeToLive: "1 minute" })))
  )

  it.effect("invalid credentials fail with AuthConfigError and take no slot", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(AuthPool.get({ ...credsA, workspace: " " })))
      assert.strictEqual(error._tag, "AuthConfigError")
      assert.isTrue(AuthPool.isAuthPoolError(error))
      assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
    }).pipe(Effect.provide(env({ capacity: 1 })))
  )

  it.effect("invalid pool options fail with AuthConfigError naming the field", () =>
    Effect.gen(function* () {
      const build = (options: Partial<AuthPool.Options>) =>
        Effect.flip(
          Effect.provide(AuthPool.AuthPool, AuthPool.layer({ baseUrl: "https://api.example.com/v1", ...options }))
        ).pipe(Effect.provide(NodeHttpClient.layerUndici))
      for (const [options, field] of [
        [{ capacity: 0 }, "capacity"],
        [{ capacity: 1.5 }, "capacity"],
        [{ idleTimeToLive: "-1 second" }, "idleTimeToLive"],
        [{ idleTimeToLive: Number.NaN }, "idleTimeToLive"],
        [{ refreshAt: 2 }, "refreshAt"]
      ] as const) {
        const error = yield* build(options)
        assert.deepInclude(error, { _tag: "AuthConfigError", field }, JSON.stringify(options))
      }
    })
  )

  describe("isolation between workspaces on one MockRevault", () => {
    it.effect("a refused key in one workspace leaves the other untouched", () =>
      Effect.gen(function* () {
        const a = yield* AuthPool.get(credsA)
        const tokenA = Redacted.value(yield* a.accessToken)
        const wrongB = { ...credsB, apiKeySecret: "revoked-secret" }
        const b = yield* AuthPool.get(wrongB)
        const error = yield* Effect.flip(b.accessToken)
        assert.strictEqual(error._tag, "UnauthorizedError")
        // B keeps retrying with its backoff; A is served from its cache all along.
        for (let i = 0; i < 6; i++) {
          yield* TestClock.adjust("10 seconds")
          yield* settle
          assert.strictEqual(Redacted.value(yield* a.accessToken), tokenA)
        }
        assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
        const session = yield* a.session
        assert.strictEqual(session.source, "authenticate")
        assert.strictEqual((yield* Effect.flip(b.accessToken))._tag, "UnauthorizedError")
      }).pipe(Effect.provide(env({ requestTimeout: "1 hour" })))
    )

    it.effect("server failures while one workspace acquires do not touch the other", () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const tokenA = yield* token(credsA)
        yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 500 }), 3)
        const error = yield* Effect.flip(token(credsB))
        assert.strictEqual(error._tag, "InternalServerError")
        assert.strictEqual(yield* token(credsA), tokenA)
        assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
        // B recovers once the server does (a forced acquisition: its backoff is its own business).
        yield* mock.clearFaults
        yield* Effect.scoped(Effect.flatMap(AuthPool.get(credsB), (b) => b.refresh))
        assert.deepStrictEqual(yield* me(credsB), { status: 200, workspace: "ws-b" })
        assert.strictEqual(yield* token(credsA), tokenA)
      }).pipe(Effect.provide(env()))
    )

    it.effect("a 401 from a resource in one workspace invalidates that workspace's token only", () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const tokenA = yield* token(credsA)
        const tokenB = yield* token(credsB)
        const before = yield* acquisitions
        yield* mock.fault("me", MockRevault.Fault.Status({ status: 401 }))
        // A's request is refused once, its token replaced, the request replayed.
        assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
        assert.notStrictEqual(yield* token(credsA), tokenA)
        assert.strictEqual(yield* token(credsB), tokenB)
        const after = yield* acquisitions
        assert.strictEqual(after.authenticate + after.refresh - (before.authenticate + before.refresh), 1)
      }).pipe(Effect.provide(env()))
    )
  })

  it.effect("with a TokenStore, a re-created entry reuses its workspace's stored set", () =>
    Effect.gen(function* () {
      const tokenA = yield* token(credsA)
      const tokenB = yield* token(credsB)
      yield* Effect.flatMap(AuthPool.AuthPool, (pool) => pool.invalidate(credsA))
      yield* Effect.flatMap(AuthPool.AuthPool, (pool) => pool.invalidate(credsB))
      yield* settle
      assert.strictEqual(yield* token(credsA), tokenA)
      assert.strictEqual(yield* token(credsB), tokenB)
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 2, refresh: 0 })
    }).pipe(Effect.provide(env().pipe(Layer.provide(memoryStore))))
  )

  it.effect("an entry never uses the TokenStore of the caller that created it", () =>
    Effect.gen(function* () {
      let callerStoreUsed = false
      const used = Effect.sync(() => {
        callerStoreUsed = true
      })
      const callerStore = TokenStore.TokenStore.of({
        get: () => Effect.as(used, Option.none()),
        set: () => used,
        remove: () => used
      })
      yield* token(credsA).pipe(Effect.provideService(TokenStore.TokenStore, callerStore))
      assert.isFalse(callerStoreUsed)
    }).pipe(Effect.provide(env()))
  )

  it.effect("layerConfig reads the base URL and pool options from the environment", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const provider = ConfigProvider.fromEnvRecord({
        REVAULT_API_BASE_URL: mock.baseUrl,
        REVAULT_POOL_CAPACITY: "1",
        REVAULT_POOL_IDLE_TIME_TO_LIVE: "10 seconds"
      })
      const program = Effect.gen(function* () {
        assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
        assert.strictEqual((yield* Effect.flip(Effect.scoped(AuthPool.get(credsB))))._tag, "AuthPoolCapacityError")
        yield* TestClock.adjust("10 seconds")
        yield* settle
        assert.deepStrictEqual(yield* me(credsB), { status: 200, workspace: "ws-b" })
      })
      yield* program.pipe(
        Effect.provide(AuthPool.layerConfig()),
        Effect.provide(NodeHttpClient.layerUndici),
        Effect.provideService(ConfigProvider.ConfigProvider, provider)
      )
      const bad = yield* Effect.flip(
        Effect.provide(AuthPool.AuthPool, AuthPool.layer({ baseUrl: mock.baseUrl, capacity: 0 })).pipe(
          Effect.provide(NodeHttpClient.layerUndici)
        )
      )
      assert.strictEqual(bad._tag, "AuthConfigError")
      const negative = yield* Effect.flip(
        Effect.provide(AuthPool.AuthPool, AuthPool.layerConfig()).pipe(
          Effect.provide(NodeHttpClient.layerUndici),
          Effect.provideService(
            ConfigProvider.ConfigProvider,
            ConfigProvider.fromEnvRecord({
              REVAULT_API_BASE_URL: mock.baseUrl,
              REVAULT_POOL_IDLE_TIME_TO_LIVE: "-10 seconds"
            })
          )
        )
      )
      assert.include(String(negative), "REVAULT_POOL_IDLE_TIME_TO_LIVE")
    }).pipe(Effect.provide(mockLayer))
  )

  it("Credentials: equal by value, printed without the secret", () => {
    const a = AuthPool.Credentials.from(credsA)
    assert.isTrue(Equal.equals(a, AuthPool.Credentials.from({ ...credsA })))
    assert.isFalse(Equal.equals(a, AuthPool.Credentials.from({ ...credsA, apiKeySecret: "other" })))
    for (const printed of [String(a), JSON.stringify(a), inspect(a), `${a}`]) {
      assert.notInclude(printed, credsA.apiKeySecret)
      // The workspace and key id only: not even a placeholder for the secret.
      assert.notInclude(printed, "apiKeySecret")
      assert.include(printed, "ws-a")
      assert.include(printed, "key-a")
    }
  })
})

/**
 * A token endpoint that answers every request at once with a fresh 300 s token set, and counts
 * them: a manager makes one request as it is built, then one per refresh (every 240 s).
 */
const countingTokenEndpoint = () => {
  let posts = 0
  const client = HttpClient.make((request) =>
    Effect.sync(() => {
      posts += 1
      const body = {
        accessToken: `AT-${posts}`,
        expiresInSeconds: 300,
        refreshToken: `RT-${posts}`,
        refreshExpiresInSeconds: 1800
      }
      return HttpClientResponse.fromWeb(
        request,
        new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } })
      )
    })
  )
  return { client, posts: () => posts }
}

/** A pool on the counting endpoint, in a scope of its own that the test closes. */
const stubPool = (options: Partial<AuthPool.Options> = {}) =>
  Effect.gen(function* () {
    const endpoint = countingTokenEndpoint()
    const scope = yield* Scope.make()
    const pool = yield* AuthPool.make({ baseUrl: "https://api.example.com/v1", ...options }).pipe(
      Scope.provide(scope),
      Effect.provideService(HttpClient.HttpClient, endpoint.client)
    )
    return { pool, scope, posts: endpoint.posts }
  })

/**
 * Moves the clock a minute at a time. The counting endpoint's bodies are read through a Promise,
 * which TestClock does not wait for: one long jump would pass the next refresh before the
 * manager has scheduled it.
 */
const minutes = (n: number) =>
  Effect.gen(function* () {
    for (let i = 0; i < n; i++) {
      yield* TestClock.adjust("1 minute")
      yield* settle
    }
  })

const held = (pool: AuthPool.Service, credentials: AuthPool.CredentialsInput) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const auth = yield* Scope.provide(pool.get(credentials), scope)
    return { auth, scope, token: Effect.map(auth.accessToken, Redacted.value) }
  })

describe("AuthPool entries' lifecycle", () => {
  it.effect("invalidate while held: the held manager serves until its last release, then stops", () =>
    Effect.gen(function* () {
      const { pool, posts, scope } = yield* stubPool({ idleTimeToLive: "10 minutes" })
      const first = yield* held(pool, credsA)
      assert.strictEqual(yield* first.token, "AT-1")
      yield* pool.invalidate(credsA)
      const second = yield* held(pool, credsA)
      assert.notStrictEqual(second.auth, first.auth)
      assert.strictEqual(yield* second.token, "AT-2")
      // Still held after its invalidation: it keeps serving, and refreshing ahead.
      yield* TestClock.adjust("4 minutes")
      yield* settle
      assert.strictEqual(posts(), 4)
      assert.notStrictEqual(yield* first.token, "AT-1")
      // Its last holder lets go: it stops at once. Only the second manager refreshes from now on.
      yield* Scope.close(first.scope, Exit.void)
      yield* TestClock.adjust("4 minutes")
      yield* settle
      assert.strictEqual(posts(), 5)
      yield* Scope.close(second.scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("an entry's refreshes run under no span of the caller that created it, nor of the pool's builder", () =>
    Effect.gen(function* () {
      const { spans, tracer } = recordingTracer()
      const { pool, scope } = yield* stubPool().pipe(Effect.withSpan("builder"), Effect.withTracer(tracer))
      const holder = yield* Scope.make()
      yield* Scope.provide(pool.get(credsA), holder).pipe(Effect.withSpan("caller"), Effect.withTracer(tracer))
      yield* minutes(9)
      // Every span the refreshes ran under, up to the root.
      const ancestors = (span: RecordingSpan): Array<string> => {
        const names: Array<string> = []
        let parent = span.parent
        while (parent._tag === "Some") {
          const id = parent.value.spanId
          const found = spans.find((candidate) => candidate.spanId === id)
          if (found === undefined) break
          names.push(found.name)
          parent = found.parent
        }
        return names
      }
      const acquisitions = spans.filter((span) => span.name === "RevaultAuth.acquire")
      assert.isAtLeast(acquisitions.length, 3)
      assert.deepStrictEqual(
        acquisitions.filter((span) => ancestors(span).some((name) => name === "caller" || name === "builder")),
        []
      )
      yield* Scope.close(holder, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("every log line of an entry, its background refreshes' included, names its workspace", () =>
    Effect.gen(function* () {
      const { lines, withLogs } = captureLogs()
      const { pool, scope } = yield* withLogs(stubPool())
      const a = yield* held(pool, credsA)
      const c = yield* held(pool, { ...credsB, workspace: "ws-c" })
      yield* minutes(4)
      const obtained = lines.filter((line) => line.includes("token obtained") && line.startsWith("timestamp="))
      assert.strictEqual(obtained.filter((line) => line.includes("workspace=ws-a")).length, 2)
      assert.strictEqual(obtained.filter((line) => line.includes("workspace=ws-c")).length, 2)
      assert.strictEqual(obtained.length, 4)
      yield* Scope.close(a.scope, Exit.void)
      yield* Scope.close(c.scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("the idle timer of an invalidated entry never removes the entry that replaced it", () =>
    Effect.gen(function* () {
      const { pool, posts, scope } = yield* stubPool({ idleTimeToLive: "10 minutes" })
      const first = yield* held(pool, credsA)
      yield* pool.invalidate(credsA)
      const second = yield* held(pool, credsA)
      yield* Scope.close(first.scope, Exit.void)
      // Past the idle time the first entry would have had: the pool still hands out the second.
      yield* minutes(15)
      assert.strictEqual(yield* Effect.scoped(pool.get(credsA)), second.auth)
      // Two builds, and the second's refreshes at 4, 8 and 12 minutes: no third manager.
      assert.strictEqual(posts(), 5)
      yield* Scope.close(second.scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("closing the pool stops every manager it made: held, idle, and invalidated ones", () =>
    Effect.gen(function* () {
      const { pool, posts, scope } = yield* stubPool({ idleTimeToLive: "10 minutes" })
      // Invalidated while held, and still held when the pool closes.
      const first = yield* held(pool, credsA)
      yield* pool.invalidate(credsA)
      const second = yield* held(pool, credsA)
      // Idle, and still held, under another key.
      yield* Effect.scoped(pool.get(credsB))
      const third = yield* held(pool, { ...credsB, workspace: "ws-c" })
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.strictEqual(posts(), 4)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("3 hours")
      yield* settle
      assert.strictEqual(posts(), 4)
      yield* Scope.close(first.scope, Exit.void)
      yield* Scope.close(second.scope, Exit.void)
      yield* Scope.close(third.scope, Exit.void)
    })
  )

  // Two gets race, the first after `pad` operations of its own, so that wherever the scheduler
  // makes a fiber yield, it lands at every step of the other's check and insertion.
  const spin = (n: number): Effect.Effect<void> =>
    n <= 0 ? Effect.void : Effect.flatMap(Effect.void, () => spin(n - 1))
  const pads = Array.from({ length: 220 }, (_, i) => i * 5)

  const race = <A, E>(pad: number, first: Effect.Effect<A, E>, second: Effect.Effect<A, E>) =>
    Effect.all([Effect.andThen(spin(pad), Effect.result(first)), Effect.result(second)], {
      concurrency: "unbounded"
    })

  it.effect(
    "concurrent first gets of one key build one manager, wherever a fiber yields",
    () =>
      Effect.gen(function* () {
        const counts: Array<() => number> = []
        for (const pad of pads) {
          const { pool, posts, scope } = yield* stubPool()
          const holder = yield* Scope.make()
          const get = Scope.provide(pool.get(credsA), holder)
          const [a, b] = yield* race(pad, get, get)
          yield* settle
          assert.isTrue(Result.isSuccess(a) && Result.isSuccess(b) && a.success === b.success, `pad ${pad}`)
          assert.strictEqual(posts(), 1, `pad ${pad}`)
          yield* Scope.close(holder, Exit.void)
          yield* Scope.close(scope, Exit.void)
          counts.push(posts)
        }
        // Nothing the races built outlives its pool: no refresh ahead, minutes later.
        yield* TestClock.adjust("10 minutes")
        yield* settle
        assert.isTrue(counts.every((posts) => posts() === 1))
      }),
    60_000
  )

  it.effect(
    "capacity 1: of concurrent first gets of two keys, exactly one is admitted, wherever a fiber yields",
    () =>
      Effect.gen(function* () {
        const counts: Array<() => number> = []
        for (const pad of pads) {
          const { pool, posts, scope } = yield* stubPool({ capacity: 1 })
          const holder = yield* Scope.make()
          const outcomes = yield* race(
            pad,
            Scope.provide(pool.get(credsA), holder),
            Scope.provide(pool.get(credsB), holder)
          )
          yield* settle
          assert.deepStrictEqual(
            outcomes.map((outcome) => (Result.isSuccess(outcome) ? "admitted" : outcome.failure._tag)).sort(),
            ["AuthPoolCapacityError", "admitted"],
            `pad ${pad}`
          )
          assert.strictEqual(posts(), 1, `pad ${pad}`)
          yield* Scope.close(holder, Exit.void)
          yield* Scope.close(scope, Exit.void)
          counts.push(posts)
        }
        // Nothing the races built outlives its pool: no refresh ahead, minutes later.
        yield* TestClock.adjust("10 minutes")
        yield* settle
        assert.isTrue(counts.every((posts) => posts() === 1))
      }),
    60_000
  )
})

describe("AuthPool metrics", () => {
  const poolKeys = (prefix: string) =>
    Effect.map(Metric.snapshot, (snapshots) =>
      snapshots.filter(
        (snapshot) => snapshot.id.startsWith("revault_auth_") && snapshot.attributes?.workspace?.startsWith(prefix)
      )
    )

  const revaultKeys = Effect.map(
    Metric.snapshot,
    (snapshots) => snapshots.filter((snapshot) => snapshot.id.startsWith("revault_auth_")).length
  )

  const through = (pool: AuthPool.Service, workspaces: number, prefix: string) =>
    Effect.forEach(
      Array.from({ length: workspaces }, (_, i) => ({ ...credsA, workspace: `${prefix}-${i}` })),
      (credentials) =>
        Effect.scoped(Effect.flatMap(pool.get(credentials), (auth) => auth.accessToken)).pipe(
          Effect.andThen(pool.invalidate(credentials))
        ),
      { discard: true }
    )

  it.effect("many workspaces through a pool leave a bounded number of metric keys", () =>
    Effect.gen(function* () {
      const { pool, posts, scope } = yield* stubPool()
      yield* through(pool, 20, "few")
      const afterFew = yield* revaultKeys
      yield* through(pool, 500, "many")
      assert.strictEqual(posts(), 520)
      assert.strictEqual(yield* revaultKeys, afterFew)
      assert.deepStrictEqual(yield* poolKeys("many-"), [])
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("metricsByWorkspace: true gives each entry's metrics its workspace attribute", () =>
    Effect.gen(function* () {
      const { pool, scope } = yield* stubPool({ metricsByWorkspace: true })
      yield* through(pool, 3, "tagged")
      const keys = yield* poolKeys("tagged-")
      const names = new Set(keys.map((snapshot) => snapshot.id))
      assert.deepStrictEqual([...names].sort(), [
        "revault_auth_acquisitions_total",
        "revault_auth_token_remaining_seconds"
      ])
      assert.strictEqual(keys.length, 6)
      yield* Scope.close(scope, Exit.void)
    })
  )
})
