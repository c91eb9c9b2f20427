// A real fleet: child processes running the library against one MockRevault, coordinated through
// a `redis-server` this file starts (unix socket in a temporary directory; TCP only on free
// loopback ports for the password and TLS case). Assertions are counts and bounds, never durations:
// waits are polls with generous limits.
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as MockRevault from "../src/MockRevault.js"
import {
  converged,
  errorsOf,
  type FleetChild,
  type RedisServer,
  startChild,
  startRedis,
  stop,
  stopAll,
  until
} from "./support/fleet.js"

const lifetimeSeconds = 6
const refreshAt = 0.5
const period = refreshAt * lifetimeSeconds * 1000
const key = { apiKeyId: "fleet-key", apiKeySecret: "fleet-secret", workspaces: ["fleet-ws"] }

const scope = Effect.runSync(Scope.make())
afterAll(async () => {
  await stopAll()
  await Effect.runPromise(Scope.close(scope, Exit.void))
})

const mock = (secret = key.apiKeySecret) =>
  Effect.runPromise(
    Scope.provide(
      MockRevault.make({
        keys: [{ ...key, apiKeySecret: secret }],
        accessTokenTtl: `${lifetimeSeconds} seconds`,
        refreshTokenTtl: "60 seconds"
      }),
      scope
    )
  )

type Mock = Awaited<ReturnType<typeof mock>>

/** The token POSTs the mock received, with their times on the mock's clock. */
const posts = async (m: Mock) =>
  (await Effect.runPromise(m.requests)).filter((r) => r.route === "authenticate" || r.route === "refresh")

/** The POSTs as `route +ms` from the first, for a failure's message. */
const timeline = (list: ReadonlyArray<{ readonly route: string; readonly at: number }>) =>
  list.map((p) => `${p.route} +${p.at - (list[0]?.at ?? 0)}ms`).join(", ")

/** Resource calls made with a token the mock no longer accepts (expired, or rotated away). */
const staleCalls = async (m: Mock) =>
  (await Effect.runPromise(m.requests)).filter((r) => r.route === "me" && r.token !== "valid").length

/** Before any refresh can be due: the cold start's window, whatever the lag from send to receipt. */
const coldWindow = period / 2
/** The bound: 1 + ⌊T / (refreshAt × lifetime)⌋ + 1 over a run of length T. */
const bound = (runMillis: number) => 1 + Math.floor(runMillis / period) + 1

const child = (m: Mock, env: Record<string, string>) =>
  startChild({
    FLEET_BASE_URL: m.baseUrl,
    FLEET_WORKSPACE: "fleet-ws",
    FLEET_KEY_ID: key.apiKeyId,
    FLEET_SECRET: key.apiKeySecret,
    FLEET_LIFETIME_S: String(lifetimeSeconds),
    FLEET_REFRESH_AT: String(refreshAt),
    FLEET_COORDINATED: "1",
    ...env
  })

const socketEnv = (redis: RedisServer, prefix: string) => ({ FLEET_REDIS_PATH: redis.socket, FLEET_PREFIX: prefix })

const reporting = (children: ReadonlyArray<FleetChild>) =>
  until(() => children.every((c) => c.last() !== undefined), 30_000)

/** Waits for convergence: at most `periods` refresh periods after `from`, plus start-up slack. */
const waitConverged = (children: ReadonlyArray<FleetChild>, periods = 3) =>
  until(() => converged(children), periods * period + 5_000)

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

let redis: RedisServer

describe("TokenCoordinator on a real redis-server", { timeout: 60_000 }, () => {
  beforeAll(async () => {
    redis = await startRedis()
  })

  it.live(
    "a fleet with clocks 2 s apart and 10,000 cold readers each makes one POST per period; one with the wrong secret neither reads nor overwrites; without coordination N times as many",
    () =>
      Effect.promise(async () => {
        const coordinatedMock = await mock()
        const otherMock = await mock("another-secret")
        const aloneMock = await mock()
        const env = { ...socketEnv(redis, "t1:"), FLEET_READERS: "10000" }
        const fleet = [
          child(coordinatedMock, env),
          child(coordinatedMock, { ...env, FLEET_CLOCK_OFFSET_MS: "2000" }),
          child(coordinatedMock, env)
        ]
        // Same key id and Redis, another secret (valid at its own mock, so it gets tokens and commits).
        const wrong = child(otherMock, { ...env, FLEET_SECRET: "another-secret" })
        const alone = [1, 2, 3].map(() => child(aloneMock, { FLEET_COORDINATED: "0", FLEET_READERS: "10000" }))
        assert.isTrue(await reporting([...fleet, wrong, ...alone]))
        await sleep(4 * period)
        assert.isTrue(await waitConverged(fleet))

        const fleetPosts = await posts(coordinatedMock)
        const first = fleetPosts[0]?.at ?? 0
        const last = Math.max(...fleetPosts.map((p) => p.at))
        // Cold start: one POST for the whole fleet. The window is half a period: the first refresh
        // is due a period after the POST was sent, and the mock logs it when it arrives, which on a
        // loaded machine can be a good part of a second later.
        assert.strictEqual(fleetPosts.filter((p) => p.at < first + coldWindow).length, 1, timeline(fleetPosts))
        assert.isAtMost(fleetPosts.length, bound(last - first))
        assert.strictEqual(await staleCalls(coordinatedMock), 0)
        // One API-key exchange, then refreshes only: a refresh token spent twice (rotated away by
        // another process) would have been refused and followed by another exchange.
        assert.strictEqual(fleetPosts.filter((p) => p.route === "authenticate").length, 1, timeline(fleetPosts))
        assert.deepStrictEqual(errorsOf(fleet), {})

        assert.deepStrictEqual(errorsOf([wrong]), {})
        assert.notStrictEqual(wrong.last()?.token, fleet[0]?.last()?.token)
        assert.strictEqual(await staleCalls(otherMock), 0)

        const alonePosts = await posts(aloneMock)
        const aloneFirst = alonePosts[0]?.at ?? 0
        const aloneLast = Math.max(...alonePosts.map((p) => p.at))
        assert.isAtLeast(alonePosts.length, 3 * Math.floor((aloneLast - aloneFirst) / period))
        assert.isAbove(alonePosts.length, fleetPosts.length)
        await Promise.all([...fleet, wrong, ...alone].map((c) => stop(c.process)))
      })
  )

  it.live("the leader killed between its POST and its commit: another takes over after the lease", () =>
    Effect.promise(async () => {
      const m = await mock()
      const env = { ...socketEnv(redis, "t2:"), FLEET_WAIT_STDIN: "1" }
      const killer = child(m, { ...env, FLEET_DIE_AFTER_POST: "1" })
      const others = [child(m, env), child(m, env)]
      // Booted and waiting (a process prints nothing before it starts), then the killer leads.
      await sleep(3_000)
      killer.go()
      assert.isTrue(await until(() => killer.process.signalCode === "SIGKILL", 20_000))
      for (const c of others) c.go()
      assert.isTrue(await reporting(others))
      assert.isTrue(await waitConverged(others))
      const all = await posts(m)
      const first = all[0]?.at ?? 0
      // The dead leader's POST, and one more once its lease ran out: the bound's extra one.
      assert.strictEqual(all.filter((p) => p.at < first + period).length, 2, timeline(all))
      assert.deepStrictEqual(errorsOf(others), {})
      assert.strictEqual(await staleCalls(m), 0)
      await Promise.all(others.map((c) => stop(c.process)))
    })
  )

  it.live(
    "Redis stopped for 15 s, then restarted empty: each process acquires alone, no reader fails, and the fleet converges",
    () =>
      Effect.promise(async () => {
        const m = await mock()
        const fleet = [1, 2, 3].map(() => child(m, socketEnv(redis, "t3:")))
        assert.isTrue(await reporting(fleet))
        assert.isTrue(await waitConverged(fleet))
        await redis.stop()
        await sleep(15_000)
        await redis.restart()
        assert.isTrue(await waitConverged(fleet))
        // Converged again: from here, one POST per period for the fleet.
        const before = (await posts(m)).length
        const from = Date.now()
        await sleep(2 * period)
        assert.isTrue(await waitConverged(fleet))
        assert.isAtMost((await posts(m)).length - before, bound(Date.now() - from))
        assert.deepStrictEqual(errorsOf(fleet), {})
        assert.strictEqual(await staleCalls(m), 0)
        await Promise.all(fleet.map((c) => stop(c.process)))
      }),
    60_000
  )

  it.live("Redis paused (SIGSTOP): commands time out, processes fall back, and converge once it resumes", () =>
    Effect.promise(async () => {
      const m = await mock()
      const fleet = [1, 2, 3].map(() => child(m, socketEnv(redis, "t4:")))
      assert.isTrue(await reporting(fleet))
      assert.isTrue(await waitConverged(fleet))
      const before = (await posts(m)).length
      redis.pause()
      await sleep(2 * period)
      redis.resume()
      // Each process acquired alone while Redis hung.
      assert.isAbove((await posts(m)).length - before, 2)
      assert.isTrue(await waitConverged(fleet))
      assert.deepStrictEqual(errorsOf(fleet), {})
      assert.strictEqual(await staleCalls(m), 0)
      await Promise.all(fleet.map((c) => stop(c.process)))
    })
  )

  it.live("redis:// with a password and rediss:// (TLS) share one set", () =>
    Effect.promise(async () => {
      const tcp = await startRedis({ tcp: true })
      const m = await mock()
      const password = encodeURIComponent(tcp.password)
      const plain = child(m, { FLEET_REDIS_URL: `redis://:${password}@127.0.0.1:${tcp.port}`, FLEET_PREFIX: "t5:" })
      const tls = child(m, {
        FLEET_REDIS_URL: `rediss://:${password}@127.0.0.1:${tcp.tlsPort}`,
        FLEET_REDIS_CA: tcp.ca,
        FLEET_PREFIX: "t5:"
      })
      assert.isTrue(await reporting([plain, tls]))
      assert.isTrue(await waitConverged([plain, tls]))
      const all = await posts(m)
      const first = all[0]?.at ?? 0
      assert.strictEqual(all.filter((p) => p.at < first + coldWindow).length, 1, timeline(all))
      assert.deepStrictEqual(errorsOf([plain, tls]), {})
      await Promise.all([plain, tls].map((c) => stop(c.process)))
      await tcp.stop()
    })
  )

  it.live("Redis holds no secret and no plaintext token, under names without the key id", () =>
    Effect.promise(async () => {
      const { execFileSync } = await import("node:child_process")
      const cli = (...args: ReadonlyArray<string>) =>
        execFileSync("redis-cli", ["-s", redis.socket, ...args], { encoding: "utf8" })
      const m = await mock()
      const fleet = [child(m, socketEnv(redis, "t6:"))]
      assert.isTrue(await reporting(fleet))
      const keys = cli("--scan", "--pattern", "t6:*")
        .trim()
        .split("\n")
        .filter((k) => k !== "")
      assert.isAbove(keys.length, 0)
      for (const k of keys) {
        assert.notInclude(k, key.apiKeyId)
        assert.notInclude(k, "fleet-ws")
      }
      const setKey = keys.find((k) => k.endsWith(":set")) ?? ""
      assert.deepStrictEqual(cli("HKEYS", setKey).trim().split("\n").sort(), ["at", "gen", "set"])
      // The set is a sealed envelope only: no token field, no workspace, no key id, no secret.
      const envelope = JSON.parse(cli("HGET", setKey, "set")) as Record<string, unknown>
      assert.deepStrictEqual(Object.keys(envelope).sort(), [
        "ciphertext",
        "format",
        "iv",
        "keyFingerprint",
        "salt",
        "tag",
        "version"
      ])
      const raw = cli("HGET", setKey, "set")
      assert.notInclude(raw, key.apiKeySecret)
      assert.notInclude(raw, key.apiKeyId)
      await Promise.all(fleet.map((c) => stop(c.process)))
    })
  )
})
