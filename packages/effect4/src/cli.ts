#!/usr/bin/env node
/**
 * The `revault-auth` command (the package's `bin`): `token`, `whoami` and `mock-server`. Importing
 * this module runs the command line of the current process.
 *
 * @since 2.0.0
 */
import { readFileSync } from "node:fs"
import * as Effect from "effect/Effect"
import { ExitCode, missingPeerMessage, teardown } from "./internal/cliExit.js"

// Beside `dist/cli.js` (and `src/cli.ts`) the package root is one level up.
const packageJson = new URL("../package.json", import.meta.url)

const platformNode = "@effect/platform-node"

const isMissing = (error: unknown, name: string): boolean =>
  error instanceof Error &&
  "code" in error &&
  error.code === "ERR_MODULE_NOT_FOUND" &&
  error.message.includes(`'${name}'`)

// The range this package was built against, for the install command; none if unreadable.
const peerRange = (name: string): string | undefined => {
  try {
    const json: unknown = JSON.parse(readFileSync(packageJson, "utf8"))
    const peers = typeof json === "object" && json !== null && "peerDependencies" in json ? json.peerDependencies : {}
    const entries: ReadonlyArray<[string, unknown]> =
      typeof peers === "object" && peers !== null ? Object.entries(peers) : []
    const range = entries.find(([peer]) => peer === name)?.[1]
    return typeof range === "string" ? range : undefined
  } catch {
    return undefined
  }
}

// `@effect/platform-node` is an optional peer: the library runs without it, the CLI does not.
// Without it, one line says what to install instead of a module-resolution stack trace.
try {
  const [NodeRuntime, NodeServices, Cli] = await Promise.all([
    import("@effect/platform-node/NodeRuntime"),
    import("@effect/platform-node/NodeServices"),
    import("./internal/cli.js")
  ])
  Cli.main(process.argv.slice(2), packageJson).pipe(
    Effect.provide(NodeServices.layer),
    // `main` reports failures itself, on stderr; `teardown` turns them into exit codes.
    NodeRuntime.runMain({ disableErrorReporting: true, teardown })
  )
} catch (error) {
  if (!isMissing(error, platformNode)) throw error
  process.stderr.write(`${missingPeerMessage(platformNode, peerRange(platformNode))}\n`)
  process.exitCode = ExitCode.config
}
