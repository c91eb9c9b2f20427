/**
 * Scoped resources by key, shared while held and closed after sitting idle: the contract of
 * Effect's `RcMap`, without two of its flaws in Effect 3.22. `RcMap` checks the map and its
 * capacity before taking its lock, so concurrent first `get`s of one key can build two resources
 * (the first orphaned) and a full map can admit another key. And its release asks only whether
 * *some* entry sits under the key: an entry invalidated while held keeps running after its last
 * holder lets go, its idle timer later removes the entry that replaced it, and a map closed before
 * that timer fires never closes it.
 *
 * Here the check and the insertion are one locked step, every release and timer acts only on the
 * very entry it belongs to, and closing the map closes every entry it made that is still open,
 * invalidated ones included.
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as MutableHashMap from "effect/MutableHashMap"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"

const maxSleepMillis = 2 ** 31 - 1

interface Entry<A, E> {
  readonly deferred: Deferred.Deferred<A, E>
  readonly scope: Scope.CloseableScope
  /** Scopes holding the entry. */
  refCount: number
  /** When an entry no scope holds is closed (epoch milliseconds). */
  expiresAt: number
  /** A timer is waiting for `expiresAt`: set before it is forked, cleared when it decides. */
  timing: boolean
  /** That timer's fiber, to interrupt when the entry closes otherwise. */
  idle: Fiber.RuntimeFiber<void> | undefined
}

export interface RefCountedMap<K, A, E> {
  /** The resource for `key`, built on first use; the scope holds it. */
  readonly get: (key: K) => Effect.Effect<A, E | Cause.ExceededCapacityException, Scope.Scope>
  /** The next `get` builds a new resource; the current one closes once no scope holds it. */
  readonly invalidate: (key: K) => Effect.Effect<void>
}

/** Builds the map in the current scope; closing that scope closes every resource the map built. */
export const make = <K, A, E>(options: {
  readonly lookup: (key: K) => Effect.Effect<A, E, Scope.Scope>
  readonly idleTimeToLive: Duration.DurationInput
  readonly capacity: number
}): Effect.Effect<RefCountedMap<K, A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { capacity, lookup } = options
    const idleTimeToLive = Duration.decode(options.idleTimeToLive)
    const scope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    // What `get` finds, and every entry not yet closed (the invalidated ones still held too).
    const current = MutableHashMap.empty<K, Entry<A, E>>()
    const open = new Set<Entry<A, E>>()
    let closed = false

    const isCurrent = (key: K, entry: Entry<A, E>): boolean =>
      Option.getOrUndefined(MutableHashMap.get(current, key)) === entry

    // Detaches the entry at once, in the caller's step, so that a timer closing its own entry
    // (which cleared `idle` in that same step) never waits for itself. Waiters of an entry closed
    // before its resource was built are interrupted, not left hanging.
    const close = (entry: Entry<A, E>): Effect.Effect<void> => {
      if (!open.delete(entry)) return Effect.void
      const idle = entry.idle
      entry.idle = undefined
      return Effect.uninterruptible(
        Effect.all([
          idle === undefined ? Effect.void : Fiber.interrupt(idle),
          Scope.close(entry.scope, Exit.void),
          Deferred.interrupt(entry.deferred)
        ])
      )
    }

    yield* Effect.addFinalizer(() =>
      lock
        .withPermits(1)(
          Effect.sync(() => {
            closed = true
            MutableHashMap.clear(current)
            return [...open]
          })
        )
        .pipe(Effect.flatMap((entries) => Effect.forEach(entries, close, { discard: true })))
    )

    // The check and the insertion happen under one lock, so two first `get`s build one entry and
    // a full map admits no other key.
    const acquire = (key: K): Effect.Effect<Entry<A, E>, Cause.ExceededCapacityException> =>
      lock.withPermits(1)(
        Effect.suspend(() => {
          if (closed) return Effect.interrupt
          const found = MutableHashMap.get(current, key)
          if (found._tag === "Some") {
            found.value.refCount++
            return Effect.succeed(found.value)
          }
          if (MutableHashMap.size(current) >= capacity) {
            return Effect.fail(new Cause.ExceededCapacityException(`the map holds its capacity of ${capacity} keys`))
          }
          return Effect.gen(function* () {
            const entryScope = yield* Scope.make()
            const deferred = yield* Deferred.make<A, E>()
            const entry: Entry<A, E> = {
              deferred,
              scope: entryScope,
              refCount: 1,
              expiresAt: 0,
              timing: false,
              idle: undefined
            }
            MutableHashMap.set(current, key, entry)
            open.add(entry)
            // Built in a fiber of the entry's own: an interrupted first caller does not stop it
            // for the others waiting.
            yield* Effect.forkIn(
              Effect.intoDeferred(Effect.interruptible(Scope.extend(lookup(key), entryScope)), deferred),
              entryScope
            )
            return entry
          })
        })
      )

    const expire = (key: K, entry: Entry<A, E>): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const remaining = entry.expiresAt - clock.unsafeCurrentTimeMillis()
        if (remaining > 0) {
          // Whole milliseconds, at least one (a sub-millisecond sleep on TestClock ends as it
          // starts), and below the 2^31 ms that Effect takes for an infinite sleep.
          const wait = Math.min(Math.max(1, Math.ceil(remaining)), maxSleepMillis)
          return Effect.flatMap(Effect.sleep(Duration.millis(wait)), () => expire(key, entry))
        }
        // Cleared in the same step as the decision: a release from now on starts a timer of its own.
        entry.timing = false
        entry.idle = undefined
        // Held again, or invalidated: its last release closes it.
        if (entry.refCount > 0 || !isCurrent(key, entry)) return Effect.void
        MutableHashMap.remove(current, key)
        return close(entry)
      })

    const release = (key: K, entry: Entry<A, E>): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        entry.refCount--
        if (entry.refCount > 0) return Effect.void
        // Invalidated (or replaced) while held: nobody can reach it any more.
        if (closed || !isCurrent(key, entry)) return close(entry)
        if (Duration.isZero(idleTimeToLive)) {
          MutableHashMap.remove(current, key)
          return close(entry)
        }
        if (!Duration.isFinite(idleTimeToLive)) return Effect.void
        entry.expiresAt = clock.unsafeCurrentTimeMillis() + Duration.toMillis(idleTimeToLive)
        if (entry.timing) return Effect.void
        entry.timing = true
        return expire(key, entry).pipe(
          Effect.interruptible,
          Effect.forkIn(scope),
          Effect.flatMap((fiber) =>
            Effect.sync(() => {
              entry.idle = fiber
            })
          )
        )
      })

    return {
      get: (key) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(acquire(key), (entry) =>
            Effect.zipRight(
              Effect.addFinalizer(() => release(key, entry)),
              restore(Deferred.await(entry.deferred))
            )
          )
        ),
      invalidate: (key) =>
        Effect.suspend(() => {
          if (closed) return Effect.void
          const found = MutableHashMap.get(current, key)
          if (found._tag === "None") return Effect.void
          MutableHashMap.remove(current, key)
          // A held entry keeps serving its holders; the last release closes it.
          return found.value.refCount > 0 ? Effect.void : close(found.value)
        })
    }
  })
