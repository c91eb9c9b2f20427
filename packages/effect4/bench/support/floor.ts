import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"

/**
 * What `callers` concurrent callers cost the Effect runtime alone: the same fan-out, each caller
 * awaiting one Deferred that a timer completes after `delayMillis`. No cache, no HTTP. Returns the
 * wall time in milliseconds.
 */
export const fanOutFloor = (callers: number, delayMillis: number): Effect.Effect<number> =>
  Effect.gen(function* () {
    const token = yield* Deferred.make<string>()
    const t0 = performance.now()
    yield* Effect.forkChild(Effect.delay(Deferred.succeed(token, "AT"), `${delayMillis} millis`))
    yield* Effect.forEach(Array.from({ length: callers }), () => Deferred.await(token), { concurrency: "unbounded" })
    return performance.now() - t0
  })
