/**
 * Authenticated access to the Revault REST API for Effect programs.
 *
 * `MockRevault` is not re-exported here because it needs `@effect/platform-node` (an optional peer
 * dependency) and `jose`; import it from `effect-revault-auth/MockRevault`.
 *
 * @since 2.0.0
 * @module
 */

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthApi from "./AuthApi.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthConfig from "./AuthConfig.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthError from "./AuthError.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthHttpClient from "./AuthHttpClient.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthPool from "./AuthPool.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as AuthService from "./AuthService.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as RevaultAuth from "./RevaultAuth.js"
/**
 * @since 2.1.0
 * @category modules
 */
export * as TokenCoordinator from "./TokenCoordinator.js"
/**
 * @since 2.0.0
 * @category modules
 */
export * as TokenSet from "./TokenSet.js"

/**
 * @since 2.0.0
 * @category modules
 */
export * as TokenStore from "./TokenStore.js"
