/**
 * The quickstart (`npm start`): starts the embedded MockRevault on loopback with short token
 * lifetimes, or uses the real API when REVAULT_API_BASE_URL is set, and calls GET /users/me
 * across two refreshes, printing what happens. It never prints a token or a secret.
 */

import type * as HttpClient from "@effect/platform/HttpClient"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

const useRealApi = process.env.REVAULT_API_BASE_URL !== undefined

// Against the mock: 6 s access tokens (refreshed ahead at 80 %, i.e. 4.8 s), 15 s refresh tokens.
const auth: Layer.Layer<RevaultAuth.Services, unknown, HttpClient.HttpClient> = useRealApi
  ? RevaultAuth.layerConfig()
  : RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig({ expirySkew: "1 second" })).pipe(
      Layer.provideMerge(MockRevault.layer({ accessTokenTtl: "6 seconds", refreshTokenTtl: "15 seconds" }))
    )

const program = Effect.gen(function* () {
  const service = yield* AuthService.AuthService
  const started = yield* Clock.currentTimeMillis
  const at = (millis: number) => `${((millis - started) / 1000).toFixed(1).padStart(5)}s`
  const now = Effect.map(Clock.currentTimeMillis, at)
  yield* Console.log(useRealApi ? `Using ${process.env.REVAULT_API_BASE_URL}` : "Started MockRevault on loopback")

  let previous: AuthService.AuthSession | undefined
  for (let call = 1; call <= 6; call++) {
    const session = yield* service.session
    if (previous === undefined || Redacted.value(previous.accessToken) !== Redacted.value(session.accessToken)) {
      // A token refreshed in the background is seen at the next call: each line carries the time
      // the token arrived, so its words hold against the expiry printed for the one before.
      const obtained = session.obtainedAt.getTime()
      const how =
        previous === undefined
          ? "token obtained with the API key"
          : session.source === "authenticate"
            ? "token obtained again with the API key"
            : obtained < previous.expiresAt.getTime()
              ? "token refreshed ahead of expiry, with the refresh token"
              : "token refreshed after the previous one expired, with the refresh token"
      yield* Console.log(`${at(obtained)}  ${how}; it expires at ${at(session.expiresAt.getTime()).trim()}`)
      previous = session
    }
    const user = yield* RevaultAuth.me
    yield* Console.log(
      `${yield* now}  GET /users/me -> ${user.name ?? user.id} (${user.role ?? "?"}) in ${user.workspace ?? "?"}`
    )
    if (call < 6) yield* Effect.sleep("2 seconds")
  }
  yield* Console.log("Done: every call carried a valid token; none was printed.")
})

program.pipe(Effect.provide(auth), Effect.provide(NodeHttpClient.layerUndici), NodeRuntime.runMain)
