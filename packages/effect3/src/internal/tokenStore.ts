// The at-rest format's key derivation as an effect, and a file-backed KeyValueStore that writes
// files owner-only and atomically. The format itself (storage key, seal, open) is the shared
// `tokenSeal`, which both lines write and read. Kept internal: `TokenStore` users never see it.
import * as NodeCrypto from "node:crypto"
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TokenSeal from "./shared/tokenSeal.js"

/** Which API key a stored set belongs to; the secret is only ever used to derive keys. */
export interface Owner extends TokenSeal.Owner {
  readonly apiKeySecret: Redacted.Redacted<string>
}

/** The shared seal's master key (scrypt, on libuv's thread pool), as an effect. */
export const masterKey = (owner: Owner): Effect.Effect<Buffer, Error> =>
  Effect.async<Buffer, Error>((resume) => {
    TokenSeal.masterKey(
      { workspace: owner.workspace, apiKeyId: owner.apiKeyId },
      Redacted.value(owner.apiKeySecret),
      (error, key) => resume(error === null ? Effect.succeed(key) : Effect.fail(error))
    )
  })

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
