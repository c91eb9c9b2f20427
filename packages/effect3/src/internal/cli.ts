// The commands of `revault-auth`, kept apart from the bin entry (`src/cli.ts`), which answers
// `--help` and `--version` without loading this module. Each command loads the modules it needs
// when it runs: `token` never loads the mock server, `mock-server` never the token cache.
import { createHash } from "node:crypto"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as Path from "@effect/platform/Path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { AuthConfig, env, fromConfig } from "../AuthConfig.js"
import { AuthConfigError, isAuthError, TransportError } from "../AuthError.js"
import { canColor, commands, ExitCode, mockServerDefaults, mockServerFlags, tokenFlags } from "./shared/cliHelp.js"
import { codesOf, transportDetail } from "./shared/transportDetail.js"

export { ExitCode } from "./shared/cliHelp.js"

const authStatuses: ReadonlySet<number> = new Set([400, 401, 403])

/**
 * The exit code for a failure of a command.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCodeOf = (error: unknown): ExitCode => {
  if (ConfigError.isConfigError(error) || error instanceof AuthConfigError) return ExitCode.config
  if (isAuthError(error)) {
    return error._tag === "BadRequestError" || error._tag === "UnauthorizedError" || error._tag === "ForbiddenError"
      ? ExitCode.auth
      : ExitCode.server
  }
  if (HttpClientError.isHttpClientError(error)) {
    // A resource refusing the token (after the client's one replay) is the key's problem, not the server's.
    return error._tag === "ResponseError" && authStatuses.has(error.response.status) ? ExitCode.auth : ExitCode.server
  }
  // An answer that does not decode, or none in time, is the server's failure as much as a 500 is.
  if (ParseResult.isParseError(error) || Cause.isTimeoutException(error)) return ExitCode.server
  return ExitCode.other
}

// `Config.redacted` replaces the message of its errors with "<redacted>" (it might quote the
// value) and keeps only the path: every entry is named from its path, never from the message.
const redactedMessage = "<redacted>"

const named = (path: ReadonlyArray<string>, message: string): string => {
  const shown = message === redactedMessage ? "invalid value (not shown)" : message
  return path.length === 0 ? shown : `${path.join(".")}: ${shown}`
}

const configErrorMessages = (error: ConfigError.ConfigError): ReadonlyArray<{ path: string; text: string }> =>
  ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, left: ReadonlyArray<{ path: string; text: string }>, right) => [...left, ...right],
    orCase: (_, left: ReadonlyArray<{ path: string; text: string }>, right) => [...left, ...right],
    missingDataCase: (_, path, message) => [
      { path: path.join("."), text: path.length === 0 ? message : `${path.join(".")} is missing` }
    ],
    invalidDataCase: (_, path, message) => [{ path: path.join("."), text: named(path, message) }],
    sourceUnavailableCase: (_, path, message) => [{ path: path.join("."), text: named(path, message) }],
    unsupportedCase: (_, path, message) => [{ path: path.join("."), text: named(path, message) }]
  })

// One problem per variable: the alternatives of one value (a duration as text, or as a number)
// each fail, and the first says what is expected.
const configProblems = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const seen = new Set<string>()
  return configErrorMessages(error).flatMap(({ path, text }) => {
    if (path !== "" && seen.has(path)) return []
    seen.add(path)
    return [text]
  })
}

const variableOf = (field: string): Option.Option<string> =>
  Option.fromNullable(Object.entries(env).find(([option]) => option === field)?.[1])

// One line for a request that got no answer, the same for the token requests and `/users/me`.
const transportLine = (what: ReadonlyArray<string | undefined>, where: string): string =>
  `TransportError: ${transportDetail(what, where)}`

const describeTransport = (error: TransportError): string => {
  const cause = error.cause
  if (HttpClientError.isHttpClientError(cause) && cause._tag === "RequestError") {
    return transportLine([cause.description, ...codesOf(cause.cause)], cause.methodAndUrl)
  }
  return transportLine([cause instanceof Error ? cause.message : undefined, ...codesOf(cause)], error.operation)
}

/**
 * The one line written to stderr for a failure: `<Tag>: <message>`. The library's errors never
 * render a secret, and nothing here adds one.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const describeError = (error: unknown): string => {
  if (ConfigError.isConfigError(error)) return `ConfigError: ${configProblems(error).join("; ")}`
  // Every value the CLI configures comes from a variable: name it, not the library's option.
  if (error instanceof AuthConfigError) {
    return Option.match(variableOf(error.field), {
      onNone: () => `AuthConfigError: ${error.message}`,
      onSome: (variable) =>
        error.message.startsWith(`${error.field} `)
          ? `AuthConfigError: ${variable}${error.message.slice(error.field.length)}`
          : `AuthConfigError: ${error.message} (${variable})`
    })
  }
  if (error instanceof TransportError) return describeTransport(error)
  // Named by their reason, as Effect 4 names them: `TransportError`, `StatusCodeError`, ...
  if (HttpClientError.isHttpClientError(error)) {
    if (error._tag === "RequestError" && error.reason === "Transport") {
      return transportLine([error.description, ...codesOf(error.cause)], error.methodAndUrl)
    }
    return `${error.reason}Error: ${error.message}`
  }
  if (error instanceof Error) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : error.name
    // Some platform errors (a `ServeError` for a port in use) carry their whole story in `cause`.
    const message = error.message === "" && error.cause instanceof Error ? error.cause.message : error.message
    return `${tag}: ${message}`
  }
  return `UnknownError: ${String(error)}`
}

/**
 * Reports how a command ended on stderr. A usage error was already explained by `@effect/cli`,
 * and an interruption (Ctrl-C) is the user's own doing: neither is repeated.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    return ValidationError.isValidationError(failure.value) ? Effect.void : Console.error(describeError(failure.value))
  }
  return Console.error(Cause.pretty(cause))
}

/**
 * The `teardown` of `NodeRuntime.runMain`: maps how the program ended to {@link ExitCode}.
 * Interruption by SIGINT or SIGTERM is a clean stop.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const teardown = <E, A>(exit: Exit.Exit<A, E>, onExit: (code: number) => void): void => {
  const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
  onExit(
    Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)
      ? ExitCode.ok
      : Option.isSome(failure)
        ? exitCodeOf(failure.value)
        : ExitCode.other
  )
}

// --- commands ---------------------------------------------------------------------------------

const summaryOf = (name: string): string => commands.find((command) => command.name === name)?.description ?? ""

// What `token` and `whoami` need, loaded when one of them runs.
const authModules = Effect.promise(async () => {
  const [RevaultAuth, AuthServiceModule, TokenStore, NodeHttpClient] = await Promise.all([
    import("../RevaultAuth.js"),
    import("../AuthService.js"),
    import("../TokenStore.js"),
    import("@effect/platform-node/NodeHttpClient")
  ])
  return {
    RevaultAuth,
    AuthService: AuthServiceModule.AuthService,
    TokenStore,
    revault: RevaultAuth.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))
  }
})

const noCache = Options.boolean(tokenFlags.noCache.name).pipe(Options.withDescription(tokenFlags.noCache.description))

const token = Command.make("token", { noCache }, ({ noCache }) =>
  Effect.gen(function* () {
    const { AuthService, TokenStore, revault } = yield* authModules
    const program = Effect.gen(function* () {
      const auth = yield* AuthService
      yield* Console.log(Redacted.value(yield* auth.accessToken))
    }).pipe(Effect.provide(revault))
    if (noCache) return yield* program
    // One cache directory per server, so tokens of one server (a restarted mock, say) are never
    // offered to another for the same workspace and key.
    const tokenCache = Layer.unwrapEffect(
      Effect.gen(function* () {
        // The whole configuration, not the base URL alone: a failure here names every missing or
        // invalid variable at once, as the layer's own reading would.
        const baseUrl = String((yield* fromConfig()).baseUrl)
        const path = yield* Path.Path
        const root = yield* TokenStore.defaultDirectory
        const server = createHash("sha256").update(baseUrl.replace(/\/+$/, "")).digest("hex").slice(0, 16)
        return TokenStore.layerFileSystem(path.join(root, server))
      })
    )
    // The store is provided around the layers, so AuthService finds it when it is built.
    return yield* Effect.provide(program, tokenCache)
  })
).pipe(Command.withDescription(summaryOf("token")))

const whoami = Command.make("whoami", {}, () =>
  Effect.gen(function* () {
    const { AuthService, RevaultAuth, revault } = yield* authModules
    const program = Effect.gen(function* () {
      const auth = yield* AuthService
      const config = yield* AuthConfig
      // The token first, bounded by the token requests' own deadline and failing as they do
      // (a `TransportError` when the server never answers), not by the deadline below.
      yield* auth.accessToken
      // The client imposes no deadline on resources, and a CLI must not hang on one: no answer
      // in time is a transport failure, like a refused connection.
      const user = yield* RevaultAuth.me.pipe(
        Effect.timeoutFail({
          duration: config.requestTimeout,
          onTimeout: () =>
            new HttpClientError.RequestError({
              request: HttpClientRequest.get(`${config.baseUrl}/users/me`),
              reason: "Transport",
              description: `no answer within ${Duration.format(config.requestTimeout)}`
            })
        })
      )
      yield* Console.log(JSON.stringify(yield* Schema.encode(RevaultAuth.User)(user), null, 2))
    })
    return yield* Effect.provide(program, revault)
  })
).pipe(Command.withDescription(summaryOf("whoami")))

const seconds = (flag: { readonly name: string; readonly description: string; readonly default: number }) =>
  Options.integer(flag.name).pipe(
    Options.withSchema(Schema.Int.pipe(Schema.positive())),
    Options.withDefault(flag.default),
    Options.withDescription(flag.description)
  )

const mockServerOptions = {
  port: Options.integer(mockServerFlags.port.name).pipe(
    Options.withSchema(Schema.Int.pipe(Schema.between(0, 65535))),
    Options.withDefault(mockServerDefaults.port),
    Options.withDescription(mockServerFlags.port.description)
  ),
  accessTtl: seconds(mockServerFlags.accessTtl),
  refreshTtl: seconds(mockServerFlags.refreshTtl)
}

// The client never hands out a token within `expirySkew` (default 30 s) of its expiry, and
// refreshes once that point is reached: short lifetimes need a shorter skew, or no token would
// ever count as valid. A sixth of the lifetime leaves most of it usable.
const skewFor = (accessTtl: number): Option.Option<string> =>
  accessTtl <= 60 ? Option.some(`${Math.floor((accessTtl * 1000) / 6)} millis`) : Option.none()

const mockServer = Command.make("mock-server", mockServerOptions, ({ accessTtl, port, refreshTtl }) =>
  Effect.gen(function* () {
    const MockRevault = yield* Effect.promise(() => import("../MockRevault.js"))
    const program = Effect.gen(function* () {
      const mock = yield* MockRevault.MockRevault
      const skew = skewFor(accessTtl)
      // Every line is valid shell: the first is a comment, the rest can be pasted as they are.
      const lines = [
        `# Mock Revault on ${mock.baseUrl} (access tokens ${accessTtl} s, refresh tokens ${refreshTtl} s); Ctrl-C stops it`,
        `export ${env.baseUrl}=${mock.baseUrl}`,
        `export ${env.workspace}=${mock.credentials.workspace}`,
        `export ${env.apiKeyId}=${mock.credentials.apiKeyId}`,
        // The mock's demo key is public test data.
        `export ${env.apiKeySecret}=${Redacted.value(mock.credentials.apiKeySecret)}`,
        ...Option.toArray(Option.map(skew, (s) => `export ${env.expirySkew}='${s}'`))
      ]
      yield* Console.log(lines.join("\n"))
      return yield* Effect.never
    })
    return yield* Effect.provide(
      program,
      MockRevault.layer({
        port,
        accessTokenTtl: Duration.seconds(accessTtl),
        refreshTokenTtl: Duration.seconds(refreshTtl)
      })
    )
  })
).pipe(Command.withDescription(summaryOf("mock-server")))

// The bin entry prints the help pages itself; a bare `revault-auth` never reaches the parser.
const showHelp = (): Effect.Effect<never, ValidationError.ValidationError> =>
  Effect.fail(ValidationError.helpRequested(root.descriptor))

const root = Command.make("revault-auth", {}, showHelp).pipe(Command.withSubcommands([token, whoami, mockServer]))

const PackageJson = Schema.parseJson(Schema.Struct({ version: Schema.String }))

const versionOf = (packageJson: URL) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = yield* path.fromFileUrl(packageJson)
    return (yield* Schema.decodeUnknown(PackageJson)(yield* fs.readFileString(file))).version
  }).pipe(Effect.orElseSucceed(() => "unknown"))

/**
 * The whole CLI: parses `argv` (as `process.argv`), runs the command and reports a failure on
 * stderr. Logs go to stderr, without colors unless it is a terminal, so stdout holds only what a
 * command prints; only errors are logged unless `--log-level` asks for more.
 *
 * @since 0.1.0
 * @category constructors
 */
export const main = (argv: ReadonlyArray<string>, packageJson: URL) =>
  Effect.gen(function* () {
    const version = yield* versionOf(packageJson)
    yield* Command.run(root, { name: "revault-auth", version })(argv)
  }).pipe(
    Effect.tapErrorCause(report),
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.provide(
      Logger.replace(
        Logger.defaultLogger,
        Logger.prettyLogger({ stderr: true, colors: canColor(process.stderr, process.env) })
      )
    )
  )

/**
 * Runs {@link main} on Node and exits with its {@link ExitCode}.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>, packageJson: URL): void =>
  main(argv, packageJson).pipe(
    Effect.provide(NodeContext.layer),
    // `main` reports failures itself, on stderr; `teardown` turns them into exit codes.
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
