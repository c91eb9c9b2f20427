// The fleet store in one process: what Redis holds (sets with generations, leases with expiries,
// announcements), kept in a map and timed by the `Clock`, so tests drive it with `TestClock`.
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { type Backend, type Stored, StoreError } from "./tokenCoordinator.js"

interface Entry {
  readonly generation: number
  readonly payload: string
  readonly committedAt: number
  readonly expiresAt: number
}

interface Lease {
  readonly owner: string
  readonly expiresAt: number
}

/** What a test can do to the store: make it fail, hang, or forget everything. */
export interface Controls {
  /** Every command fails (`"fail"`), never answers (`"hang"`), or works (`"up"`). */
  readonly setMode: (mode: "up" | "fail" | "hang") => Effect.Effect<void>
  /** Forgets every set and lease, as a Redis restarted without persistence. */
  readonly flush: Effect.Effect<void>
  /** Stored sets by name (the generation, for assertions). */
  readonly generations: Effect.Effect<ReadonlyMap<string, number>>
  readonly commits: Effect.Effect<number>
}

export const make = (deliver: (name: string) => Effect.Effect<void>) =>
  Effect.gen(function* () {
    const sets = yield* Ref.make(new Map<string, Entry>())
    const leases = yield* Ref.make(new Map<string, Lease>())
    const mode = yield* Ref.make<"up" | "fail" | "hang">("up")
    const commits = yield* Ref.make(0)

    const command = <A>(name: string, body: (now: number) => Effect.Effect<A>): Effect.Effect<A, StoreError> =>
      Effect.flatMap(Ref.get(mode), (m) =>
        m === "fail"
          ? Effect.fail(new StoreError({ command: name, cause: "store down" }))
          : m === "hang"
            ? Effect.never
            : Effect.flatMap(Clock.currentTimeMillis, body)
      )

    const liveLease = (name: string, now: number) =>
      Effect.map(Ref.get(leases), (map) =>
        Option.filter(Option.fromUndefinedOr(map.get(name)), (l) => l.expiresAt > now)
      )

    const backend: Backend = {
      read: (name) =>
        command("read", (now) =>
          Effect.map(Ref.get(sets), (map) =>
            Option.map(
              Option.filter(Option.fromUndefinedOr(map.get(name)), (e) => e.expiresAt > now),
              (e): Stored => ({ generation: e.generation, payload: e.payload, ageMillis: now - e.committedAt })
            )
          )
        ),
      lease: (name, owner, ttlMillis) =>
        command("lease", (now) =>
          Effect.flatMap(liveLease(name, now), (held) =>
            Option.isSome(held)
              ? Effect.succeed(false)
              : Effect.as(
                  Ref.update(leases, (map) => new Map(map).set(name, { owner, expiresAt: now + ttlMillis })),
                  true
                )
          )
        ),
      leaseRemaining: (name) =>
        command("lease-remaining", (now) =>
          Effect.map(liveLease(name, now), (held) => (Option.isSome(held) ? held.value.expiresAt - now : 0))
        ),
      commit: (name, expected, payload, ttlMillis) =>
        command("commit", (now) =>
          Effect.flatMap(
            Ref.modify(sets, (map) => {
              const entry = map.get(name)
              const current = entry !== undefined && entry.expiresAt > now ? entry.generation : 0
              if (current !== expected) return [0, map] as const
              const generation = expected + 1
              const next = new Map(map).set(name, { generation, payload, committedAt: now, expiresAt: now + ttlMillis })
              return [generation, next] as const
            }),
            (generation) =>
              generation === 0
                ? Effect.succeed(0)
                : Effect.as(
                    Ref.update(commits, (n) => n + 1),
                    generation
                  )
          )
        ),
      release: (name, owner) =>
        command("release", () =>
          Ref.update(leases, (map) => {
            if (map.get(name)?.owner !== owner) return map
            const next = new Map(map)
            next.delete(name)
            return next
          })
        ),
      announce: (name) => command("announce", () => deliver(name)),
      reset: Effect.void
    }

    const controls: Controls = {
      setMode: (m) => Ref.set(mode, m),
      flush: Effect.andThen(Ref.set(sets, new Map()), Ref.set(leases, new Map())),
      generations: Effect.map(Ref.get(sets), (map) => new Map([...map].map(([k, e]) => [k, e.generation]))),
      commits: Ref.get(commits)
    }
    return { backend, controls }
  })
