import * as Redacted from "effect/Redacted"
import { TokenSet } from "../../src/TokenSet.js"
import { StoredTokenSet } from "../../src/TokenStore.js"

/** A stored 300 s / 1,800 s token set (`AT-STORED`, `RT-STORED`) with the given times. */
export const storedSet = (times: {
  readonly sentAt: number
  readonly obtainedAt: number
  readonly expiresAt: number
  readonly refreshExpiresAt: number
}) =>
  new StoredTokenSet({
    tokenSet: new TokenSet({
      accessToken: Redacted.make("AT-STORED"),
      expiresInSeconds: 300,
      refreshToken: Redacted.make("RT-STORED"),
      refreshExpiresInSeconds: 1800
    }),
    source: "authenticate",
    ...times
  })
