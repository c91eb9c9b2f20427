import { assert, describe, it } from "@effect/vitest"
import { isUnder } from "../src/internal/baseUrl.js"

const base = "https://api.example.com/v1/rest"

describe("isUnder: where a bearer token may go", () => {
  it("accepts URLs below the base path, dot segments that stay inside included", () => {
    for (const url of [
      `${base}/users/me`,
      `${base}/users/me?x=1#frag`,
      "https://API.EXAMPLE.COM:443/v1/rest/users/me",
      `${base}/auth/../users/./me`,
      `${base}/secrets/db%2Fpassword`
    ]) {
      assert.isTrue(isUnder(base, url), url)
    }
  })

  it("refuses another origin, scheme or port", () => {
    for (const url of [
      "https://evil.example.com/v1/rest/users/me",
      "http://api.example.com/v1/rest/users/me",
      "https://api.example.com:8443/v1/rest/users/me",
      "https://api.example.com.evil.example/v1/rest/users/me",
      "blob:https://api.example.com/v1/rest/users/me",
      "/v1/rest/users/me",
      "not a url"
    ]) {
      assert.isFalse(isUnder(base, url), url)
    }
  })

  it("refuses a path beside the base path: /v1/restore is not under /v1/rest", () => {
    assert.isFalse(isUnder(base, "https://api.example.com/v1/restore"))
    assert.isFalse(isUnder(base, "https://api.example.com/v1/restore/users"))
    assert.isFalse(isUnder(`${base}/`, "https://api.example.com/v1/restore/users"))
    assert.isFalse(isUnder(base, base))
  })

  it("refuses dot segments that climb out, plain or percent-encoded", () => {
    for (const url of [
      `${base}/../../admin`,
      `${base}/%2e%2e/%2e%2e/admin`,
      `${base}/%2E%2E/admin`,
      `${base}/.%2e/admin`,
      `${base}/users/../../admin`,
      `${base}/..%2fadmin`,
      `${base}/%2e%2e%2f%2e%2e%2fadmin`,
      `${base}/..%5cadmin`,
      `${base}\\..\\..\\admin`
    ]) {
      assert.isFalse(isUnder(base, url), url)
    }
  })

  it("a base at the origin's root admits every path of that origin", () => {
    assert.isTrue(isUnder("https://api.example.com", "https://api.example.com/anything"))
    assert.isFalse(isUnder("https://api.example.com", "https://other.example.com/anything"))
  })
})
