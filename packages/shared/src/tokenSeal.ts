/**
 * The at-rest format of stored token sets (version 2): a master key derived once per process and
 * owner with scrypt from the API key secret, salted with the workspace and key id; per write, an
 * AES-256-GCM key derived from it with HKDF-SHA-256 and a fresh random salt, a fresh nonce, and
 * the workspace and key id as authenticated data. Both lines write and read exactly this format,
 * so a store written by one opens in the other (and entries written by the Effect 3 line 1.x).
 *
 * The secret is taken as a plain string at the call of {@link masterKey} only: callers keep it
 * `Redacted` and unwrap it in the argument list. Everything else works from the master key.
 *
 * @since 2.0.0
 */
import * as NodeCrypto from "node:crypto"

/**
 * Which API key a stored set belongs to.
 *
 * @since 2.0.0
 * @category models
 */
export interface Owner {
  readonly workspace: string
  readonly apiKeyId: string
}

/**
 * Why a stored value was not used.
 *
 * @since 2.0.0
 * @category models
 */
export type Rejection = "malformed" | "other-version" | "other-workspace" | "other-key" | "corrupt"

/**
 * The outcome of {@link open}.
 *
 * @since 2.0.0
 * @category models
 */
export type Opened =
  | { readonly _tag: "Opened"; readonly plaintext: string }
  | { readonly _tag: "Rejected"; readonly rejection: Rejection }

/**
 * The envelope's `format` field.
 *
 * @since 2.0.0
 * @category constants
 */
export const format = "effect-revault-auth/token-store"

/**
 * The envelope's `version` field. Version 1 derived its keys from the secret with HKDF alone, one
 * hash per guess; its entries read as "other-version" and are replaced by the next write.
 *
 * @since 2.0.0
 * @category constants
 */
export const version = 2

/**
 * The JSON written to the store: plaintext metadata, then the sealed token set.
 *
 * @since 2.0.0
 * @category models
 */
export interface Envelope {
  readonly format: typeof format
  readonly version: typeof version
  readonly workspace: string
  readonly apiKeyId: string
  /** Derived from the master key: tells "another key wrote this" from "this is damaged". */
  readonly keyFingerprint: string
  readonly salt: string
  readonly iv: string
  readonly tag: string
  readonly ciphertext: string
}

const stringFields = ["workspace", "apiKeyId", "keyFingerprint", "salt", "iv", "tag", "ciphertext"] as const

// Arrays pass as records, as they did through the Effect 3 schema: they then lack the fields.
const isRecord = (u: unknown): u is { readonly [key: string]: unknown } => typeof u === "object" && u !== null

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

// Extra fields are ignored, as the schema struct of the Effect 3 line does. Our format marker
// on anything that is not this version's envelope is "other-version", as it is there.
const decodeEnvelope = (text: string): Envelope | "malformed" | "other-version" => {
  const json = parse(text)
  if (!isRecord(json) || json.format !== format) return "malformed"
  if (json.version !== version) return "other-version"
  for (const field of stringFields) if (typeof json[field] !== "string") return "other-version"
  return json as unknown as Envelope
}

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

// Authenticated but not encrypted: a file copied under another workspace's or key's name fails
// to open even if the same secret served both. Also the master key's salt, so no guessing work
// done against one workspace and key serves another.
// `context` binds an entry to more than its owner (a fleet set's generation): absent, the data is
// exactly version 2's, so stored files are unchanged.
const additionalData = (owner: Owner, context?: string): Buffer =>
  Buffer.from(
    JSON.stringify(
      context === undefined
        ? [format, version, owner.workspace, owner.apiKeyId]
        : [format, version, owner.workspace, owner.apiKeyId, context]
    ),
    "utf8"
  )

/**
 * scrypt's cost: 2^14 × 8 × 128 bytes = 16 MiB and some tens of milliseconds, paid once per
 * process and key. Whoever can read an entry (a shared store, a backup) tests each guess of a
 * weak secret, through the fingerprint or the ciphertext, at that price.
 */
const scryptCost = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }

/**
 * The key all the others of an owner's entries derive from: scrypt of the secret, salted with
 * the owner. Computed off the event loop, on libuv's thread pool; each line wraps the callback
 * in its own effect.
 *
 * @since 2.0.0
 * @category key derivation
 */
export const masterKey = (
  owner: Owner,
  apiKeySecret: string,
  callback: (error: Error | null, key: Buffer) => void
): void => {
  NodeCrypto.scrypt(Buffer.from(apiKeySecret, "utf8"), additionalData(owner), 32, scryptCost, callback)
}

// A per-write random salt gives every write its own AES key, so a nonce can never repeat under one key.
const encryptionKey = (master: Uint8Array, salt: Uint8Array): Buffer =>
  Buffer.from(NodeCrypto.hkdfSync("sha256", master, salt, `${format}/v${version}/aes-256-gcm`, 32))

/**
 * A public, stable identifier of the key: one-way from the master key, and unrelated to any
 * encryption key (different HKDF info).
 *
 * @since 2.0.0
 * @category key derivation
 */
export const keyFingerprint = (master: Uint8Array): string =>
  Buffer.from(
    NodeCrypto.hkdfSync("sha256", master, new Uint8Array(0), `${format}/v${version}/key-fingerprint`, 16)
  ).toString("hex")

/**
 * The store key of an owner's entry: a digest of the workspace and key id only, so a new secret
 * for the same key id overwrites the old entry instead of leaving it behind, and file names
 * reveal nothing and need no escaping.
 *
 * @since 2.0.0
 * @category key derivation
 */
export const storageKey = (owner: Owner): string =>
  `tokens-${NodeCrypto.createHash("sha256")
    .update(JSON.stringify([format, owner.workspace, owner.apiKeyId]))
    .digest("hex")
    .slice(0, 32)}.json`

/**
 * The name under which a fleet of processes shares an owner's token set: an HMAC of the workspace
 * and key id under a key derived from the master key. It reveals neither, and a process holding
 * another secret for the same key id computes another name, so it can neither read nor overwrite
 * the set.
 *
 * @since 2.1.0
 * @category key derivation
 */
export const fleetName = (owner: Owner, master: Uint8Array): string =>
  NodeCrypto.createHmac(
    "sha256",
    Buffer.from(NodeCrypto.hkdfSync("sha256", master, new Uint8Array(0), `${format}/v${version}/fleet-name`, 32))
  )
    .update(JSON.stringify([owner.workspace, owner.apiKeyId]))
    .digest("hex")
    .slice(0, 32)

/**
 * Encrypts `plaintext` for `owner`, whose {@link masterKey} is `master`, and wraps it in the
 * envelope. With `context`, the envelope opens only with the same `context` given to {@link open}.
 *
 * @since 2.0.0
 * @category sealing
 */
export const seal = (owner: Owner, master: Uint8Array, plaintext: string, context?: string): string => {
  const salt = NodeCrypto.randomBytes(16)
  const iv = NodeCrypto.randomBytes(12)
  const cipher = NodeCrypto.createCipheriv("aes-256-gcm", encryptionKey(master, salt), iv, { authTagLength: 16 })
  cipher.setAAD(additionalData(owner, context))
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  const envelope: Envelope = {
    format,
    version,
    workspace: owner.workspace,
    apiKeyId: owner.apiKeyId,
    keyFingerprint: keyFingerprint(master),
    salt: base64(salt),
    iv: base64(iv),
    tag: base64(cipher.getAuthTag()),
    ciphertext: base64(ciphertext)
  }
  return JSON.stringify(envelope)
}

const rejected = (rejection: Rejection): Opened => ({ _tag: "Rejected", rejection })

/**
 * Checks and decrypts a stored envelope with `owner`'s {@link masterKey}; says why when it is not
 * `owner`'s or is damaged (or was sealed with another `context`).
 *
 * @since 2.0.0
 * @category sealing
 */
export const open = (owner: Owner, master: Uint8Array, text: string, context?: string): Opened => {
  const envelope = decodeEnvelope(text)
  if (typeof envelope === "string") return rejected(envelope)
  if (envelope.workspace !== owner.workspace) return rejected("other-workspace")
  if (envelope.apiKeyId !== owner.apiKeyId || envelope.keyFingerprint !== keyFingerprint(master)) {
    return rejected("other-key")
  }
  try {
    const iv = Buffer.from(envelope.iv, "base64")
    const tag = Buffer.from(envelope.tag, "base64")
    if (iv.length !== 12 || tag.length !== 16) return rejected("corrupt")
    const decipher = NodeCrypto.createDecipheriv(
      "aes-256-gcm",
      encryptionKey(master, Buffer.from(envelope.salt, "base64")),
      iv,
      { authTagLength: 16 }
    )
    decipher.setAAD(additionalData(owner, context))
    decipher.setAuthTag(tag)
    const plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, "base64")), decipher.final()])
    return { _tag: "Opened", plaintext: plaintext.toString("utf8") }
  } catch {
    // GCM authentication failed: the bytes were changed after sealing.
    return rejected("corrupt")
  }
}
