/**
 * The rules for the API base URL: where a token may be sent.
 *
 * @since 2.0.0
 */

/**
 * A host name on the loopback interface: `localhost`, `[::1]` or `127.x.y.z`.
 *
 * @since 2.0.0
 * @category predicates
 */
export const isLoopbackHost = (hostname: string): boolean =>
  hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)

/**
 * The outcome of {@link normalizeBaseUrl}: the base URL without a trailing slash, or why it is refused.
 *
 * @since 2.0.0
 * @category models
 */
export type BaseUrlResult =
  | { readonly _tag: "Valid"; readonly baseUrl: string }
  | { readonly _tag: "Invalid"; readonly message: string }

const invalid = (message: string): BaseUrlResult => ({ _tag: "Invalid", message })

/**
 * Checks a base URL: `https:`, or plain `http:` on loopback only, no credentials; the result has
 * no trailing slash.
 *
 * @since 2.0.0
 * @category validation
 */
export const normalizeBaseUrl = (input: string | URL): BaseUrlResult => {
  const text = String(input)
  if (!URL.canParse(text)) return invalid(`baseUrl is not a URL: ${JSON.stringify(text.slice(0, 200))}`)
  const url = new URL(text)
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return invalid(`baseUrl must use https: (got ${url.protocol})`)
  }
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    return invalid(`baseUrl must use https: for ${url.hostname}; plain http: is allowed on loopback only`)
  }
  if (url.username !== "" || url.password !== "") {
    return invalid("baseUrl must not carry credentials")
  }
  return { _tag: "Valid", baseUrl: `${url.origin}${url.pathname.replace(/\/+$/, "")}` }
}

/**
 * Whether a request URL is absolute (has a scheme); a relative one is resolved under the base URL.
 *
 * @since 2.0.0
 * @category predicates
 */
export const isAbsoluteUrl = (url: string): boolean => /^[a-z][a-z\d+.-]*:/i.test(url)

// A segment that a server decoding before it routes would read as a climb: `..%2f`, `%2e%2e%5c`.
// Plain and percent-encoded dot segments (`..`, `%2e%2e`) never get here: `URL` removes them.
const climbs = (segment: string): boolean => {
  let decoded = segment
  try {
    decoded = decodeURIComponent(segment)
  } catch {
    // A malformed escape is not a separator; the raw segment is what is checked.
  }
  return decoded.split(/[\\/]/).some((part) => part === "." || part === "..")
}

/**
 * Whether `url` lies under `baseUrl`: the rule that decides where a bearer token may go. It does
 * when it has the same origin (scheme, host and port) and its path, once its dot segments are
 * resolved, lies strictly below the base path: `/v1/rest/users` is under `/v1/rest`,
 * `/v1/restore` and `/v1/rest/../admin` are not. A URL that does not parse on its own (a relative
 * one) is not under anything.
 *
 * @since 2.0.0
 * @category predicates
 */
export const isUnder = (baseUrl: string, url: string): boolean => {
  if (!URL.canParse(url) || !URL.canParse(baseUrl)) return false
  const target = new URL(url)
  const base = new URL(baseUrl)
  // The scheme too: a `blob:` URL carries the origin of the URL inside it.
  if (target.protocol !== base.protocol || target.origin !== base.origin) return false
  const basePath = `${base.pathname.replace(/\/+$/, "")}/`
  return target.pathname.startsWith(basePath) && !target.pathname.slice(basePath.length).split("/").some(climbs)
}

/**
 * The port a request to `url` goes to: the one it states, or its scheme's own (443 for `https:`,
 * 80 otherwise).
 *
 * @since 2.1.0
 * @category urls
 */
export const serverPort = (url: URL): number =>
  url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port)
