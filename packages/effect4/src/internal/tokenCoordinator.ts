// The fleet protocol behind `TokenCoordinator`: a lease, a re-read under it, a compare-and-set on a
// generation number, an announcement. The store is abstract (`Backend`): Redis in production, an
// in-process map for tests; both run the same code here. Users never see any of it.
import * as NodeCrypto from "node:crypto"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import type { AuthError } from "../AuthError.js"
import { TokenSet } from "../TokenSet.js"
import * as seal from "./shared/tokenSeal.js"
import type { Acquired } from "./tokenManager.js"
import { masterKey, type Owner } from "./tokenStore.js"

/** A store command failed, timed out, or the store is cooling down after a failure. */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly command: string
  readonly cause: unknown
}> {}

// A client's error often wraps the one that says what happened (ECONNREFUSED under a RedisError
// with no message): the first message found, a few levels down.
const describeCause = (cause: unknown): string => {
  let current = cause
  for (let depth = 0; depth < 4; depth++) {
    if (!(current instanceof Error)) return typeof current === "string" ? current : "unknown"
    if (current.message !== "") return current.message
    current = current.cause
  }
  return "unknown"
}

/** A shared set as the store holds it, with its age measured on the store's own clock. */
export interface Stored {
  readonly generation: number
  readonly payload: string
  readonly ageMillis: number
}

/**
 * The store's side of the protocol. `name` is an owner's HMAC name (see `seal.fleetName`).
 * Generations start at 1; `commit` writes `expected + 1` only if the stored generation is
 * `expected` (0 for none), and answers the new generation or 0 when it refused.
 */
export interface Backend {
  readonly read: (name: string) => Effect.Effect<Option.Option<Stored>, StoreError>
  readonly lease: (name: string, owner: string, ttlMillis: number) => Effect.Effect<boolean, StoreError>
  /** Milliseconds left on the lease, 0 when nobody holds it. */
  readonly leaseRemaining: (name: string) => Effect.Effect<number, StoreError>
  readonly commit: (
    name: string,
    expected: number,
    payload: string,
    ttlMillis: number
  ) => Effect.Effect<number, StoreError>
  readonly release: (name: string, owner: string) => Effect.Effect<void, StoreError>
  readonly announce: (name: string, generation: number) => Effect.Effect<void, StoreError>
  /** Drops whatever connection failed, so the next command after the cooldown starts afresh. */
  readonly reset: Effect.Effect<void>
}

/**
 * `effect`, or `onTimeout` after `millis`, without waiting for `effect` to wind down: a client
 * whose interruption itself waits for a server that never answers (a paused Redis) must not hold
 * the caller. The command runs in a detached fiber, interrupted in the background on timeout.
 */
export const bounded = <A, E>(effect: Effect.Effect<A, E>, millis: number, onTimeout: () => E): Effect.Effect<A, E> =>
  Effect.flatMap(Effect.forkDetach(effect), (fiber) =>
    Fiber.join(fiber).pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(millis),
        orElse: () => Effect.andThen(Effect.forkDetach(Fiber.interrupt(fiber)), Effect.fail(onTimeout()))
      }),
      Effect.onInterrupt(() => Effect.forkDetach(Fiber.interrupt(fiber)))
    )
  )

/** Tuning shared by every layer; all durations already decoded. */
export interface Tuning {
  readonly leaseMargin: number
  readonly commandTimeout: number
  /** Opening a connection (the client, the handshake, the subscription) may take this long. */
  readonly connectTimeout: number
  readonly cooldown: number
  readonly jitter: number
  readonly pollInterval: number
}

export const defaultTuning: Tuning = {
  leaseMargin: 5_000,
  commandTimeout: 1_000,
  connectTimeout: 5_000,
  cooldown: 30_000,
  jitter: 5_000,
  pollInterval: 250
}

/** What a token manager asks for one acquisition. */
export interface Request {
  /** The set the process holds, if any. */
  readonly current: Option.Option<Acquired>
  /** Whether a set found in the store can be adopted now instead of a request. */
  readonly isFresh: (acquired: Acquired, now: number) => boolean
  /** Whether a refresh token of `acquired` can still be spent at `now`. */
  readonly refreshUsable: (acquired: Acquired, now: number) => boolean
  /** The token request: through `refreshToken` when given (falling back to the API key once). */
  readonly obtain: (refreshToken: Option.Option<Redacted.Redacted<string>>) => Effect.Effect<Acquired, AuthError>
  /** How long a token request may take: the lease covers it. */
  readonly requestTimeout: number
}

/** One token manager's membership of the fleet. */
export interface Member {
  /** Added to the refresh-due time of every set, so that a fleet started at once does not contend. */
  readonly jitterMillis: number
  readonly acquire: (request: Request) => Effect.Effect<Acquired, AuthError>
}

/** The service behind the `TokenCoordinator` tag. */
export interface Coordinator {
  readonly join: (owner: Owner) => Effect.Effect<Member, never, Scope.Scope>
}

const leasesWon = Metric.counter("revault_auth_fleet_leases_total", {
  description: "Fleet leases asked for, by outcome (won | lost)",
  incremental: true
})
const setsAdopted = Metric.counter("revault_auth_fleet_sets_adopted_total", {
  description: "Token sets adopted from the fleet store instead of a token request",
  incremental: true
})
const fallbacks = Metric.counter("revault_auth_fleet_fallbacks_total", {
  description: "Acquisitions made by the process alone, by reason (store-error | cooldown | lease-wait)",
  incremental: true
})
const storeErrors = Metric.counter("revault_auth_fleet_store_errors_total", {
  description: "Fleet store commands that failed or timed out, by command",
  incremental: true
})

/** The sealed plaintext: a token set with the times its leader measured. */
interface Plain {
  readonly accessToken: string
  readonly expiresInSeconds: number
  readonly refreshToken: string
  readonly refreshExpiresInSeconds: number
  readonly source: "authenticate" | "refresh"
  readonly sentAt: number
  readonly obtainedAt: number
  readonly expiresAt: number
  readonly refreshExpiresAt: number
}

const toPlain = (acquired: Acquired): string =>
  JSON.stringify({
    accessToken: Redacted.value(acquired.tokenSet.accessToken),
    expiresInSeconds: acquired.tokenSet.expiresInSeconds,
    refreshToken: Redacted.value(acquired.tokenSet.refreshToken),
    refreshExpiresInSeconds: acquired.tokenSet.refreshExpiresInSeconds,
    source: acquired.source,
    sentAt: acquired.sentAt,
    obtainedAt: acquired.obtainedAt,
    expiresAt: acquired.expiresAt,
    refreshExpiresAt: acquired.refreshExpiresAt
  } satisfies Plain)

const isPlain = (u: unknown): u is Plain => {
  if (typeof u !== "object" || u === null) return false
  const r = u as Record<string, unknown>
  const numbers = [
    "expiresInSeconds",
    "refreshExpiresInSeconds",
    "sentAt",
    "obtainedAt",
    "expiresAt",
    "refreshExpiresAt"
  ]
  return (
    typeof r.accessToken === "string" &&
    typeof r.refreshToken === "string" &&
    (r.source === "authenticate" || r.source === "refresh") &&
    numbers.every((field) => typeof r[field] === "number" && Number.isFinite(r[field]))
  )
}

/**
 * Opens a stored set and moves its times onto this process's clock: the store says how long ago
 * it was committed, by its own clock, so processes whose clocks disagree still agree on how old
 * the set is.
 */
const fromStored = (owner: Owner, master: Buffer, stored: Stored, now: number): Acquired | undefined => {
  const opened = seal.open(owner, master, withOwner(owner, stored.payload), String(stored.generation))
  if (opened._tag !== "Opened") return undefined
  let plain: unknown
  try {
    plain = JSON.parse(opened.plaintext)
  } catch {
    return undefined
  }
  if (!isPlain(plain)) return undefined
  const shift = now - Math.max(0, stored.ageMillis) - plain.obtainedAt
  return {
    tokenSet: new TokenSet({
      accessToken: Redacted.make(plain.accessToken),
      expiresInSeconds: plain.expiresInSeconds,
      refreshToken: Redacted.make(plain.refreshToken),
      refreshExpiresInSeconds: plain.refreshExpiresInSeconds
    }),
    source: plain.source,
    sentAt: plain.sentAt + shift,
    obtainedAt: plain.obtainedAt + shift,
    expiresAt: plain.expiresAt + shift,
    refreshExpiresAt: plain.refreshExpiresAt + shift
  }
}

// The envelope names its workspace and key id in clear; the fleet's copy leaves them out (every
// reader knows them) so Redis holds neither. They stay authenticated: the seal binds them.
const withoutOwner = (sealed: string): string =>
  JSON.stringify({ ...JSON.parse(sealed), workspace: undefined, apiKeyId: undefined })

const withOwner = (owner: Owner, payload: string): string => {
  try {
    const parsed: unknown = JSON.parse(payload)
    return typeof parsed === "object" && parsed !== null
      ? JSON.stringify({ ...parsed, workspace: owner.workspace, apiKeyId: owner.apiKeyId })
      : payload
  } catch {
    return payload
  }
}

const sameToken = (a: Acquired, b: Option.Option<Acquired>): boolean =>
  b._tag === "Some" && Redacted.value(a.tokenSet.accessToken) === Redacted.value(b.value.tokenSet.accessToken)

interface Found {
  readonly acquired: Acquired
  readonly generation: number
}

/**
 * A coordinator over `backend`. Announcements reach members through `deliver`, which the backend
 * calls with the name and generation of every set committed anywhere in the fleet.
 */
export const make = (
  backend: Backend,
  tuning: Tuning
): Effect.Effect<{ readonly coordinator: Coordinator; readonly deliver: (name: string) => Effect.Effect<void> }> =>
  Effect.gen(function* () {
    // One per store connection, shared by its members: a failure of any command cools them all down.
    const downUntil = yield* Ref.make(0)
    const listeners = yield* Ref.make(new Map<string, Ref.Ref<Deferred.Deferred<void>>>())

    const deliver = (name: string) =>
      Effect.flatMap(Ref.get(listeners), (map) => {
        const signal = map.get(name)
        return signal === undefined
          ? Effect.void
          : Effect.flatMap(Deferred.make<void>(), (next) =>
              Effect.flatMap(Ref.getAndSet(signal, next), (previous) => Deferred.succeed(previous, undefined))
            )
      })

    // Every store command: refused at once while cooling down, bounded by the command timeout, and
    // on failure the start of a cooldown. Never a defect: whatever the store does is a StoreError.
    const guard = <A>(command: string, effect: Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (now < (yield* Ref.get(downUntil))) {
          return yield* Effect.fail(new StoreError({ command, cause: "cooling down after a store failure" }))
        }
        // The store bounds connection and command on its own; this bounds both at once.
        return yield* bounded(
          effect,
          tuning.commandTimeout + tuning.connectTimeout,
          () => new StoreError({ command, cause: "timed out" })
        ).pipe(
          Effect.catchDefect((defect) => Effect.fail(new StoreError({ command, cause: defect }))),
          Effect.tapError((error) =>
            Effect.gen(function* () {
              const at = yield* Clock.currentTimeMillis
              yield* Ref.set(downUntil, at + tuning.cooldown)
              yield* Metric.update(Metric.withAttributes(storeErrors, { command }), 1)
              yield* Effect.logWarning(
                "token coordinator store failed; acquiring per process until it is retried"
              ).pipe(
                Effect.annotateLogs({
                  command,
                  cause: describeCause(error.cause),
                  cooldownMillis: tuning.cooldown
                })
              )
              yield* backend.reset
            })
          )
        )
      })

    const join = (owner: Owner): Effect.Effect<Member, never, Scope.Scope> =>
      Effect.gen(function* () {
        // A secret that scrypt cannot take is none the fleet can share: such a member never
        // coordinates, and its manager works as it would alone.
        const master = yield* Effect.option(masterKey(owner))
        const name = Option.map(master, (key) => seal.fleetName(owner, key))
        const signal = yield* Effect.flatMap(Deferred.make<void>(), Ref.make)
        if (Option.isSome(name)) {
          const key = name.value
          yield* Ref.update(listeners, (map) => new Map(map).set(key, signal))
          yield* Effect.addFinalizer(() =>
            Ref.update(listeners, (map) => {
              const next = new Map(map)
              next.delete(key)
              return next
            })
          )
        }
        const jitterMillis = tuning.jitter > 0 ? yield* Random.nextBetween(0, tuning.jitter) : 0
        // The refresh token of the last set that went through the store (committed or adopted):
        // other processes may hold it, so it is spent under the lease only.
        const shared = yield* Ref.make<string | undefined>(undefined)
        const markShared = (acquired: Acquired) => Ref.set(shared, Redacted.value(acquired.tokenSet.refreshToken))

        const fallback = (request: Request, reason: string) =>
          Effect.gen(function* () {
            yield* Metric.update(Metric.withAttributes(fallbacks, { reason }), 1)
            yield* Effect.annotateCurrentSpan("revault.fleet.fallback", reason)
            const now = yield* Clock.currentTimeMillis
            const spent = yield* Ref.get(shared)
            const own = Option.filter(
              request.current,
              (c) => request.refreshUsable(c, now) && Redacted.value(c.tokenSet.refreshToken) !== spent
            )
            return yield* request.obtain(Option.map(own, (c) => c.tokenSet.refreshToken))
          })

        const adopt = (acquired: Acquired, generation: number) =>
          Effect.gen(function* () {
            yield* markShared(acquired)
            yield* Metric.update(setsAdopted, 1)
            yield* Effect.annotateCurrentSpan({
              "revault.fleet.outcome": "adopted",
              "revault.fleet.generation": generation
            })
            return acquired
          })

        const acquire = (request: Request): Effect.Effect<Acquired, AuthError> => {
          if (Option.isNone(master) || Option.isNone(name)) return fallback(request, "no-key")
          const key = master.value
          const fleet = name.value
          const leaseMillis = request.requestTimeout + tuning.leaseMargin

          // The stored generation comes with the set, and counts even when the set cannot be opened
          // (damaged, or sealed under another generation), so that a commit replaces it.
          const read = Effect.gen(function* () {
            const stored = yield* guard("read", backend.read(fleet))
            if (Option.isNone(stored)) return { generation: 0, found: Option.none<Found>() }
            const now = yield* Clock.currentTimeMillis
            const acquired = fromStored(owner, key, stored.value, now)
            const generation = stored.value.generation
            return {
              generation,
              found: acquired === undefined ? Option.none<Found>() : Option.some({ acquired, generation })
            }
          })

          const freshOf = (found: Option.Option<Found>, now: number) =>
            Option.filter(found, (f) => request.isFresh(f.acquired, now) && !sameToken(f.acquired, request.current))

          // Under the lease: read again (a leader may have committed between our read and the
          // lease), then one request, then the compare-and-set. Whatever the store does after the
          // request, the set obtained is used: the request is paid for.
          const lead = (owned: string) =>
            Effect.gen(function* () {
              const { found, generation: expected } = yield* read
              const now = yield* Clock.currentTimeMillis
              const fresh = freshOf(found, now)
              if (Option.isSome(fresh)) return yield* adopt(fresh.value.acquired, fresh.value.generation)
              const spendable = Option.orElse(
                Option.filter(
                  Option.map(found, (f) => f.acquired),
                  (a) => request.refreshUsable(a, now)
                ),
                () => Option.filter(request.current, (c) => request.refreshUsable(c, now))
              )
              const acquired = yield* request.obtain(Option.map(spendable, (a) => a.tokenSet.refreshToken))
              yield* Effect.gen(function* () {
                const payload = withoutOwner(seal.seal(owner, key, toPlain(acquired), String(expected + 1)))
                const ttl = Math.max(1, Math.ceil(acquired.refreshExpiresAt - acquired.sentAt))
                const generation = yield* guard("commit", backend.commit(fleet, expected, payload, ttl))
                if (generation === 0) {
                  yield* Effect.logDebug("a newer fleet set was committed meanwhile; keeping ours for this process")
                  yield* Effect.annotateCurrentSpan("revault.fleet.committed", false)
                  return
                }
                yield* markShared(acquired)
                yield* Effect.annotateCurrentSpan({
                  "revault.fleet.committed": true,
                  "revault.fleet.generation": generation
                })
                yield* guard("announce", backend.announce(fleet, generation))
              }).pipe(Effect.catchTag("StoreError", () => Effect.void))
              yield* Effect.annotateCurrentSpan("revault.fleet.outcome", "led")
              return acquired
            }).pipe(Effect.ensuring(Effect.ignore(guard("release", backend.release(fleet, owned)))))

          const protocol = Effect.gen(function* () {
            const owned = NodeCrypto.randomUUID()
            const started = yield* Clock.currentTimeMillis
            // Past this, the leaders we waited for are taken to be gone for good (each lease outlived
            // by a crash): the process acquires alone rather than hold its readers longer.
            const deadline = started + 3 * leaseMillis
            while (true) {
              const announced = yield* Ref.get(signal)
              const now = yield* Clock.currentTimeMillis
              const fresh = freshOf((yield* read).found, now)
              if (Option.isSome(fresh)) return yield* adopt(fresh.value.acquired, fresh.value.generation)
              const won = yield* guard("lease", backend.lease(fleet, owned, leaseMillis))
              yield* Metric.update(Metric.withAttributes(leasesWon, { outcome: won ? "won" : "lost" }), 1)
              if (won) return yield* lead(owned)
              if (now >= deadline) return yield* fallback(request, "lease-wait")
              // Woken by the announcement, or by polling no later than the lease runs out: an
              // announcement can be lost (pub/sub has no delivery guarantee).
              const remaining = yield* guard("lease-remaining", backend.leaseRemaining(fleet))
              const wait = Math.max(1, Math.min(remaining, tuning.pollInterval))
              yield* Effect.raceFirst(Deferred.await(announced), Effect.sleep(Duration.millis(wait)))
            }
          })

          return protocol.pipe(
            Effect.catchTag("StoreError", (error) =>
              fallback(request, error.cause === "cooling down after a store failure" ? "cooldown" : "store-error")
            ),
            Effect.withSpan("RevaultAuth.coordinate", { attributes: { "revault.workspace": owner.workspace } })
          )
        }

        return { jitterMillis, acquire }
      })

    return { coordinator: { join }, deliver }
  })

// The public service is an opaque token; the coordinator behind it is found here.
const coordinators = new WeakMap<object, Coordinator>()

export const register = <S extends object>(service: S, coordinator: Coordinator): S => {
  coordinators.set(service, coordinator)
  return service
}

export const coordinatorOf = (service: object): Coordinator | undefined => coordinators.get(service)
