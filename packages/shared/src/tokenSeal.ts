/**
 * The at-rest format of stored token sets: an AES-256-GCM envelope whose key is derived with
 * HKDF-SHA-256 from the API key secret and a per-write random salt. Both lines write and read
 * exactly this format, so a store written by one opens in the other.
 *
 * The secret is taken as a plain string at the call only: callers keep it `Redacted` and unwrap
 * it in the argument list.
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
export type Rejection = "malformed" | "other-workspace" | "other-key" | "corrupt"

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
 * The envelope's `version` field.
 *
 * @since 2.0.0
 * @category constants
 */
export const version = 1

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
  /** Derived from the secret with HKDF: tells "another key wrote this" from "this is damaged". */
  readonly keyFingerprint: string
  readonly salt: string
  readonly iv: string
  readonly tag: string
  readonly ciphertext: string
}

const stringFields = ["workspace", "apiKeyId", "keyFingerprint", "salt", "iv", "tag", "ciphertext"] as const

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

// Extra fields are ignored, as a schema struct would.
const decodeEnvelope = (text: string): Envelope | undefined => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!isRecord(json) || json.format !== format || json.version !== version) return undefined
  for (const field of stringFields) if (typeof json[field] !== "string") return undefined
  return json as unknown as Envelope
}

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

const secretBytes = (apiKeySecret: string): Buffer => Buffer.from(apiKeySecret, "utf8")

// A per-file random salt gives every write its own AES key, so a nonce can never repeat under one key.
const encryptionKey = (apiKeySecret: string, salt: Uint8Array): Buffer =>
  Buffer.from(NodeCrypto.hkdfSync("sha256", secretBytes(apiKeySecret), salt, `${format}/v${version}/aes-256-gcm`, 32))

/**
 * A public, stable identifier of the key: one-way from the secret, bound to the key id, and
 * unrelated to any encryption key (different HKDF info).
 *
 * @since 2.0.0
 * @category key derivation
 */
export const keyFingerprint = (owner: Owner, apiKeySecret: string): string =>
  Buffer.from(
    NodeCrypto.hkdfSync(
      "sha256",
      secretBytes(apiKeySecret),
      `${format}/key-fingerprint`,
      `${format}/v${version}/${owner.apiKeyId}`,
      16
    )
  ).toString("hex")

// Authenticated but not encrypted: a file copied under another workspace's or key's name fails
// to open even if the same secret served both.
const additionalData = (owner: Owner): Buffer =>
  Buffer.from(JSON.stringify([format, version, owner.workspace, owner.apiKeyId]), "utf8")

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
 * Encrypts `plaintext` for `owner` with AES-256-GCM and wraps it in the envelope.
 *
 * @since 2.0.0
 * @category sealing
 */
export const seal = (owner: Owner, apiKeySecret: string, plaintext: string): string => {
  const salt = NodeCrypto.randomBytes(16)
  const iv = NodeCrypto.randomBytes(12)
  const cipher = NodeCrypto.createCipheriv("aes-256-gcm", encryptionKey(apiKeySecret, salt), iv, {
    authTagLength: 16
  })
  cipher.setAAD(additionalData(owner))
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  const envelope: Envelope = {
    format,
    version,
    workspace: owner.workspace,
    apiKeyId: owner.apiKeyId,
    keyFingerprint: keyFingerprint(owner, apiKeySecret),
    salt: base64(salt),
    iv: base64(iv),
    tag: base64(cipher.getAuthTag()),
    ciphertext: base64(ciphertext)
  }
  return JSON.stringify(envelope)
}

const rejected = (rejection: Rejection): Opened => ({ _tag: "Rejected", rejection })

/**
 * Checks and decrypts a stored envelope; says why when it is not `owner`'s or is damaged.
 *
 * @since 2.0.0
 * @category sealing
 */
export const open = (owner: Owner, apiKeySecret: string, text: string): Opened => {
  const envelope = decodeEnvelope(text)
  if (envelope === undefined) return rejected("malformed")
  if (envelope.workspace !== owner.workspace) return rejected("other-workspace")
  if (envelope.apiKeyId !== owner.apiKeyId || envelope.keyFingerprint !== keyFingerprint(owner, apiKeySecret)) {
    return rejected("other-key")
  }
  try {
    const iv = Buffer.from(envelope.iv, "base64")
    const tag = Buffer.from(envelope.tag, "base64")
    if (iv.length !== 12 || tag.length !== 16) return rejected("corrupt")
    const decipher = NodeCrypto.createDecipheriv(
      "aes-256-gcm",
      encryptionKey(apiKeySecret, Buffer.from(envelope.salt, "base64")),
      iv,
      { authTagLength: 16 }
    )
    decipher.setAAD(additionalData(owner))
    decipher.setAuthTag(tag)
    const plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, "base64")), decipher.final()])
    return { _tag: "Opened", plaintext: plaintext.toString("utf8") }
  } catch {
    // GCM authentication failed: the bytes were changed after sealing.
    return rejected("corrupt")
  }
}
