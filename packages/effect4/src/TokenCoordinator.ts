/**
 * Fleet-wide tokens: every process that uses the same workspace and API key shares one token set,
 * so the fleet makes one token request per refresh period instead of one per process. With a
 * `TokenCoordinator` in the context, `AuthService` and every `AuthPool` entry coordinate through
 * it; without one, nothing changes.
 *
 * The first process that finds the shared set due takes a lease, refreshes, and commits the new
 * set with a compare-and-set on its generation; the others keep serving their token and adopt the
 * new set when it is announced or found. Redis holds only sealed sets (AES-256-GCM, key derived
 * from the API key secret) under names that reveal neither the workspace nor the key id. When the
 * store fails, each process acquires on its own, as it would without a coordinator, and tries the
 * store again after a cooldown. See `docs/fleet.md`.
 *
 * @since 2.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as internal from "./internal/tokenCoordinator.js"
import * as memory from "./internal/tokenCoordinatorMemory.js"
import * as redis from "./internal/tokenCoordinatorRedis.js"

const TypeId: unique symbol = Symbol.for("effect-revault-auth/TokenCoordinator")

/**
 * The coordinator: opaque, its protocol is internal. Get one from {@link layerRedis} or
 * {@link layerMemory}.
 *
 * @since 2.1.0
 * @category models
 */
export interface Service {
  readonly [TypeId]: typeof TypeId
}

/**
 * @since 2.1.0
 * @category tags
 */
export class TokenCoordinator extends Context.Service<TokenCoordinator, Service>()(
  "effect-revault-auth/TokenCoordinator"
) {}

const wrap = (coordinator: internal.Coordinator): Service => internal.register({ [TypeId]: TypeId }, coordinator)

/**
 * Tuning shared by both layers. Every field has a default.
 *
 * @since 2.1.0
 * @category models
 */
export interface Tuning {
  /**
   * Added to the token request timeout to give the lease's length (default 5 seconds): long
   * enough for a leader to request and commit, short enough that a crashed leader is replaced
   * well before the fleet's tokens stop being usable.
   */
  readonly leaseMargin?: Duration.Input | undefined
  /** The longest any store command may take (default 1 second); past it the store counts as down. */
  readonly commandTimeout?: Duration.Input | undefined
  /**
   * The longest opening a connection may take (default 5 seconds): loading the client, the
   * handshake, the subscription. Readers with no usable token wait at most this long for a store
   * that hangs; readers with one never wait for the store.
   */
  readonly connectTimeout?: Duration.Input | undefined
  /** How long a process works alone after a store failure before it tries the store again (default 30 seconds). */
  readonly cooldown?: Duration.Input | undefined
  /**
   * The largest random delay each process adds to its refresh-due time (default 5 seconds), so a
   * fleet started at once does not contend for the lease at the same instant.
   */
  readonly jitter?: Duration.Input | undefined
}

/**
 * Options of {@link layerRedis}.
 *
 * @since 2.1.0
 * @category models
 */
export interface RedisOptions extends Tuning {
  /**
   * `redis://[:password@]host[:port][/db]` or `rediss://...` for TLS. A URL holding a password is
   * best passed `Redacted` (read it with `Config.Redacted`): it is unwrapped only for the client.
   */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** A unix socket path, instead of a host in `url`. */
  readonly path?: string | undefined
  /** TLS settings beyond the URL's: a private CA, a server name. */
  readonly tls?:
    | {
        readonly ca?: string | undefined
        readonly rejectUnauthorized?: boolean | undefined
        readonly servername?: string | undefined
      }
    | undefined
  /** Prepended to every key and channel name (default `"revault-auth:"`). */
  readonly keyPrefix?: string | undefined
}

const millis = (input: Duration.Input | undefined, fallback: number): number =>
  input === undefined ? fallback : Math.max(0, Duration.toMillis(Duration.fromInputUnsafe(input)))

const tuningOf = (options: Tuning): internal.Tuning => ({
  leaseMargin: millis(options.leaseMargin, internal.defaultTuning.leaseMargin),
  commandTimeout: Math.max(1, millis(options.commandTimeout, internal.defaultTuning.commandTimeout)),
  connectTimeout: Math.max(1, millis(options.connectTimeout, internal.defaultTuning.connectTimeout)),
  cooldown: millis(options.cooldown, internal.defaultTuning.cooldown),
  jitter: millis(options.jitter, internal.defaultTuning.jitter),
  pollInterval: internal.defaultTuning.pollInterval
})

/**
 * A coordinator on Redis, through `effect/persistence/Redis` and `@effect/platform-node`'s
 * `NodeRedis` (install the optional peer `redis`). Building it never fails and never waits for
 * Redis: the connection is opened on first use, and every failure of Redis is a fallback to
 * per-process acquisition, never an error for a token reader.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import * as Layer from "effect/Layer"
 * import { RevaultAuth, TokenCoordinator } from "effect-revault-auth"
 *
 * // Every process with this layer and the same workspace and key shares one token set.
 * export const Auth = RevaultAuth.layerConfig().pipe(
 *   Layer.provide(NodeHttpClient.layerUndici),
 *   Layer.provide(TokenCoordinator.layerRedis({ url: "rediss://:password@redis.internal:6380" }))
 * )
 * ```
 *
 * @since 2.1.0
 * @category layers
 */
export const layerRedis = (options: RedisOptions = {}): Layer.Layer<TokenCoordinator> =>
  Layer.effect(
    TokenCoordinator,
    Effect.gen(function* () {
      const tuning = tuningOf(options)
      // The store delivers announcements to the coordinator built on top of it: tied after both exist.
      let deliver: (name: string) => Effect.Effect<void> = () => Effect.void
      const backend = yield* redis.make(
        {
          url: Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url,
          path: options.path,
          tls: options.tls,
          keyPrefix: options.keyPrefix ?? "revault-auth:",
          connectTimeout: tuning.connectTimeout,
          commandTimeout: tuning.commandTimeout
        },
        (name) => deliver(name)
      )
      const made = yield* internal.make(backend, tuning)
      deliver = made.deliver
      return wrap(made.coordinator)
    })
  )

/**
 * Test controls of {@link layerMemoryWith}'s store.
 *
 * @since 2.1.0
 * @category models
 */
export interface MemoryControls {
  /** Every store command fails (`"fail"`), never answers (`"hang"`), or works (`"up"`). */
  readonly setMode: (mode: "up" | "fail" | "hang") => Effect.Effect<void>
  /** Forgets every set and lease, as a Redis restarted empty. */
  readonly flush: Effect.Effect<void>
  /** How many sets were committed so far. */
  readonly commits: Effect.Effect<number>
}

/**
 * A coordinator within one process, with the same protocol as {@link layerRedis} and all its
 * times on the `Clock` (so `TestClock` drives it), and `controls` to make the store fail, hang or
 * forget. For tests of programs that run many token managers against one coordinator.
 *
 * @since 2.1.0
 * @category layers
 */
export const layerMemoryWith = (
  options: Tuning & { readonly controls?: (controls: MemoryControls) => Effect.Effect<void> } = {}
): Layer.Layer<TokenCoordinator> =>
  Layer.effect(
    TokenCoordinator,
    Effect.gen(function* () {
      // As in layerRedis: the store's announcements reach the coordinator once both exist.
      let deliver: (name: string) => Effect.Effect<void> = () => Effect.void
      const store = yield* memory.make((name) => deliver(name))
      const made = yield* internal.make(store.backend, tuningOf(options))
      deliver = made.deliver
      if (options.controls !== undefined) yield* options.controls(store.controls)
      return wrap(made.coordinator)
    })
  )

/**
 * {@link layerMemoryWith} with the default tuning.
 *
 * @since 2.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenCoordinator> = layerMemoryWith()
