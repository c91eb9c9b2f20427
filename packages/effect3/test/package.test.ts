// The published artefact works, not just the source tree: build and pack the package, install the
// tarball into a new project with its peer dependencies, offline (from npm's cache, where
// `npm ci` left them), and there import it by name, obtain a token from MockRevault, run its bin
// and typecheck a consumer.
//
// The build goes to a staging folder (package.json, README.md, LICENSE and a fresh dist/), packed
// from there with `npm pack`: the same files `files` selects from the repository, without touching
// the repository's own dist/, which test/cli.test.ts runs from while this test builds.
//
// If the offline install fails (no npm cache, say), the test falls back to what npm would have
// made: the tarball unpacked into node_modules/effect-revault-auth, and every dependency and peer
// dependency the packed package.json declares linked from the repository's node_modules.
//
// A second test installs as the README tells users to, with no fallback: `npm init -y`, then
// `npm i` of the peers by their ranges and the tarball (from npm's cache where it holds them,
// else the registry), and there gets a token from MockRevault and `GET /users/me` through
// `AuthHttpClient`.
import { execFile } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const root = fileURLToPath(new URL("..", import.meta.url))
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout: number) =>
  Effect.promise(
    (): Promise<Result> =>
      promisify(execFile)(command, [...args], {
        cwd,
        timeout,
        maxBuffer: 16 * 1024 * 1024,
        // No REVAULT_* variable of the developer's shell reaches the children.
        env: Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("REVAULT_")))
      }).then(
        ({ stderr, stdout }) => ({ code: 0, stdout, stderr }),
        (error: { code?: number | string; stdout?: string; stderr?: string; message?: string }) => ({
          code: typeof error.code === "number" ? error.code : -1,
          stdout: error.stdout ?? "",
          stderr: `${error.stderr ?? ""}${error.message ?? ""}`
        })
      )
  )

const expectOk = (what: string, result: Result) =>
  result.code === 0
    ? Effect.succeed(result)
    : Effect.dieMessage(`${what} exited with ${result.code}\n${result.stdout}\n${result.stderr}`)

const packageJson = (dir: string): { version: string } & Record<string, unknown> =>
  JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))

const installedVersion = (name: string) => packageJson(join(root, "node_modules", name)).version

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "revault-package-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

interface Packed {
  readonly tarball: string
  /** The paths the tarball holds, relative to its package folder. */
  readonly files: ReadonlyArray<string>
}

// Both tests install the same tarball: built and packed once, into a folder of its own.
const packDir = mkdtempSync(join(tmpdir(), "revault-pack-"))
let packed: Packed | undefined

const pack = Effect.gen(function* () {
  const stage = join(packDir, "stage")
  mkdirSync(stage)
  for (const file of ["package.json", "README.md", "LICENSE"]) cpSync(join(root, file), join(stage, file))
  yield* expectOk(
    "tsc -p tsconfig.build.json",
    yield* run(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", join(stage, "dist")], root, 60_000)
  )
  // npm pack: only what `files` selects, with the ESM, declarations and source maps.
  const result = yield* expectOk(
    "npm pack",
    yield* run(npm, ["pack", stage, "--pack-destination", packDir, "--json", "--loglevel=error"], packDir, 30_000)
  )
  const [entry] = JSON.parse(result.stdout) as ReadonlyArray<{
    filename: string
    files: ReadonlyArray<{ path: string }>
  }>
  if (entry === undefined) return yield* Effect.dieMessage(`npm pack printed no package:\n${result.stdout}`)
  return { tarball: join(packDir, entry.filename), files: entry.files.map((f) => f.path) }
})

beforeAll(async () => {
  packed = await Effect.runPromise(pack)
}, 120_000)

afterAll(() => rmSync(packDir, { recursive: true, force: true }))

const packedPackage = Effect.suspend(() =>
  packed === undefined ? Effect.dieMessage("the package was not packed") : Effect.succeed(packed)
)

// Run in the new project: imports by name only, as a user's program would.
const smokeScript = `
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

const TestRevault = RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig()).pipe(
  Layer.provideMerge(MockRevault.layer())
)

const program = Effect.gen(function* () {
  const mock = yield* MockRevault.MockRevault
  const auth = yield* AuthService.AuthService
  const session = yield* auth.session
  const jwt = /^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/.test(Redacted.value(session.accessToken))
  console.log(\`token source=\${session.source} jwt=\${jwt} printed=\${String(session.accessToken)}\`)
  const user = yield* RevaultAuth.me
  console.log(\`me id=\${user.id} workspace=\${user.workspace}\`)
  console.log(\`requests \${(yield* mock.requests).map((entry) => entry.route).join(",")}\`)
})

await Effect.runPromise(program.pipe(Effect.provide(TestRevault), Effect.provide(NodeHttpClient.layerUndici)))

for (const hidden of ["effect-revault-auth/internal/tokenManager", "effect-revault-auth/cli"]) {
  const outcome = await import(hidden).then(() => "importable", (error) => error.code)
  console.log(\`\${hidden}: \${outcome}\`)
}
`

// Typechecked in the new project, against the package's own .d.ts files.
const consumerSource = `
import * as Effect from "effect/Effect"
import { type AuthError, AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

export const source: Effect.Effect<AuthService.Source, AuthError.AuthError, AuthService.AuthService> = Effect.flatMap(
  AuthService.AuthService,
  (auth) => Effect.map(auth.session, (session) => session.source)
)
export const layer = RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig())
export const fault: MockRevault.Fault = MockRevault.Fault.Status({ status: 503 })
`

// Run in the fresh project (`npm init -y` makes it CommonJS, hence .mjs): imports by name only.
const freshScript = `
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { AuthHttpClient, AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

const TestRevault = RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig()).pipe(
  Layer.provideMerge(MockRevault.layer())
)

const program = Effect.gen(function* () {
  const token = yield* Effect.flatMap(AuthService.AuthService, (auth) => auth.accessToken)
  const jwt = /^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/.test(Redacted.value(token))
  console.log(\`token jwt=\${jwt} printed=\${String(token)}\`)
  const client = yield* AuthHttpClient.AuthHttpClient
  const response = yield* client.get("/users/me")
  const user = yield* response.json
  console.log(\`GET /users/me \${response.status} id=\${user.id} workspace=\${user.workspace}\`)
  const requests = yield* Effect.flatMap(MockRevault.MockRevault, (mock) => mock.requests)
  console.log(\`requests \${requests.map((entry) => \`\${entry.route}:\${entry.token ?? "-"}\`).join(",")}\`)
})

await Effect.runPromise(program.pipe(Effect.provide(TestRevault), Effect.provide(NodeHttpClient.layerUndici)))
`

describe("the packed package", () => {
  it.live(
    "installs into a new project, imports by name and obtains a token from MockRevault",
    () =>
      Effect.gen(function* () {
        const tmp = yield* tempDir
        const project = join(tmp, "project")
        mkdirSync(project)
        const { files, tarball } = yield* packedPackage
        assert.deepStrictEqual(
          files.filter((f) => !["package.json", "README.md", "LICENSE"].includes(f) && !f.startsWith("dist/")),
          []
        )
        for (const file of ["index.js", "index.d.ts", "index.js.map", "index.d.ts.map", "MockRevault.js", "cli.js"]) {
          assert.include(files, `dist/${file}`)
        }

        // A new project; the package and its peers, at the versions this repository was tested with.
        writeFileSync(
          join(project, "package.json"),
          JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2)
        )
        const peers = ["effect", "@effect/platform", "@effect/platform-node"].map(
          (name) => `${name}@${installedVersion(name)}`
        )
        const install = yield* run(
          npm,
          [
            "install",
            "--offline",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--no-package-lock",
            "--loglevel=error",
            tarball,
            ...peers
          ],
          project,
          90_000
        )
        if (install.code !== 0) {
          // No cache to install from: lay out node_modules as npm would have, from this repository's.
          yield* Effect.logWarning(`offline npm install failed, linking node_modules instead:\n${install.stderr}`)
          const installed = join(project, "node_modules", "effect-revault-auth")
          mkdirSync(installed, { recursive: true })
          yield* expectOk(
            "tar",
            yield* run("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"], project, 30_000)
          )
          const manifest = packageJson(installed) as {
            dependencies?: Record<string, string>
            peerDependencies?: Record<string, string>
          }
          for (const name of Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })) {
            mkdirSync(dirname(join(project, "node_modules", name)), { recursive: true })
            symlinkSync(join(root, "node_modules", name), join(project, "node_modules", name), "dir")
          }
          const bin = join(project, "node_modules", ".bin")
          mkdirSync(bin, { recursive: true })
          symlinkSync(join(installed, "dist", "cli.js"), join(bin, "revault-auth"))
        }

        writeFileSync(join(project, "smoke.mjs"), smokeScript)
        writeFileSync(join(project, "consumer.ts"), consumerSource)
        writeFileSync(
          join(project, "tsconfig.json"),
          JSON.stringify({
            compilerOptions: {
              target: "ES2022",
              lib: ["ES2022", "DOM"],
              module: "NodeNext",
              moduleResolution: "NodeNext",
              strict: true,
              exactOptionalPropertyTypes: true,
              skipLibCheck: true,
              types: [],
              noEmit: true
            },
            files: ["consumer.ts"]
          })
        )

        const [smoke, version, types] = yield* Effect.all(
          [
            run(process.execPath, ["smoke.mjs"], project, 30_000),
            run(
              process.execPath,
              [join(project, "node_modules", ".bin", "revault-auth"), "--version"],
              project,
              30_000
            ),
            run(process.execPath, [tsc, "-p", "tsconfig.json", "--pretty", "false"], project, 60_000)
          ],
          { concurrency: "unbounded" }
        )

        yield* expectOk("node smoke.mjs", smoke)
        assert.deepStrictEqual(smoke.stdout.trim().split("\n"), [
          "token source=authenticate jwt=true printed=<redacted>",
          "me id=usr_demo-key-id workspace=demo",
          "requests authenticate,me",
          "effect-revault-auth/internal/tokenManager: ERR_PACKAGE_PATH_NOT_EXPORTED",
          "effect-revault-auth/cli: ERR_PACKAGE_PATH_NOT_EXPORTED"
        ])
        // The installed package, not the source tree, answered.
        assert.match(
          readFileSync(join(project, "node_modules", "effect-revault-auth", "dist", "index.js"), "utf8"),
          /export \* as RevaultAuth/
        )

        yield* expectOk("revault-auth --version", version)
        assert.strictEqual(version.stdout.trim(), packageJson(root).version)

        yield* expectOk("tsc on a consumer of the package", types)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "a fresh project: npm init -y, npm i of the peers by range and the tarball, a token and GET /users/me",
    () =>
      Effect.gen(function* () {
        const tmp = yield* tempDir
        const { tarball } = yield* packedPackage
        const manifest = packageJson(root) as { peerDependencies?: Record<string, string> }
        const peers = Object.entries(manifest.peerDependencies ?? {}).map(([name, range]) => `${name}@${range}`)
        assert.sameMembers(peers, ["effect@^3.22.4", "@effect/platform@^0.97.2", "@effect/platform-node@^0.108.2"])

        yield* expectOk("npm init -y", yield* run(npm, ["init", "-y"], tmp, 30_000))
        // From npm's cache where it holds what the ranges resolve to, else from the registry. No
        // install script runs (npm 11 runs none it was not told to trust; older npm would).
        yield* expectOk(
          "npm i",
          yield* run(
            npm,
            [
              "i",
              "--prefer-offline",
              "--ignore-scripts",
              "--no-audit",
              "--no-fund",
              "--loglevel=error",
              ...peers,
              tarball
            ],
            tmp,
            180_000
          )
        )
        const installed = (name: string) => packageJson(join(tmp, "node_modules", name)).version
        assert.strictEqual(installed("effect-revault-auth"), packageJson(root).version)
        assert.match(installed("effect"), /^3\./)
        // One effect for the program and the package: a second copy would split its tags.
        assert.isFalse(existsSync(join(tmp, "node_modules", "effect-revault-auth", "node_modules", "effect")))

        writeFileSync(join(tmp, "fresh.mjs"), freshScript)
        const fresh = yield* expectOk("node fresh.mjs", yield* run(process.execPath, ["fresh.mjs"], tmp, 30_000))
        assert.deepStrictEqual(fresh.stdout.trim().split("\n"), [
          "token jwt=true printed=<redacted>",
          "GET /users/me 200 id=usr_demo-key-id workspace=demo",
          "requests authenticate:-,me:valid"
        ])
      }).pipe(Effect.scoped),
    240_000
  )

  it("the README installs the effect3 dist-tag with the peers' ranges", () => {
    const manifest = packageJson(root) as {
      peerDependencies?: Record<string, string>
      publishConfig?: { tag?: string }
    }
    assert.strictEqual(manifest.publishConfig?.tag, "effect3")
    const readme = readFileSync(join(root, "README.md"), "utf8")
    assert.include(readme, "npm i effect-revault-auth@effect3 ")
    const peers = Object.entries(manifest.peerDependencies ?? {})
    assert.lengthOf(peers, 3)
    for (const [name, range] of peers) assert.include(readme, `${name}@${range}`)
  })
})
