import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/testing/TestClock"
import * as RefCountedMap from "../../src/internal/refCountedMap.js"

/** Lets every runnable fiber run until the system is idle at the current TestClock time. */
const settle = Effect.gen(function* () {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

/** A map of counted resources, in a scope of its own that the test closes. */
const counted = (options: { readonly idleTimeToLive?: Duration.Input; readonly capacity?: number } = {}) =>
  Effect.gen(function* () {
    let built = 0
    const closedIds: Array<number> = []
    const scope = yield* Scope.make()
    const map = yield* RefCountedMap.make({
      lookup: (key: string) =>
        Effect.acquireRelease(
          Effect.sync(() => ({ key, id: ++built })),
          (resource) => Effect.sync(() => closedIds.push(resource.id))
        ),
      idleTimeToLive: options.idleTimeToLive ?? "1 minute",
      capacity: options.capacity ?? Number.POSITIVE_INFINITY
    }).pipe(Scope.provide(scope))
    return { map, scope, built: () => built, closed: () => [...closedIds].sort() }
  })

const held = <A, E>(map: RefCountedMap.RefCountedMap<string, A, E>, key: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const value = yield* Scope.provide(map.get(key), scope)
    return { value, scope }
  })

describe("refCountedMap", () => {
  it.effect("concurrent first gets of one key build one resource and share it", () =>
    Effect.gen(function* () {
      const { built, map, scope } = yield* counted()
      const holder = yield* Scope.make()
      const values = yield* Effect.all(
        Array.from({ length: 50 }, () => Scope.provide(map.get("a"), holder)),
        { concurrency: "unbounded" }
      )
      assert.isTrue(values.every((value) => value === values[0]))
      assert.strictEqual(built(), 1)
      yield* Scope.close(holder, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a released resource is kept for idleTimeToLive, each release restarting the wait", () =>
    Effect.gen(function* () {
      const { built, closed, map, scope } = yield* counted({ idleTimeToLive: "1 minute" })
      const first = yield* Effect.scoped(map.get("a"))
      yield* TestClock.adjust("50 seconds")
      assert.strictEqual(yield* Effect.scoped(map.get("a")), first)
      // 50 s after the second release: still within its own minute.
      yield* TestClock.adjust("50 seconds")
      yield* settle
      assert.deepStrictEqual(closed(), [])
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.deepStrictEqual(closed(), [1])
      assert.notStrictEqual(yield* Effect.scoped(map.get("a")), first)
      assert.strictEqual(built(), 2)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(closed(), [1, 2])
    })
  )

  it.effect("a held resource is never closed by its idle time", () =>
    Effect.gen(function* () {
      const { closed, map, scope } = yield* counted({ idleTimeToLive: "1 minute" })
      yield* Effect.scoped(map.get("a"))
      // Held again before its idle time is up: the timer that was waiting leaves it alone.
      const holder = yield* held(map, "a")
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.deepStrictEqual(closed(), [])
      yield* Scope.close(holder.scope, Exit.void)
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.deepStrictEqual(closed(), [1])
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("idleTimeToLive zero closes at the last release; an infinite one keeps until the map closes", () =>
    Effect.gen(function* () {
      const zero = yield* counted({ idleTimeToLive: Duration.zero })
      yield* Effect.scoped(zero.map.get("a"))
      assert.deepStrictEqual(zero.closed(), [1])
      yield* Scope.close(zero.scope, Exit.void)

      const infinite = yield* counted({ idleTimeToLive: Duration.infinity })
      yield* Effect.scoped(infinite.map.get("a"))
      yield* TestClock.adjust("3650 days")
      yield* settle
      assert.deepStrictEqual(infinite.closed(), [])
      yield* Scope.close(infinite.scope, Exit.void)
      assert.deepStrictEqual(infinite.closed(), [1])
    })
  )

  it.effect("capacity: another key beyond it fails; idle entries count until closed", () =>
    Effect.gen(function* () {
      const { map, scope } = yield* counted({ capacity: 1, idleTimeToLive: "1 minute" })
      const a = yield* held(map, "a")
      const refused = yield* Effect.flip(Effect.scoped(map.get("b")))
      assert.isTrue(Cause.isExceededCapacityError(refused))
      // The key already in the map is not refused.
      yield* Effect.scoped(map.get("a"))
      yield* Scope.close(a.scope, Exit.void)
      assert.isTrue(Cause.isExceededCapacityError(yield* Effect.flip(Effect.scoped(map.get("b")))))
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.strictEqual((yield* Effect.scoped(map.get("b"))).key, "b")
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("invalidate while held: the holder keeps its resource until its last release, then it closes", () =>
    Effect.gen(function* () {
      const { built, closed, map, scope } = yield* counted({ idleTimeToLive: "10 minutes" })
      const first = yield* held(map, "a")
      yield* map.invalidate("a")
      assert.deepStrictEqual(closed(), [])
      const second = yield* held(map, "a")
      assert.strictEqual(second.value.id, 2)
      yield* Scope.close(first.scope, Exit.void)
      assert.deepStrictEqual(closed(), [1])
      // Past the idle time the first would have had: the second is still the one handed out.
      yield* Scope.close(second.scope, Exit.void)
      yield* map.invalidate("b")
      yield* TestClock.adjust("5 minutes")
      yield* settle
      const third = yield* held(map, "a")
      assert.strictEqual(third.value, second.value)
      assert.strictEqual(built(), 2)
      yield* Scope.close(third.scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("invalidate of an idle entry closes it at once", () =>
    Effect.gen(function* () {
      const { closed, map, scope } = yield* counted({ idleTimeToLive: "10 minutes" })
      yield* Effect.scoped(map.get("a"))
      yield* map.invalidate("a")
      assert.deepStrictEqual(closed(), [1])
      assert.strictEqual((yield* Effect.scoped(map.get("a"))).id, 2)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("the idle timer of an invalidated entry never closes the entry that replaced it", () =>
    Effect.gen(function* () {
      const { closed, map, scope } = yield* counted({ idleTimeToLive: "1 minute" })
      // Released, so its timer waits; then invalidated and re-held before the timer fires.
      yield* Effect.scoped(map.get("a"))
      const holder = yield* held(map, "a")
      yield* Scope.close(holder.scope, Exit.void)
      yield* TestClock.adjust("30 seconds")
      const again = yield* held(map, "a")
      yield* map.invalidate("a")
      const replacement = yield* held(map, "a")
      yield* Scope.close(again.scope, Exit.void)
      assert.deepStrictEqual(closed(), [1])
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.deepStrictEqual(closed(), [1])
      assert.strictEqual(yield* Effect.scoped(map.get("a")), replacement.value)
      yield* Scope.close(replacement.scope, Exit.void)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(closed(), [1, 2])
    })
  )

  it.effect("closing the map closes every resource it built: held, idle, and invalidated while held", () =>
    Effect.gen(function* () {
      const { closed, map, scope } = yield* counted({ idleTimeToLive: "10 minutes" })
      // Effect 4.1's RcMap forgets this one on invalidation, and leaves it open when the map closes.
      const invalidated = yield* held(map, "a")
      yield* map.invalidate("a")
      const current = yield* held(map, "a")
      yield* Effect.scoped(map.get("b"))
      assert.deepStrictEqual(closed(), [])
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(closed(), [1, 2, 3])
      // The holders' later releases have nothing left to do, and the map builds nothing more.
      yield* Scope.close(invalidated.scope, Exit.void)
      yield* Scope.close(current.scope, Exit.void)
      assert.deepStrictEqual(closed(), [1, 2, 3])
      const late = yield* Effect.exit(Effect.scoped(map.get("c")))
      assert.isTrue(Exit.hasInterrupts(late))
    })
  )

  it.effect("an interrupted first caller does not stop the build for the others waiting", () =>
    Effect.gen(function* () {
      const gate = yield* Deferred.make<void>()
      let built = 0
      const scope = yield* Scope.make()
      const map = yield* RefCountedMap.make({
        lookup: (key: string) => Effect.as(Deferred.await(gate), `${key}-${++built}`),
        idleTimeToLive: "1 minute",
        capacity: Number.POSITIVE_INFINITY
      }).pipe(Scope.provide(scope))
      const first = yield* Effect.forkChild(Effect.scoped(map.get("a")))
      const second = yield* Effect.forkChild(Effect.scoped(map.get("a")))
      yield* settle
      yield* Fiber.interrupt(first)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(second), "a-1")
      assert.strictEqual(built, 1)
      yield* Scope.close(scope, Exit.void)
    })
  )

  it.effect("a failed lookup fails its gets, and waiters of an entry closed mid-build are interrupted", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const map = yield* RefCountedMap.make({
        lookup: (key: string) => (key === "bad" ? Effect.fail("refused" as const) : Effect.never),
        idleTimeToLive: "1 minute",
        capacity: Number.POSITIVE_INFINITY
      }).pipe(Scope.provide(scope))
      assert.strictEqual(yield* Effect.flip(Effect.scoped(map.get("bad"))), "refused")
      const waiting = yield* Effect.forkChild(Effect.scoped(map.get("slow")))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.hasInterrupts(yield* Fiber.await(waiting)))
    })
  )
})
