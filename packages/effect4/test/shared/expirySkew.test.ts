import { assert, describe, it } from "@effect/vitest"
import { skewFor, usableUntil } from "../../src/internal/shared/expirySkew.js"
import { readVector } from "../support/vectors.js"

const vectors = readVector("expiry-skew.json") as {
  readonly cases: ReadonlyArray<{ readonly skew: number; readonly lifetime: number; readonly applied: number }>
}

describe("shared/expirySkew", () => {
  for (const { applied, lifetime, skew } of vectors.cases) {
    it(`a skew of ${skew} ms on a ${lifetime} ms token is ${applied} ms`, () => {
      assert.strictEqual(skewFor(skew, lifetime), applied)
      assert.strictEqual(usableUntil(skew, 1_000_000, 1_000_000 + lifetime), 1_000_000 + lifetime - applied)
    })
  }
})
