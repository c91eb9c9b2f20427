import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import {
  type AuthError,
  InternalServerError,
  isAuthError,
  type Operation,
  TransportError,
  UnauthorizedError,
  UnexpectedStatusError
} from "../src/AuthError.js"
import { settle, setup } from "./support/StubAuthApi.js"

const operation = FastCheck.constantFrom<Operation>("authenticate", "refresh")

const command = FastCheck.oneof(
  FastCheck.record({ _tag: FastCheck.constant("read" as const), readers: FastCheck.integer({ min: 1, max: 20 }) }),
  FastCheck.record({
    _tag: FastCheck.constant("advance" as const),
    // Small steps explore the moments around an expiry, large ones whole lifetimes.
    millis: FastCheck.oneof(FastCheck.integer({ min: 0, max: 5_000 }), FastCheck.integer({ min: 0, max: 400_000 }))
  }),
  // Jump into the last `skew` of the newest token's life, where a stale token could slip out, and read.
  FastCheck.record({
    _tag: FastCheck.constant("toSkewWindow" as const),
    offset: FastCheck.integer({ min: 0, max: 30_000 })
  }),
  FastCheck.record({ _tag: FastCheck.constant("invalidate" as const) }),
  FastCheck.record({ _tag: FastCheck.constant("refresh" as const) }),
  FastCheck.record({
    _tag: FastCheck.constant("fail" as const),
    operation,
    kind: FastCheck.constantFrom("500", "401", "429", "timeout"),
    times: FastCheck.integer({ min: 1, max: 5 })
  })
)

const errorOf = (kind: string, op: Operation): AuthError =>
  kind === "500"
    ? new InternalServerError({ operation: op, status: 500, code: "E", message: "boom", issues: [] })
    : kind === "401"
      ? new UnauthorizedError({ operation: op, status: 401, code: "E", message: "no", issues: [] })
      : kind === "429"
        ? new UnexpectedStatusError({ operation: op, status: 429, body: "", retryAfter: Option.none() })
        : new TransportError({ operation: op, reason: "Timeout", cause: "timeout" })

describe("AuthService under random interleavings", () => {
  it.scoped.prop(
    "never an expired token, never two requests in flight, every error an AuthError",
    { commands: FastCheck.array(command, { minLength: 1, maxLength: 25 }) },
    ({ commands }) =>
      Effect.gen(function* () {
        // Refreshing late (at 95 %) leaves the skew window open to readers, where bugs would show.
        const { service, stub } = yield* setup({ latency: "5 seconds", config: { refreshAt: 0.95 } })
        const skew = 30_000
        const violations: Array<string> = []
        // Each read checks its token against what the server issued, at the moment it returns.
        const read = service.accessToken.pipe(
          Effect.flatMap((token) =>
            Effect.gen(function* () {
              const now = yield* Clock.currentTimeMillis
              const issued = (yield* stub.issued).find((i) => i.token === Redacted.value(token))
              if (issued === undefined || issued.expiresAt - skew <= now) {
                violations.push(`expired or unknown token at ${now}`)
              }
            })
          ),
          Effect.catchAll((error) =>
            Effect.sync(() => {
              if (!isAuthError(error)) violations.push(`not an AuthError: ${String(error)}`)
            })
          )
        )
        const fibers: Array<Fiber.RuntimeFiber<void>> = []
        for (const c of commands) {
          switch (c._tag) {
            case "read":
              for (let i = 0; i < c.readers; i++) fibers.push(yield* Effect.fork(read))
              break
            case "advance":
              yield* TestClock.adjust(c.millis)
              break
            case "toSkewWindow": {
              const newest = (yield* stub.issued).at(-1)
              const now = yield* Clock.currentTimeMillis
              const target = (newest?.expiresAt ?? 0) - skew + c.offset
              if (target > now) yield* TestClock.adjust(target - now)
              fibers.push(yield* Effect.fork(read))
              break
            }
            case "invalidate":
              yield* service.invalidate()
              break
            case "refresh":
              fibers.push(yield* Effect.fork(Effect.asVoid(Effect.either(service.refresh))))
              break
            case "fail":
              yield* stub.fail(c.operation, errorOf(c.kind, c.operation), c.times)
              break
          }
          yield* settle
        }
        yield* TestClock.adjust("10 minutes")
        for (const fiber of fibers) yield* Fiber.join(fiber)
        assert.deepStrictEqual(violations, [])
        assert.isAtMost(yield* stub.maxInflight, 1)
      }),
    { fastCheck: { numRuns: 60 } }
  )
})
