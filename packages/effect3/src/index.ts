/**
 * Authenticated access to the Revault REST API for Effect programs.
 *
 * `MockRevault` is not re-exported here because it needs `@effect/platform-node` and `jose`;
 * import it from `effect-revault-auth/MockRevault`.
 *
 * @since 0.1.0
 * @module
 */

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthApi from "./AuthApi.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthConfig from "./AuthConfig.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthError from "./AuthError.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthHttpClient from "./AuthHttpClient.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthPool from "./AuthPool.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as AuthService from "./AuthService.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as RevaultAuth from "./RevaultAuth.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as TokenSet from "./TokenSet.js"

/**
 * @since 0.1.0
 * @category modules
 */
export * as TokenStore from "./TokenStore.js"
