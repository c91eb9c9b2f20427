/**
 * A larger program: its own services depend on AuthHttpClient, add their own policies
 * (status filter, transient retries), decode responses with Schema, and recover from the
 * library's tagged errors.
 *
 *   REVAULT_API_BASE_URL=... REVAULT_WORKSPACE=... REVAULT_API_KEY_ID=... \
 *   REVAULT_API_KEY_SECRET=... npx tsx examples/compose.ts
 */

import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HttpClient from "effect/http/HttpClient"
import type * as HttpClientError from "effect/http/HttpClientError"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { type AuthError, AuthHttpClient, RevaultAuth } from "effect-revault-auth"

// The part of GET /users/me this program cares about; other fields are ignored.
class Operator extends Schema.Class<Operator>("Operator")({
  id: Schema.String,
  role: Schema.String,
  workspace: Schema.String
}) {}

// A service of the application, written against the authenticated client.
type DirectoryError = HttpClientError.HttpClientError | AuthError.AuthError | Schema.SchemaError

class Directory extends Context.Service<
  Directory,
  { readonly currentOperator: Effect.Effect<Operator, DirectoryError> }
>()("app/Directory") {}

const makeDirectory = (client: HttpClient.HttpClient.With<HttpClientError.HttpClientError | AuthError.AuthError>) =>
  Directory.of({
    currentOperator: client.get("/users/me").pipe(Effect.flatMap(HttpIncomingMessage.schemaBodyJson(Operator)))
  })

const DirectoryLive = Layer.effect(
  Directory,
  Effect.map(AuthHttpClient.AuthHttpClient, (authenticated) =>
    makeDirectory(
      authenticated.pipe(
        // The library imposes no policy: this program wants 2xx only and retries transient failures.
        HttpClient.filterStatusOk,
        HttpClient.retryTransient({ schedule: Schedule.exponential("200 millis"), times: 3 })
      )
    )
  )
)

const program = Effect.gen(function* () {
  const directory = yield* Directory
  const operator = yield* directory.currentOperator
  yield* Console.log(`operator ${operator.id} (${operator.role}) in ${operator.workspace}`)
}).pipe(
  Effect.catchTags({
    UnauthorizedError: (error) => Console.error(`The API key was refused (${error.code}): ${error.message}`),
    ForbiddenError: (error) => Console.error(`The key may not use this workspace: ${error.message}`),
    TransportError: (error) => Console.error(`Revault is unreachable: ${error.message}`),
    // Effect 4: one HttpClientError class; what went wrong is its `reason`.
    HttpClientError: (error) => Console.error(`Unexpected answer: ${error.response?.status ?? error.reason._tag}`)
  })
)

program.pipe(
  Effect.provide(DirectoryLive),
  Effect.provide(RevaultAuth.layerConfig()),
  Effect.provide(NodeHttpClient.layerUndici),
  NodeRuntime.runMain
)
