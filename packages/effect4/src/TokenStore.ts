/**
 * Opt-in persistence of token sets, so short-lived processes (a CLI run many times a minute) and
 * restarted services reuse a valid token instead of exchanging the API key again.
 *
 * Provide a `TokenStore` beside `AuthService.layer` and the service reads it once at start and
 * writes it after every acquisition. Entries are sealed with AES-256-GCM under a key derived from
 * the API key secret, with the workspace and key id as authenticated data; the secret itself is
 * never written. An entry that is damaged, sealed under another secret, for another workspace, or
 * written by another version of the format reads as absent (with a debug log) and is replaced by
 * the next write.
 *
 * @since 2.0.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
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
 * The store could not be read or written (a backend error). `AuthService` logs it and carries on
 * without the store.
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
