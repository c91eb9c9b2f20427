/**
 * Scoped resources by key, shared while held and closed after sitting idle: the contract of
 * Effect's `RcMap`, without the gap it still has in Effect 4.1. `RcMap` forgets an entry
 * invalidated while held (it leaves the map at once), so closing the map does not close it: its
 * resource runs on until its last holder lets go, however long after the map closed that is.
 *
 * Here every entry not yet closed is remembered, so closing the map closes every entry it made,
 * invalidated ones included; the check and the insertion of `get` are one synchronous step, so two
 * first `get`s build one entry and a full map admits no other key; and every release and timer acts
 * only on the very entry it belongs to.
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

interface Entry<A, E> {
  readonly deferred: Deferred.Deferred<A, E>
  readonly scope: Scope.Closeable
  /** Scopes holding the entry. */
  refCount: number
  /** When an entry no scope holds is closed (epoch milliseconds). */
  expiresAt: number
  /** A timer is waiting for `expiresAt`: set before it is forked, cleared when it decides. */
  timing: boolean
  /** That timer's fiber, to interrupt when the entry closes otherwise. */
  idle: Fiber.Fiber<void> | undefined
}

export interface RefCountedMap<K, A, E> {
  /** The resource for `key`, built on first use; the scope holds it. */
  readonly get: (key: K) => Effect.Effect<A, E | Cause.ExceededCapacityError, Scope.Scope>
  /** The next `get` builds a new resource; the current one closes once no scope holds it. */
  readonly invalidate: (key: K) => Effect.Effect<void>
}

/** Builds the map in the current scope; closing that scope closes every resource the map built. */
export const make = <K, A, E>(options: {
  readonly lookup: (key: K) => Effect.Effect<A, E, Scope.Scope>
  readonly idleTimeToLive: Duration.Input
  readonly capacity: number
}): Effect.Effect<RefCountedMap<K, A, E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { capacity, lookup } = options
    const idleTimeToLive = Duration.fromInputUnsafe(options.idleTimeToLive)
    const scope = yield* Effect.scope
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
      Effect.suspend(() => {
        closed = true
        MutableHashMap.clear(current)
        return Effect.forEach([...open], close, { discard: true })
      })
    )

    // Synchronous from the check to the insertion: no other fiber runs in between, so two first
    // `get`s build one entry and a full map admits no other key.
    const acquire = (key: K): Effect.Effect<Entry<A, E>, Cause.ExceededCapacityError> =>
      Effect.suspend(() => {
        if (closed) return Effect.interrupt
        const found = MutableHashMap.get(current, key)
        if (Option.isSome(found)) {
          found.value.refCount++
          return Effect.succeed(found.value)
        }
        if (MutableHashMap.size(current) >= capacity) {
          return Effect.fail(new Cause.ExceededCapacityError(`the map holds its capacity of ${capacity} keys`))
        }
        const entry: Entry<A, E> = {
          deferred: Deferred.makeUnsafe<A, E>(),
          scope: Scope.makeUnsafe(),
          refCount: 1,
          expiresAt: 0,
          timing: false,
          idle: undefined
        }
        MutableHashMap.set(current, key, entry)
        open.add(entry)
        // Built in a fiber of the entry's own (interruptible, as forked fibers are): an interrupted
        // first caller does not stop it for the others waiting, and closing the entry stops it.
        return Effect.as(
          Effect.forkIn(Deferred.into(Scope.provide(lookup(key), entry.scope), entry.deferred), entry.scope),
          entry
        )
      })

    const expire = (key: K, entry: Entry<A, E>): Effect.Effect<void> =>
      Effect.clockWith((clock) => {
        const remaining = entry.expiresAt - clock.currentTimeMillisUnsafe()
        if (remaining > 0) return Effect.flatMap(Effect.sleep(Duration.millis(remaining)), () => expire(key, entry))
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
        entry.expiresAt = clock.currentTimeMillisUnsafe() + Duration.toMillis(idleTimeToLive)
        if (entry.timing) return Effect.void
        entry.timing = true
        return Effect.flatMap(Effect.forkIn(expire(key, entry), scope), (fiber) =>
          Effect.sync(() => {
            // The timer may have decided already, on a clock that needed no wait.
            if (entry.timing) entry.idle = fiber
          })
        )
      })

    return {
      get: (key) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(acquire(key), (entry) =>
            Effect.andThen(
              Effect.addFinalizer(() => release(key, entry)),
              restore(Deferred.await(entry.deferred))
            )
          )
        ),
      invalidate: (key) =>
        Effect.suspend(() => {
          if (closed) return Effect.void
          const found = MutableHashMap.get(current, key)
          if (Option.isNone(found)) return Effect.void
          MutableHashMap.remove(current, key)
          // A held entry keeps serving its holders; the last release closes it.
          return found.value.refCount > 0 ? Effect.void : close(found.value)
        })
    }
  })
