// docs/observability.md's export path, end to end: `NodeSdk.layer` provided outermost, the
// library against the real MockRevault on loopback, and the OpenTelemetry SDK's in-memory exporters
// standing in for the collector. What reaches them is what a collector would receive.
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  type MetricData,
  PeriodicExportingMetricReader,
  type ResourceMetrics
} from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/testing/TestClock"
import { AuthService } from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import * as RevaultAuth from "../src/RevaultAuth.js"

/** The telemetry layer of docs/observability.md, with in-memory exporters in place of OTLP. */
const inMemoryTelemetry = () => {
  const spans = new InMemorySpanExporter()
  const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
  // Read on demand (`forceFlush`), never on the interval.
  const metricReader = new PeriodicExportingMetricReader({ exporter: metrics, exportIntervalMillis: 3_600_000 })
  const layer = NodeSdk.layer(() => ({
    resource: { serviceName: "revault-auth-test" },
    spanProcessor: new SimpleSpanProcessor(spans),
    metricReader
  }))
  return { spans, metrics, metricReader, layer }
}

const seconds = (time: readonly [number, number]) => time[0] + time[1] / 1e9

const findMetric = (exported: ReadonlyArray<ResourceMetrics>, name: string): MetricData => {
  // Cumulative: the last export holds every value so far.
  const found = exported
    .at(-1)
    ?.scopeMetrics.flatMap((scope) => scope.metrics)
    .find((metric) => metric.descriptor.name === name)
  assert.isDefined(found, `metric ${name} was not exported`)
  return found as MetricData
}

const points = (metric: MetricData) =>
  metric.dataPoints.map((point) => [JSON.stringify(point.attributes), point.value] as const)

describe("OpenTelemetry export with @effect/opentelemetry", () => {
  it.effect("spans and metrics reach the exporters after a refresh, a failure and a 401 replay, with no secret", () =>
    Effect.gen(function* () {
      const telemetry = inMemoryTelemetry()
      const program = Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const auth = yield* AuthService
        const tokens: Array<string> = []
        const keepToken = Effect.flatMap(auth.session, (session) =>
          Effect.sync(() => tokens.push(Redacted.value(session.accessToken)))
        )
        // t = 0: the initial token, then a request.
        yield* RevaultAuth.me.pipe(Effect.withSpan("whoami"))
        yield* keepToken
        // t = 4.8 s: the refresh ahead fails with a 500; t = 5.05 s: its retry succeeds.
        yield* mock.fault("refresh", MockRevault.Fault.Status({ status: 500 }))
        yield* TestClock.adjust("5 seconds")
        yield* TestClock.adjust("1 second")
        yield* keepToken
        // t = 6 s: the server rejects the token; the request is replayed with a new one.
        yield* mock.revokeAccessTokens
        yield* RevaultAuth.me.pipe(Effect.withSpan("whoami"))
        yield* keepToken
        yield* Effect.promise(() => telemetry.metricReader.forceFlush())
        // Read before the layer closes: shutting the exporters down empties them.
        return {
          tokens,
          spans: [...telemetry.spans.getFinishedSpans()],
          metrics: [...telemetry.metrics.getMetrics()]
        }
      })
      const { metrics, spans, tokens } = yield* program.pipe(
        Effect.provide(
          RevaultAuth.fromConfigLayer(
            MockRevault.layerAuthConfig({ expirySkew: "1 second", retrySchedule: Schedule.spaced("250 millis") })
          ).pipe(Layer.provideMerge(MockRevault.layer({ accessTokenTtl: "6 seconds", refreshTokenTtl: "15 seconds" })))
        ),
        Effect.provide(NodeHttpClient.layerUndici),
        Effect.provide(telemetry.layer)
      )

      // Spans. The mock's own `http.server` spans are left out: they are the server's, not the library's.
      const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]))
      const parentOf = (span: ReadableSpan) => byId.get(span.parentSpanContext?.spanId ?? "")
      const client = spans.filter((span) => span.kind !== SpanKind.SERVER)
      const acquisitions = client
        .filter((span) => span.name === "RevaultAuth.acquire")
        .sort((a, b) => seconds(a.startTime) - seconds(b.startTime))
      // The retry is due 250 ms after the refresh failed, which may be seen once the TestClock
      // already stands at 5 s: it starts between 5.05 s and 6 s.
      const retryAt = seconds(acquisitions[2]?.startTime ?? [0, 0])
      assert.isTrue(retryAt >= 5.05 && retryAt <= 6, `retry at ${retryAt} s`)
      assert.deepStrictEqual(
        acquisitions.map((span) => [
          parentOf(span)?.name,
          seconds(span.startTime),
          span.kind,
          span.attributes["revault.reason"],
          span.attributes["revault.source"],
          span.attributes["revault.workspace"],
          span.status.code
        ]),
        [
          [undefined, 0, SpanKind.INTERNAL, "initial", "authenticate", "demo", SpanStatusCode.OK],
          [undefined, 4.8, SpanKind.INTERNAL, "ahead", undefined, "demo", SpanStatusCode.ERROR],
          [undefined, retryAt, SpanKind.INTERNAL, "retry", "refresh", "demo", SpanStatusCode.OK],
          // Started by the request that got the 401, under its span.
          ["whoami", 6, SpanKind.INTERNAL, "invalidated", "refresh", "demo", SpanStatusCode.OK]
        ]
      )
      // Each acquisition holds one token request, whose span says which endpoint answered what.
      const tokenRequests = client.filter(
        (span) => span.name === "RevaultAuth.authenticate" || span.name === "RevaultAuth.refresh"
      )
      assert.deepStrictEqual(
        acquisitions.map((acquisition) =>
          tokenRequests
            .filter((span) => parentOf(span) === acquisition)
            .map((span) => [
              span.name,
              span.kind,
              span.attributes["revault.operation"],
              span.attributes["http.request.method"],
              span.attributes["http.response.status_code"],
              span.status.code
            ])
        ),
        [
          [["RevaultAuth.authenticate", SpanKind.CLIENT, "authenticate", "POST", 200, SpanStatusCode.OK]],
          [["RevaultAuth.refresh", SpanKind.CLIENT, "refresh", "POST", 500, SpanStatusCode.ERROR]],
          [["RevaultAuth.refresh", SpanKind.CLIENT, "refresh", "POST", 200, SpanStatusCode.OK]],
          [["RevaultAuth.refresh", SpanKind.CLIENT, "refresh", "POST", 200, SpanStatusCode.OK]]
        ]
      )
      const failed = acquisitions[1]
      assert.strictEqual(failed?.status.message, "Scripted 500")
      assert.deepStrictEqual(
        failed?.events.map((event) => [event.name, event.attributes?.["exception.type"]]),
        [["exception", "INTERNAL_SERVER_ERROR"]]
      )
      // The program's spans hold its requests: one, then a 401 and its replay. Effect 4's client
      // spans are named after the method, record no header by default, and fail on a 4xx.
      const whoami = client.filter((span) => span.name === "whoami")
      assert.deepStrictEqual(
        whoami.map((parent) =>
          client
            .filter((span) => parentOf(span) === parent && span.name === "GET")
            .map((span) => [
              span.kind,
              span.attributes["url.path"],
              span.attributes["http.request.header.authorization"],
              span.attributes["http.response.status_code"],
              span.status.code
            ])
        ),
        [
          [[SpanKind.CLIENT, "/v1/rest/users/me", undefined, 200, SpanStatusCode.OK]],
          [
            [SpanKind.CLIENT, "/v1/rest/users/me", undefined, 401, SpanStatusCode.ERROR],
            [SpanKind.CLIENT, "/v1/rest/users/me", undefined, 200, SpanStatusCode.OK]
          ]
        ]
      )
      // No `POST` span: the token requests are traced by the `RevaultAuth.*` spans alone.
      assert.deepStrictEqual([...new Set(client.map((span) => span.name))].sort(), [
        "GET",
        "RevaultAuth.acquire",
        "RevaultAuth.authenticate",
        "RevaultAuth.refresh",
        "whoami"
      ])
      assert.strictEqual(spans[0]?.resource.attributes["service.name"], "revault-auth-test")

      // No secret anywhere: not in a span's attributes, events, status or links, nor in a metric.
      assert.strictEqual(new Set(tokens).size, 3)
      // The token shapes the scan below looks for, so that it cannot pass by looking for nothing.
      for (const token of tokens) assert.match(token, /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/)
      const rendered = [
        ...spans.map((span) =>
          JSON.stringify({
            name: span.name,
            attributes: span.attributes,
            events: span.events,
            status: span.status,
            links: span.links
          })
        ),
        JSON.stringify(metrics.map((resource) => resource.scopeMetrics))
      ].join("\n")
      // What is scanned holds the attributes and events: a request's path, the failed refresh's error.
      assert.include(rendered, '"url.path":"/v1/rest/users/me"')
      assert.include(rendered, "Scripted 500")
      for (const secret of [...tokens, MockRevault.demoCredentials.apiKeySecret]) assert.notInclude(rendered, secret)
      assert.notMatch(rendered, /eyJ[\w-]{8,}/, "an access token")
      assert.notMatch(rendered, /rt_[\da-f]{8}-/, "a refresh token")

      // Metrics, as the collector receives them.
      const acquired = findMetric(metrics, "revault_auth_acquisitions_total")
      // A monotonic sum: a counter, as the collector sees it.
      assert.isTrue(acquired.dataPointType === DataPointType.SUM && acquired.isMonotonic)
      assert.deepStrictEqual(points(acquired).sort(), [
        ['{"source":"authenticate","outcome":"success","workspace":"demo"}', 1],
        ['{"source":"refresh","outcome":"failure","workspace":"demo"}', 1],
        ['{"source":"refresh","outcome":"success","workspace":"demo"}', 2]
      ])
      const remaining = findMetric(metrics, "revault_auth_token_remaining_seconds")
      assert.strictEqual(remaining.dataPointType, DataPointType.GAUGE)
      // The token obtained at t = 6 s has its whole 6 s left: TestClock stands still during the request.
      assert.deepStrictEqual(points(remaining), [['{"workspace":"demo"}', 6]])
      const replays = findMetric(metrics, "revault_auth_unauthorized_replays_total")
      assert.isTrue(replays.dataPointType === DataPointType.SUM && replays.isMonotonic)
      assert.deepStrictEqual(points(replays), [["{}", 1]])
    })
  )
})
