/**
 * The `revault-auth` command's help pages, exit codes and the two requests it answers without
 * loading Effect (`--help`, `--version`). Both lines print the same pages; a command's flags take
 * their names, defaults and descriptions from here, so the pages cannot drift from the parser.
 *
 * @since 2.0.0
 */
import { readFileSync } from "node:fs"

/**
 * The process exit codes of `revault-auth`.
 *
 * @since 2.0.0
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
 * @since 2.0.0
 * @category models
 */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * The variables `token` and `whoami` read, which `AuthConfig.env` of both lines is: kept here
 * because the help is printed without loading the library.
 *
 * @since 2.0.0
 * @category constants
 */
export const variables = {
  baseUrl: "REVAULT_API_BASE_URL",
  workspace: "REVAULT_WORKSPACE",
  apiKeyId: "REVAULT_API_KEY_ID",
  apiKeySecret: "REVAULT_API_KEY_SECRET",
  requestTimeout: "REVAULT_REQUEST_TIMEOUT",
  refreshAt: "REVAULT_REFRESH_AT",
  expirySkew: "REVAULT_EXPIRY_SKEW"
} as const

/**
 * The defaults of `mock-server`'s flags: the port (0 picks a free one) and the token lifetimes
 * in seconds.
 *
 * @since 2.0.0
 * @category constants
 */
export const mockServerDefaults = { port: 0, accessTtl: 300, refreshTtl: 1800 } as const

/**
 * One flag of a command, as its help page shows it.
 *
 * @since 2.0.0
 * @category models
 */
export interface FlagHelp {
  readonly name: string
  /** The placeholder of its value; none for a switch. */
  readonly value?: string
  readonly description: string
  readonly default?: number
}

/**
 * One command: its one-line summary for the command list and its own page.
 *
 * @since 2.0.0
 * @category models
 */
export interface CommandHelp {
  readonly name: "token" | "whoami" | "mock-server"
  readonly summary: string
  readonly description: string
  readonly flags: ReadonlyArray<FlagHelp>
  /** Whether it reads the `REVAULT_*` variables. */
  readonly readsEnvironment: boolean
}

/**
 * The flags of `token`.
 *
 * @since 2.0.0
 * @category constants
 */
export const tokenFlags = {
  noCache: {
    name: "no-cache",
    description:
      "Neither read nor write the token cache (an encrypted file per server, workspace and key under $XDG_CACHE_HOME/revault-auth or ~/.cache/revault-auth, mode 0600)."
  }
} as const satisfies Record<string, FlagHelp>

/**
 * The flags of `mock-server`.
 *
 * @since 2.0.0
 * @category constants
 */
export const mockServerFlags = {
  port: {
    name: "port",
    value: "<port>",
    description: "Port on 127.0.0.1; 0 picks a free one.",
    default: mockServerDefaults.port
  },
  accessTtl: {
    name: "access-ttl",
    value: "<seconds>",
    description: "Access token lifetime in seconds.",
    default: mockServerDefaults.accessTtl
  },
  refreshTtl: {
    name: "refresh-ttl",
    value: "<seconds>",
    description: "Refresh token lifetime in seconds.",
    default: mockServerDefaults.refreshTtl
  }
} as const satisfies Record<string, FlagHelp>

/**
 * The commands, in the order the root page lists them.
 *
 * @since 2.0.0
 * @category constants
 */
export const commands: ReadonlyArray<CommandHelp> = [
  {
    name: "token",
    summary: "Print a fresh access token to stdout.",
    description:
      'Print a fresh access token and a newline to stdout; a token cached by an earlier run is reused while it is valid. For example:\n  curl -H "Authorization: Bearer $(npx revault-auth token)" "$REVAULT_API_BASE_URL/users/me"',
    flags: [tokenFlags.noCache],
    readsEnvironment: true
  },
  {
    name: "whoami",
    summary: "Print the user the API key acts as (GET /users/me), as JSON.",
    description: "Call GET /users/me with a fresh access token and print the user as JSON.",
    flags: [],
    readsEnvironment: true
  },
  {
    name: "mock-server",
    summary: "Run a mock Revault API on 127.0.0.1 and print its variables.",
    description:
      "Run the mock Revault API on 127.0.0.1 for local development and print its base URL and demo credentials as export lines. Stops on SIGINT or SIGTERM.",
    flags: [mockServerFlags.port, mockServerFlags.accessTtl, mockServerFlags.refreshTtl],
    readsEnvironment: false
  }
]

/**
 * Whether a stream may receive ANSI escapes: only a terminal, and never with `NO_COLOR` set (to
 * anything but the empty string, as https://no-color.org says) or `TERM=dumb`.
 *
 * @since 2.0.0
 * @category output
 */
export const canColor = (
  stream: { readonly isTTY?: boolean | undefined },
  environment: Readonly<Record<string, string | undefined>>
): boolean => stream.isTTY === true && (environment.NO_COLOR ?? "") === "" && environment.TERM !== "dumb"

/**
 * What a command line asks for: the version, a help page (of a command, or the root page), or a
 * command to run.
 *
 * @since 2.0.0
 * @category models
 */
export type Request =
  | { readonly _tag: "Version" }
  | { readonly _tag: "Help"; readonly command: CommandHelp | undefined }
  | { readonly _tag: "Run" }

const helpFlags: ReadonlySet<string> = new Set(["--help", "-h"])
const versionFlags: ReadonlySet<string> = new Set(["--version", "-v"])

/**
 * Reads `args` (`process.argv` without node and the script). Nothing at all asks for the root
 * page; `--help` or `-h` anywhere for the page of the command named (the root page if none is);
 * `--version` or `-v` for the version. Anything else, an unknown command included, is run,
 * so the parser reports it.
 *
 * @since 2.0.0
 * @category parsing
 */
export const requestOf = (args: ReadonlyArray<string>): Request => {
  const end = args.indexOf("--")
  const flags = end === -1 ? args : args.slice(0, end)
  const first = args[0]
  const named = first !== undefined && !first.startsWith("-")
  if (args.length === 0) return { _tag: "Help", command: undefined }
  if (named && !commands.some((c) => c.name === first)) return { _tag: "Run" }
  // The first command named, after global flags such as `--log-level debug` if need be.
  const command = commands.find((c) => flags.includes(c.name))
  if (flags.some((arg) => helpFlags.has(arg))) return { _tag: "Help", command }
  if (flags.some((arg) => versionFlags.has(arg))) return { _tag: "Version" }
  return { _tag: "Run" }
}

/**
 * The version in a `package.json` text, or `unknown`.
 *
 * @since 2.0.0
 * @category parsing
 */
export const versionIn = (packageJson: string): string => {
  try {
    const json: unknown = JSON.parse(packageJson)
    return typeof json === "object" && json !== null && "version" in json && typeof json.version === "string"
      ? json.version
      : "unknown"
  } catch {
    return "unknown"
  }
}

/**
 * The line `revault-auth` writes, and exits with {@link ExitCode.config}, when an optional peer
 * it needs is not installed: the installation, like a variable, is the user's to fix.
 *
 * @since 2.0.0
 * @category output
 */
export const missingPeerMessage = (name: string, range: string | undefined): string =>
  `revault-auth needs ${name}, an optional peer dependency of effect-revault-auth: install it with npm install ${
    range === undefined ? name : `${name}@${range}`
  }`

// --- help pages -------------------------------------------------------------------------------

const width = 100

// Words of `text` in lines of at most `width` characters, every line after the first indented;
// a line break in `text` is kept (an example to copy stays on its own line).
const wrap = (text: string, indent: number): string =>
  text
    .split("\n")
    .map((paragraph) => {
      const lead = paragraph.length - paragraph.trimStart().length
      return " ".repeat(lead) + wrapParagraph(paragraph.trimStart(), indent + lead)
    })
    .join(`\n${" ".repeat(indent)}`)

const wrapParagraph = (text: string, indent: number): string => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(" ")) {
    if (line !== "" && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines.join(`\n${" ".repeat(indent)}`)
}

const table = (rows: ReadonlyArray<readonly [string, string]>): ReadonlyArray<string> => {
  const column = Math.max(...rows.map(([left]) => left.length)) + 2
  return rows.map(([left, right]) => `  ${left.padEnd(column)}${wrap(right, column + 2)}`)
}

const flagUsage = (flag: FlagHelp): string =>
  flag.value === undefined ? `--${flag.name}` : `--${flag.name} ${flag.value}`

const flagRow = (flag: FlagHelp): readonly [string, string] => [
  flagUsage(flag),
  flag.default === undefined ? flag.description : `${flag.description} Default: ${flag.default}.`
]

const v = variables

const environment: ReadonlyArray<string> = [
  `  ${wrap(
    `token and whoami read ${v.baseUrl} (including /v1/rest), ${v.workspace}, ${v.apiKeyId}, ${v.apiKeySecret}, and the optional ${v.requestTimeout} (default 10 seconds), ${v.refreshAt} (default 0.8) and ${v.expirySkew} (default 30 seconds).`,
    2
  )}`,
  `  ${wrap("Output has ANSI colors only on a terminal, and not there either with NO_COLOR set or TERM=dumb.", 2)}`
]

const exitCodes: ReadonlyArray<string> = [
  `  ${wrap('A failure is one line on stderr, "<Tag>: <message>", never with a secret. Exit codes:', 2)}`,
  ...table([
    [String(ExitCode.ok), "success (and a mock-server stopped by SIGINT or SIGTERM)"],
    [String(ExitCode.other), "any other failure, including a usage error"],
    [
      String(ExitCode.config),
      "a missing or invalid variable (ConfigError, AuthConfigError), or @effect/platform-node not installed"
    ],
    [String(ExitCode.auth), "the API key or token was refused with 400, 401 or 403"],
    [String(ExitCode.server), "the server failed or did not answer in time (TransportError, InternalServerError, ...)"]
  ])
]

const globalRows: ReadonlyArray<readonly [string, string]> = [
  ["-h, --help", "Show this help, or a command's with revault-auth <command> --help."],
  ["-v, --version", "Print the version."],
  ["--log-level <level>", "Also log at this level and above on stderr (default: errors only)."]
]

/**
 * The help page of `command`, or the root page: plain text, with bold headings when `colors`.
 *
 * @since 2.0.0
 * @category output
 */
export const helpPage = (
  command: CommandHelp | undefined,
  options: { readonly version: string; readonly colors: boolean }
): string => {
  const heading = (text: string) => (options.colors ? `\x1b[1m${text}\x1b[0m` : text)
  const section = (title: string, lines: ReadonlyArray<string>) => ["", heading(title), ...lines]
  if (command === undefined) {
    return [
      `revault-auth ${options.version}`,
      wrap("Obtain Revault API access tokens from the command line, or run a mock of the API.", 0),
      ...section("USAGE", ["  revault-auth <command> [flags]"]),
      ...section("COMMANDS", table(commands.map((c): readonly [string, string] => [c.name, c.summary]))),
      ...section("FLAGS", table(globalRows)),
      ...section("ENVIRONMENT", environment),
      ...section("EXIT CODES", exitCodes),
      ""
    ].join("\n")
  }
  const usage = [`revault-auth ${command.name}`, ...command.flags.map((flag) => `[${flagUsage(flag)}]`)].join(" ")
  return [
    `revault-auth ${command.name}`,
    wrap(command.description, 0),
    ...section("USAGE", [`  ${wrap(usage, 4)}`]),
    ...(command.flags.length === 0 ? [] : section("FLAGS", table(command.flags.map(flagRow)))),
    ...(command.readsEnvironment ? section("ENVIRONMENT", environment) : []),
    ...section("EXIT CODES", exitCodes),
    ""
  ].join("\n")
}

// --- the command line ----------------------------------------------------------------------------

const platformNode = "@effect/platform-node"

const readText = (file: URL): string => {
  try {
    return readFileSync(file, "utf8")
  } catch {
    return ""
  }
}

const isMissing = (error: unknown, name: string): boolean =>
  error instanceof Error &&
  "code" in error &&
  error.code === "ERR_MODULE_NOT_FOUND" &&
  error.message.includes(`'${name}'`)

// The range the package was built against, for the install command; none if unreadable.
const peerRange = (packageJson: string, name: string): string | undefined => {
  try {
    const json: unknown = JSON.parse(packageJson)
    const peers = typeof json === "object" && json !== null && "peerDependencies" in json ? json.peerDependencies : {}
    const range = typeof peers === "object" && peers !== null ? Object.entries(peers).find(([p]) => p === name) : []
    return typeof range?.[1] === "string" ? range[1] : undefined
  } catch {
    return undefined
  }
}

/**
 * Runs the command line of the current process: the body of each line's `src/cli.ts`.
 * `--version` and `--help` need neither Effect nor the library: answered here, they start as fast
 * as node itself. Any other request calls `command`, which loads what the line's CLI needs.
 * `@effect/platform-node` is an optional peer: the library runs without it, the CLI does not;
 * without it, one line says what to install instead of a module-resolution stack trace.
 *
 * @since 2.0.0
 * @category running
 */
export const runCommandLine = async (
  packageJson: URL,
  command: (args: ReadonlyArray<string>) => Promise<void>
): Promise<void> => {
  const args = process.argv.slice(2)
  const request = requestOf(args)
  if (request._tag === "Version") {
    process.stdout.write(`${versionIn(readText(packageJson))}\n`)
  } else if (request._tag === "Help") {
    const colors = canColor(process.stdout, process.env)
    process.stdout.write(helpPage(request.command, { version: versionIn(readText(packageJson)), colors }))
  } else {
    try {
      await command(args)
    } catch (error) {
      if (!isMissing(error, platformNode)) throw error
      process.stderr.write(`${missingPeerMessage(platformNode, peerRange(readText(packageJson), platformNode))}\n`)
      process.exitCode = ExitCode.config
    }
  }
}
