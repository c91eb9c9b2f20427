import { assert, describe, it } from "@effect/vitest"
import { codesOf, transportDetail } from "../../src/internal/shared/transportDetail.js"

describe("shared/transportDetail", () => {
  it("codesOf collects the codes down the cause chain, four levels at most", () => {
    const deep = { code: "A", cause: { cause: { code: "C", cause: { code: "D", cause: { code: "E" } } } } }
    assert.deepStrictEqual(codesOf(deep), ["A", "C", "D"])
    assert.deepStrictEqual(codesOf(new Error("fetch failed", { cause: { code: "ECONNREFUSED" } })), ["ECONNREFUSED"])
    assert.deepStrictEqual(codesOf("socket closed"), [])
    assert.deepStrictEqual(codesOf(undefined), [])
  })

  it("transportDetail says what, then where; missing or empty parts are left out", () => {
    assert.strictEqual(
      transportDetail(["refused", undefined, "", "ECONNREFUSED"], "POST http://127.0.0.1:9/x"),
      "refused: ECONNREFUSED (POST http://127.0.0.1:9/x)"
    )
    assert.strictEqual(
      transportDetail([undefined, ""], "GET http://127.0.0.1:9/me"),
      "no connection (GET http://127.0.0.1:9/me)"
    )
  })
})
