/**
 * The soak, shared by `npm run soak` (bench/soak.ts, 60 s by default) and the 5 s test in
 * `npm test` (test/soak.test.ts). Real time, loopback only, bounded, and it stops by itself.
 *
 * A MockRevault issues 2 s access tokens and 6 s refresh tokens; `fibers` callers (200) call
 * `GET /users/me` through `AuthHttpClient` in a loop; a fault script (seeded) injects, at random,
 * into the two token routes: 500, 503, 429 with `Retry-After: 1`, delays past the request timeout,
 * dropped connections, malformed bodies, and 401 on the refresh endpoint.
 *
 * Where an expired token is counted. The transport under `AuthHttpClient` is wrapped: every
 * `GET /users/me` it is handed has its bearer's `exp` compared with the clock (`remaining`), and
 * its answer recorded. A request the server finds expired on arrival either
 * - was sent with the token already expired (`remaining <= 0`): the library's fault, whatever the
 *   token endpoint is doing (it must fail the caller instead). `expiredAtSend` must be 0; or
 * - was sent with time left and spent longer than that between the hand-off and the server
 *   (`expiredInTransit`): the process's own queues, not the library. 200 callers in a closed loop
 *   on one event loop each wait, by Little's law, 200 / throughput, which on a busy 2-core machine
 *   is hundreds of milliseconds; a token is handed out only with more than `expirySkew` (500 ms) left.
 * So "requests that reached /users/me with an expired token while healthy" is read as: while the
 * path to the server was healthy, i.e. not held up longer than the token had left; that count is
 * `expiredAtSend`, and it must be 0 always (not only while the token endpoint answers). The server's
 * own count (`server.meByToken.expired`) is reported too, but it runs low under load: the mock
 * judges a token once for its log and again, a JWT verification later, for its answer, and a token
 * that expires in between is logged valid yet refused. `expiredAtSend + expiredInTransit` counts
 * the refusals themselves. `AuthHttpClient` replays each refused request once with a new token
 * (`unauthorizedReplays`).
 *
 * The invariants (exit code 1 in `npm run soak` when one fails):
 * - `noExpiredTokenSent`: `expiredAtSend` = 0.
 * - `noInvalidTokenSent`: no request reached `/users/me` with a token the server judged invalid or
 *   missing (nothing is revoked in the soak, so any such request is a bug).
 * - `onlyTypedErrors`: every failure a caller saw is an `AuthError` or an `HttpClientError`; no
 *   defect, no other failure, no interruption.
 * - `stopped`: every caller and the fault script ended within `stopGraceMillis` of the deadline,
 *   and no TCP handle was left 2 s after the layers closed.
 * - `recovered`: once the faults stop, a call succeeds within `recoveryMillis`.
 *
 * Memory: the mock's request log is drained every 200 ms into counters (`takeRequests`), and
 * per-request numbers are kept as plain number arrays, so the run's own bookkeeping stays small.
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HttpClient from "effect/http/HttpClient"
import { isHttpClientError } from "effect/http/HttpClientError"
import * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Schedule from "effect/Schedule"
import { isAuthError } from "../src/AuthError.js"
import { AuthHttpClient } from "../src/AuthHttpClient.js"
import * as MockRevault from "../src/MockRevault.js"
import * as RevaultAuth from "../src/RevaultAuth.js"

/** What the soak is told. */
export interface SoakOptions {
  readonly seconds: number
  readonly seed: number
  /** Concurrent callers. Default 200. */
  readonly fibers?: number | undefined
}

/** The fixed parameters of the soak; reported with the results. */
export const parameters = {
  fibers: 200,
  accessTokenTtlMillis: 2_000,
  refreshTokenTtlMillis: 6_000,
  expirySkewMillis: 500,
  requestTimeoutMillis: 1_000,
  /** Refresh at half the lifetime: 1 s into a 2 s token, 500 ms before it stops being handed out. */
  refreshAt: 0.5,
  /** The fault script draws once per interval (dropping a fault not met since the last draw)... */
  faultIntervalMillis: 1_000,
  /** ...injects with this probability (1-2 consecutive requests)... */
  faultProbability: 0.4,
  /** ...into the refresh route with this probability, else into `/auth/token`. */
  refreshShare: 0.75,
  /** A server-side delay past the request timeout. */
  delayMillis: 1_500,
  /** A caller whose call failed waits this long before its next call, as a real client backs off. */
  pauseAfterFailureMillis: 100,
  drainIntervalMillis: 200,
  stopGraceMillis: 10_000,
  /** The token manager's backoff is capped at 30 s: recovery may have to wait that long. */
  recoveryMillis: 35_000
} as const

export type FaultKind = "500" | "503" | "429" | "delay" | "drop" | "malformed" | "401"

const faultKinds: ReadonlyArray<FaultKind> = ["500", "503", "429", "delay", "drop", "malformed", "401"]

export interface Invariant {
  readonly name: string
  readonly pass: boolean
  readonly detail: string
}

export interface Memory {
  readonly rssBytes: number
  readonly heapUsedBytes: number
}

export interface Percentiles {
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** The report written to `bench/results/soak.json`. */
export interface SoakReport {
  readonly seed: number
  readonly seconds: number
  readonly parameters: Omit<typeof parameters, "fibers"> & { readonly fibers: number }
  readonly elapsedSeconds: number
  readonly callers: {
    readonly calls: number
    readonly succeeded: number
    readonly failed: number
    readonly callsPerSecond: number
    /** Each call of `GET /users/me` through `AuthHttpClient`, from the caller's side. */
    readonly latencyMillis: Percentiles
    readonly errorsByTag: Readonly<Record<string, number>>
  }
  /** Every `GET /users/me` as the transport under `AuthHttpClient` saw it (replays included). */
  readonly sends: {
    readonly count: number
    /** Sent with the token already expired. */
    readonly expiredAtSend: number
    /** Sent with time left, refused as expired: held up longer than the token had left. */
    readonly expiredInTransit: number
    /** The bearer's time left when the request was handed to the transport. */
    readonly remainingAtSendMillis: { readonly min: number; readonly p1: number; readonly p50: number }
    /** From the hand-off to the answer's headers. */
    readonly sendToAnswerMillis: Percentiles
    /** For the requests expired in transit: how long they were held up beyond the token's life. */
    readonly overrunMillis: Percentiles
    /** Refused requests `AuthHttpClient` replayed with a new token. */
    readonly unauthorizedReplays: number
  }
  readonly server: {
    readonly requestsByRoute: Readonly<Record<string, number>>
    /** `GET /users/me` requests by what the server made of the bearer on arrival. */
    readonly meByToken: Readonly<Record<string, number>>
    /** Token requests that met a fault, by `route:fault`. */
    readonly faultsApplied: Readonly<Record<string, number>>
  }
  /** Token acquisitions: requests the server received per route, and the library's own counter. */
  readonly acquisitions: {
    readonly requests: { readonly authenticate: number; readonly refresh: number }
    /** `revault_auth_acquisitions_total` during the run, by `source:outcome`. */
    readonly outcomes: Readonly<Record<string, number>>
  }
  /** Faults the script queued, by `route:kind` (one not met before the next draw is dropped). */
  readonly faultsInjected: Readonly<Record<string, number>>
  readonly eventLoopDelayMillis: Percentiles
  readonly memory: { readonly start: Memory; readonly end: Memory; readonly gc: boolean }
  readonly tcpHandlesAfterClose: number
  readonly invariants: ReadonlyArray<Invariant>
  readonly pass: boolean
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export const prng = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

const faultOf = (kind: FaultKind, random: () => number): MockRevault.Fault => {
  switch (kind) {
    case "500":
      return MockRevault.Fault.Status({ status: 500 })
    case "503":
      return MockRevault.Fault.Status({ status: 503 })
    case "429":
      return MockRevault.Fault.Status({ status: 429, headers: { "retry-after": "1" } })
    case "delay":
      return MockRevault.Fault.Delay({ duration: Duration.millis(parameters.delayMillis) })
    case "drop":
      return MockRevault.Fault.Drop()
    case "malformed":
      return random() < 0.5
        ? MockRevault.Fault.Body({ text: '{"accessToken":' })
        : MockRevault.Fault.MissingField({ field: "expiresInSeconds" })
    case "401":
      return MockRevault.Fault.Status({ status: 401 })
  }
}

const bump = (counts: Record<string, number>, key: string, by = 1) => {
  counts[key] = (counts[key] ?? 0) + by
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

const sortedOf = (values: ReadonlyArray<number>) => Float64Array.from(values).sort()

const at = (sorted: Float64Array, p: number): number =>
  sorted.length === 0 ? 0 : round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0)

const percentiles = (values: ReadonlyArray<number>): Percentiles => {
  const sorted = sortedOf(values)
  return { p50: at(sorted, 0.5), p99: at(sorted, 0.99), max: round(sorted[sorted.length - 1] ?? 0) }
}

/** The `expMs` claim of a MockRevault access token, read without verifying it. */
const expiryOf = (authorization: string | undefined): number | undefined => {
  const payload = authorization?.replace(/^Bearer /, "").split(".")[1]
  if (payload === undefined) return undefined
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"))
    return typeof claims === "object" && claims !== null && "expMs" in claims && typeof claims.expMs === "number"
      ? claims.expMs
      : undefined
  } catch {
    return undefined
  }
}

/** What a caller's failure is: the error's tag (with its reason), or what went wrong instead. */
const classify = (cause: Cause.Cause<unknown>): { readonly tag: string; readonly typed: boolean } => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (isAuthError(error)) {
      return {
        tag: error._tag === "TransportError" ? `${error._tag}(${error.operation}, ${error.reason})` : error._tag,
        typed: true
      }
    }
    if (isHttpClientError(error)) return { tag: `${error._tag}(${error.reason._tag})`, typed: true }
    return { tag: `unexpected failure: ${String(error).slice(0, 100)}`, typed: false }
  }
  return { tag: Cause.hasInterruptsOnly(cause) ? "interrupted" : "defect", typed: false }
}

/**
 * The library's own counters: acquisitions by `source:outcome` (summed over workspaces), and
 * `replays` (requests replayed after a 401).
 */
const libraryCounts = Effect.map(Metric.snapshot, (snapshots) => {
  const counts: Record<string, number> = {}
  for (const snapshot of snapshots) {
    if (snapshot.type !== "Counter") continue
    const count = Number(snapshot.state.count)
    if (snapshot.id === "revault_auth_unauthorized_replays_total") bump(counts, "replays", count)
    if (snapshot.id !== "revault_auth_acquisitions_total") continue
    const attribute = (key: string) => snapshot.attributes?.[key] ?? "?"
    bump(counts, `${attribute("source")}:${attribute("outcome")}`, count)
  }
  return counts
})

const memory = (): Memory => {
  const usage = process.memoryUsage()
  return { rssBytes: usage.rss, heapUsedBytes: usage.heapUsed }
}

const tcpHandles = () =>
  process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap" || r === "TCPServerWrap").length

/** Sockets close asynchronously: waits up to 2 s for the last TCP handle to go. */
const tcpHandlesSettled = Effect.gen(function* () {
  for (let i = 0; i < 20 && tcpHandles() > 0; i++) yield* Effect.sleep(Duration.millis(100))
  return tcpHandles()
})

/**
 * Runs the soak and returns its report: whatever goes wrong under load is in the invariants (a
 * server that cannot listen is a defect). `gc`, when given, is called before each memory reading.
 */
export const runSoak = (options: SoakOptions, gc?: () => void): Effect.Effect<SoakReport> =>
  Effect.gen(function* () {
    const fibers = options.fibers ?? parameters.fibers
    const random = prng(options.seed)
    const skew = parameters.expirySkewMillis

    const latencies: Array<number> = []
    const errorsByTag: Record<string, number> = {}
    let succeeded = 0
    let failed = 0
    let untyped = 0

    const remainingAtSend: Array<number> = []
    const sendToAnswer: Array<number> = []
    const overruns: Array<number> = []

    const requestsByRoute: Record<string, number> = {}
    const meByToken: Record<string, number> = {}
    const faultsApplied: Record<string, number> = {}
    const faultsInjected: Record<string, number> = {}

    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    const countsBefore = yield* libraryCounts
    gc?.()
    const memoryStart = memory()
    const started = performance.now()
    const deadline = started + options.seconds * 1000
    loopDelay.enable()

    // The transport under AuthHttpClient (and AuthApi): records every GET /users/me it is handed.
    const observed = Layer.effect(
      HttpClient.HttpClient,
      Effect.map(HttpClient.HttpClient, (client) =>
        HttpClient.transform(client, (effect, request) =>
          request.url.endsWith("/users/me")
            ? Effect.suspend(() => {
                const sentAt = Date.now()
                const expiry = expiryOf(request.headers.authorization)
                const remaining = expiry === undefined ? Number.NEGATIVE_INFINITY : expiry - sentAt
                remainingAtSend.push(remaining)
                return Effect.tap(effect, (response) =>
                  Effect.sync(() => {
                    const took = Date.now() - sentAt
                    sendToAnswer.push(took)
                    if (response.status === 401 && remaining > 0) overruns.push(took - remaining)
                  })
                )
              })
            : effect
        )
      )
    ).pipe(Layer.provide(NodeHttpClient.layerUndici))

    const run = Effect.gen(function* () {
      const mock = yield* MockRevault.make({
        accessTokenTtl: Duration.millis(parameters.accessTokenTtlMillis),
        refreshTokenTtl: Duration.millis(parameters.refreshTokenTtlMillis)
      }).pipe(Effect.orDie)
      const context = yield* Layer.build(
        RevaultAuth.fromConfigLayer(
          MockRevault.layerAuthConfig({
            expirySkew: Duration.millis(skew),
            requestTimeout: Duration.millis(parameters.requestTimeoutMillis),
            refreshAt: parameters.refreshAt
          })
        ).pipe(Layer.provide(observed), Layer.provide(Layer.succeed(MockRevault.MockRevault, mock)))
      ).pipe(Effect.orDie)
      const client = Context.get(context, AuthHttpClient)
      const getMe = client.get("/users/me").pipe(
        Effect.flatMap(HttpClientResponse.filterStatusOk),
        Effect.flatMap((response) => response.text)
      )

      const drain = Effect.map(mock.takeRequests, (entries) => {
        for (const entry of entries) {
          bump(requestsByRoute, entry.route)
          if (entry.route === "me") bump(meByToken, entry.token ?? "none")
          else if (entry.fault !== undefined) bump(faultsApplied, `${entry.route}:${entry.fault}`)
        }
      })

      const caller = Effect.gen(function* () {
        while (performance.now() < deadline) {
          const t0 = performance.now()
          const exit = yield* Effect.exit(getMe)
          latencies.push(performance.now() - t0)
          if (Exit.isSuccess(exit)) {
            succeeded++
            continue
          }
          failed++
          const { tag, typed } = classify(exit.cause)
          bump(errorsByTag, tag)
          if (!typed) untyped++
          yield* Effect.sleep(Duration.millis(parameters.pauseAfterFailureMillis))
        }
      })

      const faultScript = Effect.gen(function* () {
        while (performance.now() + parameters.faultIntervalMillis < deadline) {
          yield* Effect.sleep(Duration.millis(parameters.faultIntervalMillis))
          // A fault not met by the next draw is dropped: an outage lasts at most one interval.
          yield* mock.clearFaults
          if (random() >= parameters.faultProbability) continue
          const route: MockRevault.Route = random() < parameters.refreshShare ? "refresh" : "authenticate"
          const kinds = route === "refresh" ? faultKinds : faultKinds.filter((k) => k !== "401")
          const kind = kinds[Math.floor(random() * kinds.length)] ?? "500"
          const times = 1 + Math.floor(random() * 2)
          yield* mock.fault(route, faultOf(kind, random), times)
          bump(faultsInjected, `${route}:${kind}`, times)
        }
        yield* mock.clearFaults
      })

      const drainer = yield* Effect.forkChild(
        Effect.forever(Effect.andThen(Effect.sleep(Duration.millis(parameters.drainIntervalMillis)), drain))
      )
      const script = yield* Effect.forkChild(faultScript)
      const callers = yield* Effect.forEach(Array.from({ length: fibers }), () => Effect.forkChild(caller))
      const all = [script, ...callers]
      const remaining = Math.max(0, deadline - performance.now()) + parameters.stopGraceMillis
      const ended = yield* Effect.timeoutOption(Fiber.joinAll(all), Duration.millis(remaining))
      if (Option.isNone(ended)) yield* Fiber.interruptAll(all)

      // The faults are over: the next call must succeed.
      yield* mock.clearFaults
      const recovered = yield* getMe.pipe(
        Effect.retry(Schedule.spaced(Duration.millis(100))),
        Effect.timeoutOption(Duration.millis(parameters.recoveryMillis)),
        Effect.map(Option.isSome),
        Effect.orElseSucceed(() => false)
      )
      yield* Fiber.interrupt(drainer)
      yield* drain
      return { stoppedInTime: Option.isSome(ended), recovered }
    })

    // The token manager logs a warning per failed acquisition: hundreds here, by design.
    const { recovered, stoppedInTime } = yield* Effect.scoped(run).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error")
    )
    loopDelay.disable()
    const elapsedSeconds = (performance.now() - started) / 1000
    const tcpHandlesAfterClose = yield* tcpHandlesSettled
    gc?.()
    const memoryEnd = memory()
    const countsAfter = yield* libraryCounts
    const outcomes: Record<string, number> = {}
    for (const [key, count] of Object.entries(countsAfter)) {
      const delta = count - (countsBefore[key] ?? 0)
      if (delta > 0 && key !== "replays") outcomes[key] = delta
    }
    const unauthorizedReplays = (countsAfter.replays ?? 0) - (countsBefore.replays ?? 0)

    const expiredAtSend = remainingAtSend.filter((r) => r <= 0).length
    const remainingSorted = sortedOf(remainingAtSend)
    const invalid = (meByToken.invalid ?? 0) + (meByToken.missing ?? 0) + (meByToken.none ?? 0)
    const invariants: ReadonlyArray<Invariant> = [
      {
        name: "noExpiredTokenSent",
        pass: expiredAtSend === 0,
        detail: `${expiredAtSend} of ${remainingAtSend.length} GET /users/me handed to the transport with an expired token (${overruns.length} more, sent with time left, were held up past it)`
      },
      {
        name: "noInvalidTokenSent",
        pass: invalid === 0,
        detail: `${invalid} request(s) reached /users/me with an invalid or missing token`
      },
      {
        name: "onlyTypedErrors",
        pass: untyped === 0,
        detail: `${untyped} caller failure(s) were neither an AuthError nor an HttpClientError`
      },
      {
        name: "stopped",
        pass: stoppedInTime && tcpHandlesAfterClose === 0,
        detail: `callers and fault script ${stoppedInTime ? "stopped" : "did NOT stop"} within ${parameters.stopGraceMillis} ms of the deadline; ${tcpHandlesAfterClose} TCP handle(s) left after close`
      },
      {
        name: "recovered",
        pass: recovered,
        detail: recovered
          ? "a call succeeded once the faults stopped"
          : `no call succeeded within ${parameters.recoveryMillis} ms of the faults stopping`
      }
    ]
    const nanosToMillis = (n: number) => round(n / 1e6)
    return {
      seed: options.seed,
      seconds: options.seconds,
      parameters: { ...parameters, fibers },
      elapsedSeconds: round(elapsedSeconds),
      callers: {
        calls: succeeded + failed,
        succeeded,
        failed,
        callsPerSecond: round((succeeded + failed) / options.seconds, 0),
        latencyMillis: percentiles(latencies),
        errorsByTag
      },
      sends: {
        count: remainingAtSend.length,
        expiredAtSend,
        expiredInTransit: overruns.length,
        remainingAtSendMillis: {
          min: round(remainingSorted[0] ?? 0),
          p1: at(remainingSorted, 0.01),
          p50: at(remainingSorted, 0.5)
        },
        sendToAnswerMillis: percentiles(sendToAnswer),
        overrunMillis: percentiles(overruns),
        unauthorizedReplays
      },
      server: { requestsByRoute, meByToken, faultsApplied },
      acquisitions: {
        requests: { authenticate: requestsByRoute.authenticate ?? 0, refresh: requestsByRoute.refresh ?? 0 },
        outcomes
      },
      faultsInjected,
      eventLoopDelayMillis: {
        p50: nanosToMillis(loopDelay.percentile(50)),
        p99: nanosToMillis(loopDelay.percentile(99)),
        max: nanosToMillis(loopDelay.max)
      },
      memory: { start: memoryStart, end: memoryEnd, gc: gc !== undefined },
      tcpHandlesAfterClose,
      invariants,
      pass: invariants.every((i) => i.pass)
    }
  })
