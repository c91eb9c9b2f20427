// The fleet store on Redis, through `effect/persistence/Redis` and `@effect/platform-node`'s
// `NodeRedis`, loaded on first use so that programs without Redis never load the `redis` client.
// A connection that fails once is dropped whole (client and subscriber) and opened again after
// the coordinator's cooldown: no offline queue, no reconnection loop of its own, no command that
// waits for a Redis that is gone.
import type * as NodeRedis from "@effect/platform-node/NodeRedis"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redis from "effect/persistence/Redis"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import type { RedisOptions } from "../TokenCoordinator.js"
import { type Backend, bounded, type Stored, StoreError } from "./tokenCoordinator.js"

/** How to reach Redis; what `TokenCoordinator.layerRedis` passes down. */
export interface ConnectionOptions {
  readonly url?: string | undefined
  readonly path?: string | undefined
  readonly tls?: RedisOptions["tls"]
  readonly keyPrefix: string
  readonly connectTimeout: number
  readonly commandTimeout: number
}

// HMGET and TIME in one step: the set's age is measured on Redis's clock, the only one the fleet
// shares.
const readScript = Redis.script((set: string) => [set], {
  numberOfKeys: 1,
  lua: `
local v = redis.call('HMGET', KEYS[1], 'gen', 'set', 'at')
if not v[1] or not v[2] or not v[3] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {v[1], v[2], tostring(now - tonumber(v[3]))}
`
}).withReturnType<ReadonlyArray<string> | null>()

// The compare-and-set: the generation moves from `expected` to `expected + 1`, or nothing moves.
const commitScript = Redis.script(
  (set: string, expected: number, payload: string, ttlMillis: number) => [set, expected, payload, ttlMillis],
  {
    numberOfKeys: 1,
    lua: `
local g = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if g ~= tonumber(ARGV[1]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'gen', tostring(g + 1), 'set', ARGV[2], 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return g + 1
`
  }
).withReturnType<number>()

// Only the owner's value releases the lease: a leader whose lease ran out cannot free a successor's.
const releaseScript = Redis.script((lease: string, owner: string) => [lease, owner], {
  numberOfKeys: 1,
  lua: `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`
}).withReturnType<number>()

interface Connection {
  readonly redis: Redis.Redis["Service"]
  readonly scope: Scope.Closeable
  readonly destroy: Effect.Effect<void>
}

const storeError = (command: string) => (cause: unknown) => new StoreError({ command, cause })

export const make = (
  options: ConnectionOptions,
  deliver: (name: string) => Effect.Effect<void>
): Effect.Effect<Backend, never, Scope.Scope> =>
  Effect.gen(function* () {
    const channel = `${options.keyPrefix}announce`
    const setKey = (name: string) => `${options.keyPrefix}{${name}}:set`
    const leaseKey = (name: string) => `${options.keyPrefix}{${name}}:lease`
    const clientOptions = {
      ...(options.url === undefined ? {} : { url: options.url }),
      disableOfflineQueue: true,
      socket: {
        connectTimeout: options.connectTimeout,
        reconnectStrategy: false as const,
        ...(options.path === undefined ? {} : { path: options.path }),
        ...(options.tls === undefined ? {} : { tls: true as const, ...options.tls })
      }
    }

    // Closed off the caller's fiber: a client's `close` waits for commands in flight, which a
    // paused Redis never answers, so the client is destroyed first and the close is bounded.
    const dispose = (connection: Connection) =>
      Effect.ignore(
        bounded(Effect.andThen(connection.destroy, Scope.close(connection.scope, Exit.void)), 5_000, () => undefined)
      )

    const connect = Effect.gen(function* () {
      const module = yield* Effect.tryPromise({
        try: (): Promise<typeof NodeRedis> => import("@effect/platform-node/NodeRedis"),
        catch: storeError("connect")
      })
      const scope = yield* Scope.make()
      return yield* Effect.gen(function* () {
        const built = yield* Layer.buildWithScope(module.layer(clientOptions), scope).pipe(
          Effect.mapError(storeError("connect"))
        )
        const redis = Context.get(built, Redis.Redis)
        const node = Context.get(built, module.NodeRedis)
        const destroy = Effect.sync(() => {
          if (node.client.isOpen) node.client.destroy()
        })
        // Announcements name the set; a lost one is made up for by polling.
        const messages = yield* Scope.provide(redis.subscribe(channel), scope)
        yield* Queue.take(messages).pipe(
          Effect.flatMap((message) => deliver(message.message.split(":")[0] ?? "")),
          Effect.forever,
          Effect.ignore,
          Effect.forkIn(scope)
        )
        return { redis, scope, destroy }
      }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, Exit.void))))
    })

    // The connection, or the attempt under way. No lock is held while connecting: the client's
    // connect and subscribe cannot be interrupted, and hang as long as a paused Redis does, so an
    // attempt runs detached and callers wait for it at most `connectTimeout`. An attempt that
    // finishes after it was given up (reset, or the layer closed) closes what it opened.
    const current = yield* Ref.make<Option.Option<Deferred.Deferred<Connection, StoreError>>>(Option.none())

    const connection = Effect.gen(function* () {
      const fresh = yield* Deferred.make<Connection, StoreError>()
      const [attempt, created] = yield* Ref.modify(
        current,
        (
          c: Option.Option<Deferred.Deferred<Connection, StoreError>>
        ): readonly [
          readonly [Deferred.Deferred<Connection, StoreError>, boolean],
          Option.Option<Deferred.Deferred<Connection, StoreError>>
        ] => (Option.isSome(c) ? [[c.value, false], c] : [[fresh, true], Option.some(fresh)])
      )
      if (created) {
        yield* Effect.forkDetach(
          Effect.flatMap(Effect.exit(connect), (exit) =>
            Effect.gen(function* () {
              const wanted = Option.exists(yield* Ref.get(current), (d) => d === fresh)
              if (Exit.isSuccess(exit) && !wanted) yield* dispose(exit.value)
              if (Exit.isFailure(exit) && wanted) yield* Ref.set(current, Option.none())
              yield* Deferred.done(fresh, exit)
            })
          )
        )
      }
      return yield* bounded(
        Deferred.await(attempt),
        options.connectTimeout,
        () => new StoreError({ command: "connect", cause: "timed out" })
      )
    })

    // Drops the connection, closed once its attempt is over (at once if it is).
    const reset = Effect.flatMap(Ref.getAndSet(current, Option.none()), (c) =>
      Option.isSome(c)
        ? Effect.asVoid(Effect.forkDetach(Effect.ignore(Effect.flatMap(Deferred.await(c.value), dispose))))
        : Effect.void
    )
    yield* Effect.addFinalizer(() => reset)

    // Connecting has its own bound; the command then has the short one.
    const run = <A>(command: string, f: (redis: Redis.Redis["Service"]) => Effect.Effect<A, Redis.RedisError>) =>
      Effect.flatMap(connection, (c) =>
        bounded(
          Effect.mapError(f(c.redis), storeError(command)),
          options.commandTimeout,
          () => new StoreError({ command, cause: "timed out" })
        )
      )

    // Connected ahead of the first acquisition, so that a cold start does not pay for it. A
    // failure here is only a head start lost: the first command connects again.
    yield* Effect.forkDetach(Effect.ignore(connection))

    const backend: Backend = {
      read: (name) =>
        run("read", (redis) =>
          Effect.map(redis.eval(readScript)(setKey(name)), (reply): Option.Option<Stored> => {
            if (reply === null || reply.length < 3) return Option.none()
            const generation = Number(reply[0])
            const ageMillis = Number(reply[2])
            const payload = reply[1]
            return Number.isSafeInteger(generation) && Number.isFinite(ageMillis) && payload !== undefined
              ? Option.some({ generation, payload, ageMillis })
              : Option.none()
          })
        ),
      lease: (name, owner, ttlMillis) =>
        run("lease", (redis) =>
          Effect.map(
            redis.send<string | null>("SET", leaseKey(name), owner, "NX", "PX", String(Math.ceil(ttlMillis))),
            (reply) => reply === "OK"
          )
        ),
      leaseRemaining: (name) =>
        run("lease-remaining", (redis) =>
          Effect.map(redis.send<number>("PTTL", leaseKey(name)), (ms) => (Number(ms) > 0 ? Number(ms) : 0))
        ),
      commit: (name, expected, payload, ttlMillis) =>
        run("commit", (redis) =>
          Effect.map(redis.eval(commitScript)(setKey(name), expected, payload, ttlMillis), Number)
        ),
      release: (name, owner) =>
        run("release", (redis) => Effect.asVoid(redis.eval(releaseScript)(leaseKey(name), owner))),
      announce: (name, generation) =>
        run("announce", (redis) => Effect.asVoid(redis.send("PUBLISH", channel, `${name}:${generation}`))),
      reset
    }
    return backend
  })
