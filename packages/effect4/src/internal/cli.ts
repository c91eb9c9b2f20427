// The commands of `revault-auth`, kept apart from the bin entry (`src/cli.ts`), which answers
// `--help` and `--version` without loading this module. Each command loads the modules it needs
// when it runs: `token` never loads the mock server, `mock-server` never the token cache.
import { createHash } from "node:crypto"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as CliError from "effect/cli/CliError"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
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
import { ConfigProblems, report, teardown } from "./cliExit.js"
import { nonNegativeDuration } from "./config.js"
import { type CommandHelp, canColor, commands, helpPage, mockServerFlags, tokenFlags } from "./shared/cliHelp.js"

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

const commandOf = (path: ReadonlyArray<string> | undefined): CommandHelp | undefined =>
  commands.find((command) => command.name === path?.[1])

/**
 * Help goes to stdout. A usage error goes, help and all, to stderr: what a script captures from
 * stdout is never a help page. The pages are `cliHelp`'s, the ones the bin entry prints for
 * `--help`, whichever way they are asked for.
 */
const presenter = (
  version: string,
  colors: { readonly stdout: boolean; readonly stderr: boolean }
): CliOutput.Presenter => {
  const err = CliOutput.defaultFormatter({ colors: colors.stderr })
  return {
    present: (event) => {
      switch (event._tag) {
        case "Help":
          return Console.log(helpPage(commandOf(event.helpDoc.commandPath), { version, colors: colors.stdout }))
        case "InvalidInvocation":
          return Console.error(
            `${helpPage(commandOf(event.helpDoc.commandPath), { version, colors: colors.stderr })}\n${err.formatErrors(event.errors)}`
          )
        case "Version":
          return Console.log(version)
      }
    }
  }
}

// --- commands ---------------------------------------------------------------------------------

const descriptionOf = (name: CommandHelp["name"]): string =>
  commands.find((command) => command.name === name)?.description ?? ""

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
    revault: (options: AuthConfigOptions) => RevaultAuth.layer(options).pipe(Layer.provide(NodeHttpClient.layerUndici))
  }
})

const noCache = Flag.Boolean(tokenFlags.noCache.name).pipe(
  Flag.withDefault(false),
  Flag.withDescription(tokenFlags.noCache.description)
)

const token = Command.make("token", { noCache }, ({ noCache }) =>
  Effect.gen(function* () {
    const options = yield* readOptions
    const { AuthService, TokenStore, revault } = yield* authModules
    const program = Effect.gen(function* () {
      const auth = yield* AuthService
      yield* Console.log(Redacted.value(yield* auth.accessToken))
    }).pipe(Effect.provide(revault(options)))
    if (noCache) return yield* program
    // One cache directory per server, so tokens of one server (a restarted mock, say) are never
    // offered to another for the same workspace and key.
    const tokenCache = Layer.unwrap(
      Effect.gen(function* () {
        const path = yield* Path.Path
        const root = yield* TokenStore.defaultDirectory
        const server = createHash("sha256")
          .update(String(options.baseUrl).replace(/\/+$/, ""))
          .digest("hex")
          .slice(0, 16)
        return TokenStore.layerFileSystem(path.join(root, server))
      })
    )
    // The store is provided around the layers, so AuthService finds it when it is built.
    return yield* Effect.provide(program, tokenCache)
  })
).pipe(Command.withDescription(descriptionOf("token")))

const whoami = Command.make("whoami", {}, () =>
  Effect.gen(function* () {
    const options = yield* readOptions
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
      yield* Console.log(JSON.stringify(yield* Schema.encodeEffect(RevaultAuth.User)(user), null, 2))
    })
    return yield* Effect.provide(program, revault(options))
  })
).pipe(Command.withDescription(descriptionOf("whoami")))

const seconds = (flag: { readonly name: string; readonly description: string; readonly default: number }) =>
  Flag.Int(flag.name).pipe(
    Flag.filter(
      (n) => n > 0,
      () => "a positive whole number of seconds"
    ),
    Flag.withDefault(flag.default),
    Flag.withDescription(flag.description)
  )

const mockServerOptions = {
  port: Flag.Int(mockServerFlags.port.name).pipe(
    Flag.filter(
      (n) => n >= 0 && n <= 65535,
      () => "a port between 0 and 65535"
    ),
    Flag.withDefault(mockServerFlags.port.default),
    Flag.withDescription(mockServerFlags.port.description)
  ),
  accessTtl: seconds(mockServerFlags.accessTtl),
  refreshTtl: seconds(mockServerFlags.refreshTtl)
}

// The client never hands out a token within `expirySkew` (default 30 s) of its expiry, and
// refreshes once that point is reached: short lifetimes need a shorter skew, or no token would
// ever count as valid. A sixth of the lifetime leaves most of it usable.
const suggestedSkew = (accessTtl: number): Option.Option<string> =>
  accessTtl <= 60 ? Option.some(`${Math.floor((accessTtl * 1000) / 6)} millis`) : Option.none()

const mockServer = Command.make("mock-server", mockServerOptions, ({ accessTtl, port, refreshTtl }) =>
  Effect.gen(function* () {
    const MockRevault = yield* Effect.promise(() => import("../MockRevault.js"))
    const program = Effect.gen(function* () {
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
).pipe(Command.withDescription(descriptionOf("mock-server")))

const root = Command.make("revault-auth").pipe(Command.withSubcommands([token, whoami, mockServer]))

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
    yield* Command.runWith(root, { version })(args).pipe(
      Effect.provide(CliOutput.layerPresenter(presenter(version, colors)))
    )
  }).pipe(
    Effect.catchIf(isBareHelp, () => Effect.void),
    Effect.tapCause(report),
    Effect.provideService(References.MinimumLogLevel, "Error"),
    Effect.provideService(Logger.LogToStderr, true),
    Effect.provide(
      Layer.mergeAll(
        Logger.layer([Logger.consolePrettyTty({ colors: colors.stderr })]),
        CliOutput.layer(CliOutput.defaultFormatter({ colors: colors.stdout }))
      )
    )
  )
}

/** Runs {@link main} on Node and exits with its exit code. */
export const run = (args: ReadonlyArray<string>, packageJson: URL): void =>
  main(args, packageJson).pipe(
    Effect.provide(NodeServices.layer),
    // `main` reports failures itself, on stderr; `teardown` turns them into exit codes.
    NodeRuntime.runMain({ disableErrorReporting: true, teardown })
  )
