import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/testing/TestClock"
import type * as AuthConfig from "../src/AuthConfig.js"
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

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

const Command = Schema.Union([
  Schema.TaggedStruct("read", { readers: between(1, 20) }),
  // Small steps explore the moments around an expiry, large ones whole lifetimes.
  Schema.TaggedStruct("advance", { millis: Schema.Union([between(0, 5_000), between(0, 400_000)]) }),
  // Jump into the last `skew` of the newest token's life, where a stale token could slip out, and read.
  Schema.TaggedStruct("toSkewWindow", { offset: between(0, 30_000) }),
  Schema.TaggedStruct("invalidate", {}),
  Schema.TaggedStruct("refresh", {}),
  Schema.TaggedStruct("fail", {
    operation: Schema.Literals(["authenticate", "refresh"]),
    kind: Schema.Literals(["500", "401", "429", "timeout"]),
    times: between(1, 5)
  })
])

const errorOf = (kind: string, op: Operation): AuthError =>
  kind === "500"
    ? new InternalServerError({ operation: op, status: 500, code: "E", message: "boom", issues: [] })
    : kind === "401"
      ? new UnauthorizedError({ operation: op, status: 401, code: "E", message: "no", issues: [] })
      : kind === "429"
        ? new UnexpectedStatusError({ operation: op, status: 429, body: "", retryAfter: Option.none() })
        : new TransportError({ operation: op, reason: "Timeout", cause: "timeout" })

const Commands = Schema.Array(Command).check(Schema.isBetweenLength(1, 25))

// Runs the commands, then checks the invariants. Returns the number of requests and the simulated
// time they took.
const check = (commands: ReadonlyArray<typeof Command.Type>, config: Partial<AuthConfig.Options>) =>
  Effect.gen(function* () {
    const startedAt = yield* Clock.currentTimeMillis
    const { service, stub } = yield* setup({ latency: "5 seconds", config })
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
      Effect.catch((error) =>
        Effect.sync(() => {
          if (!isAuthError(error)) violations.push(`not an AuthError: ${String(error)}`)
        })
      )
    )
    const fibers: Array<Fiber.Fiber<void>> = []
    for (const c of commands) {
      switch (c._tag) {
        case "read":
          for (let i = 0; i < c.readers; i++) fibers.push(yield* Effect.forkChild(read))
          break
        case "advance":
          yield* TestClock.adjust(c.millis)
          break
        case "toSkewWindow": {
          const newest = (yield* stub.issued).at(-1)
          const now = yield* Clock.currentTimeMillis
          const target = (newest?.expiresAt ?? 0) - skew + c.offset
          if (target > now) yield* TestClock.adjust(target - now)
          fibers.push(yield* Effect.forkChild(read))
          break
        }
        case "invalidate":
          yield* service.invalidate()
          break
        case "refresh":
          fibers.push(yield* Effect.forkChild(Effect.asVoid(Effect.result(service.refresh))))
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
    return { requests: yield* stub.count(), elapsed: (yield* Clock.currentTimeMillis) - startedAt }
  })

describe("AuthService under random interleavings", () => {
  it.effect.prop(
    "never an expired token, never two requests in flight, every error an AuthError",
    { commands: Commands },
    // Refreshing late (at 95 %) leaves the skew window open to readers, where bugs would show.
    ({ commands }) => check(commands, { refreshAt: 0.95 }),
    { arbitrary: { runs: 100, size: 25 } }
  )

  it.effect.prop(
    "the same under any refreshSchedule, and no request loop whatever its delay",
    {
      commands: Commands,
      // From no delay at all to far past the usable time.
      delay: Schema.Union([between(0, 2_000), between(0, 3_600_000)]),
      jittered: Schema.Boolean
    },
    ({ commands, delay, jittered }) =>
      Effect.gen(function* () {
        const spaced = Schedule.spaced(delay)
        const { elapsed, requests } = yield* check(commands, {
          refreshSchedule: jittered ? Schedule.jittered(spaced) : spaced
        })
        // A coarse bound (one background refresh per second, plus one acquisition per command and
        // one retry per scripted failure); test/AuthService.schedule.test.ts checks the exact spacing.
        assert.isAtMost(requests, Math.ceil(elapsed / 1000) + 1 + commands.length * 6)
      }),
    { arbitrary: { runs: 50, size: 25 } }
  )
})
