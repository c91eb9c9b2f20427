#!/usr/bin/env node
/**
 * The `revault-auth` command (the package's `bin`): `token`, `whoami` and `mock-server`. Importing
 * this module runs the command line of the current process.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { canColor, ExitCode, helpPage, missingPeerMessage, requestOf, versionIn } from "./internal/shared/cliHelp.js"

// Beside `dist/cli.js` (and `src/cli.ts`) the package root is one level up.
const packageJson = new URL("../package.json", import.meta.url)

const readPackageJson = (): string => {
  try {
    return readFileSync(packageJson, "utf8")
  } catch {
    return ""
  }
}

const platformNode = "@effect/platform-node"

const isMissing = (error: unknown, name: string): boolean =>
  error instanceof Error &&
  "code" in error &&
  error.code === "ERR_MODULE_NOT_FOUND" &&
  error.message.includes(`'${name}'`)

// The range this package was built against, for the install command; none if unreadable.
const peerRange = (name: string): string | undefined => {
  try {
    const json: unknown = JSON.parse(readPackageJson())
    const peers = typeof json === "object" && json !== null && "peerDependencies" in json ? json.peerDependencies : {}
    const range = typeof peers === "object" && peers !== null ? Object.entries(peers).find(([p]) => p === name) : []
    return typeof range?.[1] === "string" ? range[1] : undefined
  } catch {
    return undefined
  }
}

const args = process.argv.slice(2)
const request = requestOf(args)

// `--version` and `--help` need neither Effect nor the library: answered here, they start as fast
// as node itself. Everything else loads what its command needs.
if (request._tag === "Version") {
  process.stdout.write(`${versionIn(readPackageJson())}\n`)
} else if (request._tag === "Help") {
  const colors = canColor(process.stdout, process.env)
  process.stdout.write(helpPage(request.command, { version: versionIn(readPackageJson()), colors }))
} else {
  // `@effect/platform-node` is an optional peer: the library runs without it, the CLI does not.
  // Without it, one line says what to install instead of a module-resolution stack trace.
  try {
    const Cli = await import("./internal/cli.js")
    Cli.run(process.argv, packageJson)
  } catch (error) {
    if (!isMissing(error, platformNode)) throw error
    process.stderr.write(`${missingPeerMessage(platformNode, peerRange(platformNode))}\n`)
    process.exitCode = ExitCode.config
  }
}
