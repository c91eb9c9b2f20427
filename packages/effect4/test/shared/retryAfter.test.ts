import { assert, describe, it } from "@effect/vitest"
import { parseRetryAfter } from "../../src/internal/shared/retryAfter.js"
import { readVector } from "../support/vectors.js"

const vectors = readVector("retry-after.json") as {
  readonly now: number
  readonly cases: ReadonlyArray<{ readonly header: string | null; readonly waitMillis: number | null }>
}

describe("shared/retryAfter", () => {
  for (const { header, waitMillis } of vectors.cases) {
    it(`reads ${JSON.stringify(header)} as ${waitMillis}`, () => {
      assert.strictEqual(parseRetryAfter(header ?? undefined, vectors.now), waitMillis ?? undefined)
    })
  }
})
