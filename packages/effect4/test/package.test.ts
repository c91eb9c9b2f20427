// The published artefact works, not just the source tree: build and pack the package, then install
// the tarball into a new project from the registry as a user would, and there import it by name,
// obtain a token from MockRevault, call GET /users/me through AuthHttpClient, run its bin and
// typecheck a consumer.
//
// - Latest: `npm init -y && npm i effect @effect/platform-node <tarball>`, no versions and no flags:
//   the install line of the README must resolve (no ERESOLVE) against what the registry serves today.
// - Lower bound: the lowest `effect` and `@effect/platform-node` the peer range declares (with
//   `@effect/platform-node-shared` at the same floor), so the declared range is one this package
//   really works with.
//
// The build goes to a staging folder (package.json, README.md, LICENSE and a fresh dist/), packed
// from there with `npm pack`: the same files `files` selects from the repository, without touching
// the repository's own dist/. npm runs with CI=true (no prompts, no progress) and a time bound;
// everything runs on the Node 24 of node_modules/.bin, the Node this line is developed on.
import { execFile } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"

const root = fileURLToPath(new URL("..", import.meta.url))
const bin = join(root, "node_modules", ".bin")
const node = join(bin, "node")
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
const npm = process.platform === "win32" ? "npm.cmd" : "npm"

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

// No REVAULT_* variable of the developer's shell reaches the children; npm runs non-interactively,
// on Node 24 (first on the PATH).
const childEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("REVAULT_"))),
  CI: "true",
  PATH: `${bin}${delimiter}${process.env.PATH ?? ""}`
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout: number) =>
  Effect.promise(
    (): Promise<Result> =>
      promisify(execFile)(command, [...args], { cwd, timeout, maxBuffer: 16 * 1024 * 1024, env: childEnv }).then(
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
    : Effect.die(new Error(`${what} exited with ${result.code}\n${result.stdout}\n${result.stderr}`))

interface Manifest {
  readonly version: string
  readonly peerDependencies?: Record<string, string>
  readonly bin?: Record<string, string>
}

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"))

/** The lowest version a `^x.y.z`, `~x.y.z`, `>=x.y.z` or exact range allows. */
const lowestOf = (range: string): string => {
  const match = /^(?:\^|~|>=)?\s*(\d+\.\d+\.\d+)$/.exec(range.trim())
  if (match === null) throw new Error(`unsupported peer range: ${range}`)
  return match[1] ?? ""
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "revault-package-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

// Run in the new project: imports by name only, as a user's program would.
const smokeScript = `
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
  const mock = yield* MockRevault.MockRevault
  const auth = yield* AuthService.AuthService
  const session = yield* auth.session
  const jwt = /^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/.test(Redacted.value(session.accessToken))
  console.log(\`token source=\${session.source} jwt=\${jwt} printed=\${String(session.accessToken)}\`)
  const client = yield* AuthHttpClient.AuthHttpClient
  const response = yield* client.get("/users/me")
  const user = yield* response.json
  console.log(\`GET /users/me \${response.status} id=\${user.id} workspace=\${user.workspace}\`)
  console.log(\`requests \${(yield* mock.requests).map((entry) => entry.route).join(",")}\`)
})

await Effect.runPromise(
  program.pipe(Effect.provide(TestRevault), Effect.provide(NodeHttpClient.layerUndici), Effect.scoped)
)

for (const hidden of ["effect-revault-auth/internal/tokenManager", "effect-revault-auth/cli"]) {
  const outcome = await import(hidden).then(() => "importable", (error) => error.code)
  console.log(\`\${hidden}: \${outcome}\`)
}
`

const smokeOutput = [
  "token source=authenticate jwt=true printed=<redacted>",
  "GET /users/me 200 id=usr_demo-key-id workspace=demo",
  "requests authenticate,me",
  "effect-revault-auth/internal/tokenManager: ERR_PACKAGE_PATH_NOT_EXPORTED",
  "effect-revault-auth/cli: ERR_PACKAGE_PATH_NOT_EXPORTED"
]

// Typechecked in the new project, against the package's own .d.ts files and the installed effect.
const consumerSource = `
import * as Effect from "effect/Effect"
import type * as HttpClientResponse from "effect/http/HttpClientResponse"
import { type AuthError, AuthHttpClient, AuthService, RevaultAuth } from "effect-revault-auth"
import * as MockRevault from "effect-revault-auth/MockRevault"

export const source: Effect.Effect<AuthService.Source, AuthError.AuthError, AuthService.AuthService> = Effect.flatMap(
  AuthService.AuthService,
  (auth) => Effect.map(auth.session, (session) => session.source)
)
export const me: Effect.Effect<HttpClientResponse.HttpClientResponse, unknown, AuthHttpClient.AuthHttpClient> =
  Effect.flatMap(AuthHttpClient.AuthHttpClient, (client) => client.get("/users/me"))
export const layer = RevaultAuth.fromConfigLayer(MockRevault.layerAuthConfig())
export const fault: MockRevault.Fault = MockRevault.Fault.Status({ status: 503 })
`

/** Builds and packs the package into `tmp`; returns the tarball's path. */
const pack = (tmp: string) =>
  Effect.gen(function* () {
    const stage = join(tmp, "stage")
    mkdirSync(stage)
    for (const file of ["package.json", "README.md", "LICENSE"]) cpSync(join(root, file), join(stage, file))
    yield* expectOk(
      "tsc -p tsconfig.build.json",
      yield* run(node, [tsc, "-p", "tsconfig.build.json", "--outDir", join(stage, "dist")], root, 120_000)
    )
    // npm pack: only what `files` selects, with the ESM, declarations and source maps.
    const packed = yield* expectOk(
      "npm pack",
      yield* run(npm, ["pack", stage, "--pack-destination", tmp, "--json", "--loglevel=error"], tmp, 60_000)
    )
    const [result] = JSON.parse(packed.stdout) as ReadonlyArray<{
      filename: string
      files: ReadonlyArray<{ path: string }>
    }>
    if (result === undefined) return yield* Effect.die(new Error(`npm pack printed no result: ${packed.stdout}`))
    const files = result.files.map((f) => f.path)
    assert.deepStrictEqual(
      files.filter((f) => !["package.json", "README.md", "LICENSE"].includes(f) && !f.startsWith("dist/")),
      []
    )
    for (const file of ["index.js", "index.d.ts", "index.js.map", "index.d.ts.map", "MockRevault.js", "cli.js"]) {
      assert.include(files, `dist/${file}`)
    }
    return join(tmp, result.filename)
  })

/**
 * A new project (`npm init -y`), `npm i <packages> <tarball>` from the registry, then the smoke
 * script, the bin and a typechecked consumer, all on Node 24.
 */
const installAndUse = (tmp: string, name: string, tarball: string, packages: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const project = join(tmp, name)
    mkdirSync(project)
    yield* expectOk("npm init -y", yield* run(npm, ["init", "-y"], project, 30_000))
    const install = yield* run(npm, ["i", ...packages, tarball], project, 240_000)
    assert.notMatch(`${install.stdout}${install.stderr}`, /ERESOLVE/, "npm could not resolve the peer dependencies")
    yield* expectOk(`npm i ${packages.join(" ")} <tarball>`, install)

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
        run(node, ["smoke.mjs"], project, 60_000),
        run(node, [join(project, "node_modules", ".bin", "revault-auth"), "--version"], project, 60_000),
        run(node, [tsc, "-p", "tsconfig.json", "--pretty", "false"], project, 120_000)
      ],
      { concurrency: "unbounded" }
    )
    yield* expectOk("node smoke.mjs", smoke)
    assert.deepStrictEqual(smoke.stdout.trim().split("\n"), smokeOutput)
    // The installed package, not the source tree, answered.
    assert.match(
      readFileSync(join(project, "node_modules", "effect-revault-auth", "dist", "index.js"), "utf8"),
      /export \* as RevaultAuth/
    )
    yield* expectOk("revault-auth --version", version)
    assert.strictEqual(version.stdout.trim(), manifest(root).version)
    yield* expectOk("tsc on a consumer of the package", types)
    return project
  })

describe("the packed package", () => {
  it("the lower bound is read from the declared peer range", () => {
    assert.strictEqual(lowestOf("^4.1.0"), "4.1.0")
    assert.strictEqual(lowestOf("~4.1.2"), "4.1.2")
    assert.strictEqual(lowestOf(">=4.1.0"), "4.1.0")
    assert.throws(() => lowestOf("4.x || 5.x"))
    const peers = manifest(root).peerDependencies ?? {}
    assert.deepStrictEqual(Object.keys(peers).sort(), ["@effect/platform-node", "effect"])
  })

  it.live(
    "installs from the registry with no versions and no flags, imports by name, gets a token and GET /users/me",
    () =>
      Effect.gen(function* () {
        const tmp = yield* tempDir
        const tarball = yield* pack(tmp)
        const project = yield* installAndUse(tmp, "latest", tarball, ["effect", "@effect/platform-node"])
        // What npm chose satisfies the declared range's floor (it is the latest release).
        for (const [name, range] of Object.entries(manifest(root).peerDependencies ?? {})) {
          const installed = manifest(join(project, "node_modules", name)).version
          assert.isTrue(
            installed.localeCompare(lowestOf(range), undefined, { numeric: true }) >= 0,
            `${name} ${installed} is below ${range}`
          )
        }
      }).pipe(Effect.scoped),
    600_000
  )

  it.live(
    "works with the lowest effect and @effect/platform-node the peer range declares",
    () =>
      Effect.gen(function* () {
        const tmp = yield* tempDir
        const tarball = yield* pack(tmp)
        const peers = manifest(root).peerDependencies ?? {}
        const lowest = Object.entries(peers).map(([name, range]) => `${name}@${lowestOf(range)}`)
        // `@effect/platform-node` takes its shared half with a caret range, so npm would pick that
        // half's newest patch, which peers the newest `effect` and makes npm override the pinned one.
        // A user pinning the floor pins the half with it; so does this test.
        const platformNode = peers["@effect/platform-node"]
        if (platformNode !== undefined) lowest.push(`@effect/platform-node-shared@${lowestOf(platformNode)}`)
        const project = yield* installAndUse(tmp, "lowest", tarball, lowest)
        for (const [name, range] of Object.entries(peers)) {
          assert.strictEqual(manifest(join(project, "node_modules", name)).version, lowestOf(range))
        }
      }).pipe(Effect.scoped),
    600_000
  )
})
