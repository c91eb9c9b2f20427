import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as JSONSchema from "effect/JSONSchema"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthenticateRequest, ErrorBody, maxLifetimeSeconds, RefreshRequest, TokenSet } from "../src/TokenSet.js"

const validTokenSet = {
  accessToken: "AT-SECRET-123",
  expiresInSeconds: 300,
  refreshToken: "RT-SECRET-456",
  refreshExpiresInSeconds: 1800
}

const decodeTokenSet = Schema.decodeUnknown(TokenSet)

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
        const result = yield* Effect.either(decodeTokenSet(input))
        assert.isTrue(Either.isLeft(result), `expected ${name} to fail to decode`)
      })
    )
  }
})

// --- Schema drift against the vendor's OpenAPI document ---

/** The subset of a JSON Schema node the drift test compares. */
interface Node {
  readonly type?: string | undefined
  readonly $ref?: string | undefined
  readonly required?: ReadonlyArray<string> | undefined
  readonly properties?: { readonly [name: string]: Node } | undefined
  readonly items?: Node | undefined
  readonly minimum?: number | undefined
  readonly exclusiveMinimum?: number | undefined
  readonly maximum?: number | undefined
  readonly exclusiveMaximum?: number | undefined
  readonly minLength?: number | undefined
  readonly maxLength?: number | undefined
}

const Node: Schema.Schema<Node> = Schema.Struct({
  type: Schema.optional(Schema.String),
  $ref: Schema.optional(Schema.String),
  required: Schema.optional(Schema.Array(Schema.String)),
  properties: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.suspend(() => Node) })),
  items: Schema.optional(Schema.suspend(() => Node)),
  minimum: Schema.optional(Schema.Number),
  exclusiveMinimum: Schema.optional(Schema.Number),
  maximum: Schema.optional(Schema.Number),
  exclusiveMaximum: Schema.optional(Schema.Number),
  minLength: Schema.optional(Schema.Number),
  maxLength: Schema.optional(Schema.Number)
})

const boundKeywords = ["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "minLength", "maxLength"] as const

/** A node with every `$ref` resolved and `required` as a sorted list (a set). */
interface Shape {
  readonly type: string | undefined
  readonly required: ReadonlyArray<string>
  readonly properties: { readonly [name: string]: Shape }
  readonly items: Shape | undefined
  /** The value bounds the node declares (`maximum`, `minLength`, ...): policy, compared apart from the structure. */
  readonly bounds: { readonly [keyword: string]: number }
}

const pointer = (root: unknown, path: ReadonlyArray<string>): unknown => {
  let current = root
  for (const segment of path) {
    if (!Predicate.isRecord(current) || !(segment in current)) {
      throw new Error(`no ${path.join("/")} in the document`)
    }
    current = current[segment]
  }
  return current
}

const resolveRef = (root: unknown, ref: string): unknown => {
  assert.isTrue(ref.startsWith("#/"), `only local $refs are supported: ${ref}`)
  return pointer(
    root,
    ref
      .slice(2)
      .split("/")
      .map((s) => decodeURIComponent(s).replaceAll("~1", "/").replaceAll("~0", "~"))
  )
}

const shape = (root: unknown, value: unknown): Shape => {
  const node = Schema.decodeUnknownSync(Node)(value)
  if (node.$ref !== undefined) return shape(root, resolveRef(root, node.$ref))
  const properties: Record<string, Shape> = {}
  for (const [name, property] of Object.entries(node.properties ?? {})) {
    properties[name] = shape(root, property)
  }
  const bounds: Record<string, number> = {}
  for (const keyword of boundKeywords) {
    const bound = node[keyword]
    if (bound !== undefined) bounds[keyword] = bound
  }
  return {
    type: node.type,
    required: [...(node.required ?? [])].sort(),
    properties,
    items: node.items === undefined ? undefined : shape(root, node.items),
    bounds
  }
}

/** The structure alone: the same tree without its value bounds. */
interface Structure {
  readonly type: string | undefined
  readonly required: ReadonlyArray<string>
  readonly properties: { readonly [name: string]: Structure }
  readonly items: Structure | undefined
}

const structure = (node: Shape): Structure => ({
  type: node.type,
  required: node.required,
  properties: Object.fromEntries(Object.entries(node.properties).map(([name, p]) => [name, structure(p)])),
  items: node.items === undefined ? undefined : structure(node.items)
})

/** The bounds of each property, by name. */
const propertyBounds = (node: Shape) =>
  Object.fromEntries(Object.entries(node.properties).map(([name, p]) => [name, p.bounds]))

const ours = (schema: Schema.Schema.Any): Shape => {
  const document = JSONSchema.make(schema)
  return shape(document, document)
}

const readOpenApi = Effect.sync((): unknown =>
  JSON.parse(readFileSync(new URL("../../../../shared/revault-api/auth.openapi.json", import.meta.url), "utf8"))
)

const operations = ["/auth/token", "/auth/token/refresh"] as const
const jsonSchemaAt = (document: unknown, ...path: ReadonlyArray<string>): Shape =>
  shape(document, pointer(document, [...path, "content", "application/json", "schema"]))

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
  assert.deepStrictEqual(structure(actual), structure(expected), label)
}

describe("schema drift against auth.openapi.json", () => {
  it.effect("TokenSet matches the 200 response of both operations", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      const tokenSet = ours(TokenSet)
      assert.deepStrictEqual(tokenSet.required, [
        "accessToken",
        "expiresInSeconds",
        "refreshExpiresInSeconds",
        "refreshToken"
      ])
      for (const path of operations) {
        assertSameShape(`${path} 200`, tokenSet, jsonSchemaAt(document, "paths", path, "post", "responses", "200"))
      }
    })
  )

  it.effect("the TokenSet's value bounds are exactly our policy; the document declares none", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      const lifetime = { exclusiveMinimum: 0, maximum: maxLifetimeSeconds }
      assert.deepStrictEqual(propertyBounds(ours(TokenSet)), {
        accessToken: { minLength: 1 },
        expiresInSeconds: lifetime,
        refreshToken: { minLength: 1 },
        refreshExpiresInSeconds: lifetime
      })
      // A bound the vendor starts documenting must be reconciled with ours, not silently ignored.
      for (const path of operations) {
        assert.deepStrictEqual(
          propertyBounds(jsonSchemaAt(document, "paths", path, "post", "responses", "200")),
          { accessToken: {}, expiresInSeconds: {}, refreshToken: {}, refreshExpiresInSeconds: {} },
          `${path} 200`
        )
      }
    })
  )

  it.effect("ErrorBody matches every documented error schema", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      const errorBody = ours(ErrorBody)
      const issues = errorBody.properties.issues
      assert.strictEqual(issues?.type, "array")
      assert.strictEqual(issues?.items?.type, "object")
      assert.deepStrictEqual(issues?.items?.required, ["message"])
      assert.strictEqual(issues?.items?.properties.message?.type, "string")
      assert.deepStrictEqual(errorBody.required, ["code", "message"])
      for (const name of [
        "error.BAD_REQUEST",
        "error.UNAUTHORIZED",
        "error.FORBIDDEN",
        "error.INTERNAL_SERVER_ERROR"
      ]) {
        assertSameShape(name, errorBody, shape(document, pointer(document, ["components", "schemas", name])))
      }
    })
  )

  it.effect("ErrorBody matches the 400, 401, 403 and 500 responses of both operations", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      const errorBody = ours(ErrorBody)
      for (const path of operations) {
        for (const status of ["400", "401", "403", "500"]) {
          assertSameShape(
            `${path} ${status}`,
            errorBody,
            jsonSchemaAt(document, "paths", path, "post", "responses", status)
          )
        }
      }
    })
  )

  it.effect("the documented statuses of each operation are exactly 200, 400, 401, 403, 500", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      for (const path of operations) {
        const responses = pointer(document, ["paths", path, "post", "responses"])
        assert.isTrue(Predicate.isRecord(responses))
        assert.deepStrictEqual(Object.keys(Predicate.isRecord(responses) ? responses : {}).sort(), [
          "200",
          "400",
          "401",
          "403",
          "500"
        ])
      }
    })
  )

  it.effect("AuthenticateRequest matches the /auth/token request body", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      assertSameShape(
        "/auth/token requestBody",
        ours(AuthenticateRequest),
        jsonSchemaAt(document, "paths", "/auth/token", "post", "requestBody")
      )
    })
  )

  it.effect("RefreshRequest matches the /auth/token/refresh request body", () =>
    Effect.gen(function* () {
      const document = yield* readOpenApi
      assertSameShape(
        "/auth/token/refresh requestBody",
        ours(RefreshRequest),
        jsonSchemaAt(document, "paths", "/auth/token/refresh", "post", "requestBody")
      )
    })
  )
})

describe("request encoding", () => {
  it.effect("AuthenticateRequest encodes the Redacted secret as a plain string", () =>
    Effect.gen(function* () {
      const request = { workspace: "ws", apiKeyId: "kid", apiKeySecret: Redacted.make("s3cr3t-SECRET") }
      assert.notInclude(JSON.stringify(request), "s3cr3t-SECRET")
      const encoded = yield* Schema.encode(AuthenticateRequest)(request)
      assert.deepStrictEqual(encoded, { workspace: "ws", apiKeyId: "kid", apiKeySecret: "s3cr3t-SECRET" })
      assert.strictEqual(typeof encoded.apiKeySecret, "string")
      assert.strictEqual(JSON.stringify(encoded), '{"workspace":"ws","apiKeyId":"kid","apiKeySecret":"s3cr3t-SECRET"}')
    })
  )

  it.effect("RefreshRequest encodes the Redacted refresh token as a plain string", () =>
    Effect.gen(function* () {
      const request = { workspace: "ws", refreshToken: Redacted.make("RT-SECRET-456") }
      assert.notInclude(JSON.stringify(request), "RT-SECRET-456")
      const encoded = yield* Schema.encode(RefreshRequest)(request)
      assert.strictEqual(typeof encoded.refreshToken, "string")
      assert.strictEqual(JSON.stringify(encoded), '{"workspace":"ws","refreshToken":"RT-SECRET-456"}')
    })
  )

  it.effect("the encoded request bodies decode back to Redacted secrets", () =>
    Effect.gen(function* () {
      const decoded = yield* Schema.decodeUnknown(AuthenticateRequest)({
        workspace: "ws",
        apiKeyId: "kid",
        apiKeySecret: "s3cr3t-SECRET"
      })
      assert.isTrue(Redacted.isRedacted(decoded.apiKeySecret))
      assert.strictEqual(Redacted.value(decoded.apiKeySecret), "s3cr3t-SECRET")
    })
  )
})
