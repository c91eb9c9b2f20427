// The commands of `revault-auth`, kept apart from the bin entry (`src/cli.ts`) so that importing
// them runs nothing.
import { createHash } from "node:crypto"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import type * as HelpDoc from "effect/cli/HelpDoc"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FileSystem from "effect/FileSystem"
import * as HttpClientError from "effect/http/HttpClientError"
import * as HttpClientRequest from "effect/http/HttpClientRequest"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Path from "effect/Path"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { AuthConfig, type Options as AuthConfigOptions, env } from "../AuthConfig.js"
import { AuthService } from "../AuthService.js"
import * as MockRevault from "../MockRevault.js"
import * as RevaultAuth from "../RevaultAuth.js"
import * as TokenStore from "../TokenStore.js"
import { ConfigProblems, ExitCode, report } from "./cliExit.js"
import { nonNegativeDuration } from "./config.js"

// --- configuration ----------------------------------------------------------------------------

// The secret's variable is named, its value never: a message about it says no more than this.
const notShown = "invalid value (not shown)"

const problemOf =
  (variable: string) =>
  (error: Config.ConfigError): string => {
    if (variable === env.apiKeySecret) return `${variable}: ${notShown}`
    const cause = error.cause
    const message = Schema.isSchemaError(cause)
      ? SchemaIssue.makeFormatterStandardSchemaV1()(cause.issue).issues[0]?.message
      : cause.message
    return `${variable}: ${message ?? error.message}`
  }

const required = <A>(variable: string, config: Config.Config<A>): Effect.Effect<A, string> =>
  Effect.flatMap(Effect.orElseSucceed(Config.option(Config.String(variable)), Option.none), (raw) =>
    Option.isNone(raw) ? Effect.fail(`${variable} is missing`) : Effect.mapError(config, problemOf(variable))
  )

const optional = <A>(variable: string, config: Config.Config<A>): Effect.Effect<A | undefined, string> =>
  Effect.mapError(Config.map(Config.option(config), Option.getOrUndefined), problemOf(variable))

/**
 * The options of `token` and `whoami`, from the `REVAULT_*` variables (as `AuthConfig.fromConfig`
 * reads them), failing with every missing or invalid variable named at once.
 */
export const readOptions: Effect.Effect<AuthConfigOptions, ConfigProblems> = Effect.gen(function* () {
  const results = yield* Effect.all(
    {
      baseUrl: required(env.baseUrl, Config.String(env.baseUrl)),
      workspace: required(env.workspace, Config.String(env.workspace)),
      apiKeyId: required(env.apiKeyId, Config.String(env.apiKeyId)),
      apiKeySecret: required(env.apiKeySecret, Config.Redacted(env.apiKeySecret)),
      requestTimeout: optional(env.requestTimeout, nonNegativeDuration(env.requestTimeout)),
      refreshAt: optional(env.refreshAt, Config.Number(env.refreshAt)),
      expirySkew: optional(env.expirySkew, nonNegativeDuration(env.expirySkew))
    },
    { mode: "result" }
  )
  const problems = Object.values(results).flatMap((result: Result.Result<unknown, string>) =>
    Result.isFailure(result) ? [result.failure] : []
  )
  return yield* Result.match(Result.all(results), {
    onFailure: () => Effect.fail(new ConfigProblems({ problems })),
    onSuccess: Effect.succeed
  })
})

// --- output -----------------------------------------------------------------------------------

/**
 * Whether a stream may receive ANSI escapes: only a terminal, and never with `NO_COLOR` set (to
 * anything but the empty string, as https://no-color.org says) or `TERM=dumb`.
 */
export const canColor = (
  stream: { readonly isTTY?: boolean | undefined },
  environment: Readonly<Record<string, string | undefined>>
): boolean => stream.isTTY === true && (environment.NO_COLOR ?? "") === "" && environment.TERM !== "dumb"

const bold = (colors: boolean) => (text: string) => (colors ? `\x1b[1m${text}\x1b[0m` : text)

const table = (rows: ReadonlyArray<readonly [string, string]>): ReadonlyArray<string> =>
  rows.map(([left, right]) => `  ${left.padEnd(6)}${right}`)

// The footer of every help page, `revault-auth --help` and `revault-auth token --help` alike.
const footer = (colors: boolean): string =>
  [
    bold(colors)("ENVIRONMENT"),
    `  token and whoami read ${env.baseUrl} (including /v1/rest), ${env.workspace}, ${env.apiKeyId}, ${env.apiKeySecret}, and the optional ${env.requestTimeout}, ${env.refreshAt} and ${env.expirySkew}.`,
    `  Output has no ANSI colors unless it goes to a terminal; NO_COLOR or TERM=dumb turn them off there too.`,
    "",
    bold(colors)("EXIT CODES"),
    '  A failure is written to stderr as "<Tag>: <message>", never with a secret, and ends with:',
    ...table([
      [String(ExitCode.ok), "success (and a mock-server stopped by SIGINT or SIGTERM)"],
      [String(ExitCode.other), "any other failure, including a usage error"],
      [
        String(ExitCode.config),
        `configuration error (ConfigError, AuthConfigError): a missing or invalid ${env.baseUrl}, ${env.workspace}, ${env.apiKeyId}, ${env.apiKeySecret}, ...; or @effect/platform-node not installed`
      ],
      [
        String(ExitCode.auth),
        "the API key or token was refused with 400, 401 or 403 (BadRequestError, UnauthorizedError, ForbiddenError, StatusCodeError)"
      ],
      [
        String(ExitCode.server),
        "server or transport error (InternalServerError, UnexpectedStatusError, ResponseDecodeError, TransportError, other HTTP client errors)"
      ]
    ]),
    ""
  ].join("\n")

const formatter = (colors: boolean): CliOutput.Formatter => {
  const base = CliOutput.defaultFormatter({ colors })
  return {
    ...base,
    formatHelpDoc: (doc: HelpDoc.HelpDoc) => `${base.formatHelpDoc(doc).replace(/\n*$/, "\n\n")}${footer(colors)}`,
    // The bare version, for scripts that compare it.
    formatVersion: (_name, version) => version
  }
}

/**
 * Help and the version go to stdout. A usage error goes, help and all, to stderr: what a script
 * captures from stdout is never a help page.
 */
const presenter = (colors: { readonly stdout: boolean; readonly stderr: boolean }): CliOutput.Presenter => {
  const out = formatter(colors.stdout)
  const err = formatter(colors.stderr)
  return {
    present: (event) => {
      switch (event._tag) {
        case "Help":
          return Console.log(out.formatHelpDoc(event.helpDoc))
        case "InvalidInvocation":
          return Console.error(`${err.formatHelpDoc(event.helpDoc)}${err.formatErrors(event.errors)}`)
        case "Version":
          return Console.log(out.formatVersion(event.name, event.version))
      }
    }
  }
}

// --- commands ---------------------------------------------------------------------------------

const revault = (options: AuthConfigOptions) =>
  RevaultAuth.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))

const noCache = Flag.Boolean("no-cache").pipe(
  Flag.withDefault(false),
  Flag.withDescription(
    "Neither read nor write the token cache (by default an encrypted file per server, workspace and key under $XDG_CACHE_HOME/revault-auth or ~/.cache/revault-auth, mode 0600)."
  )
)

// One cache directory per server, so tokens of one server (a restarted mock, say) are never
// offered to another for the same workspace and key.
const tokenCache = (baseUrl: string | URL) =>
  Layer.unwrap(
    Effect.gen(function* () {
      const path = yield* Path.Path
      const root = yield* TokenStore.defaultDirectory
      const server = createHash("sha256").update(String(baseUrl).replace(/\/+$/, "")).digest("hex").slice(0, 16)
      return TokenStore.layerFileSystem(path.join(root, server))
    })
  )

const token = Command.make("token", { noCache }, ({ noCache }) =>
  Effect.gen(function* () {
    const options = yield* readOptions
    const program = Effect.gen(function* () {
      const auth = yield* AuthService
      yield* Console.log(Redacted.value(yield* auth.accessToken))
    }).pipe(Effect.provide(revault(options)))
    // The store is provided around the layers, so AuthService finds it when it is built.
    return yield* noCache ? program : Effect.provide(program, tokenCache(options.baseUrl))
  })
).pipe(
  Command.withDescription(
    'Print a fresh access token and a newline to stdout, for curl -H "Authorization: Bearer $(npx revault-auth token)".'
  )
)

const encodeUser = Schema.encodeEffect(RevaultAuth.User)

const whoami = Command.make("whoami", {}, () =>
  Effect.gen(function* () {
    const options = yield* readOptions
    const program = Effect.gen(function* () {
      const auth = yield* AuthService
      const config = yield* AuthConfig
      // The token first, bounded by the token requests' own deadline and failing as they do
      // (a `TransportError` when the server never answers), not by the deadline below.
      yield* auth.accessToken
      // The client imposes no deadline on resources, and a CLI must not hang on one: no answer
      // in time is a transport failure, like a refused connection.
      const user = yield* RevaultAuth.me.pipe(
        Effect.timeoutOrElse({
          duration: config.requestTimeout,
          orElse: () =>
            Effect.fail(
              new HttpClientError.HttpClientError({
                reason: new HttpClientError.TransportError({
                  request: HttpClientRequest.get(`${config.baseUrl}/users/me`),
                  description: `no answer within ${Duration.format(config.requestTimeout)}`
                })
              })
            )
        })
      )
      yield* Console.log(JSON.stringify(yield* encodeUser(user), null, 2))
    })
    return yield* Effect.provide(program, revault(options))
  })
).pipe(Command.withDescription("Call GET /users/me and print the user as JSON."))

const seconds = (name: string, fallback: number, description: string) =>
  Flag.Int(name).pipe(
    Flag.filter(
      (n) => n > 0,
      () => "a positive whole number of seconds"
    ),
    Flag.withDefault(fallback),
    Flag.withDescription(`${description} in seconds.`)
  )

const mockServerFlags = {
  port: Flag.Int("port").pipe(
    Flag.filter(
      (n) => n >= 0 && n <= 65535,
      () => "a port between 0 and 65535"
    ),
    Flag.withDefault(0),
    Flag.withDescription("Port on 127.0.0.1; 0 picks a free one.")
  ),
  accessTtl: seconds("access-ttl", 300, "Access token lifetime"),
  refreshTtl: seconds("refresh-ttl", 1800, "Refresh token lifetime")
}

// The client never hands out a token within `expirySkew` (default 30 s) of its expiry, and
// refreshes once that point is reached: short lifetimes need a shorter skew, or no token would
// ever count as valid. A sixth of the lifetime leaves most of it usable.
const suggestedSkew = (accessTtl: number): Option.Option<string> =>
  accessTtl <= 60 ? Option.some(`${Math.floor((accessTtl * 1000) / 6)} millis`) : Option.none()

const mockServer = Command.make("mock-server", mockServerFlags, ({ accessTtl, port, refreshTtl }) =>
  Effect.gen(function* () {
    const mock = yield* MockRevault.MockRevault
    // Every line is valid shell: the first is a comment, the rest can be pasted as they are.
    const lines = [
      `# Mock Revault on ${mock.baseUrl} (access tokens ${accessTtl} s, refresh tokens ${refreshTtl} s); Ctrl-C stops it`,
      `export ${env.baseUrl}=${mock.baseUrl}`,
      `export ${env.workspace}=${mock.credentials.workspace}`,
      `export ${env.apiKeyId}=${mock.credentials.apiKeyId}`,
      // The mock's demo key is public test data.
      `export ${env.apiKeySecret}=${Redacted.value(mock.credentials.apiKeySecret)}`,
      ...Option.toArray(Option.map(suggestedSkew(accessTtl), (s) => `export ${env.expirySkew}='${s}'`))
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

const root = Command.make("revault-auth").pipe(
  Command.withDescription("Obtain Revault API access tokens from the command line, or run a mock of the API."),
  Command.withSubcommands([token, whoami, mockServer])
)

// --- main -------------------------------------------------------------------------------------

const PackageJson = Schema.fromJsonString(Schema.Struct({ version: Schema.String }))

const versionOf = (packageJson: URL) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const file = yield* path.fromFileUrl(packageJson)
    return (yield* Schema.decodeUnknownEffect(PackageJson)(yield* fs.readFileString(file))).version
  }).pipe(Effect.orElseSucceed(() => "unknown"))

// `revault-auth` alone asks for nothing: the help it gets is an answer, not a usage error.
const isBareHelp = (error: unknown): boolean =>
  CliError.isCliError(error) && error._tag === "ShowHelp" && error.errors.length === 0

/**
 * The whole CLI: parses `args` (`process.argv` without node and the script), runs the command
 * and reports a failure on stderr. Logs go to stderr, so stdout holds only what a command prints,
 * and only errors are logged unless `--log-level` asks for more.
 */
export const main = (args: ReadonlyArray<string>, packageJson: URL) => {
  const colors = { stdout: canColor(process.stdout, process.env), stderr: canColor(process.stderr, process.env) }
  return Effect.gen(function* () {
    const version = yield* versionOf(packageJson)
    yield* Command.runWith(root, { version })(args)
  }).pipe(
    Effect.catchIf(isBareHelp, () => Effect.void),
    Effect.tapCause(report),
    Effect.provideService(References.MinimumLogLevel, "Error"),
    Effect.provideService(Logger.LogToStderr, true),
    Effect.provide(
      Layer.mergeAll(
        Logger.layer([Logger.consolePrettyTty({ colors: colors.stderr })]),
        CliOutput.layer(formatter(colors.stdout)),
        CliOutput.layerPresenter(presenter(colors))
      )
    )
  )
}
