/**
 * Opt-in persistence of token sets, so short-lived processes (a CLI run many times a minute) and
 * restarted services reuse a valid token instead of exchanging the API key again.
 *
 * Provide a `TokenStore` beside `AuthService.layer` and the service reads it once at start and
 * writes it after every acquisition. Entries are sealed with AES-256-GCM under a key derived from
 * the API key secret (scrypt salted with the workspace and key id, then HKDF-SHA256 with a fresh
 * random salt and nonce per write), with the workspace and key id as authenticated data; the
 * secret itself is never written, and whoever reads an entry pays a scrypt per guess of it. An
 * entry that is damaged, sealed under another secret, for another workspace, or written by
 * another version of the format reads as absent (with a debug log) and is replaced by the next
 * write. The format is the Effect 3 line's: both lines read each other's stores.
 *
 * A store does not coordinate processes: two processes that start together may both obtain a
 * token, and the last write wins. Nothing breaks; one token is wasted. To share one token set
 * across a fleet, use `TokenCoordinator`.
 *
 * @since 2.0.0
 * @module
 */
import * as Os from "node:os"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as FileSystem from "effect/FileSystem"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as seal from "./internal/shared/tokenSeal.js"
import * as internal from "./internal/tokenStore.js"
import { TokenSet } from "./TokenSet.js"

/**
 * Whose token set: the workspace and the API key. The secret derives the encryption key and is
 * never stored.
 *
 * @since 2.0.0
 * @category models
 */
export interface Key {
  readonly workspace: string
  readonly apiKeyId: string
  readonly apiKeySecret: Redacted.Redacted<string>
}

/**
 * An epoch time in milliseconds.
 *
 * @since 2.0.0
 * @category schemas
 */
export const EpochMillis = Schema.Finite.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * A token set as the token manager keeps it. Times are absolute (epoch milliseconds, from the
 * `Clock`), so a process that reads the set later decides its validity correctly.
 *
 * @since 2.0.0
 * @category schemas
 */
export class StoredTokenSet extends Schema.Class<StoredTokenSet>("StoredTokenSet")({
  tokenSet: TokenSet,
  /** How the set was obtained. */
  source: Schema.Literals(["authenticate", "refresh"]),
  /** When the request that obtained it was sent: lifetimes count from here. */
  sentAt: EpochMillis,
  /** When the answer arrived. */
  obtainedAt: EpochMillis,
  /** `sentAt` plus `expiresInSeconds`. */
  expiresAt: EpochMillis,
  /** `sentAt` plus `refreshExpiresInSeconds`. */
  refreshExpiresAt: EpochMillis
}) {}

/**
 * The store could not be read or written (a backend error, e.g. a `KeyValueStoreError`).
 * `AuthService` logs it and carries on without the store.
 *
 * @since 2.0.0
 * @category errors
 */
export class TokenStoreError extends Schema.TaggedError<TokenStoreError>()("TokenStoreError", {
  operation: Schema.Literals(["get", "set", "remove"]),
  /** The backend's error. Never holds a token or the secret. */
  cause: Schema.Unknown
}) {
  override get message(): string {
    const cause = this.cause
    const detail =
      typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
        ? cause.message
        : String(cause)
    return `token store ${this.operation} failed: ${detail}`
  }
}

/**
 * @since 2.0.0
 * @category models
 */
export interface Service {
  /** The set stored for `key`, or none (nothing stored, or an entry that is not `key`'s to read). */
  readonly get: (key: Key) => Effect.Effect<Option.Option<StoredTokenSet>, TokenStoreError>
  /** Stores `value` for `key`, replacing what was there. */
  readonly set: (key: Key, value: StoredTokenSet) => Effect.Effect<void, TokenStoreError>
  /** Forgets what is stored for `key`. */
  readonly remove: (key: Key) => Effect.Effect<void, TokenStoreError>
}

/**
 * @since 2.0.0
 * @category tags
 */
export class TokenStore extends Context.Service<TokenStore, Service>()("effect-revault-auth/TokenStore") {}

const decodeStored = Schema.decodeUnknownOption(Schema.fromJsonString(StoredTokenSet))
const encodeStored = Schema.encodeSync(Schema.fromJsonString(StoredTokenSet))

const rejectionMessages: Record<seal.Rejection | "undecodable", string> = {
  malformed: "stored token set is not in the expected format; ignoring it",
  "other-version": "stored token set was written in another version of the format; ignoring it",
  "other-workspace": "stored token set is for another workspace; ignoring it",
  "other-key": "stored token set was written with another API key; ignoring it",
  corrupt: "stored token set failed authentication (damaged or tampered with); ignoring it",
  undecodable: "stored token set decrypted but does not decode; ignoring it"
}

/**
 * A `TokenStore` over any `KeyValueStore`: one entry per workspace and key id, sealed as the
 * module documentation says.
 *
 * @since 2.0.0
 * @category constructors
 */
export const make: Effect.Effect<Service, never, KeyValueStore.KeyValueStore> = Effect.map(
  KeyValueStore.KeyValueStore,
  (store) => {
    const ignore = (key: Key, reason: seal.Rejection | "undecodable") =>
      Effect.as(
        Effect.logDebug(rejectionMessages[reason]).pipe(
          Effect.annotateLogs({ workspace: key.workspace, apiKeyId: key.apiKeyId, reason })
        ),
        Option.none<StoredTokenSet>()
      )

    // The master key costs a deliberately slow derivation: one per secret and owner, not per call.
    const masters = new WeakMap<Redacted.Redacted<string>, { readonly owner: string; readonly key: Buffer }>()
    const masterKey = (key: Key, operation: "get" | "set") =>
      Effect.suspend(() => {
        const owner = JSON.stringify([key.workspace, key.apiKeyId])
        const cached = masters.get(key.apiKeySecret)
        return cached !== undefined && cached.owner === owner
          ? Effect.succeed(cached.key)
          : internal.masterKey(key).pipe(
              Effect.tap((derived) => Effect.sync(() => masters.set(key.apiKeySecret, { owner, key: derived }))),
              Effect.mapError((cause) => new TokenStoreError({ operation, cause }))
            )
      })

    const read = (key: Key, master: Buffer, text: string): Effect.Effect<Option.Option<StoredTokenSet>> => {
      const opened = seal.open(key, master, text)
      if (opened._tag === "Rejected") return ignore(key, opened.rejection)
      const stored = decodeStored(opened.plaintext)
      return Option.isSome(stored) ? Effect.succeed(stored) : ignore(key, "undecodable")
    }

    return TokenStore.of({
      get: (key) =>
        store.get(seal.storageKey(key)).pipe(
          Effect.mapError((cause) => new TokenStoreError({ operation: "get", cause })),
          Effect.flatMap((text) =>
            text === undefined
              ? Effect.succeedNone
              : Effect.flatMap(masterKey(key, "get"), (master) => read(key, master, text))
          )
        ),
      set: (key, value) =>
        Effect.flatMap(masterKey(key, "set"), (master) =>
          Effect.suspend(() => store.set(seal.storageKey(key), seal.seal(key, master, encodeStored(value)))).pipe(
            Effect.mapError((cause) => new TokenStoreError({ operation: "set", cause }))
          )
        ),
      remove: (key) =>
        store
          .remove(seal.storageKey(key))
          .pipe(Effect.mapError((cause) => new TokenStoreError({ operation: "remove", cause })))
    })
  }
)

/**
 * The environment variables {@link defaultDirectory} reads.
 *
 * @since 2.0.0
 * @category constants
 */
export const env = {
  cacheHome: "XDG_CACHE_HOME",
  home: "HOME"
} as const

/**
 * Where the CLI keeps its tokens by default: `$XDG_CACHE_HOME/revault-auth` when that variable
 * holds an absolute path, else `$HOME/.cache/revault-auth` (the XDG Base Directory default),
 * else `.cache/revault-auth` under the operating system's idea of the home directory.
 *
 * @since 2.0.0
 * @category constants
 */
export const defaultDirectory: Effect.Effect<string, never, Path.Path> = Effect.gen(function* () {
  const path = yield* Path.Path
  const variable = (name: string) =>
    Config.option(Config.NonEmptyString(name)).pipe(
      Effect.map(Option.filter((value: string) => path.isAbsolute(value))),
      // A malformed value is no reason to refuse a cache: fall through to the next candidate.
      Effect.orElseSucceed(() => Option.none<string>())
    )
  const cacheHome = yield* variable(env.cacheHome)
  if (Option.isSome(cacheHome)) return path.join(cacheHome.value, "revault-auth")
  const home = yield* variable(env.home)
  return path.join(Option.isSome(home) ? home.value : Os.homedir(), ".cache", "revault-auth")
})

/**
 * A `TokenStore` on the `KeyValueStore` in the context: bring your own (a database, a shared
 * cache) to share tokens across machines.
 *
 * @since 2.0.0
 * @category layers
 */
export const layerKeyValueStore: Layer.Layer<TokenStore, never, KeyValueStore.KeyValueStore> = Layer.effect(
  TokenStore,
  make
)

/**
 * A `TokenStore` in memory, for tests: entries live as long as the layer.
 *
 * @since 2.0.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TokenStore> = layerKeyValueStore.pipe(Layer.provide(KeyValueStore.layerMemory))

/**
 * A `TokenStore` of one file per workspace and key in `directory` (default
 * {@link defaultDirectory}). The directory is created on the first write with mode 0700 (an
 * existing one open to group or others is tightened to 0700, or the write fails), each file
 * written with mode 0600 and swapped in atomically by a rename. A failed write removes its
 * temporary file; every write removes those older than a minute, left by killed writers. Needs
 * `FileSystem` and `Path`: on Node, provide `NodeServices.layer` from `@effect/platform-node`.
 *
 * @since 2.0.0
 * @category layers
 */
export const layerFileSystem = (
  directory?: string
): Layer.Layer<TokenStore, never, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(
    TokenStore,
    Effect.flatMap(directory === undefined ? defaultDirectory : Effect.succeed(directory), (dir) =>
      Effect.provideServiceEffect(make, KeyValueStore.KeyValueStore, internal.makeFileSystemStore(dir))
    )
  )
