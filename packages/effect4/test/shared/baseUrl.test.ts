import { assert, describe, it } from "@effect/vitest"
import {
  isAbsoluteUrl,
  isLoopbackHost,
  isUnder,
  normalizeBaseUrl,
  serverPort
} from "../../src/internal/shared/baseUrl.js"
import { readVector } from "../support/vectors.js"

const vectors = readVector("base-url.json") as {
  readonly valid: ReadonlyArray<{ readonly input: string; readonly baseUrl: string }>
  readonly invalid: ReadonlyArray<{ readonly input: string; readonly message: string }>
  readonly under: ReadonlyArray<{ readonly url: string; readonly baseUrl: string; readonly under: boolean }>
  readonly absolute: ReadonlyArray<{ readonly url: string; readonly absolute: boolean }>
}

describe("shared/baseUrl", () => {
  for (const { input, baseUrl } of vectors.valid) {
    it(`accepts ${input}`, () => {
      assert.deepStrictEqual(normalizeBaseUrl(input), { _tag: "Valid", baseUrl })
      assert.deepStrictEqual(normalizeBaseUrl(new URL(input)), { _tag: "Valid", baseUrl })
    })
  }
  for (const { input, message } of vectors.invalid) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      const result = normalizeBaseUrl(input)
      assert.strictEqual(result._tag, "Invalid")
      assert.isTrue(result._tag === "Invalid" && result.message.startsWith(message), JSON.stringify(result))
    })
  }
  it("never echoes credentials", () => {
    const result = normalizeBaseUrl("https://user:hunter2@api.example.com/v1/rest")
    assert.notInclude(JSON.stringify(result), "hunter2")
  })
  for (const { url, baseUrl, under } of vectors.under) {
    it(`${url} is ${under ? "" : "not "}under ${baseUrl}`, () => {
      assert.strictEqual(isUnder(baseUrl, url), under)
    })
  }
  for (const { url, absolute } of vectors.absolute) {
    it(`${url} is ${absolute ? "absolute" : "relative"}`, () => {
      assert.strictEqual(isAbsoluteUrl(url), absolute)
    })
  }
  it("knows the loopback hosts", () => {
    for (const host of ["localhost", "[::1]", "127.0.0.1", "127.255.0.9"]) assert.isTrue(isLoopbackHost(host), host)
    for (const host of ["10.0.0.1", "localhost.example.com", "127.0.0.1.nip.io", "::1", "0.0.0.0"]) {
      assert.isFalse(isLoopbackHost(host), host)
    }
  })

  it("serverPort: the stated port, or the scheme's own", () => {
    assert.strictEqual(serverPort(new URL("https://api.example.com/v1")), 443)
    assert.strictEqual(serverPort(new URL("http://api.example.com/v1")), 80)
    assert.strictEqual(serverPort(new URL("http://127.0.0.1:4010/v1")), 4010)
  })
})
