/**
 * B6: a fleet on Redis. N = 2, 8 and 32 processes (test/support/fleetChild.ts) run the library
 * against one MockRevault for 10 refresh periods of short tokens (4 s, refreshed at half life),
 * coordinated through a `redis-server` this benchmark starts on a unix socket, and the same N
 * uncoordinated against another mock. Judged: token POSTs per period with coordination (target
 * <= 1.1 on average; N without). Then B1 on a coordinated instance: cached `accessToken` reads of
 * an AuthService with `TokenCoordinator.layerRedis` in its context against one without, paired
 * runs (target <= 1.1x): no read on the hot path touches Redis.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import { do_not_optimize } from "mitata"
import * as MockRevault from "../src/MockRevault.js"
import * as TokenCoordinator from "../src/TokenCoordinator.js"
import { type FleetChild, startChild, startRedis, stop, stopAll, until } from "../test/support/fleet.js"
import { median, type Row, report, type Verdict } from "./support/report.js"
import { benchConfig, makeService, makeStub } from "./support/stubApi.js"

const lifetimeSeconds = 4
const refreshAt = 0.5
const period = lifetimeSeconds * refreshAt * 1000
const periods = 10
const sizes = [2, 8, 32] as const
const postTarget = 1.1
const readTarget = 1.1
const reads = 10_000
const pairs = 400

const key = { apiKeyId: "bench-key", apiKeySecret: "bench-secret", workspaces: ["bench-ws"] }
const scope = Effect.runSync(Scope.make())
const mock = () =>
  Effect.runPromise(
    Scope.provide(MockRevault.make({ keys: [key], accessTokenTtl: `${lifetimeSeconds} seconds` }), scope)
  )
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const redis = await startRedis()

const fleet = (baseUrl: string, n: number, coordinated: boolean, prefix: string) =>
  Array.from({ length: n }, () =>
    startChild({
      FLEET_BASE_URL: baseUrl,
      FLEET_WORKSPACE: "bench-ws",
      FLEET_KEY_ID: key.apiKeyId,
      FLEET_SECRET: key.apiKeySecret,
      FLEET_LIFETIME_S: String(lifetimeSeconds),
      FLEET_REFRESH_AT: String(refreshAt),
      FLEET_COORDINATED: coordinated ? "1" : "0",
      FLEET_REDIS_PATH: redis.socket,
      FLEET_PREFIX: prefix,
      FLEET_INTERVAL_MS: "500"
    })
  )

/** POSTs per period over `periods` periods, counted once every process is up. */
const measure = async (n: number, coordinated: boolean): Promise<number> => {
  const m = await mock()
  const children: ReadonlyArray<FleetChild> = fleet(m.baseUrl, n, coordinated, `b6-${n}:`)
  if (!(await until(() => children.every((c) => c.last() !== undefined), 120_000))) {
    throw new Error(`${n} processes did not all start`)
  }
  // One period to settle, then the window.
  await sleep(period)
  const count = async () =>
    (await Effect.runPromise(m.requests)).filter((r) => r.route === "authenticate" || r.route === "refresh").length
  const before = await count()
  await sleep(periods * period)
  const posts = (await count()) - before
  await Promise.all(children.map((c) => stop(c.process)))
  return posts / periods
}

const rows: Array<Row> = []
const verdicts: Array<Verdict> = []
for (const n of sizes) {
  const coordinated = await measure(n, true)
  const alone = await measure(n, false)
  console.log(`N = ${n}: ${coordinated.toFixed(2)} POSTs per period coordinated, ${alone.toFixed(2)} alone`)
  rows.push({ subject: `N = ${n}, coordinated`, metric: "token POSTs per period", value: coordinated, unit: "POSTs" })
  rows.push({ subject: `N = ${n}, uncoordinated`, metric: "token POSTs per period", value: alone, unit: "POSTs" })
  verdicts.push({
    metric: `token POSTs per period, N = ${n} (uncoordinated: ${alone.toFixed(1)})`,
    value: coordinated,
    unit: "POSTs",
    target: `<= ${postTarget}`,
    pass: coordinated <= postTarget
  })
}

// B1 on a coordinated instance: the same cached read, with and without the coordinator.
const stub = makeStub()
const services = await Effect.runPromise(
  Effect.gen(function* () {
    const coordinator = yield* Layer.build(TokenCoordinator.layerRedis({ path: redis.socket, keyPrefix: "b6-b1:" }))
    const plain = yield* makeService(stub.api, yield* benchConfig())
    const coordinated = yield* Effect.provideContext(
      makeService(stub.api, yield* benchConfig({ workspace: "ws-coordinated" })),
      Context.merge(yield* Effect.context<never>(), coordinator)
    )
    yield* plain.accessToken
    yield* coordinated.accessToken
    return { plain, coordinated }
  }).pipe(Scope.provide(scope))
)
const loop = (read: Effect.Effect<Redacted.Redacted<string>, unknown>) =>
  Effect.gen(function* () {
    let last: Redacted.Redacted<string> | undefined
    for (let i = 0; i < reads; i++) last = yield* read
    return last
  })
const coordinatedLoop = loop(services.coordinated.accessToken)
const plainLoop = loop(services.plain.accessToken)
for (let i = 0; i < 50; i++) {
  do_not_optimize(Effect.runSync(coordinatedLoop))
  do_not_optimize(Effect.runSync(plainLoop))
}
const paired: Array<number> = []
for (let i = 0; i < pairs; i++) {
  const first = i % 2 === 0
  const t0 = process.hrtime.bigint()
  do_not_optimize(Effect.runSync(first ? coordinatedLoop : plainLoop))
  const t1 = process.hrtime.bigint()
  do_not_optimize(Effect.runSync(first ? plainLoop : coordinatedLoop))
  const t2 = process.hrtime.bigint()
  const a = Number(t1 - t0)
  const b = Number(t2 - t1)
  paired.push(first ? a / b : b / a)
}
const readRatio = median(paired)
rows.push({
  subject: `coordinated / uncoordinated cached read (${pairs} paired runs)`,
  metric: "median",
  value: readRatio,
  unit: "x"
})
verdicts.push({
  metric: `B1 coordinated / uncoordinated (median of ${pairs} paired runs)`,
  value: readRatio,
  unit: "x",
  target: `<= ${readTarget}x`,
  pass: readRatio <= readTarget
})

await Effect.runPromise(Scope.close(scope, Exit.void))
await redis.stop()
await stopAll()

const pass = report({
  id: "B6",
  name: "b6-fleet",
  title: `a fleet on Redis: token POSTs per period over ${periods} periods of ${lifetimeSeconds} s tokens, N = ${sizes.join(", ")}`,
  command: "node --expose-gc --import tsx bench/b6.ts",
  rows,
  verdicts,
  notes: [
    "each process: test/support/fleetChild.ts (one reader every 500 ms plus a GET /users/me), jitter 200 ms, lease margin 500 ms",
    "uncoordinated: the same processes without TokenCoordinator, against their own mock"
  ]
})
process.exitCode = pass ? 0 : 1
