/**
 * B3 and B3b: sequential `GET /users/me` over loopback.
 *
 * B3: through `AuthHttpClient` (a bearer from `AuthService` on every request) vs the same
 * underlying `HttpClient` with a static `Authorization` header; judged on undici.
 * B3b: the same pair for each HTTP client layer (`FetchHttpClient.layer`,
 * `NodeHttpClient.layerNodeHttp`, `NodeHttpClient.layerUndici`), against plain `fetch` (and
 * `Effect.promise(fetch)`, the reference point of the issue).
 *
 * Every subject sends the same request (`accept: application/json`, a bearer) and reads the whole
 * body. All subjects run in one process, interleaved in blocks of 50 requests: each round runs one
 * block of every subject, in an order that rotates by a pair from round to round and is reversed
 * every other round, so the two subjects of a pair always run back to back, each first half the
 * time; 100 rounds make 5,000 requests per subject, after 4 warm-up rounds. Every request is
 * timed; the judged ratio is that of the median request latencies, which a burst of load from
 * another process (it delays a few requests by milliseconds) does not move; the ratio of block
 * times, round by round, is reported beside it. Each pair of subjects compared in B3 shares one
 * `MockRevault` and one `HttpClient` instance; each pair has its own mock (same code, same
 * process), as on the Effect 3 line, so that no subject pays for the requests another one made.
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as AuthHttpClient from "../src/AuthHttpClient.js"
import * as AuthService from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import { authLayer } from "./support/mock.js"
import { median, type Row, report } from "./support/report.js"

const blockSize = 50
const rounds = Number(process.env.B3_ROUNDS ?? 100)
const warmupRounds = 4
const target = 1.05

const layers = {
  FetchHttpClient: FetchHttpClient.layer,
  "NodeHttpClient.layerNodeHttp": NodeHttpClient.layerNodeHttp,
  "NodeHttpClient.layerUndici": NodeHttpClient.layerUndici
} as const
type LayerName = keyof typeof layers

interface Subject {
  readonly name: string
  readonly layer: LayerName | undefined
  readonly kind: "fetch" | "promise" | "static" | "auth"
  /** Runs `blockSize` sequential requests, pushing each one's latency (ms); fails on any status but 200. */
  readonly block: (latencies: Array<number>) => Effect.Effect<void>
  /** Requests the subject's own mock received for `/users/me`. */
  readonly served: Effect.Effect<number>
}

const expectOk = (response: HttpClientResponse.HttpClientResponse) =>
  response.status === 200 ? response.text : Effect.die(new Error(`GET /users/me answered ${response.status}`))

const repeat =
  (request: Effect.Effect<unknown>) =>
  (latencies: Array<number>): Effect.Effect<void> =>
    Effect.gen(function* () {
      for (let i = 0; i < blockSize; i++) {
        const t0 = performance.now()
        yield* request
        latencies.push(performance.now() - t0)
      }
    })

const fetchBlock = async (url: string, headers: Record<string, string>, latencies: Array<number>) => {
  for (let i = 0; i < blockSize; i++) {
    const t0 = performance.now()
    const response = await fetch(url, { headers })
    const text = await response.text()
    latencies.push(performance.now() - t0)
    if (response.status !== 200) throw new Error(`GET /users/me answered ${response.status}: ${text}`)
  }
}

/**
 * One mock and one authenticated stack on `layer`, and the two subjects that share them: the same
 * `HttpClient` instance with a static header and through `AuthHttpClient` (for plain `fetch`:
 * `fetch` and `Effect.promise(fetch)`).
 */
const pair = (layer: LayerName | undefined): Effect.Effect<ReadonlyArray<Subject>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const mock = yield* MockRevault.make().pipe(Effect.orDie)
    const context = yield* Layer.build(
      AuthHttpClient.layer.pipe(Layer.provideMerge(authLayer(mock, {}, layers[layer ?? "NodeHttpClient.layerUndici"])))
    )
    const token = Redacted.value(yield* Effect.orDie(Context.get(context, AuthService.AuthService).accessToken))
    const url = `${mock.baseUrl}/users/me`
    const headers = { accept: "application/json", authorization: `Bearer ${token}` }
    const served = mock.count("me")
    if (layer === undefined) {
      const request = Effect.promise(async () => {
        const response = await fetch(url, { headers })
        const text = await response.text()
        if (response.status !== 200) throw new Error(`GET /users/me answered ${response.status}: ${text}`)
      })
      return [
        {
          name: "fetch (plain, static header)",
          layer,
          kind: "fetch",
          served,
          block: (latencies) => Effect.promise(() => fetchBlock(url, headers, latencies))
        },
        { name: "Effect.promise(fetch), static header", layer, kind: "promise", served, block: repeat(request) }
      ]
    }
    const staticClient = Context.get(context, HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(
        flow(HttpClientRequest.acceptJson, HttpClientRequest.setHeader("authorization", headers.authorization))
      )
    )
    const authClient = Context.get(context, AuthHttpClient.AuthHttpClient)
    return [
      {
        name: `${layer}, static header`,
        layer,
        kind: "static",
        served,
        block: repeat(Effect.orDie(Effect.flatMap(staticClient.get(url), expectOk)))
      },
      {
        name: `${layer} + AuthHttpClient`,
        layer,
        kind: "auth",
        served,
        block: repeat(Effect.orDie(Effect.flatMap(authClient.get("/users/me"), expectOk)))
      }
    ]
  })

interface Timings {
  readonly subject: Subject
  readonly blocks: Array<number>
  readonly latencies: Array<number>
}

const program = Effect.scoped(
  Effect.gen(function* () {
    const subjects: Array<Subject> = [...(yield* pair(undefined))]
    for (const layer of Object.keys(layers) as Array<LayerName>) subjects.push(...(yield* pair(layer)))
    const timings: Array<Timings> = subjects.map((s) => ({ subject: s, blocks: [], latencies: [] }))
    for (let round = -warmupRounds; round < rounds; round++) {
      const offset = (2 * Math.max(0, round)) % timings.length
      const order = [...timings.slice(offset), ...timings.slice(0, offset)]
      if (Math.abs(round) % 2 === 1) order.reverse()
      for (const t of order) {
        const t0 = performance.now()
        // Negative rounds warm up: connections, JIT.
        yield* t.subject.block(round >= 0 ? t.latencies : [])
        if (round >= 0) t.blocks.push(performance.now() - t0)
      }
      if (round >= 0 && (round + 1) % 25 === 0) console.log(`round ${round + 1}/${rounds} done`)
    }
    // Each mock served its pair of subjects.
    const served = yield* Effect.forEach(
      subjects.filter((_, i) => i % 2 === 0),
      (s) => s.served
    )
    return { timings, served }
  })
)

const { served, timings } = await Effect.runPromise(program)

const byName = (name: string) => timings.find((t) => t.subject.name === name)
const plain = byName("fetch (plain, static header)")
/** Median of the per-round ratios of block times. */
const ratioTo = (a: Timings, b: Timings | undefined) =>
  median(a.blocks.map((time, i) => time / (b?.blocks[i] ?? Number.NaN)))
/** Ratio of the median request latencies. */
const latencyRatio = (a: Timings, b: Timings | undefined) =>
  median(a.latencies) / (b === undefined ? Number.NaN : median(b.latencies))
const total = (t: Timings) => t.blocks.reduce((sum, x) => sum + x, 0)
const perRequest = (t: Timings) => median(t.latencies) * 1000
const requests = rounds * blockSize

const allOk = served.every((n) => n === 2 * (rounds + warmupRounds) * blockSize)
const rowsB3b: Array<Row> = timings.flatMap((t) => [
  { subject: t.subject.name, metric: `total for ${requests} requests`, value: total(t), unit: "ms" },
  { subject: t.subject.name, metric: "median request latency", value: perRequest(t), unit: "us" },
  { subject: t.subject.name, metric: "vs plain fetch (median latency)", value: latencyRatio(t, plain), unit: "x" },
  {
    subject: t.subject.name,
    metric: "vs plain fetch (block time, median of rounds)",
    value: ratioTo(t, plain),
    unit: "x"
  }
])

const effectClients = timings.filter((t) => t.subject.kind === "static" || t.subject.kind === "auth")
const fastest = [...timings.filter((t) => t.subject.kind === "static")].sort(
  (a, b) => latencyRatio(a, plain) - latencyRatio(b, plain)
)[0]

const b3Pairs = (Object.keys(layers) as Array<LayerName>).map((layer) => {
  const auth = byName(`${layer} + AuthHttpClient`)
  const base = byName(`${layer}, static header`)
  return {
    layer,
    ratio: auth === undefined ? Number.NaN : latencyRatio(auth, base),
    blockRatio: auth === undefined ? Number.NaN : ratioTo(auth, base),
    auth,
    base
  }
})
const judged = b3Pairs.find((p) => p.layer === "NodeHttpClient.layerUndici")
const judgedRatio = judged?.ratio ?? Number.NaN

const passB3 = report({
  id: "B3",
  name: "b3-auth-client-overhead",
  title: `${requests.toLocaleString("en-US")} sequential GET /users/me: AuthHttpClient vs the same HttpClient with a static Authorization header`,
  command: "node --expose-gc --import tsx bench/b3.ts",
  rows: b3Pairs.flatMap((p) => [
    ...(p.auth === undefined
      ? []
      : [{ subject: p.auth.subject.name, metric: "median request latency", value: perRequest(p.auth), unit: "us" }]),
    ...(p.base === undefined
      ? []
      : [{ subject: p.base.subject.name, metric: "median request latency", value: perRequest(p.base), unit: "us" }]),
    { subject: `${p.layer}: AuthHttpClient / static`, metric: "ratio of median latencies", value: p.ratio, unit: "x" },
    {
      subject: `${p.layer}: AuthHttpClient / static`,
      metric: "block time, median of rounds",
      value: p.blockRatio,
      unit: "x"
    }
  ]),
  verdicts: [
    {
      metric: "NodeHttpClient.layerUndici: AuthHttpClient / static (median latency)",
      value: judgedRatio,
      unit: "x",
      target: `<= ${target}x`,
      pass: judgedRatio <= target
    },
    {
      metric: "every request answered 200",
      value: served.reduce((a, b) => a + b, 0),
      unit: "requests",
      target: `${(rounds + warmupRounds) * blockSize} per subject, warm-up included`,
      pass: allOk
    }
  ]
})

report({
  id: "B3b",
  name: "b3b-client-layers",
  title: `${requests.toLocaleString("en-US")} sequential GET /users/me per HTTP client layer vs plain fetch`,
  command: "node --expose-gc --import tsx bench/b3.ts",
  rows: rowsB3b,
  verdicts: [],
  notes: [
    `fastest Effect client layer (static header, vs plain fetch): ${fastest?.subject.layer ?? "?"}`,
    `Effect client subjects measured: ${effectClients.length}`
  ]
})
process.exitCode = passB3 && allOk ? 0 : 1
