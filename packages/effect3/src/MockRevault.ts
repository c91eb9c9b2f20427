/**
 * A real mock of the Revault authentication API: an HTTP server on loopback (port 0) that issues
 * real HS256 JWTs, rotates refresh tokens, validates request bodies as the vendor's document
 * says, and follows a fault script. Its time comes from Effect's `Clock`, so under `TestClock`
 * its tokens expire in simulated time.
 *
 * Use it in your own tests, or run it with `revault-auth mock-server` for local development.
 *
 * @since 0.1.0
 * @module
 */
import * as Http from "node:http"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Jose from "jose"
import { AuthConfig, type Options as AuthConfigOptions, make as makeAuthConfig } from "./AuthConfig.js"
import type { AuthConfigError } from "./AuthError.js"
import { AuthenticateRequest, type ErrorBody, RefreshRequest, TokenSet } from "./TokenSet.js"

/**
 * The routes the mock serves, as named in its request log and fault script.
 *
 * @since 0.1.0
 * @category models
 */
export type Route = "authenticate" | "refresh" | "me"

/**
 * What the mock does instead of answering normally.
 *
 * - `Status`: answer `status`; `body` is `"documented"` (the document's error body, the default),
 *   `"empty"`, `"html"` (a proxy's error page) or literal text.
 * - `Body`: answer `status` (default 200) with this literal text as JSON.
 * - `MissingField`: a well-formed token set without `field`. Its tokens are honoured nowhere
 *   (a client must reject the body, and would learn it from a 401 if it did not).
 * - `Delay`: wait `duration` (on the `Clock`), then answer normally.
 * - `Hang`: never answer.
 * - `Drop`: close the connection without answering.
 * - `Truncate`: send the headers and half of a well-formed body (tokens honoured nowhere), then
 *   close the connection.
 *
 * @since 0.1.0
 * @category models
 */
export type Fault = Data.TaggedEnum<{
  Status: {
    readonly status: number
    readonly body?: string | undefined
    readonly headers?: Readonly<Record<string, string>> | undefined
  }
  Body: { readonly text: string; readonly status?: number | undefined }
  MissingField: { readonly field: keyof typeof TokenSet.fields }
  Delay: { readonly duration: Duration.DurationInput }
  Hang: Record<never, never>
  Drop: Record<never, never>
  Truncate: Record<never, never>
}>

/**
 * Constructors of {@link Fault}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Fault = Data.taggedEnum<Fault>()

/**
 * One request the mock received. Never holds a secret: only whether a bearer was sent and what
 * the mock made of it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestLogEntry {
  readonly route: Route | "unknown"
  readonly method: string
  readonly path: string
  /** Whether an `Authorization: Bearer` header was sent. */
  readonly bearer: boolean
  /** For `GET /users/me`: what the mock made of the bearer token. */
  readonly token: "valid" | "expired" | "invalid" | "missing" | undefined
  /** The fault the script applied, if any. */
  readonly fault: Fault["_tag"] | undefined
  /** The mock's `Clock` time at receipt, in milliseconds. */
  readonly at: number
}

/**
 * An API key the mock accepts, and the workspaces it may act on.
 *
 * @since 0.1.0
 * @category models
 */
export interface ApiKey {
  readonly apiKeyId: string
  readonly apiKeySecret: string
  readonly workspaces: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Accepted keys. Default: one key, {@link demoCredentials}. */
  readonly keys?: ReadonlyArray<ApiKey> | undefined
  /** Access token lifetime. Default 300 seconds. */
  readonly accessTokenTtl?: Duration.DurationInput | undefined
  /** Refresh token lifetime. Default 1,800 seconds. */
  readonly refreshTokenTtl?: Duration.DurationInput | undefined
  /** Loopback address to listen on. Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Port to listen on. Default 0 (any free port). */
  readonly port?: number | undefined
}

/**
 * The user `GET /users/me` answers with.
 *
 * @since 0.1.0
 * @category models
 */
export interface MockUser {
  readonly id: string
  readonly name: string
  readonly role: string
  readonly workspace: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Service {
  /** The API base, e.g. `http://127.0.0.1:PORT/v1/rest`. */
  readonly baseUrl: string
  /** The first accepted key and its first workspace. */
  readonly credentials: {
    readonly workspace: string
    readonly apiKeyId: string
    readonly apiKeySecret: Redacted.Redacted<string>
  }
  /** Every request received so far, oldest first. */
  readonly requests: Effect.Effect<ReadonlyArray<RequestLogEntry>>
  /**
   * Every request received since the last take, oldest first, and forgets them: a long run (a
   * soak) reads the log in chunks and keeps it short. `requests` and `count` see only what is left.
   */
  readonly takeRequests: Effect.Effect<ReadonlyArray<RequestLogEntry>>
  /** How many requests a route has received. */
  readonly count: (route: Route) => Effect.Effect<number>
  /**
   * Make the next `times` (default 1) requests to `route` follow `fault`. Faults queue in order.
   * A `times` below 1 queues nothing.
   */
  readonly fault: (route: Route, fault: Fault, times?: number) => Effect.Effect<void>
  /** Drop every queued fault. */
  readonly clearFaults: Effect.Effect<void>
  /** Make every access token issued so far invalid (`GET /users/me` answers 401 for them). */
  readonly revokeAccessTokens: Effect.Effect<void>
  /** Make every refresh token issued so far invalid. */
  readonly revokeRefreshTokens: Effect.Effect<void>
  /**
   * How many refresh grants the mock holds. A grant is dropped when its token is spent, expires
   * or is revoked, so a long run holds only the grants still usable.
   *
   * @since 0.1.1
   */
  readonly refreshGrants: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MockRevault extends Context.Tag("effect-revault-auth/MockRevault")<MockRevault, Service>() {}

/**
 * The key the mock accepts when given none.
 *
 * @since 0.1.0
 * @category constants
 */
export const demoCredentials = {
  workspace: "demo",
  apiKeyId: "demo-key-id",
  apiKeySecret: "demo-key-secret"
} as const

interface QueuedFault {
  readonly route: Route
  readonly fault: Fault
  readonly remaining: number
}

interface RefreshGrant {
  readonly workspace: string
  readonly apiKeyId: string
  readonly expiresAt: number
}

interface AccessClaims {
  readonly sub: string
  readonly ws: string
  readonly gen: number
  readonly expMs: number
}

const errorBody = (status: number, message: string, issues?: ReadonlyArray<string>): ErrorBody => {
  const code =
    status === 400
      ? "BAD_REQUEST"
      : status === 401
        ? "UNAUTHORIZED"
        : status === 403
          ? "FORBIDDEN"
          : status === 500
            ? "INTERNAL_SERVER_ERROR"
            : `HTTP_${status}`
  return issues === undefined ? { message, code } : { message, code, issues: issues.map((m) => ({ message: m })) }
}

const errorResponse = (status: number, message: string, issues?: ReadonlyArray<string>) =>
  HttpServerResponse.unsafeJson(errorBody(status, message, issues), { status })

const htmlPage = (status: number) =>
  `<html><head><title>${status}</title></head><body><h1>${status}</h1><p>upstream proxy error</p></body></html>`

const issuesOf = (error: ParseResult.ParseError): ReadonlyArray<string> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map(
    ({ message, path }) => `${path.length === 0 ? "body" : path.join(".")}: ${message}`
  )

const decodeBody =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (text: string): Either.Either<A, ReadonlyArray<string>> =>
    Either.mapLeft(
      Schema.decodeUnknownEither(Schema.parseJson(schema), { errors: "all", onExcessProperty: "ignore" })(text),
      issuesOf
    )

const decodeAuthenticate = decodeBody(AuthenticateRequest)
const decodeRefresh = decodeBody(RefreshRequest)
const encodeTokenSet = Schema.encodeSync(TokenSet)

const routeOf = (method: string, path: string): Route | "unknown" =>
  method === "POST" && path === "/v1/rest/auth/token"
    ? "authenticate"
    : method === "POST" && path === "/v1/rest/auth/token/refresh"
      ? "refresh"
      : method === "GET" && path === "/v1/rest/users/me"
        ? "me"
        : "unknown"

const bearerOf = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const header = request.headers.authorization
  const match = header === undefined ? null : /^Bearer (.+)$/.exec(header)
  return match?.[1]
}

/**
 * Starts the mock server in the current scope; it stops (closing every open connection) when
 * the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const keys = options.keys ?? [
      {
        apiKeyId: demoCredentials.apiKeyId,
        apiKeySecret: demoCredentials.apiKeySecret,
        workspaces: [demoCredentials.workspace]
      }
    ]
    const accessTtl = Duration.toMillis(options.accessTokenTtl ?? Duration.seconds(300))
    const refreshTtl = Duration.toMillis(options.refreshTokenTtl ?? Duration.seconds(1800))
    const signingKey = crypto.getRandomValues(new Uint8Array(32))

    // Append-only: copying the log on every request made a long run (a soak) quadratic. Only this
    // server's fibers touch it, one synchronous step at a time.
    const log: Array<RequestLogEntry> = []
    const faults = yield* Ref.make<ReadonlyArray<QueuedFault>>([])
    // Mutable for the same reason as the log: copying it on every exchange made a long run
    // quadratic. Insertion order is expiry order (one lifetime, a clock that moves forward), so
    // the expired grants are at the front. Revocation empties it.
    const grants = new Map<string, RefreshGrant>()
    const accessGeneration = yield* Ref.make(0)
    // Signs the tokens of bodies a client must reject (MissingField, Truncate): never valid here.
    const unusableKey = crypto.getRandomValues(new Uint8Array(32))

    const purgeExpiredGrants = (now: number) => {
      for (const [token, grant] of grants) {
        if (grant.expiresAt > now) return
        grants.delete(token)
      }
    }

    const takeFault = (route: Route) =>
      Ref.modify(faults, (queue): readonly [Fault | undefined, ReadonlyArray<QueuedFault>] => {
        const index = queue.findIndex((entry) => entry.route === route)
        const entry = queue[index]
        if (entry === undefined) return [undefined, queue]
        const rest =
          entry.remaining > 1
            ? queue.map((e, i) => (i === index ? { ...e, remaining: e.remaining - 1 } : e))
            : queue.filter((_, i) => i !== index)
        return [entry.fault, rest]
      })

    // `usable: false`: a token set that looks real and is honoured nowhere, for a body the client
    // must reject; a client that used it anyway would be told so.
    const issue = (apiKeyId: string, workspace: string, usable = true) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const generation = yield* Ref.get(accessGeneration)
        const claims: AccessClaims = { sub: apiKeyId, ws: workspace, gen: generation, expMs: now + accessTtl }
        const accessToken = yield* Effect.promise(() =>
          new Jose.SignJWT({ ws: claims.ws, gen: claims.gen, expMs: claims.expMs })
            .setProtectedHeader({ alg: "HS256", typ: "JWT" })
            .setSubject(apiKeyId)
            .setJti(crypto.randomUUID())
            .setIssuedAt(Math.floor(now / 1000))
            .setExpirationTime(Math.ceil(claims.expMs / 1000))
            .sign(usable ? signingKey : unusableKey)
        )
        const refreshToken = `rt_${crypto.randomUUID()}`
        if (usable) {
          yield* Effect.sync(() => {
            purgeExpiredGrants(now)
            grants.set(refreshToken, { workspace, apiKeyId, expiresAt: now + refreshTtl })
          })
        }
        return new TokenSet({
          accessToken: Redacted.make(accessToken),
          expiresInSeconds: accessTtl / 1000,
          refreshToken: Redacted.make(refreshToken),
          refreshExpiresInSeconds: refreshTtl / 1000
        })
      })

    const verify = (token: string | undefined) =>
      Effect.gen(function* () {
        if (token === undefined) return { state: "missing" as const }
        const now = yield* Clock.currentTimeMillis
        const generation = yield* Ref.get(accessGeneration)
        const verified = yield* Effect.either(
          Effect.tryPromise(() =>
            Jose.jwtVerify<AccessClaims>(token, signingKey, { algorithms: ["HS256"], currentDate: new Date(now) })
          )
        )
        if (Either.isLeft(verified)) {
          return {
            state: verified.left.error instanceof Jose.errors.JWTExpired ? ("expired" as const) : ("invalid" as const)
          }
        }
        const claims = verified.right.payload
        if (claims.gen < generation) return { state: "invalid" as const }
        if (claims.expMs <= now) return { state: "expired" as const }
        return { state: "valid" as const, claims }
      })

    const authenticate = (text: string) =>
      Effect.gen(function* () {
        const decoded = decodeAuthenticate(text)
        if (Either.isLeft(decoded)) return errorResponse(400, "Invalid input data", decoded.left)
        const { apiKeyId, apiKeySecret, workspace } = decoded.right
        const key = keys.find((k) => k.apiKeyId === apiKeyId)
        if (key === undefined || key.apiKeySecret !== Redacted.value(apiKeySecret)) {
          return errorResponse(401, "Invalid API key")
        }
        if (!key.workspaces.includes(workspace)) {
          return errorResponse(403, `API key may not act on workspace ${workspace}`)
        }
        return HttpServerResponse.unsafeJson(encodeTokenSet(yield* issue(apiKeyId, workspace)))
      })

    const refresh = (text: string) =>
      Effect.gen(function* () {
        const decoded = decodeRefresh(text)
        if (Either.isLeft(decoded)) return errorResponse(400, "Invalid input data", decoded.left)
        const { refreshToken, workspace } = decoded.right
        const token = Redacted.value(refreshToken)
        const now = yield* Clock.currentTimeMillis
        // Rotation: a refresh token is good for one use, whatever the outcome.
        const grant = yield* Effect.sync(() => {
          const found = grants.get(token)
          grants.delete(token)
          return found
        })
        if (grant === undefined || grant.expiresAt <= now) {
          return errorResponse(401, "Invalid or expired refresh token")
        }
        if (grant.workspace !== workspace) return errorResponse(403, `Refresh token is not for workspace ${workspace}`)
        return HttpServerResponse.unsafeJson(encodeTokenSet(yield* issue(grant.apiKeyId, workspace)))
      })

    type Verified = Effect.Effect.Success<ReturnType<typeof verify>>

    const meResponse = (result: Verified) =>
      result.state === "valid"
        ? HttpServerResponse.unsafeJson({
            id: `usr_${result.claims.sub}`,
            name: "Demo API operator",
            role: "API_OPERATOR",
            workspace: result.claims.ws
          } satisfies MockUser)
        : errorResponse(401, result.state === "missing" ? "Authorization not provided" : `Access token ${result.state}`)

    // `verified`: the check already made (and logged) for this request, so the log and the answer
    // agree; without it (after a Delay fault) the token is checked at answer time.
    const normal = (route: Route | "unknown", request: HttpServerRequest.HttpServerRequest, verified?: Verified) =>
      route === "me"
        ? verified === undefined
          ? Effect.map(verify(bearerOf(request)), meResponse)
          : Effect.succeed(meResponse(verified))
        : route === "unknown"
          ? Effect.succeed(errorResponse(404, `No route for ${request.method} ${request.url}`))
          : Effect.flatMap(
              Effect.orElseSucceed(request.text, () => ""),
              route === "authenticate" ? authenticate : refresh
            )

    const sampleBody = () =>
      Effect.map(issue(keys[0]?.apiKeyId ?? "none", keys[0]?.workspaces[0] ?? "none", false), encodeTokenSet)

    // Never answers. Not `Effect.never`: its timer keeps the process alive, and the HTTP server
    // interrupts a handler neither when the client goes away nor when the server closes, so every
    // hung, dropped or cut request would keep a process using the mock from exiting.
    const silence: Effect.Effect<never> = Effect.async<never>(() => {})

    const dropConnection = (request: HttpServerRequest.HttpServerRequest) =>
      Effect.zipRight(
        Effect.sync(() => NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()),
        silence
      )

    const applyFault = (
      fault: Fault,
      route: Route | "unknown",
      request: HttpServerRequest.HttpServerRequest
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      Fault.$match(fault, {
        Status: ({ body, headers, status }) =>
          Effect.succeed(
            body === "empty"
              ? HttpServerResponse.empty({ status, headers: headers ?? {} })
              : body === "html"
                ? HttpServerResponse.text(htmlPage(status), {
                    status,
                    contentType: "text/html",
                    headers: headers ?? {}
                  })
                : body === undefined || body === "documented"
                  ? HttpServerResponse.unsafeJson(errorBody(status, `Scripted ${status}`), {
                      status,
                      headers: headers ?? {}
                    })
                  : HttpServerResponse.text(body, { status, contentType: "application/json", headers: headers ?? {} })
          ),
        Body: ({ status, text }) =>
          Effect.succeed(HttpServerResponse.text(text, { status: status ?? 200, contentType: "application/json" })),
        MissingField: ({ field }) =>
          Effect.map(sampleBody(), (body) => {
            const { [field]: _omitted, ...rest } = body
            return HttpServerResponse.unsafeJson(rest)
          }),
        Delay: ({ duration }) => Effect.zipRight(Effect.sleep(duration), normal(route, request)),
        Hang: () => silence,
        Drop: () => dropConnection(request),
        Truncate: () =>
          Effect.flatMap(sampleBody(), (body) => {
            const text = JSON.stringify(body)
            return Effect.zipRight(
              Effect.sync(() => {
                const response = NodeHttpServerRequest.toServerResponse(request)
                response.writeHead(200, { "content-type": "application/json", "content-length": text.length })
                response.write(text.slice(0, Math.floor(text.length / 2)))
                response.destroy()
              }),
              silence
            )
          })
      })

    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const path = new URL(request.url, "http://mock").pathname
      const route = routeOf(request.method, path)
      const fault = route === "unknown" ? undefined : yield* takeFault(route)
      const verified = route === "me" ? yield* verify(bearerOf(request)) : undefined
      const at = yield* Clock.currentTimeMillis
      yield* Effect.sync(() =>
        log.push({
          route,
          method: request.method,
          path,
          bearer: bearerOf(request) !== undefined,
          token: verified?.state,
          fault: fault?._tag,
          at
        })
      )
      return yield* fault === undefined ? normal(route, request, verified) : applyFault(fault, route, request)
    })

    const host = options.host ?? "127.0.0.1"
    const nodeServer = Http.createServer()
    const server = yield* NodeHttpServer.make(() => nodeServer, { port: options.port ?? 0, host })
    // Runs before the server's own close, which would otherwise wait for hung or kept-alive connections.
    yield* Effect.addFinalizer(() => Effect.sync(() => nodeServer.closeAllConnections()))
    yield* server.serve(app)

    const address = server.address
    const port = address._tag === "TcpAddress" ? address.port : 0
    const urlHost = host.includes(":") ? `[${host}]` : host
    const first = keys[0]

    return MockRevault.of({
      baseUrl: `http://${urlHost}:${port}/v1/rest`,
      credentials: {
        workspace: first?.workspaces[0] ?? demoCredentials.workspace,
        apiKeyId: first?.apiKeyId ?? demoCredentials.apiKeyId,
        apiKeySecret: Redacted.make(first?.apiKeySecret ?? demoCredentials.apiKeySecret)
      },
      requests: Effect.sync(() => log.slice()),
      takeRequests: Effect.sync(() => log.splice(0)),
      count: (route) => Effect.sync(() => log.reduce((n, e) => (e.route === route ? n + 1 : n), 0)),
      fault: (route, fault, times = 1) => {
        const remaining = Math.floor(times)
        return remaining >= 1 ? Ref.update(faults, (queue) => [...queue, { route, fault, remaining }]) : Effect.void
      },
      clearFaults: Ref.set(faults, []),
      revokeAccessTokens: Ref.update(accessGeneration, (n) => n + 1),
      revokeRefreshTokens: Effect.sync(() => grants.clear()),
      refreshGrants: Effect.sync(() => grants.size)
    })
  })

/**
 * The mock server as a layer: it listens while the layer lives.
 *
 * @example
 * ```ts
 * import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
 * import { assert, it } from "@effect/vitest"
 * import * as Effect from "effect/Effect"
 * import * as Layer from "effect/Layer"
 * import { RevaultAuth } from "effect-revault-auth"
 * import * as MockRevault from "effect-revault-auth/MockRevault"
 *
 * // The whole library wired to a mock on loopback, a new server for each test that provides it.
 * const TestRevault = RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig()).pipe(
 *   Layer.provideMerge(MockRevault.layer({ accessTokenTtl: "5 minutes" })),
 *   Layer.provide(NodeHttpClient.layerUndici)
 * )
 *
 * it.scoped("signs in with the demo key", () =>
 *   Effect.gen(function* () {
 *     const user = yield* RevaultAuth.me
 *     assert.strictEqual(user.name, "Demo API operator")
 *     const mock = yield* MockRevault.MockRevault
 *     assert.strictEqual(yield* mock.count("authenticate"), 1)
 *   }).pipe(Effect.provide(TestRevault))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options) => Layer.scoped(MockRevault, make(options))

/**
 * An `AuthConfig` pointing at the mock server with its first key, plus any option overrides
 * (e.g. a short `expirySkew` for short token lifetimes).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAuthConfig = (
  overrides: Partial<AuthConfigOptions> = {}
): Layer.Layer<AuthConfig, AuthConfigError, MockRevault> =>
  Layer.effect(
    AuthConfig,
    Effect.flatMap(MockRevault, (mock) =>
      makeAuthConfig({
        baseUrl: mock.baseUrl,
        workspace: mock.credentials.workspace,
        apiKeyId: mock.credentials.apiKeyId,
        apiKeySecret: mock.credentials.apiKeySecret,
        ...overrides
      })
    )
  )
