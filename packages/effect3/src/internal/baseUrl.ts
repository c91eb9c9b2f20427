/**
 * Whether a URL lies under `baseUrl`: the rule that decides where a bearer token may go. Plain
 * functions over `URL`, no Effect, so that every line of the library can share them.
 */

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
 * `url` lies under `baseUrl` when it has the same origin (scheme, host and port) and its path,
 * once its dot segments are resolved, lies strictly below the base path: `/v1/rest/users` is
 * under `/v1/rest`, `/v1/restore` and `/v1/rest/../admin` are not. A URL that does not parse
 * on its own (a relative one) is not under anything.
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
