// The commands of `revault-auth`, kept apart from the bin entry (`src/cli.ts`) so that importing
// them runs nothing.
import { createHash } from "node:crypto"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as Path from "@effect/platform/Path"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
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
import { AuthConfigError, isAuthError } from "../AuthError.js"
import { AuthService } from "../AuthService.js"
import * as MockRevault from "../MockRevault.js"
import * as RevaultAuth from "../RevaultAuth.js"
import * as TokenStore from "../TokenStore.js"

/**
 * The process exit codes of `revault-auth`.
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  ok: 0,
  other: 1,
  config: 2,
  auth: 3,
  server: 4
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

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

const configErrorMessages = (error: ConfigError.ConfigError): ReadonlyArray<string> =>
  ConfigError.reduceWithContext(error, undefined, {
    andCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    orCase: (_, left: ReadonlyArray<string>, right: ReadonlyArray<string>) => [...left, ...right],
    missingDataCase: (_, path, message) => [path.length === 0 ? message : `${path.join(".")} is missing`],
    invalidDataCase: (_, path, message) => [named(path, message)],
    sourceUnavailableCase: (_, path, message) => [named(path, message)],
    unsupportedCase: (_, path, message) => [named(path, message)]
  })

const variableOf = (field: string): Option.Option<string> =>
  Option.fromNullable(Object.entries(env).find(([option]) => option === field)?.[1])

/**
 * The one line written to stderr for a failure: `<Tag>: <message>`. The library's errors never
 * render a secret, and nothing here adds one.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const describeError = (error: unknown): string => {
  if (ConfigError.isConfigError(error)) return `ConfigError: ${configErrorMessages(error).join("; ")}`
  // The option's name is the library's word; a shell user set the variable.
  if (error instanceof AuthConfigError) {
    return Option.match(variableOf(error.field), {
      onNone: () => `AuthConfigError: ${error.message}`,
      onSome: (variable) => `AuthConfigError: ${error.message} (${variable})`
    })
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
 * Reports how a command ended on stderr. A usage error was already explained by `@effect/cli`
 * with the help text, and an interruption (Ctrl-C) is the user's own doing: neither is repeated.
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

const code = (value: ExitCode, meaning: string): [Span.Span, HelpDoc.HelpDoc] => [
  Span.text(String(value)),
  HelpDoc.p(meaning)
]

// The footer of every help page, `revault-auth --help` and `revault-auth token --help` alike.
const footer = HelpDoc.blocks([
  HelpDoc.h1("ENVIRONMENT"),
  HelpDoc.p(
    `token and whoami read ${env.baseUrl} (including /v1/rest), ${env.workspace}, ${env.apiKeyId}, ${env.apiKeySecret}, and the optional ${env.requestTimeout}, ${env.refreshAt} and ${env.expirySkew}.`
  ),
  HelpDoc.h1("EXIT CODES"),
  HelpDoc.p('A failure is written to stderr as "<Tag>: <message>", never with a secret, and ends with:'),
  HelpDoc.descriptionList([
    code(ExitCode.ok, "success (and a mock-server stopped by SIGINT or SIGTERM)"),
    code(ExitCode.other, "any other failure, including a usage error"),
    code(
      ExitCode.config,
      `configuration error (ConfigError, AuthConfigError): a missing or invalid ${env.baseUrl}, ${env.workspace}, ${env.apiKeyId}, ${env.apiKeySecret}, ...`
    ),
    code(
      ExitCode.auth,
      "the API key or token was refused with 400, 401 or 403 (BadRequestError, UnauthorizedError, ForbiddenError)"
    ),
    code(
      ExitCode.server,
      "server or transport error (InternalServerError, UnexpectedStatusError, ResponseDecodeError, TransportError, HTTP client errors, no answer in time)"
    )
  ])
])

const revault = RevaultAuth.layerConfig().pipe(Layer.provide(NodeHttpClient.layerUndici))

const noCache = Options.boolean("no-cache").pipe(
  Options.withDescription(
    `Neither read nor write the token cache (by default an encrypted file per server, workspace and key under $XDG_CACHE_HOME/revault-auth or ~/.cache/revault-auth, mode 0600).`
  )
)

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

const token = Command.make("token", { noCache }, ({ noCache }) => {
  const program = Effect.gen(function* () {
    const auth = yield* AuthService
    const accessToken = yield* auth.accessToken
    yield* Console.log(Redacted.value(accessToken))
  }).pipe(Effect.provide(revault))
  // The store is provided around the layers, so AuthService finds it when it is built.
  return noCache ? program : Effect.provide(program, tokenCache)
}).pipe(
  Command.withDescription(
    `Print a fresh access token and a newline to stdout, for curl -H "Authorization: Bearer $(npx revault-auth token)".`
  )
)

const encodeUser = Schema.encode(RevaultAuth.User)

const whoami = Command.make("whoami", {}, () =>
  Effect.gen(function* () {
    const config = yield* AuthConfig
    // The client imposes no deadline on resources, and a CLI must not hang on one.
    const user = yield* RevaultAuth.me.pipe(Effect.timeout(config.requestTimeout))
    yield* Console.log(JSON.stringify(yield* encodeUser(user), null, 2))
  }).pipe(Effect.provide(revault))
).pipe(Command.withDescription("Call GET /users/me and print the user as JSON."))

const seconds = (name: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withSchema(Schema.Int.pipe(Schema.positive())),
    Options.withDefault(fallback),
    Options.withDescription(`${description} in seconds.`)
  )

const mockServerOptions = {
  port: Options.integer("port").pipe(
    Options.withSchema(Schema.Int.pipe(Schema.between(0, 65535))),
    Options.withDefault(0),
    Options.withDescription("Port on 127.0.0.1; 0 picks a free one.")
  ),
  accessTtl: seconds("access-ttl", 300, "Access token lifetime"),
  refreshTtl: seconds("refresh-ttl", 1800, "Refresh token lifetime")
}

// The client never hands out a token within `expirySkew` (default 30 s) of its expiry, and
// refreshes once that point is reached: short lifetimes need a shorter skew, or no token would
// ever count as valid. A sixth of the lifetime leaves most of it usable.
const skewFor = (accessTtl: number): Option.Option<string> =>
  accessTtl <= 60 ? Option.some(`${Math.floor((accessTtl * 1000) / 6)} millis`) : Option.none()

const mockServer = Command.make("mock-server", mockServerOptions, ({ accessTtl, port, refreshTtl }) =>
  Effect.gen(function* () {
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
  }).pipe(
    Effect.provide(
      MockRevault.layer({
        port,
        accessTokenTtl: Duration.seconds(accessTtl),
        refreshTokenTtl: Duration.seconds(refreshTtl)
      })
    )
  )
).pipe(
  Command.withDescription(
    "Run the mock Revault API on 127.0.0.1 for local development and print its base URL and demo credentials as export lines. Stops on SIGINT or SIGTERM."
  )
)

// Without a subcommand there is nothing to do but explain; the annotation breaks the type cycle.
const showHelp = (): Effect.Effect<never, ValidationError.ValidationError> =>
  Effect.fail(ValidationError.helpRequested(root.descriptor))

const root = Command.make("revault-auth", {}, showHelp).pipe(
  Command.withDescription("Obtain Revault API access tokens from the command line, or run a mock of the API."),
  Command.withSubcommands([token, whoami, mockServer])
)

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
 * stderr. Logs go to stderr, so stdout holds only what a command prints, and only errors are
 * logged unless `--log-level` asks for more.
 *
 * @since 0.1.0
 * @category constructors
 */
export const main = (argv: ReadonlyArray<string>, packageJson: URL) =>
  Effect.gen(function* () {
    const version = yield* versionOf(packageJson)
    yield* Command.run(root, { name: "revault-auth", version, footer })(argv)
  }).pipe(
    Effect.tapErrorCause(report),
    Logger.withMinimumLogLevel(LogLevel.Error),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true })))
  )
