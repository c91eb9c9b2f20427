import { assert, describe, it } from "@effect/vitest"
import { keyFingerprint, open, seal, storageKey } from "../../src/internal/shared/tokenSeal.js"
import { readVector } from "../support/vectors.js"

const vector = readVector("token-seal.json") as {
  readonly owner: { readonly workspace: string; readonly apiKeyId: string }
  readonly apiKeySecret: string
  readonly plaintext: string
  readonly keyFingerprint: string
  readonly storageKey: string
  readonly envelope: string
}
const { apiKeySecret, owner, plaintext } = vector

const tamper = (text: string, f: (envelope: Record<string, unknown>) => Record<string, unknown>): string =>
  JSON.stringify(f(JSON.parse(text)))

describe("shared/tokenSeal", () => {
  it("opens the shared vector (the format both lines read and write)", () => {
    assert.deepStrictEqual(open(owner, apiKeySecret, vector.envelope), { _tag: "Opened", plaintext })
    assert.strictEqual(keyFingerprint(owner, apiKeySecret), vector.keyFingerprint)
    assert.strictEqual(storageKey(owner), vector.storageKey)
  })

  it("round-trips, with a fresh salt and nonce per seal, and never writes the plaintext or secret", () => {
    const a = seal(owner, apiKeySecret, plaintext)
    const b = seal(owner, apiKeySecret, plaintext)
    assert.notStrictEqual(a, b)
    assert.notInclude(a, "AT-VECTOR")
    assert.notInclude(a, apiKeySecret)
    assert.deepStrictEqual(open(owner, apiKeySecret, a), { _tag: "Opened", plaintext })
  })

  it("storage keys depend on workspace and key id only", () => {
    assert.strictEqual(storageKey(owner), storageKey({ ...owner }))
    assert.notStrictEqual(storageKey(owner), storageKey({ ...owner, workspace: "other" }))
    assert.notStrictEqual(storageKey(owner), storageKey({ ...owner, apiKeyId: "other" }))
    assert.match(storageKey(owner), /^tokens-[0-9a-f]{32}\.json$/)
  })

  it("the fingerprint is bound to the key id and the secret", () => {
    assert.notStrictEqual(keyFingerprint(owner, apiKeySecret), keyFingerprint(owner, "another-secret"))
    assert.notStrictEqual(
      keyFingerprint(owner, apiKeySecret),
      keyFingerprint({ ...owner, apiKeyId: "k2" }, apiKeySecret)
    )
  })

  const rejections: ReadonlyArray<
    readonly [string, string, string, "malformed" | "other-workspace" | "other-key" | "corrupt"]
  > = [
    ["not JSON", "{", apiKeySecret, "malformed"],
    ["JSON null", "null", apiKeySecret, "malformed"],
    ["an array", "[]", apiKeySecret, "malformed"],
    ["another format", tamper(vector.envelope, (e) => ({ ...e, format: "x" })), apiKeySecret, "malformed"],
    ["another version", tamper(vector.envelope, (e) => ({ ...e, version: 2 })), apiKeySecret, "malformed"],
    ["a missing field", tamper(vector.envelope, ({ salt: _salt, ...e }) => e), apiKeySecret, "malformed"],
    ["a number field", tamper(vector.envelope, (e) => ({ ...e, iv: 12 })), apiKeySecret, "malformed"],
    ["another workspace", tamper(vector.envelope, (e) => ({ ...e, workspace: "w2" })), apiKeySecret, "other-workspace"],
    ["another key id", tamper(vector.envelope, (e) => ({ ...e, apiKeyId: "k2" })), apiKeySecret, "other-key"],
    ["another secret", vector.envelope, "another-secret", "other-key"],
    ["a short iv", tamper(vector.envelope, (e) => ({ ...e, iv: "AAAA" })), apiKeySecret, "corrupt"],
    ["a short tag", tamper(vector.envelope, (e) => ({ ...e, tag: "AAAA" })), apiKeySecret, "corrupt"],
    [
      "a changed ciphertext",
      tamper(vector.envelope, (e) => ({ ...e, ciphertext: Buffer.from("tampered").toString("base64") })),
      apiKeySecret,
      "corrupt"
    ],
    [
      "a changed salt",
      tamper(vector.envelope, (e) => ({ ...e, salt: Buffer.alloc(16).toString("base64") })),
      apiKeySecret,
      "corrupt"
    ]
  ]
  for (const [name, text, secret, rejection] of rejections) {
    it(`rejects ${name} as ${rejection}`, () => {
      assert.deepStrictEqual(open(owner, secret, text), { _tag: "Rejected", rejection })
    })
  }

  it("ignores extra envelope fields, as the schema-based reader did", () => {
    const extended = tamper(vector.envelope, (e) => ({ ...e, note: "x" }))
    assert.deepStrictEqual(open(owner, apiKeySecret, extended), { _tag: "Opened", plaintext })
  })

  it("binds the envelope to the owner through the additional data", () => {
    const sealed = seal(owner, apiKeySecret, plaintext)
    const moved = { workspace: "w2", apiKeyId: owner.apiKeyId }
    const relabelled = tamper(sealed, (e) => ({ ...e, workspace: "w2" }))
    assert.deepStrictEqual(open(moved, apiKeySecret, relabelled), { _tag: "Rejected", rejection: "corrupt" })
  })
})
