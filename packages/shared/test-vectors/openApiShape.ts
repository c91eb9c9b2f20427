// The structural comparison behind the OpenAPI drift test, free of Effect so that both lines use
// it: a JSON Schema node reduced to what the drift test compares (type, required as a sorted set,
// properties, items), with every local `$ref` resolved. Value bounds (`maximum`, `minLength`, ...)
// are not structure: they are read apart, by `propertyBounds`, and pinned as policy.

/** A JSON Schema node with every `$ref` resolved and `required` as a sorted list (a set). */
export interface Shape {
  readonly type: string | undefined
  readonly required: ReadonlyArray<string>
  readonly properties: { readonly [name: string]: Shape }
  readonly items: Shape | undefined
}

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** The value at a JSON pointer (RFC 6901, e.g. `/paths/~1auth~1token/post`); throws when absent. */
export const pointer = (root: unknown, path: string): unknown => {
  let current = root
  for (const raw of path.split("/").slice(1)) {
    const segment = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~")
    if (!isRecord(current) || !(segment in current)) throw new Error(`no ${path} in the document`)
    current = current[segment]
  }
  return current
}

const optionalString = (node: { readonly [key: string]: unknown }, key: string): string | undefined => {
  const value = node[key]
  if (value === undefined || typeof value === "string") return value
  throw new Error(`${key} is not a string`)
}

/** Reduces `value`, a node of the document `root`, to its {@link Shape}. */
export const shape = (root: unknown, value: unknown): Shape => {
  if (!isRecord(value)) throw new Error(`not a JSON Schema node: ${JSON.stringify(value)}`)
  const ref = optionalString(value, "$ref")
  if (ref !== undefined) {
    if (!ref.startsWith("#/")) throw new Error(`only local $refs are supported: ${ref}`)
    return shape(root, pointer(root, ref.slice(1)))
  }
  const required = value.required ?? []
  if (!Array.isArray(required) || !required.every((name) => typeof name === "string")) {
    throw new Error("required is not a list of names")
  }
  const properties: Record<string, Shape> = {}
  const declared = value.properties ?? {}
  if (!isRecord(declared)) throw new Error("properties is not an object")
  for (const [name, property] of Object.entries(declared)) properties[name] = shape(root, property)
  return {
    type: optionalString(value, "type"),
    required: [...required].sort(),
    properties,
    items: value.items === undefined ? undefined : shape(root, value.items)
  }
}

/** The keywords that bound a value rather than shape it. */
export const boundKeywords = [
  "minimum",
  "exclusiveMinimum",
  "maximum",
  "exclusiveMaximum",
  "minLength",
  "maxLength"
] as const

const resolve = (root: unknown, value: unknown): { readonly [key: string]: unknown } => {
  if (!isRecord(value)) throw new Error(`not a JSON Schema node: ${JSON.stringify(value)}`)
  const ref = optionalString(value, "$ref")
  if (ref === undefined) return value
  if (!ref.startsWith("#/")) throw new Error(`only local $refs are supported: ${ref}`)
  return resolve(root, pointer(root, ref.slice(1)))
}

/** The value bounds each property of `value`, a node of the document `root`, declares, by name. */
export const propertyBounds = (
  root: unknown,
  value: unknown
): { readonly [name: string]: { readonly [keyword: string]: number } } => {
  const declared = resolve(root, value).properties ?? {}
  if (!isRecord(declared)) throw new Error("properties is not an object")
  const result: Record<string, Record<string, number>> = {}
  for (const [name, property] of Object.entries(declared)) {
    const node = resolve(root, property)
    const bounds: Record<string, number> = {}
    for (const keyword of boundKeywords) {
      const bound = node[keyword]
      if (typeof bound === "number") bounds[keyword] = bound
      else if (bound !== undefined) throw new Error(`${name}: ${keyword} is not a number`)
    }
    result[name] = bounds
  }
  return result
}

/** The JSON Schema of a request or response body. */
export const bodySchema = (document: unknown, path: string): unknown =>
  pointer(document, `${path}/content/application~1json/schema`)

/** The shape of a request or response body: its `application/json` schema. */
export const bodyShape = (document: unknown, path: string): Shape => shape(document, bodySchema(document, path))
