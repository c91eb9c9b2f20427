import { inspect } from "node:util"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as AuthPool from "../src/AuthPool.js"
import * as MockRevault from "../src/MockRevault.js"
import * as TokenStore from "../src/TokenStore.js"

const keyA = { apiKeyId: "key-a", apiKeySecret: "secret-a", workspaces: ["ws-a"] }
const keyB = { apiKeyId: "key-b", apiKeySecret: "secret-b", workspaces: ["ws-b"] }
const credsA = { workspace: "ws-a", apiKeyId: "key-a", apiKeySecret: "secret-a" }
const credsB = { workspace: "ws-b", apiKeyId: "key-b", apiKeySecret: "secret-b" }

const mockLayer = MockRevault.layer({ keys: [keyA, keyB] })

// Tests that move the clock while a request is on the wire set a long `requestTimeout`: the
// timeout runs on the Clock, and would otherwise fire whenever the wire is slower than the jump.
const env = (options: Partial<AuthPool.Options> = {}) =>
  Layer.unwrapEffect(
    Effect.map(MockRevault.MockRevault, (mock) => AuthPool.layer({ baseUrl: mock.baseUrl, ...options }))
  ).pipe(Layer.provideMerge(mockLayer), Layer.provide(NodeHttpClient.layerUndici))

const acquisitions = Effect.flatMap(MockRevault.MockRevault, (mock) =>
  Effect.all({ authenticate: mock.count("authenticate"), refresh: mock.count("refresh") })
)

const token = (credentials: AuthPool.CredentialsInput) =>
  Effect.scoped(Effect.flatMap(AuthPool.get(credentials), (auth) => Effect.map(auth.accessToken, Redacted.value)))

const Me = Schema.Struct({ workspace: Schema.String })

const me = (credentials: AuthPool.CredentialsInput) =>
  Effect.scoped(
    Effect.flatMap(AuthPool.client(credentials), (client) =>
      Effect.flatMap(client.get("/users/me"), (response) =>
        response.status === 200
          ? Effect.map(HttpClientResponse.schemaBodyJson(Me)(response), (user) => ({ status: 200, ...user }))
          : Effect.succeed({ status: response.status, workspace: "" })
      )
    )
  )

/** Lets every runnable fiber run until the system is idle at the current TestClock time. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

describe("AuthPool", () => {
  it.scoped("100 concurrent gets of one key share one AuthService and one POST", () =>
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

  it.scoped("an idle entry is released after idleTimeToLive and its background refresh stops", () =>
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

  it.scoped("an entry held by a scope is kept and refreshed however long it lives", () =>
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

  it.scoped("capacity: a new key beyond it fails with AuthPoolCapacityError; idle entries count until released", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* Scope.extend(AuthPool.get(credsA), scope)
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

  it.scoped("invalid credentials fail with AuthConfigError and take no slot", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Effect.scoped(AuthPool.get({ ...credsA, workspace: " " })))
      assert.strictEqual(error._tag, "AuthConfigError")
      assert.isTrue(AuthPool.isAuthPoolError(error))
      assert.deepStrictEqual(yield* me(credsA), { status: 200, workspace: "ws-a" })
    }).pipe(Effect.provide(env({ capacity: 1 })))
  )

  describe("isolation between workspaces on one MockRevault", () => {
    it.scoped("a refused key in one workspace leaves the other untouched", () =>
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

    it.scoped("server failures while one workspace acquires do not touch the other", () =>
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

    it.scoped("a 401 from a resource in one workspace invalidates that workspace's token only", () =>
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

  it.scoped("with a TokenStore, a re-created entry reuses its workspace's stored set", () =>
    Effect.gen(function* () {
      const tokenA = yield* token(credsA)
      const tokenB = yield* token(credsB)
      yield* AuthPool.AuthPool.pipe(Effect.flatMap((pool) => pool.invalidate(credsA)))
      yield* AuthPool.AuthPool.pipe(Effect.flatMap((pool) => pool.invalidate(credsB)))
      yield* settle
      assert.strictEqual(yield* token(credsA), tokenA)
      assert.strictEqual(yield* token(credsB), tokenB)
      assert.deepStrictEqual(yield* acquisitions, { authenticate: 2, refresh: 0 })
    }).pipe(Effect.provide(env().pipe(Layer.provide(TokenStore.layerMemory))))
  )

  it.scoped("layerConfig reads the base URL and pool options from the environment", () =>
    Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const provider = ConfigProvider.fromMap(
        new Map([
          ["REVAULT_API_BASE_URL", mock.baseUrl],
          ["REVAULT_POOL_CAPACITY", "1"],
          ["REVAULT_POOL_IDLE_TIME_TO_LIVE", "10 seconds"]
        ])
      )
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
        Effect.withConfigProvider(provider)
      )
      const bad = yield* Effect.flip(
        Effect.provide(AuthPool.AuthPool, AuthPool.layer({ baseUrl: mock.baseUrl, capacity: 0 })).pipe(
          Effect.provide(NodeHttpClient.layerUndici)
        )
      )
      assert.strictEqual(bad._tag, "AuthConfigError")
    }).pipe(Effect.provide(mockLayer))
  )

  it("Credentials: equal by value, printed without the secret", () => {
    const a = AuthPool.Credentials.from(credsA)
    assert.isTrue(Equal.equals(a, AuthPool.Credentials.from({ ...credsA })))
    assert.isFalse(Equal.equals(a, AuthPool.Credentials.from({ ...credsA, apiKeySecret: "other" })))
    for (const printed of [String(a), JSON.stringify(a), inspect(a), `${a}`]) {
      assert.notInclude(printed, credsA.apiKeySecret)
      assert.include(printed, "ws-a")
    }
  })
})
