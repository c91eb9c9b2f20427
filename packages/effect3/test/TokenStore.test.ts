import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs/promises"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import * as AuthApi from "../src/AuthApi.js"
import * as AuthService from "../src/AuthService.js"
import * as TokenSeal from "../src/internal/shared/tokenSeal.js"
import * as internal from "../src/internal/tokenStore.js"
import * as MockRevault from "../src/MockRevault.js"
import { TokenSet } from "../src/TokenSet.js"
import * as TokenStore from "../src/TokenStore.js"
import { readVector } from "./support/vectors.js"

const demo = MockRevault.demoCredentials

/** One "process": an AuthService built for `use` and stopped after it, on the TokenStore in the context. */
const run = <A, E, R>(
  use: (auth: AuthService.Service) => Effect.Effect<A, E, R>,
  overrides: Parameters<typeof MockRevault.layerAuthConfig>[0] = {}
) =>
  Effect.flatMap(AuthService.AuthService, use).pipe(
    Effect.provide(
      AuthService.layer.pipe(
        Layer.provideMerge(AuthApi.layer),
        Layer.provideMerge(MockRevault.layerAuthConfig(overrides))
      )
    )
  )

const readToken = run((auth) => Effect.map(auth.accessToken, Redacted.value))

const counts = Effect.flatMap(MockRevault.MockRevault, (mock) =>
  Effect.all({ authenticate: mock.count("authenticate"), refresh: mock.count("refresh") })
)

const mockLayer = (options: MockRevault.Options = {}) =>
  Layer.mergeAll(MockRevault.layer(options), NodeHttpClient.layerUndici)

const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    const fields = [...annotations].map(([k, v]) => `${k}=${String(v)}`).join(" ")
    lines.push(`${logLevel.label} ${text} ${fields}`)
  })
  const withLogs = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    effect.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Debug)
    )
  return { lines, withLogs }
}

const key = (secret = "secret-one", workspace = "ws-1", apiKeyId = "kid-1"): TokenStore.Key => ({
  workspace,
  apiKeyId,
  apiKeySecret: Redacted.make(secret)
})

const sample = new TokenStore.StoredTokenSet({
  tokenSet: new TokenSet({
    accessToken: Redacted.make("AT-PLAINTEXT-TOKEN"),
    expiresInSeconds: 300,
    refreshToken: Redacted.make("RT-PLAINTEXT-TOKEN"),
    refreshExpiresInSeconds: 1800
  }),
  source: "authenticate",
  sentAt: 1_000,
  obtainedAt: 1_200,
  expiresAt: 301_000,
  refreshExpiresAt: 1_801_000
})

/**
 * Reads `effect` until `done` holds, without moving the TestClock, giving real I/O a few
 * milliseconds of wall time between reads.
 */
const eventually = <A, E, R>(effect: Effect.Effect<A, E, R>, done: (a: A) => boolean) =>
  Effect.gen(function* () {
    for (let attempt = 0; attempt < 500; attempt++) {
      const value = yield* effect
      if (done(value)) return value
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
    return yield* Effect.dieMessage("the condition never held")
  })

/**
 * Moves the TestClock in small steps until `fiber` is done, giving real I/O (the mock's HTTP
 * answers) a few milliseconds of wall time between steps.
 */
const driveUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function* () {
    for (let step = 0; step < 100; step++) {
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return yield* exit.value
      yield* TestClock.adjust("250 millis")
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 10)))
    }
    return yield* Effect.dieMessage("the fiber did not finish")
  })

const temporaryDirectory = Effect.acquireRelease(
  Effect.promise(() => NodeFs.mkdtemp(NodePath.join(NodeOs.tmpdir(), "revault-token-store-"))),
  (dir) => Effect.promise(() => NodeFs.rm(dir, { recursive: true, force: true }))
)

/** A file store in a fresh directory (not created yet: the store creates it). */
const withFileStore = <A, E, R>(use: (dir: string) => Effect.Effect<A, E, R>) =>
  Effect.flatMap(temporaryDirectory, (parent) => {
    const dir = NodePath.join(parent, "cache", "revault-auth")
    return use(dir).pipe(
      Effect.provide(TokenStore.layerFileSystem(dir).pipe(Layer.provide(NodeContext.layer))),
      Effect.provide(NodeContext.layer)
    )
  })

const files = (dir: string) => Effect.promise(() => NodeFs.readdir(dir))
const readOnlyFile = (dir: string) =>
  Effect.gen(function* () {
    const names = yield* files(dir)
    assert.strictEqual(names.length, 1, `files: ${names.join(", ")}`)
    const file = NodePath.join(dir, names[0] ?? "")
    return { file, text: yield* Effect.promise(() => NodeFs.readFile(file, "utf8")) }
  })

/** The demo key, as the AuthService built by `run` reads the store with it. */
const demoKey: TokenStore.Key = { ...demo, apiKeySecret: Redacted.make(demo.apiKeySecret) }

/**
 * Writes a stored set for the demo key as raw JSON, past every constructor: what an older
 * version, another machine or another clock may have left in the store.
 */
const storeRaw = (
  kv: KeyValueStore.KeyValueStore,
  times: { sentAt: number; obtainedAt: number; expiresAt: number; refreshExpiresAt: number },
  expiresInSeconds = (times.expiresAt - times.sentAt) / 1000
) =>
  Effect.flatMap(Effect.orDie(internal.masterKey(demoKey)), (master) =>
    kv.set(
      TokenSeal.storageKey(demoKey),
      TokenSeal.seal(
        demoKey,
        master,
        JSON.stringify({
          tokenSet: {
            accessToken: "AT-STORED-TOKEN",
            expiresInSeconds,
            refreshToken: "RT-STORED-TOKEN",
            refreshExpiresInSeconds: (times.refreshExpiresAt - times.sentAt) / 1000
          },
          source: "authenticate",
          ...times
        })
      )
    )
  )

/** `sample` for `key()`, as version 1 of the format sealed it (keys derived by HKDF alone). */
const version1Entry = JSON.stringify({
  format: "effect-revault-auth/token-store",
  version: 1,
  workspace: "ws-1",
  apiKeyId: "kid-1",
  keyFingerprint: "b709f3e8bbf96da0e9b15888b1ce85b4",
  salt: "FsX4adCxCkuCJq0wRdc25g==",
  iv: "Qf1rOiUKemqY1vw3",
  tag: "Au89tzbR07TCaMuOs/5kBg==",
  ciphertext:
    "UPOu7akMc72bMOzT3olHnsFUyEVinRWzO/qAogjify8AX1b3rdf6Q2rTfpenE947UQVAWqmSjWuZ1pQqiheR7edRYT2NE1cWUdoWaFX+/mZT7LMl8NyDJHZgI21nWwTrPeU5EEfFU7TkNCsEx7OreRNADCb58BpCt3Kn8vT1zCTWBchrq7/ymuIyOexGQyRKCOhpHgrOVtCR0wM1HBefB9agJBNiYwff2nA77NxDgFnuRUNo0DqgA6GeKy1kZ4EEHkzLxO8zFNSEiBvXt/R53Q7TA9BSZqQJe6QrCLn7C1VorCDULumlQRkZUnvg7RQ76Q=="
})

/** A lifetime of 1e13 s: an `expiresAt` beyond the largest `Date`. */
const poisoned = { sentAt: 1_000, obtainedAt: 1_200, expiresAt: 1_000 + 1e16, refreshExpiresAt: 1_000 + 1e16 }

describe("TokenStore", () => {
  describe("sealing", () => {
    it.effect("round trip for the same key; another secret, workspace or key id reads nothing", () =>
      Effect.gen(function* () {
        const store = yield* TokenStore.TokenStore
        yield* store.set(key(), sample)
        const back = yield* store.get(key())
        assert.isTrue(Option.isSome(back))
        const stored = Option.getOrThrow(back)
        assert.strictEqual(Redacted.value(stored.tokenSet.accessToken), "AT-PLAINTEXT-TOKEN")
        assert.strictEqual(Redacted.value(stored.tokenSet.refreshToken), "RT-PLAINTEXT-TOKEN")
        assert.deepStrictEqual(
          [stored.sentAt, stored.obtainedAt, stored.expiresAt, stored.refreshExpiresAt, stored.source],
          [1_000, 1_200, 301_000, 1_801_000, "authenticate"]
        )
        // Another secret for the same key id maps to the same entry, and cannot open it.
        assert.isTrue(Option.isNone(yield* store.get(key("secret-two"))))
        assert.isTrue(Option.isNone(yield* store.get(key("secret-one", "ws-2"))))
        assert.isTrue(Option.isNone(yield* store.get(key("secret-one", "ws-1", "kid-2"))))
        yield* store.remove(key())
        assert.isTrue(Option.isNone(yield* store.get(key())))
      }).pipe(Effect.provide(TokenStore.layerMemory))
    )

    it.effect("an entry copied under another workspace's name, or altered, is refused and says why", () =>
      Effect.gen(function* () {
        const { lines, withLogs } = captureLogs()
        const kv = yield* KeyValueStore.KeyValueStore
        const store = yield* TokenStore.make
        yield* store.set(key(), sample)
        const text = Option.getOrThrow(yield* kv.get(TokenSeal.storageKey(key())))
        // Same secret, other workspace: the authenticated data does not match.
        yield* kv.set(TokenSeal.storageKey(key("secret-one", "ws-2")), text)
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key("secret-one", "ws-2")))))
        // Metadata rewritten to match: the tag over the authenticated data still refuses it.
        yield* kv.set(TokenSeal.storageKey(key("secret-one", "ws-2")), text.replace('"ws-1"', '"ws-2"'))
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key("secret-one", "ws-2")))))
        // One ciphertext byte changed.
        const envelope = JSON.parse(text)
        const bytes = Buffer.from(envelope.ciphertext, "base64")
        bytes[0] = (bytes[0] ?? 0) ^ 1
        yield* kv.set(
          TokenSeal.storageKey(key()),
          JSON.stringify({ ...envelope, ciphertext: bytes.toString("base64") })
        )
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key()))))
        yield* kv.set(TokenSeal.storageKey(key()), "not json at all")
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key()))))
        yield* store.set(key(), sample)
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key("secret-two")))))
        const debug = lines.filter((l) => l.startsWith("DEBUG"))
        assert.strictEqual(debug.length, 5, lines.join("\n"))
        for (const reason of ["other-workspace", "corrupt", "malformed", "other-key"]) {
          assert.isTrue(
            debug.some((l) => l.includes(`reason=${reason}`)),
            `${reason} in\n${lines.join("\n")}`
          )
        }
        for (const secret of ["secret-one", "secret-two", "AT-PLAINTEXT-TOKEN", "RT-PLAINTEXT-TOKEN"]) {
          assert.notInclude(lines.join("\n"), secret)
        }
      }).pipe(Effect.provide(KeyValueStore.layerMemory))
    )

    it.effect("two writes of the same set differ (fresh salt and nonce); entry names reveal nothing", () =>
      Effect.gen(function* () {
        const kv = yield* KeyValueStore.KeyValueStore
        const store = yield* TokenStore.make
        yield* store.set(key(), sample)
        const first = Option.getOrThrow(yield* kv.get(TokenSeal.storageKey(key())))
        yield* store.set(key(), sample)
        const second = Option.getOrThrow(yield* kv.get(TokenSeal.storageKey(key())))
        assert.notStrictEqual(JSON.parse(first).ciphertext, JSON.parse(second).ciphertext)
        assert.notStrictEqual(JSON.parse(first).iv, JSON.parse(second).iv)
        assert.match(TokenSeal.storageKey(key()), /^tokens-[0-9a-f]{32}\.json$/)
        assert.strictEqual(TokenSeal.storageKey(key()), TokenSeal.storageKey(key("another secret")))
        assert.notStrictEqual(TokenSeal.storageKey(key()), TokenSeal.storageKey(key("secret-one", "ws-2")))
      }).pipe(Effect.provide(KeyValueStore.layerMemory))
    )
    it.effect("keys come from scrypt of the secret: a version 1 entry (HKDF alone) is ignored and replaced", () =>
      Effect.gen(function* () {
        const { lines, withLogs } = captureLogs()
        const kv = yield* KeyValueStore.KeyValueStore
        const store = yield* TokenStore.make
        yield* kv.set(TokenSeal.storageKey(key()), version1Entry)
        assert.isTrue(Option.isNone(yield* withLogs(store.get(key()))))
        assert.isTrue(
          lines.some((l) => l.startsWith("DEBUG") && l.includes("reason=other-version")),
          lines.join("\n")
        )
        yield* store.set(key(), sample)
        const envelope = JSON.parse(Option.getOrThrow(yield* kv.get(TokenSeal.storageKey(key()))))
        assert.strictEqual(envelope.version, 2)
        // A guess of the secret is checked against the fingerprint only through scrypt (2^14, 8, 1),
        // salted with the workspace and key id.
        const master = NodeCrypto.scryptSync(
          "secret-one",
          JSON.stringify(["effect-revault-auth/token-store", 2, "ws-1", "kid-1"]),
          32,
          { N: 2 ** 14, r: 8, p: 1 }
        )
        const fingerprint = Buffer.from(
          NodeCrypto.hkdfSync(
            "sha256",
            master,
            new Uint8Array(0),
            "effect-revault-auth/token-store/v2/key-fingerprint",
            16
          )
        ).toString("hex")
        assert.strictEqual(envelope.keyFingerprint, fingerprint)
        assert.isTrue(Option.isSome(yield* store.get(key())))
      }).pipe(Effect.provide(KeyValueStore.layerMemory))
    )

    it.effect("opens the shared token-seal vector, and refuses its rejections for the reason it names", () =>
      Effect.gen(function* () {
        const vector = readVector("token-seal.json") as {
          readonly owner: TokenSeal.Owner
          readonly apiKeySecret: string
          readonly storageKey: string
          readonly entries: ReadonlyArray<{ readonly description: string; readonly envelope: string }>
          readonly rejections: ReadonlyArray<{
            readonly name: string
            readonly text: string
            readonly rejection: TokenSeal.Rejection
            readonly apiKeySecret?: string
            readonly owner?: TokenSeal.Owner
          }>
        }
        const { lines, withLogs } = captureLogs()
        const kv = yield* KeyValueStore.KeyValueStore
        const store = yield* TokenStore.make
        const vectorKey = (owner = vector.owner, secret = vector.apiKeySecret): TokenStore.Key => ({
          ...owner,
          apiKeySecret: Redacted.make(secret)
        })
        const owner = vectorKey()
        assert.strictEqual(TokenSeal.storageKey(owner), vector.storageKey)
        const entry = vector.entries.find((e) => e.description === "TokenStore.make set of a StoredTokenSet")
        assert.isDefined(entry)
        yield* kv.set(vector.storageKey, entry?.envelope ?? "")
        const stored = Option.getOrThrow(yield* store.get(owner))
        assert.strictEqual(Redacted.value(stored.tokenSet.accessToken), "AT-VECTOR-STORED")
        assert.strictEqual(Redacted.value(stored.tokenSet.refreshToken), "RT-VECTOR-STORED")
        assert.deepStrictEqual(
          [stored.source, stored.sentAt, stored.obtainedAt, stored.expiresAt, stored.refreshExpiresAt],
          ["refresh", 1_700_000_000_000, 1_700_000_000_250, 1_700_000_300_000, 1_700_001_800_000]
        )
        assert.isAtLeast(vector.rejections.length, 10)
        for (const rejection of vector.rejections) {
          const reader = vectorKey(rejection.owner, rejection.apiKeySecret)
          yield* kv.set(TokenSeal.storageKey(reader), rejection.text)
          lines.length = 0
          assert.isTrue(Option.isNone(yield* withLogs(store.get(reader))), rejection.name)
          assert.isTrue(
            lines.some((l) => l.startsWith("DEBUG") && l.includes(`reason=${rejection.rejection}`)),
            `${rejection.name}: ${lines.join("\n")}`
          )
        }
      }).pipe(Effect.provide(KeyValueStore.layerMemory))
    )
  })

  describe("with AuthService against MockRevault", () => {
    it.scoped("persistence round trip: the second process makes no request", () =>
      Effect.gen(function* () {
        const first = yield* readToken
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
        const second = yield* readToken
        const third = yield* readToken
        assert.strictEqual(second, first)
        assert.strictEqual(third, first)
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
      }).pipe(Effect.provide(TokenStore.layerMemory), Effect.provide(mockLayer()))
    )

    it.scoped("a restarted process judges the stored set by its absolute times", () =>
      Effect.gen(function* () {
        const first = yield* readToken
        // 200 s later the access token (300 s, 30 s skew) is still usable: no request.
        yield* TestClock.setTime(200_000)
        assert.strictEqual(yield* readToken, first)
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
        // The refresh-ahead point comes from the stored send time (240 s), not from the restart.
        const refreshedAhead = yield* run((auth) =>
          Effect.gen(function* () {
            yield* TestClock.adjust("39 seconds")
            const before = yield* counts
            yield* TestClock.adjust("1 second")
            // The clock stays at 240 s while the refresh is on the wire: moving it on would fire
            // the request timeout, which runs on the Clock too.
            const session = yield* eventually(auth.session, (s) => s.source === "refresh")
            return { before, session }
          })
        )
        assert.deepStrictEqual(refreshedAhead.before, { authenticate: 1, refresh: 0 })
        assert.strictEqual(refreshedAhead.session.source, "refresh")
        assert.strictEqual(refreshedAhead.session.expiresAt.getTime(), 240_000 + 300_000)
        // Past the new set's usable life (510 s) but within its refresh token's: one refresh.
        yield* TestClock.setTime(520_000)
        const afterRefresh = yield* readToken
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 2 })
        assert.notStrictEqual(afterRefresh, first)
        // Hours later both tokens are dead: the stored set is ignored and replaced through the key.
        yield* TestClock.setTime(5 * 3_600_000)
        yield* readToken
        assert.deepStrictEqual(yield* counts, { authenticate: 2, refresh: 2 })
        yield* readToken
        assert.deepStrictEqual(yield* counts, { authenticate: 2, refresh: 2 })
      }).pipe(Effect.provide(TokenStore.layerMemory), Effect.provide(mockLayer()))
    )

    it.scoped("a stored set is never handed to another secret for the same key id", () =>
      Effect.gen(function* () {
        yield* readToken
        const error = yield* Effect.flip(run((auth) => auth.accessToken, { apiKeySecret: "not-the-secret" }))
        assert.strictEqual(error._tag, "UnauthorizedError")
        assert.deepStrictEqual(yield* counts, { authenticate: 2, refresh: 0 })
      }).pipe(Effect.provide(TokenStore.layerMemory), Effect.provide(mockLayer()))
    )

    it.scoped("a stored lifetime beyond the largest Date is ignored: the start never crashes (memory)", () =>
      Effect.gen(function* () {
        const { lines, withLogs } = captureLogs()
        yield* storeRaw(yield* KeyValueStore.KeyValueStore, poisoned, 1e13)
        const token = yield* withLogs(readToken)
        assert.notStrictEqual(token, "AT-STORED-TOKEN")
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
        assert.isTrue(
          lines.some((l) => l.startsWith("DEBUG") && l.includes("ignoring it")),
          lines.join("\n")
        )
        // The fresh set replaced it: the next process reuses it.
        assert.strictEqual(yield* readToken, token)
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
      }).pipe(
        Effect.provide(TokenStore.layerKeyValueStore),
        Effect.provide(KeyValueStore.layerMemory),
        Effect.provide(mockLayer())
      )
    )

    it.scoped("a set written under a clock 10 minutes ahead is not trusted; 500 ms ahead is", () =>
      Effect.gen(function* () {
        const { lines, withLogs } = captureLogs()
        const kv = yield* KeyValueStore.KeyValueStore
        yield* TestClock.setTime(3_600_000)
        const now = yield* Clock.currentTimeMillis
        const ahead = (millis: number) => ({
          sentAt: now + millis - 200,
          obtainedAt: now + millis,
          expiresAt: now + millis - 200 + 300_000,
          refreshExpiresAt: now + millis - 200 + 1_800_000
        })
        yield* storeRaw(kv, ahead(600_000))
        const token = yield* withLogs(readToken)
        assert.notStrictEqual(token, "AT-STORED-TOKEN")
        // Not even its refresh token is spent: the API key is exchanged.
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
        assert.isTrue(
          lines.some((l) => l.startsWith("DEBUG") && l.includes("reason=obtained-in-the-future")),
          lines.join("\n")
        )
        // Within the one-second tolerance: served as it is, with no request.
        yield* storeRaw(kv, ahead(500))
        assert.strictEqual(yield* readToken, "AT-STORED-TOKEN")
        assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
      }).pipe(
        Effect.provide(TokenStore.layerKeyValueStore),
        Effect.provide(KeyValueStore.layerMemory),
        Effect.provide(mockLayer())
      )
    )

    it.scoped("a store that fails or hangs never fails a token read", () =>
      Effect.gen(function* () {
        const { lines, withLogs } = captureLogs()
        const failure = (method: string) =>
          new SystemError({ module: "KeyValueStore", method, reason: "PermissionDenied", description: "denied" })
        const failing = KeyValueStore.make({
          get: () => Effect.fail(failure("get")),
          getUint8Array: () => Effect.fail(failure("getUint8Array")),
          set: () => Effect.fail(failure("set")),
          remove: () => Effect.fail(failure("remove")),
          clear: Effect.fail(failure("clear")),
          size: Effect.fail(failure("size"))
        })
        const token = yield* withLogs(readToken).pipe(
          Effect.provide(TokenStore.layerKeyValueStore),
          Effect.provideService(KeyValueStore.KeyValueStore, failing)
        )
        assert.isString(token)
        const warnings = lines.filter((l) => l.startsWith("WARN"))
        assert.isTrue(
          warnings.some((l) => l.includes("could not be read")),
          lines.join("\n")
        )
        assert.isTrue(
          warnings.some((l) => l.includes("could not be written")),
          lines.join("\n")
        )
        assert.notInclude(lines.join("\n"), token)

        // A store that never answers costs a bounded wait (2 s on the Clock), at start and after the request.
        const hanging = KeyValueStore.make({
          get: () => Effect.never,
          getUint8Array: () => Effect.never,
          set: () => Effect.never,
          remove: () => Effect.never,
          clear: Effect.never,
          size: Effect.never
        })
        const start = yield* Clock.currentTimeMillis
        // A request timeout longer than the test: the clock moves while the request is on the wire.
        const reader = yield* Effect.fork(
          run((auth) => Effect.map(auth.accessToken, Redacted.value), { requestTimeout: "1 hour" }).pipe(
            Effect.provide(TokenStore.layerKeyValueStore),
            Effect.provideService(KeyValueStore.KeyValueStore, hanging)
          )
        )
        assert.isString(yield* driveUntilDone(reader))
        const waited = (yield* Clock.currentTimeMillis) - start
        assert.isAtLeast(waited, 4_000)
        assert.isAtMost(waited, 5_000)
      }).pipe(Effect.provide(mockLayer()))
    )
  })

  describe("layerFileSystem", () => {
    it.scoped("two processes on one directory: one request; file 0600 in a 0700 directory, nothing in plaintext", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          const session = yield* run((auth) => auth.session)
          const accessToken = Redacted.value(session.accessToken)
          assert.strictEqual(yield* readToken, accessToken)
          assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })

          const { file, text } = yield* readOnlyFile(dir)
          const stat = yield* Effect.promise(() => NodeFs.stat(file))
          assert.strictEqual(stat.mode & 0o777, 0o600)
          const dirStat = yield* Effect.promise(() => NodeFs.stat(dir))
          assert.strictEqual(dirStat.mode & 0o777, 0o700)

          assert.notInclude(text, accessToken)
          assert.notInclude(text, accessToken.split(".")[1] ?? accessToken)
          assert.notInclude(text, "rt_")
          assert.notInclude(text, demo.apiKeySecret)
          assert.notInclude(text, Buffer.from(demo.apiKeySecret).toString("base64"))
          assert.notInclude(text, Buffer.from(demo.apiKeySecret).toString("hex"))
          const envelope = JSON.parse(text)
          assert.deepStrictEqual(Object.keys(envelope).sort(), [
            "apiKeyId",
            "ciphertext",
            "format",
            "iv",
            "keyFingerprint",
            "salt",
            "tag",
            "version",
            "workspace"
          ])
        })
      ).pipe(Effect.provide(mockLayer()))
    )

    it.scoped("a stored lifetime beyond the largest Date is ignored: the start never crashes (file system)", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          const kv = yield* internal.makeFileSystemStore(dir)
          yield* storeRaw(kv, poisoned, 1e13)
          const token = yield* readToken
          assert.notStrictEqual(token, "AT-STORED-TOKEN")
          assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
          assert.strictEqual(yield* readToken, token)
          assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
        })
      ).pipe(Effect.provide(mockLayer()))
    )

    it.scoped("a corrupt file is ignored (one new request) and replaced", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          const { lines, withLogs } = captureLogs()
          yield* readToken
          const { file } = yield* readOnlyFile(dir)
          yield* Effect.promise(() => NodeFs.writeFile(file, '{"format":"effect-revault-auth/token-store","vers'))
          yield* withLogs(readToken)
          assert.deepStrictEqual(yield* counts, { authenticate: 2, refresh: 0 })
          assert.isTrue(
            lines.some((l) => l.startsWith("DEBUG") && l.includes("reason=malformed")),
            lines.join("\n")
          )
          // Replaced: the next process reuses what the previous one wrote.
          yield* readToken
          assert.deepStrictEqual(yield* counts, { authenticate: 2, refresh: 0 })
          const { text } = yield* readOnlyFile(dir)
          assert.strictEqual(JSON.parse(text).format, "effect-revault-auth/token-store")
        })
      ).pipe(Effect.provide(mockLayer()))
    )

    it.scoped("a file written with another secret is ignored and replaced", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          const store = yield* TokenStore.TokenStore
          const owner = { workspace: demo.workspace, apiKeyId: demo.apiKeyId }
          yield* store.set({ ...owner, apiKeySecret: Redacted.make("an-old-secret") }, sample)
          yield* readToken
          assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
          // The same file, now sealed under the current secret.
          assert.strictEqual((yield* files(dir)).length, 1)
          yield* readToken
          assert.deepStrictEqual(yield* counts, { authenticate: 1, refresh: 0 })
          assert.isTrue(Option.isNone(yield* store.get({ ...owner, apiKeySecret: Redacted.make("an-old-secret") })))
        })
      ).pipe(Effect.provide(mockLayer()))
    )

    it.scoped("a write that fails after creating its temporary file (a full disk) removes it", () =>
      Effect.gen(function* () {
        const parent = yield* temporaryDirectory
        const dir = NodePath.join(parent, "revault-auth")
        const fs = yield* FileSystem.FileSystem
        const full: FileSystem.FileSystem = {
          ...fs,
          writeFile: (path, data, options) =>
            fs.writeFile(path, data.subarray(0, 1), options).pipe(
              Effect.zipRight(
                Effect.fail(
                  new SystemError({
                    module: "FileSystem",
                    method: "writeFile",
                    reason: "WriteZero",
                    pathOrDescriptor: path,
                    description: "ENOSPC: no space left on device"
                  })
                )
              )
            )
        }
        const kv = yield* internal.makeFileSystemStore(dir).pipe(Effect.provideService(FileSystem.FileSystem, full))
        const error = yield* Effect.flip(kv.set(TokenSeal.storageKey(key()), "sealed"))
        assert.strictEqual(error._tag, "SystemError")
        assert.deepStrictEqual(yield* files(dir), [])
      }).pipe(Effect.provide(NodeContext.layer))
    )

    it.scoped("temporary files of killed writers are removed by the next write once a minute old", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          yield* TestClock.setTime(3_600_000)
          const now = yield* Clock.currentTimeMillis
          const store = yield* TokenStore.TokenStore
          yield* store.set(key(), sample)
          const [entry] = yield* files(dir)
          const temporary = (age: number) =>
            Effect.gen(function* () {
              const name = `.${TokenSeal.storageKey(key())}.${crypto.randomUUID()}.tmp`
              const file = NodePath.join(dir, name)
              yield* Effect.promise(() => NodeFs.writeFile(file, "half a wri", { mode: 0o600 }))
              yield* Effect.promise(() => NodeFs.utimes(file, new Date(now - age), new Date(now - age)))
              return name
            })
          yield* temporary(61_000)
          // Younger than a minute: perhaps a live writer in another process, about to rename it.
          const young = yield* temporary(59_000)
          // Not ours: never touched.
          yield* Effect.promise(() => NodeFs.writeFile(NodePath.join(dir, ".keep.tmp"), ""))
          yield* Effect.promise(() => NodeFs.utimes(NodePath.join(dir, ".keep.tmp"), new Date(0), new Date(0)))
          yield* store.set(key(), sample)
          assert.deepStrictEqual((yield* files(dir)).sort(), [young, ".keep.tmp", entry].sort())
        })
      )
    )

    it.scoped("an existing directory open to others is tightened to 0700 at the next write", () =>
      withFileStore((dir) =>
        Effect.gen(function* () {
          yield* Effect.promise(() => NodeFs.mkdir(dir, { recursive: true }))
          yield* Effect.promise(() => NodeFs.chmod(dir, 0o777))
          yield* readToken
          const dirStat = yield* Effect.promise(() => NodeFs.stat(dir))
          assert.strictEqual(dirStat.mode & 0o777, 0o700)
          const { file } = yield* readOnlyFile(dir)
          assert.strictEqual((yield* Effect.promise(() => NodeFs.stat(file))).mode & 0o777, 0o600)
        })
      ).pipe(Effect.provide(mockLayer()))
    )

    it.scoped("an unwritable directory fails writes, never reads", () =>
      Effect.gen(function* () {
        const parent = yield* temporaryDirectory
        const blocker = NodePath.join(parent, "not-a-directory")
        yield* Effect.promise(() => NodeFs.writeFile(blocker, ""))
        const token = yield* readToken.pipe(
          Effect.provide(TokenStore.layerFileSystem(NodePath.join(blocker, "revault-auth"))),
          Effect.provide(NodeContext.layer)
        )
        assert.isString(token)
      }).pipe(Effect.provide(mockLayer()))
    )
  })

  describe("defaultDirectory", () => {
    const directoryWith = (env: Record<string, string>) =>
      TokenStore.defaultDirectory.pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(Path.layer)
      )

    it.effect("$XDG_CACHE_HOME/revault-auth, else $HOME/.cache/revault-auth", () =>
      Effect.gen(function* () {
        assert.strictEqual(
          yield* directoryWith({ XDG_CACHE_HOME: "/var/cache/me", HOME: "/home/me" }),
          "/var/cache/me/revault-auth"
        )
        assert.strictEqual(yield* directoryWith({ HOME: "/home/me" }), "/home/me/.cache/revault-auth")
        // A relative XDG_CACHE_HOME is invalid by the specification and ignored.
        assert.strictEqual(
          yield* directoryWith({ XDG_CACHE_HOME: "relative/cache", HOME: "/home/me" }),
          "/home/me/.cache/revault-auth"
        )
        assert.strictEqual(yield* directoryWith({}), NodePath.join(NodeOs.homedir(), ".cache", "revault-auth"))
      })
    )
  })
})
