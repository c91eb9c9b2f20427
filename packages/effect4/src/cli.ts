#!/usr/bin/env node
/**
 * The `revault-auth` command (the package's `bin`): `token`, `whoami` and `mock-server`. Importing
 * this module runs the command line of the current process.
 *
 * @since 2.0.0
 */
import { runCommandLine } from "./internal/shared/cliHelp.js"

// Beside `dist/cli.js` (and `src/cli.ts`) the package root is one level up.
const packageJson = new URL("../package.json", import.meta.url)

await runCommandLine(packageJson, async (args) => {
  const Cli = await import("./internal/cli.js")
  Cli.run(args, packageJson)
})
