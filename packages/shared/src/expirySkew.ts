/**
 * The expiry-skew rule: how long before its expiry a token stops being handed out.
 *
 * @since 2.0.0
 */

/**
 * The skew applied to a token of `lifetime` milliseconds: the configured `skew`, capped at half
 * the lifetime. A token shorter-lived than the skew would otherwise never be usable, and every
 * refresh would be due the moment it lands (a refresh storm).
 *
 * @since 2.0.0
 * @category rules
 */
export const skewFor = (skew: number, lifetime: number): number => Math.min(skew, lifetime / 2)

/**
 * Until when a token that expires at `expiresAt` (epoch milliseconds), requested at `sentAt`,
 * is handed out: `expiresAt` less {@link skewFor} its lifetime.
 *
 * @since 2.0.0
 * @category rules
 */
export const usableUntil = (skew: number, sentAt: number, expiresAt: number): number =>
  expiresAt - skewFor(skew, expiresAt - sentAt)
