import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as AuthConfig from "../src/AuthConfig.js"
import { AuthService } from "../src/AuthService.js"
import * as MockRevault from "../src/MockRevault.js"
import * as RevaultAuth from "../src/RevaultAuth.js"

const keys = [
  { apiKeyId: "key-a", apiKeySecret: "secret-a", workspaces: ["workspace-a"] },
  { apiKeyId: "key-b", apiKeySecret: "secret-b", workspaces: ["workspace-b"] }
] as const

const credentials = (key: (typeof keys)[number]) => ({
  workspace: key.workspaces[0],
  apiKeyId: key.apiKeyId,
  apiKeySecret: key.apiKeySecret
})

// What a service of the user's program sees of its workspace: its token and who /users/me says it is.
interface Workspace {
  readonly token: string
  readonly user: RevaultAuth.User
}

class WorkspaceA extends Context.Service<WorkspaceA, Workspace>()("test/WorkspaceA") {}
class WorkspaceB extends Context.Service<WorkspaceB, Workspace>()("test/WorkspaceB") {}

const workspace = Effect.gen(function* () {
  const auth = yield* AuthService
  const token = Redacted.value(yield* auth.accessToken)
  const user = yield* Effect.orDie(RevaultAuth.me)
  return { token, user }
})

const withMock = <A, E, R>(f: (mock: MockRevault.Service) => Layer.Layer<A, E, R>) =>
  Layer.unwrap(Effect.map(MockRevault.MockRevault, f))

const twoWorkspaces = <E, R>(
  auth: (key: (typeof keys)[number], mock: MockRevault.Service) => Layer.Layer<RevaultAuth.Services, E, R>
) =>
  Layer.mergeAll(
    Layer.effect(WorkspaceA, workspace).pipe(Layer.provide(withMock((mock) => auth(keys[0], mock)))),
    Layer.effect(WorkspaceB, workspace).pipe(Layer.provide(withMock((mock) => auth(keys[1], mock))))
  ).pipe(Layer.provideMerge(MockRevault.layer({ keys })), Layer.provide(NodeHttpClient.layerUndici))

const assertTwoWorkspaces = Effect.gen(function* () {
  const a = yield* WorkspaceA
  const b = yield* WorkspaceB
  assert.notStrictEqual(a.token, b.token)
  assert.deepStrictEqual([a.user.workspace, b.user.workspace], ["workspace-a", "workspace-b"])
  assert.strictEqual(yield* Effect.flatMap(MockRevault.MockRevault, (mock) => mock.count("authenticate")), 2)
})

describe("Two workspaces in one layer graph", () => {
  it.effect("RevaultAuth.layer: each call has its own token manager", () =>
    assertTwoWorkspaces.pipe(
      Effect.provide(twoWorkspaces((key, mock) => RevaultAuth.layer({ baseUrl: mock.baseUrl, ...credentials(key) })))
    )
  )

  it.effect("RevaultAuth.layerConfig: each call has its own token manager", () =>
    assertTwoWorkspaces.pipe(
      Effect.provide(
        twoWorkspaces((key, mock) => RevaultAuth.layerConfig({ baseUrl: mock.baseUrl, ...credentials(key) }))
      )
    )
  )

  it.effect("RevaultAuth.fromConfigLayer: each call has its own token manager", () =>
    assertTwoWorkspaces.pipe(
      Effect.provide(
        twoWorkspaces((key, mock) =>
          RevaultAuth.fromConfigLayer(AuthConfig.layer({ baseUrl: mock.baseUrl, ...credentials(key) }))
        )
      )
    )
  )

  it.effect("one call's layer used by two services is one token manager", () =>
    Effect.gen(function* () {
      const a = yield* WorkspaceA
      const b = yield* WorkspaceB
      assert.strictEqual(a.token, b.token)
      assert.strictEqual(yield* Effect.flatMap(MockRevault.MockRevault, (mock) => mock.count("authenticate")), 1)
    }).pipe(
      Effect.provide(
        Layer.unwrap(
          Effect.map(MockRevault.MockRevault, (mock) => {
            const auth = RevaultAuth.layer({ baseUrl: mock.baseUrl, ...credentials(keys[0]) })
            return Layer.mergeAll(
              Layer.effect(WorkspaceA, workspace).pipe(Layer.provide(auth)),
              Layer.effect(WorkspaceB, workspace).pipe(Layer.provide(auth))
            )
          })
        ).pipe(Layer.provideMerge(MockRevault.layer({ keys })), Layer.provide(NodeHttpClient.layerUndici))
      )
    )
  )
})
