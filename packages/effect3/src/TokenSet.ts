/**
 * The wire schemas of Revault's two authentication operations, mirroring
 * `auth.openapi.json` field by field.
 *
 * Responses are decoded leniently about *extra* fields (a vendor adding a field must not break
 * every deployed client: Effect Schema ignores excess properties by default) and strictly about
 * the documented ones: a missing or mistyped required field is a decode error.
 *
 * @since 0.1.0
 * @module
 */
import * as Schema from "effect/Schema"

/**
 * The longest token lifetime accepted, in seconds: one year (365 days). The vendor's document
 * bounds neither lifetime; this is our policy on top of it. No real token lives that long, and an
 * absurd one (1e13 seconds) would put the expiry beyond the largest `Date`.
 *
 * @since 0.1.1
 * @category constants
 */
export const maxLifetimeSeconds = 365 * 24 * 60 * 60

/**
 * A token lifetime in seconds: a finite number greater than zero and at most
 * {@link maxLifetimeSeconds}.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Lifetime = Schema.Number.pipe(
  Schema.finite(),
  Schema.positive(),
  Schema.lessThanOrEqualTo(maxLifetimeSeconds, {
    message: (issue) =>
      `Expected a lifetime of at most one year (${maxLifetimeSeconds} seconds), actual ${String(issue.actual)}`
  })
)

/**
 * The token set both operations answer with (HTTP 200). The two tokens are `Redacted` as soon as
 * they are decoded, so a raw token never exists as a plain string inside the library.
 *
 * @since 0.1.0
 * @category schemas
 */
export class TokenSet extends Schema.Class<TokenSet>("TokenSet")({
  /** JSON Web Token used to authenticate requests. */
  accessToken: Schema.Redacted(Schema.NonEmptyString),
  /** JWT validity period (in seconds), counted from the response. */
  expiresInSeconds: Lifetime,
  /** Refresh token used to obtain a new token set. */
  refreshToken: Schema.Redacted(Schema.NonEmptyString),
  /** Refresh token validity period (in seconds). */
  refreshExpiresInSeconds: Lifetime
}) {}

/**
 * One entry of an error body's `issues`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorIssue = Schema.Struct({ message: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorIssue = typeof ErrorIssue.Type

/**
 * The body of the documented 400, 401, 403 and 500 answers.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorBody = Schema.Struct({
  message: Schema.String,
  code: Schema.String,
  issues: Schema.optional(Schema.Array(ErrorIssue))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorBody = typeof ErrorBody.Type

/**
 * The body of `POST /auth/token`. The secret is `Redacted` on the type side and a plain string
 * only in the encoded JSON body.
 *
 * @since 0.1.0
 * @category schemas
 */
export const AuthenticateRequest = Schema.Struct({
  workspace: Schema.String,
  apiKeyId: Schema.String,
  apiKeySecret: Schema.Redacted(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type AuthenticateRequest = typeof AuthenticateRequest.Type

/**
 * The body of `POST /auth/token/refresh`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RefreshRequest = Schema.Struct({
  workspace: Schema.String,
  refreshToken: Schema.Redacted(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type RefreshRequest = typeof RefreshRequest.Type
