/**
 * B3c (part of B3b): where the overhead of `FetchHttpClient` over plain `fetch` comes from.
 *
 * The mock's `/users/me` verifies a JWT in the same process, which dilutes client costs; here the
 * server is a bare `node:http` server on loopback answering a fixed small JSON body, so what is
 * left is the client. Subjects add, one at a time, what `FetchHttpClient` does beyond plain
 * `fetch` (an `AbortSignal` per request, a `URL` object, trace-propagation headers), then the
 * Effect clients with and without their tracing span, and `NodeHttpClient.layerNodeHttp` with its
 * default agent (a new `http.Agent()`) and with an agent given `keepAlive: true`. Blocks of 200 sequential requests,
 * interleaved round by round; the median block is reported.
 */
import * as Http from "node:http"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as HttpClient from "effect/http/HttpClient"
import type * as Layer from "effect/Layer"
import { median, type Row, report } from "./support/report.js"

const blockSize = 200
const rounds = 12
const body = JSON.stringify({
  id: "usr_demo-key-id",
  name: "Demo API operator",
  role: "API_OPERATOR",
  workspace: "demo"
})

const server = Http.createServer((_request, response) => {
  response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const address = server.address()
const port = typeof address === "object" && address !== null ? address.port : 0
const url = `http://127.0.0.1:${port}/v1/rest/users/me`
const headers = { accept: "application/json", authorization: "Bearer AT-STATIC" }
const traceHeaders = {
  ...headers,
  traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  b3: "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1"
}

const fetchBlock = (init: () => { readonly input: string | URL; readonly init: RequestInit }) => async () => {
  for (let i = 0; i < blockSize; i++) {
    const { init: options, input } = init()
    const response = await fetch(input, options)
    await response.text()
    if (response.status !== 200) throw new Error(`status ${response.status}`)
  }
}

const effectBlock = (layer: Layer.Layer<HttpClient.HttpClient>, traced: boolean) => {
  const program = Effect.gen(function* () {
    const base = yield* HttpClient.HttpClient
    for (let i = 0; i < blockSize; i++) {
      const response = yield* base.get(url, { headers })
      yield* response.text
    }
  }).pipe(
    Effect.provide(layer),
    Effect.orDie,
    // Effect 4 turns the span and the trace headers off through references, not client combinators.
    traced
      ? (self) => self
      : (self) =>
          self.pipe(
            Effect.provideService(HttpClient.TracerPropagationEnabled, false),
            Effect.provideService(HttpClient.TracerDisabledWhen, () => true)
          )
  )
  return () => Effect.runPromise(program)
}

const subjects: ReadonlyArray<{ readonly name: string; readonly run: () => Promise<void> }> = [
  { name: "fetch", run: fetchBlock(() => ({ input: url, init: { headers } })) },
  {
    name: "fetch + AbortSignal",
    run: fetchBlock(() => ({ input: url, init: { headers, signal: new AbortController().signal } }))
  },
  { name: "fetch + URL object", run: fetchBlock(() => ({ input: new URL(url), init: { headers } })) },
  { name: "fetch + trace headers", run: fetchBlock(() => ({ input: url, init: { headers: traceHeaders } })) },
  {
    name: "fetch + all three (as FetchHttpClient calls it)",
    run: fetchBlock(() => ({
      input: new URL(url),
      init: { headers: traceHeaders, signal: new AbortController().signal }
    }))
  },
  {
    name: "Effect.promise(fetch)",
    run: () =>
      Effect.runPromise(
        Effect.gen(function* () {
          for (let i = 0; i < blockSize; i++) {
            yield* Effect.promise(async () => {
              const response = await fetch(url, { headers })
              await response.text()
            })
          }
        })
      )
  },
  { name: "FetchHttpClient", run: effectBlock(FetchHttpClient.layer, true) },
  { name: "FetchHttpClient, no span/propagation", run: effectBlock(FetchHttpClient.layer, false) },
  { name: "NodeHttpClient.layerUndici", run: effectBlock(NodeHttpClient.layerUndici, true) },
  { name: "NodeHttpClient.layerUndici, no span/propagation", run: effectBlock(NodeHttpClient.layerUndici, false) },
  { name: "NodeHttpClient.layerNodeHttp", run: effectBlock(NodeHttpClient.layerNodeHttp, true) },
  {
    name: "NodeHttpClient.layerNodeHttp, agent with keepAlive",
    run: effectBlock(NodeHttpClient.layerNodeHttpOptions({ keepAlive: true }), true)
  }
]

const times = subjects.map(() => [] as Array<number>)
for (let round = -1; round < rounds; round++) {
  const order = subjects.map((_, i) => i)
  const offset = Math.max(0, round) % order.length
  const rotated = [...order.slice(offset), ...order.slice(0, offset)]
  if (round % 2 === 1) rotated.reverse()
  for (const i of rotated) {
    const t0 = performance.now()
    await subjects[i]?.run()
    if (round >= 0) times[i]?.push(((performance.now() - t0) / blockSize) * 1000)
  }
}
await new Promise<void>((resolve) => {
  server.closeAllConnections()
  server.close(() => resolve())
})

const plain = times[0] ?? []
const rows: Array<Row> = subjects.flatMap((s, i) => {
  const t = times[i] ?? []
  return [
    { subject: s.name, metric: "per request (median block)", value: median(t), unit: "us" },
    {
      subject: s.name,
      metric: "vs plain fetch (median of rounds)",
      value: median(t.map((x, r) => x / (plain[r] ?? Number.NaN))),
      unit: "x"
    },
    {
      subject: s.name,
      metric: "over plain fetch (median of rounds)",
      value: median(t.map((x, r) => x - (plain[r] ?? Number.NaN))),
      unit: "us"
    }
  ]
})

report({
  id: "B3c",
  name: "b3c-fetch-overhead",
  title: `where FetchHttpClient's overhead over fetch comes from (bare node:http server, ${blockSize * rounds} requests per subject)`,
  command: "node --expose-gc --import tsx bench/b3c.ts",
  rows,
  verdicts: []
})
