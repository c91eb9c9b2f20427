import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import {
  bodySchema,
  bodyShape,
  pointer,
  propertyBounds,
  type Shape,
  shape
} from "../../shared/test-vectors/openApiShape.js"
import { AuthenticateRequest, ErrorBody, maxLifetimeSeconds, RefreshRequest, TokenSet } from "../src/TokenSet.js"
import { readOpenApi, readVector } from "./support/vectors.js"

const validTokenSet = {
  accessToken: "AT-SECRET-123",
  expiresInSeconds: 300,
  refreshToken: "RT-SECRET-456",
  refreshExpiresInSeconds: 1800
}

const decodeTokenSet = Schema.decodeUnknownEffect(TokenSet)

describe("TokenSet", () => {
  it.effect("decodes a valid token set, with both tokens Redacted", () =>
    Effect.gen(function* () {
      const tokens = yield* decodeTokenSet(validTokenSet)
      assert.instanceOf(tokens, TokenSet)
      assert.isTrue(Redacted.isRedacted(tokens.accessToken))
      assert.isTrue(Redacted.isRedacted(tokens.refreshToken))
      assert.strictEqual(Redacted.value(tokens.accessToken), "AT-SECRET-123")
      assert.strictEqual(Redacted.value(tokens.refreshToken), "RT-SECRET-456")
      assert.strictEqual(tokens.expiresInSeconds, 300)
      assert.strictEqual(tokens.refreshExpiresInSeconds, 1800)
      assert.notInclude(String(tokens), "AT-SECRET-123")
      assert.notInclude(JSON.stringify(tokens), "AT-SECRET-123")
      assert.notInclude(JSON.stringify(tokens), "RT-SECRET-456")
    })
  )

  it.effect("accepts lifetimes of exactly one year, the ceiling", () =>
    Effect.gen(function* () {
      assert.strictEqual(maxLifetimeSeconds, 31_536_000)
      const tokens = yield* decodeTokenSet({
        ...validTokenSet,
        expiresInSeconds: maxLifetimeSeconds,
        refreshExpiresInSeconds: maxLifetimeSeconds
      })
      assert.strictEqual(tokens.expiresInSeconds, maxLifetimeSeconds)
      assert.strictEqual(tokens.refreshExpiresInSeconds, maxLifetimeSeconds)
    })
  )

  it.effect("ignores extra unknown fields", () =>
    Effect.gen(function* () {
      const tokens = yield* decodeTokenSet({ ...validTokenSet, tokenType: "Bearer", scope: ["a", "b"], extra: null })
      assert.strictEqual(Redacted.value(tokens.accessToken), "AT-SECRET-123")
      assert.strictEqual(tokens.expiresInSeconds, 300)
      assert.notProperty(tokens, "tokenType")
    })
  )

  it.effect("encodes back to the wire shape with plain tokens", () =>
    Effect.gen(function* () {
      const tokens = yield* decodeTokenSet(validTokenSet)
      assert.deepStrictEqual(yield* Schema.encodeEffect(TokenSet)(tokens), validTokenSet)
    })
  )

  const invalid: ReadonlyArray<readonly [string, unknown]> = [
    ...Object.keys(validTokenSet).map(
      (key) =>
        [`a missing ${key}`, Object.fromEntries(Object.entries(validTokenSet).filter(([k]) => k !== key))] as const
    ),
    ["an undefined accessToken", { ...validTokenSet, accessToken: undefined }],
    ["a string for expiresInSeconds", { ...validTokenSet, expiresInSeconds: "300" }],
    ["a string for refreshExpiresInSeconds", { ...validTokenSet, refreshExpiresInSeconds: "1800" }],
    ["a negative expiresInSeconds", { ...validTokenSet, expiresInSeconds: -1 }],
    ["a zero expiresInSeconds", { ...validTokenSet, expiresInSeconds: 0 }],
    ["a zero refreshExpiresInSeconds", { ...validTokenSet, refreshExpiresInSeconds: 0 }],
    ["an infinite expiresInSeconds", { ...validTokenSet, expiresInSeconds: Number.POSITIVE_INFINITY }],
    ["a NaN expiresInSeconds", { ...validTokenSet, expiresInSeconds: Number.NaN }],
    // 1e13 s puts the expiry beyond the largest Date; anything past one year is refused.
    ["an expiresInSeconds of 1e13", { ...validTokenSet, expiresInSeconds: 1e13 }],
    ["an expiresInSeconds one second over a year", { ...validTokenSet, expiresInSeconds: maxLifetimeSeconds + 1 }],
    ["a refreshExpiresInSeconds of 1e13", { ...validTokenSet, refreshExpiresInSeconds: 1e13 }],
    [
      "a refreshExpiresInSeconds one second over a year",
      { ...validTokenSet, refreshExpiresInSeconds: maxLifetimeSeconds + 1 }
    ],
    ["an empty accessToken", { ...validTokenSet, accessToken: "" }],
    ["an empty refreshToken", { ...validTokenSet, refreshToken: "" }],
    ["a number for accessToken", { ...validTokenSet, accessToken: 42 }],
    ["null", null],
    ["an array", [validTokenSet]]
  ]
  for (const [name, input] of invalid) {
    it.effect(`rejects ${name}`, () =>
      Effect.gen(function* () {
        const result = yield* Effect.result(decodeTokenSet(input))
        assert.isTrue(Result.isFailure(result), `expected ${name} to fail to decode`)
      })
    )
  }
})

// --- Schema drift against the vendor's OpenAPI document (cases in packages/shared/test-vectors) ---

interface DriftCase {
  readonly schema: "TokenSet" | "ErrorBody" | "AuthenticateRequest" | "RefreshRequest"
  readonly required: ReadonlyArray<string>
  readonly bodies: ReadonlyArray<string>
  readonly schemas: ReadonlyArray<string>
}

type Bounds = { readonly [name: string]: { readonly [keyword: string]: number } }

const drift = readVector("openapi-drift.json") as {
  readonly operations: ReadonlyArray<string>
  readonly documentedStatuses: ReadonlyArray<string>
  readonly cases: ReadonlyArray<DriftCase>
  readonly maxLifetimeSeconds: number
  readonly bounds: { readonly [schema: string]: Bounds }
}

const schemas = { TokenSet, ErrorBody, AuthenticateRequest, RefreshRequest } as const

// `toJsonSchemaDocument` puts named definitions under `definitions` and refers to them as `#/$defs/...`.
const jsonSchemaOf = (schema: Schema.Top) => {
  const document = Schema.toJsonSchemaDocument(schema)
  return { root: { $defs: document.definitions }, schema: document.schema }
}

const ours = (schema: Schema.Top): Shape => {
  const { root, schema: node } = jsonSchemaOf(schema)
  return shape(root, node)
}

const oursBounds = (schema: Schema.Top): Bounds => {
  const { root, schema: node } = jsonSchemaOf(schema)
  return propertyBounds(root, node)
}

// Every property with no bound, apart from those `policy` lists.
const expectedBounds = (actual: Bounds, policy: Bounds = {}): Bounds =>
  Object.fromEntries(Object.keys(actual).map((name) => [name, policy[name] ?? {}]))

const assertSameShape = (label: string, actual: Shape, expected: Shape): void => {
  assert.deepStrictEqual(
    Object.keys(actual.properties).sort(),
    Object.keys(expected.properties).sort(),
    `${label}: property names`
  )
  assert.deepStrictEqual(actual.required, expected.required, `${label}: required`)
  assert.strictEqual(actual.type, expected.type, `${label}: type`)
  for (const [name, property] of Object.entries(expected.properties)) {
    assert.strictEqual(actual.properties[name]?.type, property.type, `${label}: type of ${name}`)
  }
  // The whole resolved tree, nested objects (issues' items) included. Value bounds are our policy
  // on top of the document (a non-empty token, a lifetime in (0, one year]) and are pinned apart.
  assert.deepStrictEqual(actual, expected, label)
}

describe("schema drift against auth.openapi.json", () => {
  const document = readOpenApi()

  for (const driftCase of drift.cases) {
    it(`${driftCase.schema} matches ${[...driftCase.bodies, ...driftCase.schemas].join(", ")}`, () => {
      const actual = ours(schemas[driftCase.schema])
      assert.deepStrictEqual(actual.required, driftCase.required)
      for (const path of driftCase.bodies) assertSameShape(path, actual, bodyShape(document, path))
      for (const path of driftCase.schemas) assertSameShape(path, actual, shape(document, pointer(document, path)))
    })
  }

  it("our value bounds are exactly the vectors' policy; the document declares none", () => {
    assert.strictEqual(maxLifetimeSeconds, drift.maxLifetimeSeconds)
    assert.deepStrictEqual(drift.bounds.TokenSet?.expiresInSeconds, {
      exclusiveMinimum: 0,
      maximum: maxLifetimeSeconds
    })
    for (const driftCase of drift.cases) {
      const actual = oursBounds(schemas[driftCase.schema])
      assert.deepStrictEqual(actual, expectedBounds(actual, drift.bounds[driftCase.schema]), driftCase.schema)
      // A bound the vendor starts documenting must be reconciled with ours, not silently ignored.
      for (const path of driftCase.bodies) {
        const documented = propertyBounds(document, bodySchema(document, path))
        assert.deepStrictEqual(documented, expectedBounds(documented), path)
      }
      for (const path of driftCase.schemas) {
        const documented = propertyBounds(document, pointer(document, path))
        assert.deepStrictEqual(documented, expectedBounds(documented), path)
      }
    }
  })

  it("ErrorBody's issues are a list of { message }", () => {
    const issues = ours(ErrorBody).properties.issues
    assert.strictEqual(issues?.type, "array")
    assert.strictEqual(issues?.items?.type, "object")
    assert.deepStrictEqual(issues?.items?.required, ["message"])
    assert.strictEqual(issues?.items?.properties.message?.type, "string")
  })

  it("the documented statuses of each operation are exactly the vectors' list", () => {
    for (const path of drift.operations) {
      const responses = pointer(document, `/paths/${path.replaceAll("/", "~1")}/post/responses`)
      assert.deepStrictEqual(Object.keys(responses ?? {}).sort(), [...drift.documentedStatuses].sort())
    }
  })
})

describe("request encoding", () => {
  it.effect("AuthenticateRequest encodes the Redacted secret as a plain string", () =>
    Effect.gen(function* () {
      const request = { workspace: "ws", apiKeyId: "kid", apiKeySecret: Redacted.make("s3cr3t-SECRET") }
      assert.notInclude(JSON.stringify(request), "s3cr3t-SECRET")
      const encoded = yield* Schema.encodeEffect(AuthenticateRequest)(request)
      assert.deepStrictEqual(encoded, { workspace: "ws", apiKeyId: "kid", apiKeySecret: "s3cr3t-SECRET" })
      assert.strictEqual(typeof encoded.apiKeySecret, "string")
      assert.strictEqual(JSON.stringify(encoded), '{"workspace":"ws","apiKeyId":"kid","apiKeySecret":"s3cr3t-SECRET"}')
    })
  )

  it.effect("RefreshRequest encodes the Redacted refresh token as a plain string", () =>
    Effect.gen(function* () {
      const request = { workspace: "ws", refreshToken: Redacted.make("RT-SECRET-456") }
      assert.notInclude(JSON.stringify(request), "RT-SECRET-456")
      const encoded = yield* Schema.encodeEffect(RefreshRequest)(request)
      assert.strictEqual(typeof encoded.refreshToken, "string")
      assert.strictEqual(JSON.stringify(encoded), '{"workspace":"ws","refreshToken":"RT-SECRET-456"}')
    })
  )

  it.effect("the encoded request bodies decode back to Redacted secrets", () =>
    Effect.gen(function* () {
      const decoded = yield* Schema.decodeUnknownEffect(AuthenticateRequest)({
        workspace: "ws",
        apiKeyId: "kid",
        apiKeySecret: "s3cr3t-SECRET"
      })
      assert.isTrue(Redacted.isRedacted(decoded.apiKeySecret))
      assert.strictEqual(Redacted.value(decoded.apiKeySecret), "s3cr3t-SECRET")
    })
  )
})
