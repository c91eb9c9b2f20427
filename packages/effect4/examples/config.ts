/**
 * Configuration from the environment, with a clear message when a variable is missing or an
 * option is invalid, and overrides that win over the environment.
 *
 *   npx tsx examples/config.ts
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { AuthConfig, RevaultAuth } from "effect-revault-auth"

const program = Effect.gen(function* () {
  const config = yield* AuthConfig.AuthConfig
  // The secret is Redacted: printing the config shows <redacted>, never the value.
  yield* Console.log(`workspace ${config.workspace} at ${config.baseUrl}, secret ${String(config.apiKeySecret)}`)
  const user = yield* RevaultAuth.me
  yield* Console.log(`user ${user.id}`)
})

const fail = (message: string) =>
  Effect.andThen(
    Console.error(message),
    Effect.sync(() => {
      process.exitCode = 2
    })
  )

program.pipe(
  // A slower network? Override one option; the rest still comes from REVAULT_* variables.
  Effect.provide(RevaultAuth.layerConfig({ requestTimeout: "20 seconds" })),
  Effect.provide(NodeHttpClient.layerUndici),
  Effect.catchTags({
    AuthConfigError: (error) => fail(`Invalid option ${error.field}: ${error.message}`),
    // A ConfigError names the variable, e.g. Expected string at ["REVAULT_WORKSPACE"].
    ConfigError: (error) => fail(`Missing or malformed environment variable: ${error.message}`)
  }),
  Effect.tapCause(Effect.logError),
  NodeRuntime.runMain
)
