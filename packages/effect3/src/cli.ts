#!/usr/bin/env node
/**
 * The `revault-auth` command (the package's `bin`): `token`, `whoami` and `mock-server`. Importing
 * this module runs the command line of the current process.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Cli from "./internal/cli.js"

// Beside `dist/cli.js` (and `src/cli.ts`) the package root is one level up.
const packageJson = new URL("../package.json", import.meta.url)

Cli.main(process.argv, packageJson).pipe(
  Effect.provide(NodeContext.layer),
  // `main` reports failures itself, on stderr; `teardown` turns them into exit codes.
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown: Cli.teardown })
)
