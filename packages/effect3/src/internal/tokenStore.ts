// The at-rest format of stored token sets, and a file-backed KeyValueStore that writes files
// owner-only and atomically. Kept internal: the envelope is an implementation detail that
// `TokenStore` users never see.
import * as NodeCrypto from "node:crypto"
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** Which API key a stored set belongs to; the secret is only ever used to derive keys. */
export interface Owner {
  readonly workspace: string
  readonly apiKeyId: string
  readonly apiKeySecret: Redacted.Redacted<string>
}

const format = "effect-revault-auth/token-store"
// Version 1 derived its keys from the secret with HKDF alone, one hash per guess; its entries
// read as "other-version" and are replaced by the next write.
const version = 2

/** The JSON written to the store: plaintext metadata, then the sealed token set. */
const Envelope = Schema.Struct({
  format: Schema.Literal(format),
  version: Schema.Literal(version),
  workspace: Schema.String,
  apiKeyId: Schema.String,
  /** Derived from the master key: tells "another key wrote this" from "this is damaged". */
  keyFingerprint: Schema.String,
  salt: Schema.String,
  iv: Schema.String,
  tag: Schema.String,
  ciphertext: Schema.String
})

const decodeEnvelope = Schema.decodeUnknownEither(Schema.parseJson(Envelope))
const decodeFormat = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ format: Schema.Literal(format) })))

/** Why a stored value was not used. */
export type Rejection = "malformed" | "other-version" | "other-workspace" | "other-key" | "corrupt"

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64")

// Authenticated but not encrypted: a file copied under another workspace's or key's name fails
// to open even if the same secret served both. Also the master key's salt, so no guessing work
// done against one workspace and key serves another.
const additionalData = (owner: Owner): Buffer =>
  Buffer.from(JSON.stringify([format, version, owner.workspace, owner.apiKeyId]), "utf8")

/**
 * scrypt's cost: 2^14 × 8 × 128 bytes = 16 MiB and some tens of milliseconds, paid once per
 * process and key. Whoever can read an entry (a shared store, a backup) tests each guess of a
 * weak secret, through the fingerprint or the ciphertext, at that price.
 */
const scryptCost = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }

/**
 * The key all the others of an owner's entries derive from: scrypt of the secret, salted with
 * the owner. Computed off the event loop, on libuv's thread pool.
 */
export const masterKey = (owner: Owner): Effect.Effect<Buffer, Error> =>
  Effect.async<Buffer, Error>((resume) => {
    NodeCrypto.scrypt(
      Buffer.from(Redacted.value(owner.apiKeySecret), "utf8"),
      additionalData(owner),
      32,
      scryptCost,
      (error, key) => resume(error === null ? Effect.succeed(key) : Effect.fail(error))
    )
  })

// A per-file random salt gives every write its own AES key, so a nonce can never repeat under one key.
const encryptionKey = (master: Uint8Array, salt: Uint8Array): Buffer =>
  Buffer.from(NodeCrypto.hkdfSync("sha256", master, salt, `${format}/v${version}/aes-256-gcm`, 32))

/**
 * A public, stable identifier of the key: one-way from the master key, and unrelated to any
 * encryption key (different HKDF info).
 */
const keyFingerprint = (master: Uint8Array): string =>
  Buffer.from(
    NodeCrypto.hkdfSync("sha256", master, new Uint8Array(0), `${format}/v${version}/key-fingerprint`, 16)
  ).toString("hex")

/**
 * The store key of an owner's entry: a digest of the workspace and key id only, so a new secret
 * for the same key id overwrites the old entry instead of leaving it behind, and file names
 * reveal nothing and need no escaping.
 */
export const storageKey = (owner: Pick<Owner, "workspace" | "apiKeyId">): string =>
  `tokens-${NodeCrypto.createHash("sha256")
    .update(JSON.stringify([format, owner.workspace, owner.apiKeyId]))
    .digest("hex")
    .slice(0, 32)}.json`

/** Encrypts `plaintext` for `owner`, whose {@link masterKey} is `master`, and wraps it in the envelope. */
export const seal = (owner: Owner, master: Uint8Array, plaintext: string): string => {
  const salt = NodeCrypto.randomBytes(16)
  const iv = NodeCrypto.randomBytes(12)
  const cipher = NodeCrypto.createCipheriv("aes-256-gcm", encryptionKey(master, salt), iv, { authTagLength: 16 })
  cipher.setAAD(additionalData(owner))
  const ciphertext = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()])
  const envelope: typeof Envelope.Type = {
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

/** Checks and decrypts a stored envelope; says why when it is not `owner`'s or is damaged. */
export const open = (owner: Owner, master: Uint8Array, text: string): Either.Either<string, Rejection> => {
  const decoded = decodeEnvelope(text)
  if (Either.isLeft(decoded)) return Either.left(Either.isRight(decodeFormat(text)) ? "other-version" : "malformed")
  const envelope = decoded.right
  if (envelope.workspace !== owner.workspace) return Either.left("other-workspace")
  if (envelope.apiKeyId !== owner.apiKeyId || envelope.keyFingerprint !== keyFingerprint(master)) {
    return Either.left("other-key")
  }
  try {
    const iv = Buffer.from(envelope.iv, "base64")
    const tag = Buffer.from(envelope.tag, "base64")
    if (iv.length !== 12 || tag.length !== 16) return Either.left("corrupt")
    const decipher = NodeCrypto.createDecipheriv(
      "aes-256-gcm",
      encryptionKey(master, Buffer.from(envelope.salt, "base64")),
      iv,
      { authTagLength: 16 }
    )
    decipher.setAAD(additionalData(owner))
    decipher.setAuthTag(tag)
    const plaintext = Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, "base64")), decipher.final()])
    return Either.right(plaintext.toString("utf8"))
  } catch {
    // GCM authentication failed: the bytes were changed after sealing.
    return Either.left("corrupt")
  }
}

/** The name `set` gives its temporary files: `.<key>.<uuid>.tmp`. */
const temporaryName = /^\..+\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/

/** How old a temporary file must be before a write removes it as a killed writer's. */
const staleTemporaryAge = 60_000

const notFound = (error: PlatformError.PlatformError): boolean =>
  error._tag === "SystemError" && error.reason === "NotFound"

/**
 * A `KeyValueStore` of one file per key in `directory`. Unlike `KeyValueStore.layerFileSystem`,
 * it creates the directory owner-only (0700), tightens an existing one to 0700, and writes each
 * file owner-only (0600); it replaces a file by writing a temporary one and renaming it, so a
 * concurrent reader (another CLI run) sees the old content or the new, never half of one. A
 * failed write removes its temporary file, and every write removes those older than a minute
 * (left by killed writers). The directory is created on the first write: a missing or
 * unwritable directory never fails construction, only that write.
 */
export const makeFileSystemStore = (
  directory: string
): Effect.Effect<KeyValueStore.KeyValueStore, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fileOf = (key: string) => path.join(directory, encodeURIComponent(key))

    const orNone = <A>(effect: Effect.Effect<A, PlatformError.PlatformError>) =>
      effect.pipe(
        Effect.map(Option.some),
        Effect.catchIf(notFound, () => Effect.succeedNone)
      )

    // `mkdir` leaves an existing directory's mode alone. One open to others lets them delete,
    // rename or plant entries beside ours: tightened here, and a directory that cannot be (another
    // owner's) fails the write.
    const ownerOnlyDirectory = Effect.gen(function* () {
      yield* fs.makeDirectory(directory, { recursive: true, mode: 0o700 })
      const info = yield* fs.stat(directory)
      if ((info.mode & 0o077) !== 0) yield* fs.chmod(directory, 0o700)
    })

    // Temporary files left by writers killed between write and rename. A write takes
    // milliseconds (the token manager gives up on one after 2 s), so a file older than
    // `staleTemporaryAge` has no writer left; a younger one may still be renamed by its own.
    const removeStaleTemporaries = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const names = yield* fs.readDirectory(directory)
      yield* Effect.forEach(
        names.filter((name) => temporaryName.test(name)),
        (name) => {
          const file = path.join(directory, name)
          return fs.stat(file).pipe(
            Effect.flatMap((info) =>
              Option.exists(info.mtime, (mtime) => mtime.getTime() < now - staleTemporaryAge)
                ? fs.remove(file)
                : Effect.void
            ),
            Effect.ignore
          )
        },
        { discard: true }
      )
    }).pipe(Effect.ignore)

    const set = (key: string, value: string | Uint8Array) =>
      Effect.gen(function* () {
        yield* ownerOnlyDirectory
        yield* removeStaleTemporaries
        const file = fileOf(key)
        const temporary = path.join(directory, `.${encodeURIComponent(key)}.${NodeCrypto.randomUUID()}.tmp`)
        const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value
        // `wx`: never follow a planted file or link; the mode applies because the file is new.
        // A write that fails (a full disk) or is interrupted may have created the file already.
        yield* fs.writeFile(temporary, bytes, { flag: "wx", mode: 0o600 }).pipe(
          Effect.zipRight(fs.rename(temporary, file)),
          Effect.onError(() => Effect.ignore(fs.remove(temporary)))
        )
      })

    const listing = fs
      .readDirectory(directory)
      .pipe(Effect.catchIf(notFound, () => Effect.succeed<ReadonlyArray<string>>([])))

    return KeyValueStore.make({
      get: (key) => orNone(fs.readFileString(fileOf(key))),
      getUint8Array: (key) => orNone(fs.readFile(fileOf(key))),
      set,
      remove: (key) => fs.remove(fileOf(key)).pipe(Effect.catchIf(notFound, () => Effect.void)),
      clear: Effect.flatMap(listing, (names) =>
        Effect.forEach(names, (name) => fs.remove(path.join(directory, name), { recursive: true }), {
          discard: true
        })
      ),
      size: Effect.map(listing, (names) => names.filter((name) => !name.startsWith(".")).length)
    })
  })
