/**
 * The smallest program: provide the layer once, call the API.
 *
 *   REVAULT_API_BASE_URL=https://.../v1/rest REVAULT_WORKSPACE=... \
 *   REVAULT_API_KEY_ID=... REVAULT_API_KEY_SECRET=... npx tsx examples/basic.ts
 */
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { RevaultAuth } from "effect-revault-auth"

const program = Effect.gen(function* () {
  const user = yield* RevaultAuth.me
  yield* Console.log(`Signed in as ${user.name ?? user.id} in workspace ${user.workspace ?? "?"}`)
})

program.pipe(Effect.provide(RevaultAuth.layerConfig()), Effect.provide(NodeHttpClient.layerUndici), NodeRuntime.runMain)
