/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date.
 *
 * @since 2.0.0
 */

/**
 * How long a `Retry-After` header asks the client to wait, in milliseconds, read at `now`
 * (epoch milliseconds): whole seconds as given, an HTTP date as the time left until it (never
 * negative); `undefined` when the header is absent or is neither.
 *
 * @since 2.0.0
 * @category parsing
 */
export const parseRetryAfter = (header: string | undefined, now: number): number | undefined => {
  if (header === undefined) return undefined
  const trimmed = header.trim()
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
