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

/**
 * Whether `url` lies under `baseUrl` (a normalized base URL, without a trailing slash): the only
 * URLs a Revault token may be sent to.
 *
 * @since 2.0.0
 * @category predicates
 */
export const isUnderBaseUrl = (url: string, baseUrl: string): boolean => url.startsWith(`${baseUrl}/`)
