/**
 * B5: memory of 1,000 `AuthService` instances (one per workspace, each in its own scope, each on
 * its own stub AuthApi) that all hold a token: `heapUsed` after full GCs, before and after, / 1,000.
 *
 * The configurations and stubs are made before the baseline is taken, so the per-instance figure is
 * the AuthService alone (its state, token set, session, background fiber and its timer, wake-up
 * queue, scope); the figure with them is reported too. Access tokens are flat 256-character strings,
 * about the size of the mock's HS256 JWTs. Three rounds; the median is reported.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import type { Service as AuthServiceService } from "../src/AuthService.js"
import { heapAfterGc, median, report, requireGc } from "./support/report.js"
import { benchConfig, makeService, makeStub } from "./support/stubApi.js"

const gc = requireGc()
const instances = 1_000
const rounds = 3

interface Measured {
  readonly service: number
  readonly withInputs: number
}

const round = Effect.gen(function* () {
  const h0 = heapAfterGc(gc)
  const inputs = yield* Effect.forEach(
    Array.from({ length: instances }, (_, i) => i),
    (i) =>
      Effect.map(benchConfig({ workspace: `workspace-${String(i).padStart(4, "0")}` }), (config) => ({
        config,
        stub: makeStub({ accessTokenLength: 256 })
      }))
  )
  const h1 = heapAfterGc(gc)
  const held: Array<{ readonly scope: Scope.Closeable; readonly service: AuthServiceService }> = []
  for (const { config, stub } of inputs) {
    const scope = yield* Scope.make()
    const service = yield* Scope.provide(makeService(stub.api, config), scope)
    held.push({ scope, service })
  }
  // Every instance holds its token (the prefetch finished) before the heap is measured.
  yield* Effect.forEach(held, ({ service }) => service.accessToken, { concurrency: "unbounded", discard: true })
  const tokens = inputs.reduce((n, { stub }) => n + stub.counts.authenticate, 0)
  const h2 = heapAfterGc(gc)
  yield* Effect.forEach(held, ({ scope }) => Scope.close(scope, Exit.void), { discard: true })
  const measured: Measured = { service: (h2 - h1) / instances, withInputs: (h2 - h0) / instances }
  console.log(
    `${instances} instances, ${tokens} token requests: ${measured.service.toFixed(0)} B per AuthService, ${measured.withInputs.toFixed(0)} B with its config and stub`
  )
  return measured
})

const results = await Effect.runPromise(Effect.forEach(Array.from({ length: rounds }), () => round))
const perService = median(results.map((r) => r.service))
const perInstance = median(results.map((r) => r.withInputs))

report({
  id: "B5",
  name: "b5-memory",
  title: `memory of ${instances.toLocaleString("en-US")} AuthService instances, one per workspace, each holding a token`,
  command: "node --expose-gc --import tsx bench/b5.ts",
  rows: [
    ...results.map((r, i) => ({
      subject: `round ${i + 1}`,
      metric: "per AuthService",
      value: r.service,
      unit: "bytes"
    })),
    { subject: "AuthService", metric: "per instance (median of rounds)", value: perService, unit: "bytes" },
    {
      subject: "AuthService + its AuthConfig + stub AuthApi",
      metric: "per instance (median of rounds)",
      value: perInstance,
      unit: "bytes"
    },
    {
      subject: `${instances} instances`,
      metric: "total (AuthService alone)",
      value: (perService * instances) / 1e6,
      unit: "MB"
    }
  ],
  verdicts: [],
  notes: ["reported, not judged (the issue sets no target)"]
})
