import { type ChildProcess, execFile, spawn } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { promisify, stripVTControlCharacters } from "node:util"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { env } from "../src/AuthConfig.js"
import { variables } from "../src/internal/shared/cliHelp.js"
import * as MockRevault from "../src/MockRevault.js"

// These tests run the built `dist/cli.js` as a user's shell would, against a MockRevault server
// started here on loopback. Every child process is bounded by a timeout and killed if left over.

const root = fileURLToPath(new URL("..", import.meta.url))
const tsc = fileURLToPath(new URL("../node_modules/typescript/bin/tsc", import.meta.url))
const cliPath = fileURLToPath(new URL("../dist/cli.js", import.meta.url))
const packageVersion: unknown = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

const jwtLine = /^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/
// Whether `text` holds an ANSI escape sequence (a color, a cursor move).
const hasAnsi = (text: string): boolean => text.includes("\u001b[")

beforeAll(async () => {
  await promisify(execFile)(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, timeout: 60_000 })
}, 90_000)

interface Result {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

// Only PATH is inherited: a REVAULT_* variable (or NO_COLOR) of the developer's shell must not leak into a test.
// The token cache of every child lives here, never in the real home directory; each test's mock
// listens on its own port, so its tokens land in their own per-server folder.
const cacheHome = mkdtempSync(join(tmpdir(), "revault-auth-cli-"))
afterAll(() => rmSync(cacheHome, { recursive: true, force: true }))

const childEnv = (env: Record<string, string>) => ({ PATH: process.env.PATH ?? "", XDG_CACHE_HOME: cacheHome, ...env })

// Makes the child believe stdout and stderr are terminals, as a shell in a terminal would.
const fakeTty = "--import=data:text/javascript,process.stdout.isTTY=true;process.stderr.isTTY=true"

const run = (
  script: string,
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  nodeOptions: ReadonlyArray<string> = []
) =>
  Effect.async<Result>((resume) => {
    const child = execFile(
      process.execPath,
      [...nodeOptions, script, ...args],
      { cwd: root, env: childEnv(env), timeout: 20_000, killSignal: "SIGKILL" },
      (_error, stdout, stderr) =>
        resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode, stdout, stderr }))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const cli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => run(cliPath, args, env)

const envOf = (mock: MockRevault.Service): Record<string, string> => ({
  REVAULT_API_BASE_URL: mock.baseUrl,
  REVAULT_WORKSPACE: mock.credentials.workspace,
  REVAULT_API_KEY_ID: mock.credentials.apiKeyId,
  REVAULT_API_KEY_SECRET: Redacted.value(mock.credentials.apiKeySecret)
})

const withMock = <A, E>(f: (mock: MockRevault.Service) => Effect.Effect<A, E>) =>
  Effect.flatMap(MockRevault.MockRevault, f).pipe(Effect.provide(MockRevault.layer()), Effect.scoped)

const meStatus = (baseUrl: string, token: string) =>
  HttpClient.execute(HttpClientRequest.get(`${baseUrl}/users/me`).pipe(HttpClientRequest.bearerToken(token))).pipe(
    Effect.map((response) => response.status),
    Effect.provide(NodeHttpClient.layerUndici),
    Effect.scoped
  )

// A port on 127.0.0.1 that nothing listens on: one the mock held a moment ago.
const closedBaseUrl = Effect.scoped(Effect.map(MockRevault.make(), (mock) => mock.baseUrl))

const spawnCli = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, [cliPath, ...args], { cwd: root, env: childEnv({}), stdio: ["ignore", "pipe", "pipe"] })
    ),
    (child) => Effect.sync(() => (child.exitCode === null && child.signalCode === null ? child.kill("SIGKILL") : true))
  )

const exportsIn = (text: string): Record<string, string> =>
  Object.fromEntries(
    [...text.matchAll(/^export (REVAULT_\w+)=(.*)$/gm)].map(([, name = "", value = ""]) => [
      name,
      value.replace(/^'(.*)'$/, "$1")
    ])
  )

// Waits, on stdout events rather than sleeps, until the export lines are out.
const printedExports = (child: ChildProcess) =>
  Effect.async<{ readonly text: string; readonly vars: Record<string, string> }, Error>((resume) => {
    let text = ""
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8")
      const vars = exportsIn(text)
      if (vars.REVAULT_API_KEY_SECRET !== undefined) {
        cleanup()
        resume(Effect.succeed({ text, vars }))
      }
    }
    const onExit = (code: number | null) => {
      cleanup()
      resume(Effect.fail(new Error(`mock-server exited with ${code} before printing its exports: ${text}`)))
    }
    const cleanup = () => {
      child.stdout?.off("data", onData)
      child.off("exit", onExit)
    }
    child.stdout?.on("data", onData)
    child.on("exit", onExit)
    return Effect.sync(cleanup)
  }).pipe(Effect.timeoutFail({ duration: "15 seconds", onTimeout: () => new Error("mock-server printed no exports") }))

const exited = (child: ChildProcess) =>
  Effect.async<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resume(Effect.succeed({ code: child.exitCode, signal: child.signalCode }))
    }
    child.once("exit", (code, signal) => resume(Effect.succeed({ code, signal })))
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("mock-server did not stop") }))

const collect = (stream: NodeJS.ReadableStream | null) => {
  let text = ""
  stream?.on("data", (chunk: Buffer) => {
    text += chunk.toString("utf8")
  })
  return () => text
}

// The built package as installed without `@effect/platform-node`: its dist and package.json, and
// only the other packages it needs, in a folder with no node_modules above it.
const installWithoutPlatformNode = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "revault-auth-no-platform-"))
    cpSync(join(root, "dist"), join(dir, "dist"), { recursive: true, dereference: true })
    cpSync(join(root, "package.json"), join(dir, "package.json"))
    for (const name of ["effect", "jose", "@effect/platform", "@effect/cli"]) {
      const target = join(dir, "node_modules", name)
      mkdirSync(dirname(target), { recursive: true })
      symlinkSync(join(root, "node_modules", name), target, "dir")
    }
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

// Every module a run of the CLI loads, recorded by module hooks into a file of its own.
const loadedBy = (args: ReadonlyArray<string>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "revault-auth-loads-"))),
    (dir) =>
      Effect.gen(function* () {
        const file = join(dir, "loaded.txt")
        const hooks = fileURLToPath(new URL("../../shared/test-support/recordLoads.mjs", import.meta.url))
        const result = yield* run(cliPath, args, { REVAULT_AUTH_LOADED: file }, [`--import=${hooks}`])
        const urls = existsSync(file)
          ? readFileSync(file, "utf8")
              .split("\n")
              .filter((line) => line !== "")
          : []
        return { result, urls }
      }),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

describe("revault-auth (the built CLI)", () => {
  it("the help's variables are AuthConfig.env", () => {
    assert.deepStrictEqual(variables, env)
  })

  it.live("--help: usage, a one-line summary per command, the variables and the exit codes, no boilerplate", () =>
    Effect.gen(function* () {
      for (const args of [["--help"], ["-h"], []]) {
        const help = yield* cli(args)
        assert.strictEqual(help.code, 0, help.stderr)
        assert.strictEqual(help.stderr, "")
        const lines = help.stdout.split("\n")
        assert.include(lines, "  revault-auth <command> [flags]")
        for (const command of ["token", "whoami", "mock-server"]) {
          const row = lines.find((line) => line.startsWith(`  ${command} `))
          assert.match(row ?? "", new RegExp(`^  ${command} +\\S.{10,}$`), command)
        }
        for (const expected of ["EXIT CODES", "REVAULT_API_KEY_SECRET", "--version"]) {
          assert.include(help.stdout, expected)
        }
        for (const boilerplate of ["--wizard", "--completions", "This setting is optional", "A true or false value"]) {
          assert.notInclude(help.stdout, boilerplate)
        }
      }
      const token = yield* cli(["token", "--help"])
      assert.strictEqual(token.code, 0, token.stderr)
      assert.include(token.stdout, "revault-auth token [--no-cache]")
      assert.include(token.stdout, "EXIT CODES")
      const mockServer = yield* cli(["mock-server", "--help"])
      assert.strictEqual(mockServer.code, 0, mockServer.stderr)
      for (const [option, fallback] of [
        ["--port <port>", "0"],
        ["--access-ttl <seconds>", "300"],
        ["--refresh-ttl <seconds>", "1800"]
      ]) {
        assert.match(mockServer.stdout, new RegExp(`^  ${option} .*Default: ${fallback}\\.$`, "m"), option)
      }
      assert.notInclude(mockServer.stdout, "This setting is optional")
    })
  )

  it.live("--version loads no module beyond the entry, the help module and node's own", () =>
    Effect.gen(function* () {
      const { result, urls } = yield* loadedBy(["--version"])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout.trim(), packageVersion)
      const dist = pathToFileURL(join(root, "dist")).href
      const allowed = new Set([`${dist}/cli.js`, `${dist}/internal/shared/cliHelp.js`])
      assert.include(urls, `${dist}/cli.js`, "the hooks saw the entry")
      assert.deepStrictEqual(
        urls.filter((url) => !url.startsWith("node:") && !allowed.has(url)),
        [],
        "loaded beyond the allow-list"
      )
    })
  )

  it.live("--version prints the package version", () =>
    Effect.gen(function* () {
      const result = yield* cli(["--version"])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.strictEqual(result.stdout.trim(), packageVersion)
    })
  )

  it.live("token prints exactly one JWT line, which the server accepts", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const result = yield* cli(["token"], envOf(mock))
        assert.strictEqual(result.code, 0, result.stderr)
        assert.match(result.stdout, jwtLine)
        assert.strictEqual(result.stderr, "")
        assert.strictEqual(yield* meStatus(mock.baseUrl, result.stdout.trim()), 200)
        assert.strictEqual(yield* mock.count("authenticate"), 1)
      })
    )
  )

  it.live("two token runs in a row make one POST in total; --no-cache skips the cache", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const posts = Effect.zipWith(mock.count("authenticate"), mock.count("refresh"), (a, r) => a + r)
        const first = yield* cli(["token"], envOf(mock))
        const second = yield* cli(["token"], envOf(mock))
        assert.strictEqual(first.code, 0, first.stderr)
        assert.strictEqual(second.code, 0, second.stderr)
        assert.strictEqual(second.stdout, first.stdout)
        assert.strictEqual(yield* posts, 1)
        const uncached = yield* cli(["token", "--no-cache"], envOf(mock))
        assert.strictEqual(uncached.code, 0, uncached.stderr)
        assert.match(uncached.stdout, jwtLine)
        assert.notStrictEqual(uncached.stdout, first.stdout)
        assert.strictEqual(yield* posts, 2)
      })
    )
  )

  it.live("whoami prints the user as JSON", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const result = yield* cli(["whoami"], envOf(mock))
        assert.strictEqual(result.code, 0, result.stderr)
        assert.deepStrictEqual(JSON.parse(result.stdout), {
          id: "usr_demo-key-id",
          name: "Demo API operator",
          role: "API_OPERATOR",
          workspace: "demo"
        })
        assert.deepStrictEqual(
          (yield* mock.requests).map((e) => [e.route, e.token]),
          [
            ["authenticate", undefined],
            ["me", "valid"]
          ]
        )
      })
    )
  )

  it.live("a missing variable: exit 2, naming it", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const { REVAULT_API_KEY_ID: _omitted, ...rest } = envOf(mock)
        const result = yield* cli(["token"], rest)
        assert.strictEqual(result.code, 2)
        assert.strictEqual(result.stdout, "")
        assert.match(result.stderr, /^ConfigError: .*REVAULT_API_KEY_ID/)
        assert.strictEqual(yield* mock.count("authenticate"), 0)
      })
    )
  )

  it.live("a missing secret is named, alone or with another variable, for token and whoami", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const { REVAULT_API_KEY_SECRET: _secret, ...noSecret } = envOf(mock)
        const { REVAULT_API_KEY_ID: _id, ...neither } = noSecret
        for (const command of ["token", "whoami"]) {
          const alone = yield* cli([command], noSecret)
          assert.strictEqual(alone.code, 2, alone.stderr)
          assert.strictEqual(alone.stderr, "ConfigError: REVAULT_API_KEY_SECRET is missing\n")
          const two = yield* cli([command], neither)
          assert.strictEqual(two.code, 2, two.stderr)
          assert.strictEqual(
            two.stderr,
            "ConfigError: REVAULT_API_KEY_ID is missing; REVAULT_API_KEY_SECRET is missing\n"
          )
        }
        assert.strictEqual(yield* mock.count("authenticate"), 0)
      })
    )
  )

  it.live("every missing or invalid variable is named at once, and the secret's value never", () =>
    Effect.gen(function* () {
      const secret = "s3cret-value-7f2a91"
      for (const command of ["token", "whoami"]) {
        const nothing = yield* cli([command])
        assert.strictEqual(nothing.code, 2, nothing.stderr)
        for (const variable of [
          "REVAULT_API_BASE_URL",
          "REVAULT_WORKSPACE",
          "REVAULT_API_KEY_ID",
          "REVAULT_API_KEY_SECRET"
        ]) {
          assert.include(nothing.stderr, `${variable} is missing`, command)
        }
        const invalid = yield* cli([command], {
          REVAULT_WORKSPACE: "demo",
          REVAULT_API_KEY_SECRET: secret,
          REVAULT_REFRESH_AT: "soon",
          REVAULT_EXPIRY_SKEW: "-5 seconds"
        })
        assert.strictEqual(invalid.code, 2, invalid.stderr)
        for (const named of [
          "REVAULT_API_BASE_URL is missing",
          "REVAULT_API_KEY_ID is missing",
          "REVAULT_REFRESH_AT: ",
          "REVAULT_EXPIRY_SKEW: "
        ]) {
          assert.include(invalid.stderr, named, command)
        }
        for (const result of [nothing, invalid]) {
          assert.strictEqual(result.stdout, "")
          assert.notInclude(result.stderr, "<redacted>")
          assert.notInclude(result.stderr, secret)
        }
      }
    })
  )

  it.live("an invalid base URL: exit 2 with AuthConfigError naming the variable", () =>
    Effect.gen(function* () {
      const result = yield* cli(["token"], {
        REVAULT_API_BASE_URL: "http://revault.example.com/v1/rest",
        REVAULT_WORKSPACE: "demo",
        REVAULT_API_KEY_ID: "demo-key-id",
        REVAULT_API_KEY_SECRET: "demo-key-secret"
      })
      assert.strictEqual(result.code, 2)
      assert.match(
        result.stderr,
        /^AuthConfigError: REVAULT_API_BASE_URL must use https: for revault\.example\.com;.*\n$/
      )
      assert.notInclude(result.stderr, "demo-key-secret")
    })
  )

  it.live("a wrong secret: exit 3 with UnauthorizedError, and the secret is never printed", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const secret = "not-the-demo-secret-5d1e9c"
        for (const command of ["token", "whoami"]) {
          const result = yield* cli([command], { ...envOf(mock), REVAULT_API_KEY_SECRET: secret })
          assert.strictEqual(result.code, 3, `${command}: ${result.stderr}`)
          assert.strictEqual(result.stdout, "")
          assert.strictEqual(result.stderr, "UnauthorizedError: Invalid API key\n")
          assert.notInclude(result.stdout + result.stderr, secret)
        }
      })
    )
  )

  it.live("a workspace the key may not act on: exit 3 with ForbiddenError", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        const result = yield* cli(["token"], { ...envOf(mock), REVAULT_WORKSPACE: "elsewhere" })
        assert.strictEqual(result.code, 3)
        assert.match(result.stderr, /^ForbiddenError: /)
      })
    )
  )

  it.live("whoami when /users/me refuses the token even after the replay: exit 3", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        yield* mock.fault("me", MockRevault.Fault.Status({ status: 401 }), 2)
        const result = yield* cli(["whoami"], envOf(mock))
        assert.strictEqual(result.code, 3)
        assert.match(result.stderr, /^StatusCodeError: /)
        assert.strictEqual(yield* mock.count("me"), 2)
      })
    )
  )

  it.live("the server is down: exit 4 with one TransportError line, worded once", () =>
    Effect.gen(function* () {
      const baseUrl = yield* closedBaseUrl
      for (const command of ["token", "whoami"]) {
        const result = yield* cli([command], {
          REVAULT_API_BASE_URL: baseUrl,
          REVAULT_WORKSPACE: "demo",
          REVAULT_API_KEY_ID: "demo-key-id",
          REVAULT_API_KEY_SECRET: "demo-key-secret"
        })
        assert.strictEqual(result.code, 4, command)
        assert.strictEqual(result.stdout, "")
        assert.strictEqual(result.stderr, `TransportError: ECONNREFUSED (POST ${baseUrl}/auth/token)\n`, command)
      }
    })
  )

  it.live("a 500 from the token endpoint: exit 4 with InternalServerError", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        yield* mock.fault("authenticate", MockRevault.Fault.Status({ status: 500 }))
        const result = yield* cli(["token"], envOf(mock))
        assert.strictEqual(result.code, 4)
        assert.match(result.stderr, /^InternalServerError: /)
      })
    )
  )

  it.live("a token set living 1e13 s: exit 4 with ResponseDecodeError, nothing cached, the next run works", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        // Beyond the largest Date once added to now: it must be refused at decoding, never stored.
        const absurd = {
          accessToken: "eyJh.eyJz.c2ln",
          expiresInSeconds: 1e13,
          refreshToken: "rt",
          refreshExpiresInSeconds: 1e13
        }
        yield* mock.fault("authenticate", MockRevault.Fault.Body({ text: JSON.stringify(absurd) }))
        const refused = yield* cli(["token"], envOf(mock))
        assert.strictEqual(refused.code, 4, refused.stderr)
        assert.strictEqual(refused.stdout, "")
        assert.match(
          refused.stderr,
          /^ResponseDecodeError: invalid token set in 200 response: expiresInSeconds: Expected a lifetime of at most one year/
        )
        assert.notInclude(refused.stderr, "RangeError")

        const next = yield* cli(["token"], envOf(mock))
        assert.strictEqual(next.code, 0, next.stderr)
        assert.match(next.stdout, jwtLine)
        assert.strictEqual(next.stderr, "")
        assert.strictEqual(yield* mock.count("authenticate"), 2)
      })
    )
  )

  it.live("whoami gives up on a hanging /users/me after REVAULT_REQUEST_TIMEOUT: exit 4 with TransportError", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        yield* mock.fault("me", MockRevault.Fault.Hang())
        const result = yield* cli(["whoami"], { ...envOf(mock), REVAULT_REQUEST_TIMEOUT: "500 millis" })
        assert.strictEqual(result.code, 4, result.stderr)
        assert.strictEqual(result.stdout, "")
        assert.strictEqual(result.stderr, `TransportError: no answer within 500ms (GET ${mock.baseUrl}/users/me)\n`)
      })
    )
  )

  it.live("whoami against a server that never answers: exit 4 with TransportError, not a bare timeout", () =>
    withMock((mock) =>
      Effect.gen(function* () {
        yield* mock.fault("authenticate", MockRevault.Fault.Hang(), 10)
        yield* mock.fault("me", MockRevault.Fault.Hang(), 10)
        const result = yield* cli(["whoami"], { ...envOf(mock), REVAULT_REQUEST_TIMEOUT: "500 millis" })
        assert.strictEqual(result.code, 4, result.stderr)
        assert.strictEqual(result.stdout, "")
        assert.match(result.stderr, /^TransportError: no answer within 500ms \(authenticate\)\n$/)
        assert.notInclude(result.stderr, "Timeout")
        assert.strictEqual(yield* mock.count("me"), 0)
      })
    )
  )

  it.live("an unknown subcommand or flag: exit 1, the error on stderr, nothing on stdout", () =>
    Effect.gen(function* () {
      for (const args of [["tokn"], ["token", "--bogus"], ["mock-server", "--port", "70000"]]) {
        const result = yield* cli(args)
        assert.strictEqual(result.code, 1, args.join(" "))
        assert.strictEqual(result.stdout, "")
        assert.notStrictEqual(result.stderr, "")
      }
      const unknown = yield* cli(["tokn"])
      assert.include(unknown.stderr, "mock-server")
    })
  )

  it.live(
    "no ANSI escapes unless the stream is a terminal, and none there with NO_COLOR or TERM=dumb",
    () =>
      Effect.gen(function* () {
        // A usage error and a configuration error: the parser's output and the CLI's own.
        const failures = [["token", "--bogus"], ["token"]]
        const runs = (env: Record<string, string>, nodeOptions: ReadonlyArray<string>) =>
          Effect.all(
            [["--help"], ...failures].map((args) => run(cliPath, args, env, nodeOptions)),
            { concurrency: "unbounded" }
          )
        const piped = yield* runs({}, [])
        assert.deepStrictEqual(
          piped.map((result) => result.code),
          [0, 1, 2]
        )
        for (const result of piped) {
          assert.isFalse(hasAnsi(`${result.stdout}${result.stderr}`))
        }

        const [colored] = yield* runs({ TERM: "xterm-256color" }, [fakeTty])
        assert.strictEqual(colored?.code, 0, colored?.stderr)
        assert.isTrue(hasAnsi(colored?.stdout ?? ""), "a terminal gets colors")
        assert.strictEqual(stripVTControlCharacters(colored?.stdout ?? ""), piped[0]?.stdout)

        for (const env of [{ TERM: "xterm-256color", NO_COLOR: "1" }, { TERM: "dumb" }]) {
          for (const result of yield* runs(env, [fakeTty])) {
            assert.isFalse(hasAnsi(`${result.stdout}${result.stderr}`), JSON.stringify(env))
          }
        }
      }),
    120_000
  )

  it.live("without @effect/platform-node installed: one line saying what to install, exit 2", () =>
    Effect.gen(function* () {
      const dir = yield* installWithoutPlatformNode
      const script = join(dir, "dist", "cli.js")
      assert.isFalse(existsSync(join(dir, "node_modules", "@effect", "platform-node")))
      for (const args of [["token"], ["whoami"], ["mock-server"]]) {
        const result = yield* run(script, args)
        assert.strictEqual(result.code, 2, result.stderr)
        assert.strictEqual(result.stdout, "")
        assert.strictEqual(
          result.stderr,
          "revault-auth needs @effect/platform-node, an optional peer dependency of effect-revault-auth: install it with npm install @effect/platform-node@^0.108.2\n"
        )
      }
      // The help and the version need nothing but the package itself.
      const help = yield* run(script, ["--help"])
      assert.strictEqual(help.code, 0, help.stderr)
      assert.include(help.stdout, "revault-auth <command>")
      const version = yield* run(script, ["--version"])
      assert.strictEqual(version.stdout, `${packageVersion}\n`)
    }).pipe(Effect.scoped)
  )

  it.live("mock-server --port 0 prints its base URL and credentials, serves tokens, and stops cleanly on SIGINT", () =>
    Effect.gen(function* () {
      const server = yield* spawnCli(["mock-server", "--port", "0", "--access-ttl", "6", "--refresh-ttl", "15"])
      const stderr = collect(server.stderr)
      const { text, vars } = yield* printedExports(server)
      assert.match(text, /^# Mock Revault on http:\/\/127\.0\.0\.1:\d+\/v1\/rest \(access tokens 6 s/)
      assert.match(vars.REVAULT_API_BASE_URL ?? "", /^http:\/\/127\.0\.0\.1:[1-9]\d*\/v1\/rest$/)
      assert.deepStrictEqual(
        [vars.REVAULT_WORKSPACE, vars.REVAULT_API_KEY_ID, vars.REVAULT_API_KEY_SECRET],
        [
          MockRevault.demoCredentials.workspace,
          MockRevault.demoCredentials.apiKeyId,
          MockRevault.demoCredentials.apiKeySecret
        ]
      )
      // A 6 s token needs a skew below the default 30 s to count as valid.
      assert.strictEqual(vars.REVAULT_EXPIRY_SKEW, "1000 millis")

      const token = yield* cli(["token"], vars)
      assert.strictEqual(token.code, 0, token.stderr)
      assert.match(token.stdout, jwtLine)
      assert.strictEqual(yield* meStatus(vars.REVAULT_API_BASE_URL ?? "", token.stdout.trim()), 200)

      server.kill("SIGINT")
      assert.deepStrictEqual(yield* exited(server), { code: 0, signal: null })
      assert.strictEqual(stderr(), "")
    }).pipe(Effect.scoped)
  )
})
