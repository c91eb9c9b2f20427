// One process of a fleet, for TokenCoordinator.redis.test.ts and bench B6: runs the library
// against a MockRevault, with or without a Redis coordinator, and reports on stdout one JSON line
// per read cycle (a digest of the token, never the token). Settings come from the environment.
import * as NodeCrypto from "node:crypto"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthService } from "../../src/AuthService.js"
import * as RevaultAuth from "../../src/RevaultAuth.js"
import * as TokenCoordinator from "../../src/TokenCoordinator.js"

const env = (name: string, fallback = ""): string => process.env[name] ?? fallback
const num = (name: string, fallback: number): number => Number(env(name, String(fallback)))

const offset = num("FLEET_CLOCK_OFFSET_MS", 0)
const readers = num("FLEET_READERS", 1)
const interval = num("FLEET_INTERVAL_MS", 200)
const lifetimeSeconds = num("FLEET_LIFETIME_S", 6)
const refreshAt = num("FLEET_REFRESH_AT", 0.5)
const baseUrl = env("FLEET_BASE_URL")

// A clock `offset` ms ahead of (or behind) the machine's: two processes on unsynchronised hosts.
const shifted = (clock: Clock.Clock): Clock.Clock => ({
  currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe() + offset,
  currentTimeMillis: Effect.map(clock.currentTimeMillis, (t) => t + offset),
  currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe() + BigInt(offset) * 1_000_000n,
  currentTimeNanos: Effect.map(clock.currentTimeNanos, (t) => t + BigInt(offset) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
  monotonicTimeNanos: clock.monotonicTimeNanos,
  sleep: (duration) => clock.sleep(duration)
})

// The leader that dies between its POST and its commit: killed as the token answer arrives.
const dieAfterPost = env("FLEET_DIE_AFTER_POST") === "1"
const httpClient = dieAfterPost
  ? Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        HttpClient.tap(client, (response) =>
          Effect.sync(() => {
            if (response.request.url.endsWith("/auth/token") && response.status === 200) {
              process.kill(process.pid, "SIGKILL")
            }
          })
        )
      )
    ).pipe(Layer.provide(NodeHttpClient.layerUndici))
  : NodeHttpClient.layerUndici

const coordinator =
  env("FLEET_COORDINATED") === "1"
    ? TokenCoordinator.layerRedis({
        // Passwords ride in the URL: handed over Redacted, as a program reading it from Config would.
        url: env("FLEET_REDIS_URL") ? Redacted.make(env("FLEET_REDIS_URL")) : undefined,
        path: env("FLEET_REDIS_PATH") || undefined,
        tls: env("FLEET_REDIS_CA") ? { ca: env("FLEET_REDIS_CA") } : undefined,
        keyPrefix: env("FLEET_PREFIX", "revault-auth:"),
        leaseMargin: "500 millis",
        // Generous: a child whose event loop is busy with 10,000 readers on a loaded machine must not
        // take a late answer for a dead Redis.
        commandTimeout: "2 seconds",
        connectTimeout: "3 seconds",
        cooldown: env("FLEET_COOLDOWN", "2 seconds") as Duration.Input,
        jitter: "200 millis"
      })
    : Layer.empty

const auth = RevaultAuth.layer({
  baseUrl,
  workspace: env("FLEET_WORKSPACE"),
  apiKeyId: env("FLEET_KEY_ID"),
  apiKeySecret: Redacted.make(env("FLEET_SECRET")),
  requestTimeout: "1 second",
  refreshAt,
  expirySkew: Duration.seconds(Math.min(1, lifetimeSeconds / 10))
}).pipe(Layer.provide(httpClient), Layer.provide(coordinator))

const digest = (token: string) => NodeCrypto.createHash("sha256").update(token).digest("hex").slice(0, 12)

const program = Effect.gen(function* () {
  const service = yield* AuthService
  const errors: Record<string, number> = {}
  let reads = 0
  const note = (tag: string) => {
    errors[tag] = (errors[tag] ?? 0) + 1
  }
  // Cold start: every reader at once.
  yield* Effect.all(
    Array.from({ length: readers }, () => service.accessToken),
    { concurrency: "unbounded", mode: "result" }
  ).pipe(
    Effect.tap((results) =>
      Effect.sync(() => {
        for (const r of results) if (r._tag === "Failure") note(r.failure._tag)
      })
    )
  )
  while (true) {
    const result = yield* Effect.result(service.accessToken)
    reads += 1
    let token = ""
    if (result._tag === "Failure") note(result.failure._tag)
    else {
      token = Redacted.value(result.success)
      // A resource call with the token, so the mock sees whether it was still valid.
      yield* Effect.promise(() =>
        fetch(`${baseUrl}/users/me`, { headers: { authorization: `Bearer ${token}` } }).then(
          (r) => r.status,
          () => 0
        )
      )
    }
    process.stdout.write(`${JSON.stringify({ reads, errors, token: token === "" ? "" : digest(token) })}\n`)
    yield* Effect.sleep(Duration.millis(interval))
  }
})

const main = program.pipe(
  Effect.tapCause((cause) => Effect.sync(() => process.stderr.write(`${Cause.pretty(cause)}\n`))),
  Effect.provide(auth),
  Effect.provideServiceEffect(
    Clock.Clock,
    Effect.clockWith((clock) => Effect.succeed(shifted(clock)))
  )
)

process.on("SIGTERM", () => process.exit(0))
// Held until the parent says go: a booted process starts reading at a moment the test chooses.
if (env("FLEET_WAIT_STDIN") === "1") process.stdin.once("data", () => Effect.runFork(main))
else Effect.runFork(main)
