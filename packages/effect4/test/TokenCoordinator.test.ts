import { inspect } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/testing/TestClock"
import { AuthApi } from "../src/AuthApi.js"
import { AuthConfig, type Options } from "../src/AuthConfig.js"
import { UnauthorizedError } from "../src/AuthError.js"
import * as AuthService from "../src/AuthService.js"
import * as seal from "../src/internal/shared/tokenSeal.js"
import * as internal from "../src/internal/tokenCoordinator.js"
import * as memory from "../src/internal/tokenCoordinatorMemory.js"
import { masterKey } from "../src/internal/tokenStore.js"
import * as TokenCoordinator from "../src/TokenCoordinator.js"
import { captureLogs } from "./support/captureLogs.js"
import { recordingTracer } from "./support/RecordingTracer.js"
import { makeStubApi, settle, testConfig } from "./support/StubAuthApi.js"

// Short tokens: 100 s, refreshed 80 s after the request (refreshAt 0.8), usable until 90 s (skew 10 s).
const lifetime = 100
const period = 80_000
const config: Partial<Options> = { expirySkew: "10 seconds" }

/** The bound of the issue: at most 1 + ⌊T / (refreshAt × lifetime)⌋ + 1 token requests over T. */
const bound = (runMillis: number) => 1 + Math.floor(runMillis / period) + 1

const coordinatorLayer = (tuning: TokenCoordinator.Tuning = {}) =>
  Effect.gen(function* () {
    let controls: TokenCoordinator.MemoryControls | undefined
    const layer = TokenCoordinator.layerMemoryWith({
      ...tuning,
      controls: (c) =>
        Effect.sync(() => {
          controls = c
        })
    })
    const context = yield* Layer.build(layer)
    if (controls === undefined) return yield* Effect.die("no controls")
    return { context, controls }
  })

/** `n` token managers on one stub API, each with its own config (secret), sharing `context`. */
const managers = (
  n: number,
  stub: Effect.Success<ReturnType<typeof makeStubApi>>,
  context: Context.Context<TokenCoordinator.TokenCoordinator> | undefined,
  overrides: (i: number) => Partial<Options> = () => ({})
) =>
  Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) =>
      Effect.gen(function* () {
        const cfg = yield* testConfig({ ...config, ...overrides(i) })
        const make = AuthService.make.pipe(
          Effect.provideService(AuthApi, stub.api),
          Effect.provideService(AuthConfig, cfg)
        )
        return yield* context === undefined
          ? make
          : Effect.provideContext(make, Context.merge(yield* Effect.context<never>(), context))
      })
  )

/** Moves the clock by `millis` in one-second steps, letting every fiber run at each step. */
const run = (millis: number) =>
  Effect.gen(function* () {
    for (let t = 0; t < millis; t += 1_000) {
      yield* TestClock.adjust("1 second")
      yield* settle
    }
  })

const unauthorized = (operation: "authenticate" | "refresh") =>
  new UnauthorizedError({ operation, status: 401, code: "UNAUTHORIZED", message: "invalid", issues: [] })

const tokensOf = (services: ReadonlyArray<AuthService.Service>) =>
  Effect.forEach(services, (s) => Effect.map(s.accessToken, Redacted.value))

/** The fleet counters by id and attributes (`id k=v`), summed over what the registry holds. */
const fleetCounts = Effect.map(Metric.snapshot, (snapshots) => {
  const counts = new Map<string, number>()
  for (const snapshot of snapshots) {
    if (snapshot.type !== "Counter" || !snapshot.id.startsWith("revault_auth_fleet_")) continue
    const attributes = Object.entries(snapshot.attributes ?? {}).map(([k, v]) => `${k}=${String(v)}`)
    const key = [snapshot.id, ...attributes].join(" ")
    counts.set(key, (counts.get(key) ?? 0) + Number(snapshot.state.count))
  }
  return counts
})

describe("TokenCoordinator (memory)", () => {
  it.effect("many managers make one acquisition per refresh period, and serve the same token", () =>
    Effect.gen(function* () {
      const stub = yield* makeStubApi({ expiresInSeconds: lifetime, latency: "50 millis" })
      const { context } = yield* coordinatorLayer({ jitter: "2 seconds" })
      const services = yield* managers(8, stub, context)
      const T = 10 * period
      yield* run(T)
      const tokens = yield* tokensOf(services)
      assert.strictEqual(new Set(tokens).size, 1)
      const posts = yield* stub.count()
      assert.isAtMost(posts, bound(T))
      assert.isAtLeast(posts, 10)
    })
  )

  it.effect("without a coordinator, the same managers make N times as many", () =>
    Effect.gen(function* () {
      const stub = yield* makeStubApi({ expiresInSeconds: lifetime, latency: "50 millis" })
      yield* managers(8, stub, undefined)
      const T = 10 * period
      yield* run(T)
      assert.isAtLeast(yield* stub.count(), 8 * 10)
    })
  )

  it.effect("cold start: 10,000 readers in each of 4 managers cause one POST", () =>
    Effect.gen(function* () {
      const stub = yield* makeStubApi({ expiresInSeconds: lifetime, latency: "50 millis" })
      const { context } = yield* coordinatorLayer()
      const services = yield* managers(4, stub, context)
      const readers = yield* Effect.forkChild(
        Effect.forEach(
          services,
          (s) =>
            Effect.all(
              Array.from({ length: 10_000 }, () => s.accessToken),
              { concurrency: "unbounded" }
            ),
          {
            concurrency: "unbounded"
          }
        )
      )
      yield* settle
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust("50 millis")
        yield* settle
      }
      const tokens = (yield* Fiber.join(readers)).flat().map(Redacted.value)
      assert.strictEqual(tokens.length, 40_000)
      assert.strictEqual(new Set(tokens).size, 1)
      assert.strictEqual(yield* stub.count(), 1)
    })
  )

  it.effect("jitter: each process delays its refresh-due by its own amount, within the bound", () =>
    Effect.gen(function* () {
      const { context } = yield* coordinatorLayer({ jitter: "4 seconds" })
      const coordinator = internal.coordinatorOf(Context.get(context, TokenCoordinator.TokenCoordinator))
      if (coordinator === undefined) return yield* Effect.die("no coordinator")
      const members = yield* Effect.forEach(
        Array.from({ length: 16 }, (_, i) => i),
        (i) => coordinator.join({ workspace: "ws", apiKeyId: "kid", apiKeySecret: Redacted.make(`s-${i}`) })
      )
      const jitters = members.map((m) => m.jitterMillis)
      assert.isTrue(jitters.every((j) => j >= 0 && j <= 4_000))
      assert.isAbove(new Set(jitters).size, 1)
      // The refresh ahead happens after the plain refresh point and no later than it plus the jitter.
      const stub = yield* makeStubApi({ expiresInSeconds: lifetime })
      yield* managers(1, stub, context)
      yield* run(period + 5_000)
      const calls = yield* stub.calls
      assert.strictEqual(calls.length, 2)
      const second = calls[1]?.at ?? 0
      assert.isAtLeast(second, period)
      assert.isAtMost(second, period + 4_000 + 1_000)
    })
  )

  it.effect("rotation race: a refused refresh costs one API-key POST, never an error", () =>
    Effect.gen(function* () {
      const stub = yield* makeStubApi({ expiresInSeconds: lifetime })
      const { context } = yield* coordinatorLayer({ jitter: 0 })
      const services = yield* managers(3, stub, context)
      yield* settle
      yield* stub.fail("refresh", unauthorized("refresh"))
      yield* run(period + 2_000)
      const tokens = yield* tokensOf(services)
      assert.strictEqual(new Set(tokens).size, 1)
      assert.strictEqual(yield* stub.count("refresh"), 1)
      assert.strictEqual(yield* stub.count("authenticate"), 2)
    })
  )

  it.effect(
    "store down or hung: each process acquires alone, readers never fail, and the fleet converges after the cooldown",
    () =>
      Effect.gen(function* () {
        const stub = yield* makeStubApi({ expiresInSeconds: lifetime })
        const { context, controls } = yield* coordinatorLayer({ jitter: 0, cooldown: "30 seconds" })
        yield* controls.setMode("hang")
        const services = yield* managers(4, stub, context)
        yield* run(7_000)
        // Each acquired alone once the store timed out (command and connection bounds: 6 s).
        assert.strictEqual(yield* stub.count(), 4)
        assert.strictEqual(new Set(yield* tokensOf(services)).size, 4)
        yield* controls.setMode("fail")
        yield* run(period)
        assert.strictEqual(yield* stub.count(), 8)
        // Redis returns, emptied: within a period after the cooldown, one set for all.
        yield* controls.flush
        yield* controls.setMode("up")
        yield* run(period + 2_000)
        const before = yield* stub.count()
        assert.strictEqual(new Set(yield* tokensOf(services)).size, 1)
        yield* run(3 * period)
        assert.isAtMost((yield* stub.count()) - before, 3)
      })
  )

  it.effect("CAS: a commit against a stale generation is refused and leaves the newer set", () =>
    Effect.gen(function* () {
      const store = yield* memory.make(() => Effect.void)
      assert.strictEqual(yield* store.backend.commit("n", 0, "first", 60_000), 1)
      assert.strictEqual(yield* store.backend.commit("n", 1, "second", 60_000), 2)
      // A late leader that read generation 1 before the other committed.
      assert.strictEqual(yield* store.backend.commit("n", 1, "late", 60_000), 0)
      const stored = yield* store.backend.read("n")
      assert.isTrue(Option.isSome(stored))
      assert.strictEqual(Option.getOrThrow(stored).payload, "second")
      // Only the owner releases a lease.
      assert.isTrue(yield* store.backend.lease("n", "a", 1_000))
      assert.isFalse(yield* store.backend.lease("n", "b", 1_000))
      yield* store.backend.release("n", "b")
      assert.isFalse(yield* store.backend.lease("n", "b", 1_000))
      yield* store.backend.release("n", "a")
      assert.isTrue(yield* store.backend.lease("n", "b", 1_000))
    })
  )

  it.effect("wrong secret for the same key id: another name, so it can neither read nor overwrite the set", () =>
    Effect.gen(function* () {
      const owner = { workspace: "ws", apiKeyId: "kid" }
      const right = yield* masterKey({ ...owner, apiKeySecret: Redacted.make("API-KEY-SECRET") })
      const wrong = yield* masterKey({ ...owner, apiKeySecret: Redacted.make("OTHER-SECRET") })
      assert.notStrictEqual(seal.fleetName(owner, right), seal.fleetName(owner, wrong))
      assert.notInclude(seal.fleetName(owner, right), "kid")
      // A sealed set does not open under another secret, nor under another generation.
      const sealed = seal.seal(owner, right, "plain", "3")
      assert.strictEqual(seal.open(owner, wrong, sealed, "3")._tag, "Rejected")
      assert.strictEqual(seal.open(owner, right, sealed, "4")._tag, "Rejected")
      assert.strictEqual(seal.open(owner, right, sealed, "3")._tag, "Opened")

      const stub = yield* makeStubApi({ expiresInSeconds: lifetime })
      const { context, controls } = yield* coordinatorLayer({ jitter: 0 })
      const good = yield* managers(1, stub, context)
      yield* settle
      const bad = yield* managers(1, stub, context, () => ({ apiKeySecret: "OTHER-SECRET" }))
      yield* settle
      // Its own POST (a real server would refuse it), and the good set untouched.
      assert.strictEqual(yield* stub.count(), 2)
      assert.strictEqual(yield* controls.commits, 2)
      const [goodToken, badToken] = yield* tokensOf([...good, ...bad])
      assert.notStrictEqual(goodToken, badToken)
    })
  )

  it.effect(
    "spans and metrics for leases, adopted sets, fallbacks and store errors; no secret, token or key id in logs, span attributes or the service's rendering",
    () =>
      Effect.gen(function* () {
        const before = yield* fleetCounts
        const { lines, withLogs } = captureLogs()
        const { spans, tracer } = recordingTracer()
        const traced = <A, E, R>(self: Effect.Effect<A, E, R>) => withLogs(Effect.withTracer(self, tracer))
        const stub = yield* makeStubApi({ expiresInSeconds: lifetime })
        const { context, controls } = yield* coordinatorLayer({ jitter: "1 second", cooldown: "10 seconds" })
        yield* traced(managers(3, stub, context))
        yield* traced(run(period + 2_000))
        yield* controls.setMode("fail")
        yield* traced(run(period))
        yield* controls.setMode("up")
        yield* traced(run(2 * period))
        const coordinate = spans.filter((span) => span.name === "RevaultAuth.coordinate")
        assert.isAbove(coordinate.length, 0)
        assert.isTrue(coordinate.some((span) => span.attributes.get("revault.fleet.outcome") === "led"))
        assert.isTrue(coordinate.some((span) => span.attributes.get("revault.fleet.outcome") === "adopted"))
        assert.isTrue(coordinate.some((span) => span.attributes.get("revault.fleet.fallback") === "store-error"))
        const after = yield* fleetCounts
        const grew = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0)
        assert.isAbove(grew("revault_auth_fleet_leases_total outcome=won"), 0)
        assert.isAbove(grew("revault_auth_fleet_sets_adopted_total"), 0)
        assert.isAbove(grew("revault_auth_fleet_fallbacks_total reason=store-error"), 0)
        assert.isAbove(
          [...after.keys()]
            .filter((k) => k.startsWith("revault_auth_fleet_store_errors_total"))
            .reduce((n, k) => n + grew(k), 0),
          0
        )
        const service = Context.get(context, TokenCoordinator.TokenCoordinator)
        const rendered = [
          ...lines,
          ...spans.flatMap((span) => [...span.attributes.entries()].map(([k, v]) => `${k}=${String(v)}`)),
          inspect(service),
          JSON.stringify(service),
          String(service)
        ].join("\n")
        for (const secret of ["API-KEY-SECRET", "AT-SECRET", "RT-SECRET", "kid"]) assert.notInclude(rendered, secret)
      })
  )
})
