import * as NodeCrypto from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import {
  keyFingerprint,
  masterKey,
  type Owner,
  open,
  type Rejection,
  seal,
  storageKey
} from "../../src/internal/shared/tokenSeal.js"
import { readVector } from "../support/vectors.js"

const vector = readVector("token-seal.json") as {
  readonly owner: Owner
  readonly apiKeySecret: string
  readonly masterKey: string
  readonly keyFingerprint: string
  readonly storageKey: string
  readonly entries: ReadonlyArray<{
    readonly description: string
    readonly plaintext: string
    readonly envelope: string
  }>
  readonly rejections: ReadonlyArray<{
    readonly name: string
    readonly text: string
    readonly rejection: Rejection
    readonly apiKeySecret?: string
    readonly owner?: Owner
  }>
}
const { apiKeySecret, owner } = vector
const master = Buffer.from(vector.masterKey, "hex")

const derive = (who: Owner, secret: string): Promise<Buffer> =>
  new Promise((resolve, reject) =>
    masterKey(who, secret, (error, key) => (error === null ? resolve(key) : reject(error)))
  )

const tamper = (text: string, f: (envelope: Record<string, unknown>) => Record<string, unknown>): string =>
  JSON.stringify(f(JSON.parse(text)))

const plaintext = "a token set"

describe("shared/tokenSeal", () => {
  it("derives the vector's master key: scrypt (2^14, 8, 1) of the secret, salted with the owner", async () => {
    assert.strictEqual((await derive(owner, apiKeySecret)).toString("hex"), vector.masterKey)
    const byHand = NodeCrypto.scryptSync(
      apiKeySecret,
      JSON.stringify(["effect-revault-auth/token-store", 2, owner.workspace, owner.apiKeyId]),
      32,
      { N: 2 ** 14, r: 8, p: 1 }
    )
    assert.strictEqual(byHand.toString("hex"), vector.masterKey)
    assert.strictEqual(keyFingerprint(master), vector.keyFingerprint)
    assert.strictEqual(storageKey(owner), vector.storageKey)
  })

  it("the master key depends on the secret, the workspace and the key id", async () => {
    const others = await Promise.all([
      derive(owner, "another-secret"),
      derive({ ...owner, workspace: "w2" }, apiKeySecret),
      derive({ ...owner, apiKeyId: "k2" }, apiKeySecret)
    ])
    for (const other of others) assert.notStrictEqual(other.toString("hex"), vector.masterKey)
  })

  for (const entry of vector.entries) {
    it(`opens what the Effect 3 line 1.x wrote: ${entry.description}`, () => {
      assert.deepStrictEqual(open(owner, master, entry.envelope), { _tag: "Opened", plaintext: entry.plaintext })
    })
  }

  it("round-trips, with a fresh salt and nonce per seal, and never writes the plaintext or secret", () => {
    const a = seal(owner, master, plaintext)
    const b = seal(owner, master, plaintext)
    assert.notStrictEqual(JSON.parse(a).salt, JSON.parse(b).salt)
    assert.notStrictEqual(JSON.parse(a).iv, JSON.parse(b).iv)
    assert.notStrictEqual(JSON.parse(a).ciphertext, JSON.parse(b).ciphertext)
    assert.notInclude(a, plaintext)
    assert.notInclude(a, apiKeySecret)
    assert.notInclude(a, vector.masterKey)
    assert.deepStrictEqual(open(owner, master, a), { _tag: "Opened", plaintext })
  })

  it("writes the envelope fields the Effect 3 line writes, in its order", () => {
    const envelope = JSON.parse(seal(owner, master, plaintext))
    assert.deepStrictEqual(Object.keys(envelope), Object.keys(JSON.parse(vector.entries[0]?.envelope ?? "{}")))
    assert.deepStrictEqual(
      [envelope.format, envelope.version, envelope.workspace, envelope.apiKeyId, envelope.keyFingerprint],
      ["effect-revault-auth/token-store", 2, owner.workspace, owner.apiKeyId, vector.keyFingerprint]
    )
  })

  it("storage keys depend on workspace and key id only", () => {
    assert.strictEqual(storageKey(owner), storageKey({ ...owner }))
    assert.notStrictEqual(storageKey(owner), storageKey({ ...owner, workspace: "other" }))
    assert.notStrictEqual(storageKey(owner), storageKey({ ...owner, apiKeyId: "other" }))
    assert.match(storageKey(owner), /^tokens-[0-9a-f]{32}\.json$/)
  })

  for (const c of vector.rejections) {
    it(`rejects ${c.name} as ${c.rejection}`, async () => {
      const who = c.owner ?? owner
      const key =
        c.owner === undefined && c.apiKeySecret === undefined
          ? master
          : await derive(who, c.apiKeySecret ?? apiKeySecret)
      assert.deepStrictEqual(open(who, key, c.text), { _tag: "Rejected", rejection: c.rejection })
    })
  }

  it("ignores extra envelope fields, as the Effect 3 line's schema does", () => {
    const extended = tamper(vector.entries[0]?.envelope ?? "", (e) => ({ ...e, note: "x" }))
    assert.deepStrictEqual(open(owner, master, extended), {
      _tag: "Opened",
      plaintext: vector.entries[0]?.plaintext ?? ""
    })
  })

  it("binds the envelope to the owner through the additional data, even under one master key", () => {
    const sealed = seal(owner, master, plaintext)
    const moved = { workspace: "w2", apiKeyId: owner.apiKeyId }
    const relabelled = tamper(sealed, (e) => ({ ...e, workspace: "w2" }))
    assert.deepStrictEqual(open(moved, master, relabelled), { _tag: "Rejected", rejection: "corrupt" })
  })
})
