// The master key of the shared seal as an effect, and a file-backed KeyValueStore that writes
// files owner-only and atomically. Kept internal: the envelope is an implementation detail that
// `TokenStore` users never see.
import * as NodeCrypto from "node:crypto"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import type * as PlatformError from "effect/PlatformError"
import * as KeyValueStore from "effect/persistence/KeyValueStore"
import * as Redacted from "effect/Redacted"
import * as seal from "./shared/tokenSeal.js"

/** Which API key a stored set belongs to; the secret is only ever used to derive keys. */
export interface Owner extends seal.Owner {
  readonly apiKeySecret: Redacted.Redacted<string>
}

/**
 * The owner's master key (scrypt, deliberately slow), computed on libuv's thread pool. The
 * secret is unwrapped in the argument list only.
 */
export const masterKey = (owner: Owner): Effect.Effect<Buffer, Error> =>
  Effect.callback<Buffer, Error>((resume) => {
    seal.masterKey(owner, Redacted.value(owner.apiKeySecret), (error, key) =>
      resume(error === null ? Effect.succeed(key) : Effect.fail(error))
    )
  })

/** The name `set` gives its temporary files: `.<key>.<uuid>.tmp`. */
const temporaryName = /^\..+\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/

/** How old a temporary file must be before a write removes it as a killed writer's. */
const staleTemporaryAge = 60_000

// A file whose name is no encoded key (not ours) is no entry.
const keyOf = (name: string): ReadonlyArray<string> => {
  try {
    return [decodeURIComponent(name)]
  } catch {
    return []
  }
}

const notFound = (error: PlatformError.PlatformError): boolean => error.reason._tag === "NotFound"

/**
 * A `KeyValueStore` of one file per key in `directory`. Unlike `KeyValueStore.layerFileSystem`,
 * it creates the directory owner-only (0700), tightens an existing one to 0700, and writes each
 * file owner-only (0600); it replaces a file by writing a temporary one and renaming it, so a
 * concurrent reader (another CLI run) sees the old content or the new, never half of one. A
 * failed write removes its temporary file, and every write removes those older than a minute
 * (left by killed writers). The directory is created on the first write: a missing or
 * unwritable directory never fails construction, only that write. Its errors are
 * `KeyValueStoreError`s, as the interface requires, with the `PlatformError` as their cause.
 */
export const makeFileSystemStore = (
  directory: string
): Effect.Effect<KeyValueStore.KeyValueStore, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fileOf = (key: string) => path.join(directory, encodeURIComponent(key))

    const storeError =
      (method: string, key?: string) =>
      (cause: PlatformError.PlatformError): KeyValueStore.KeyValueStoreError =>
        new KeyValueStore.KeyValueStoreError({
          method,
          ...(key === undefined ? {} : { key }),
          message: `${method} failed: ${cause.message}`,
          cause
        })

    const orUndefined = <A>(method: string, key: string, effect: Effect.Effect<A, PlatformError.PlatformError>) =>
      effect.pipe(
        Effect.catchIf(notFound, () => Effect.undefined),
        Effect.mapError(storeError(method, key))
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
        const temporary = path.join(directory, `.${encodeURIComponent(key)}.${NodeCrypto.randomUUID()}.tmp`)
        const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value
        // `wx`: never follow a planted file or link; the mode applies because the file is new.
        // A write that fails (a full disk) or is interrupted may have created the file already.
        yield* fs.writeFile(temporary, bytes, { flag: "wx", mode: 0o600 }).pipe(
          Effect.andThen(fs.rename(temporary, fileOf(key))),
          Effect.onError(() => Effect.ignore(fs.remove(temporary)))
        )
      }).pipe(Effect.mapError(storeError("set", key)))

    const listing = fs
      .readDirectory(directory)
      .pipe(Effect.catchIf(notFound, () => Effect.succeed<ReadonlyArray<string>>([])))
    // Temporary files (dot names) are no entries.
    const entries = Effect.map(listing, (names) => names.filter((name) => !name.startsWith(".")))

    return KeyValueStore.make({
      get: (key) => orUndefined("get", key, fs.readFileString(fileOf(key))),
      getUint8Array: (key) => orUndefined("getUint8Array", key, fs.readFile(fileOf(key))),
      set,
      remove: (key) =>
        fs.remove(fileOf(key)).pipe(
          Effect.catchIf(notFound, () => Effect.void),
          Effect.mapError(storeError("remove", key))
        ),
      clear: Effect.flatMap(listing, (names) =>
        Effect.forEach(names, (name) => fs.remove(path.join(directory, name), { recursive: true }), {
          discard: true
        })
      ).pipe(Effect.mapError(storeError("clear"))),
      size: Effect.map(entries, (names) => names.length).pipe(Effect.mapError(storeError("size"))),
      keys: Effect.map(entries, (names) => names.flatMap(keyOf)).pipe(Effect.mapError(storeError("keys")))
    })
  })
