// How a `revault-auth` run ends: its exit code and the one line it writes to stderr. Kept apart
// from the commands (`./cli.ts`): it needs no `@effect/platform-node` and can be tested alone.
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as CliError from "effect/cli/CliError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HttpClientError from "effect/http/HttpClientError"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { env } from "../AuthConfig.js"
import { AuthConfigError, isAuthError, TransportError } from "../AuthError.js"
import { ExitCode } from "./shared/cliHelp.js"
import { codesOf, transportDetail } from "./shared/transportDetail.js"

/**
 * Every missing or invalid variable of one run, in the order of `AuthConfig.env`. Effect 4's
 * `Config.all` stops at the first failure; a user fixing a shell wants to hear of all at once.
 */
export class ConfigProblems extends Data.TaggedError("ConfigError")<{ readonly problems: ReadonlyArray<string> }> {
  override get message(): string {
    return this.problems.join("; ")
  }
}

const authStatuses: ReadonlySet<number> = new Set([400, 401, 403])

const isConfigFailure = (error: unknown): boolean =>
  error instanceof ConfigProblems || error instanceof Config.ConfigError || error instanceof AuthConfigError

/** The exit code for a failure of a command. */
export const exitCodeOf = (error: unknown): ExitCode => {
  if (isConfigFailure(error)) return ExitCode.config
  if (isAuthError(error)) {
    return error._tag === "BadRequestError" || error._tag === "UnauthorizedError" || error._tag === "ForbiddenError"
      ? ExitCode.auth
      : ExitCode.server
  }
  if (HttpClientError.isHttpClientError(error)) {
    // A resource refusing the token (after the client's one replay) is the key's problem, not the server's.
    const response = error.response
    return response !== undefined && authStatuses.has(response.status) ? ExitCode.auth : ExitCode.server
  }
  // An answer that does not decode, or none in time, is the server's failure as much as a 500 is.
  if (Schema.isSchemaError(error) || Cause.isTimeoutError(error)) return ExitCode.server
  return ExitCode.other
}

const variableOf = (field: string): Option.Option<string> =>
  Option.fromNullishOr(Object.entries(env).find(([option]) => option === field)?.[1])

// One line for a request that got no answer, the same for the token requests and `/users/me`.
const transportLine = (what: ReadonlyArray<string | undefined>, where: string): string =>
  `TransportError: ${transportDetail(what, where)}`

const describeTransport = (error: TransportError): string => {
  const cause = error.cause
  if (HttpClientError.isHttpClientError(cause) && cause.reason._tag === "TransportError") {
    return transportLine([cause.reason.description, ...codesOf(cause.reason.cause)], cause.reason.methodAndUrl)
  }
  return transportLine([cause instanceof Error ? cause.message : undefined, ...codesOf(cause)], error.operation)
}

/**
 * The one line written to stderr for a failure: `<Tag>: <message>`. The library's errors never
 * render a secret, and nothing here adds one.
 */
export const describeError = (error: unknown): string => {
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
  // Effect 4 wraps every client failure in one `HttpClientError`; its reason is the story.
  if (HttpClientError.isHttpClientError(error)) {
    const reason = error.reason
    return reason._tag === "TransportError"
      ? transportLine([reason.description, ...codesOf(reason.cause)], reason.methodAndUrl)
      : `${reason._tag}: ${reason.message}`
  }
  if (error instanceof Error) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : error.name
    // Some platform errors (a server's port in use) carry their whole story in `cause`.
    const message = error.message === "" && error.cause instanceof Error ? error.cause.message : error.message
    return `${tag}: ${message}`
  }
  return `UnknownError: ${String(error)}`
}

/**
 * Reports how a command ended on stderr. A usage error was already explained by `effect/cli`
 * with the help text, and an interruption (Ctrl-C) is the user's own doing: neither is repeated.
 */
export const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const failure = Cause.findErrorOption(cause)
  if (Option.isSome(failure)) {
    return CliError.isCliError(failure.value) ? Effect.void : Console.error(describeError(failure.value))
  }
  return Console.error(Cause.pretty(cause))
}

/**
 * The `teardown` of `NodeRuntime.runMain`: maps how the program ended to {@link ExitCode}.
 * Interruption by SIGINT or SIGTERM is a clean stop.
 */
export const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void): void => {
  onExit(
    Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)
      ? ExitCode.ok
      : Option.match(Cause.findErrorOption(exit.cause), { onNone: () => ExitCode.other, onSome: exitCodeOf })
  )
}
