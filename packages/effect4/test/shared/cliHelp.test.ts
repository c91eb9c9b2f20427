import { assert, describe, it } from "@effect/vitest"
import {
  canColor,
  commands,
  helpPage,
  missingPeerMessage,
  requestOf,
  versionIn
} from "../../src/internal/shared/cliHelp.js"

const tagOf = (args: ReadonlyArray<string>) => {
  const request = requestOf(args)
  return request._tag === "Help" ? `Help ${request.command?.name ?? "root"}` : request._tag
}

describe("shared/cliHelp", () => {
  it("requestOf: help for nothing or -h/--help, of the command named; the version; everything else runs", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [[], "Help root"],
      [["--help"], "Help root"],
      [["-h"], "Help root"],
      [["token", "--help"], "Help token"],
      [["mock-server", "--port", "0", "-h"], "Help mock-server"],
      [["--log-level", "debug", "whoami", "--help"], "Help whoami"],
      [["--version"], "Version"],
      [["-v"], "Version"],
      [["token"], "Run"],
      [["mock-server", "--port", "0"], "Run"],
      // An unknown command is the parser's to report, even with --help.
      [["tokn", "--help"], "Run"],
      [["tokn"], "Run"],
      // After `--` nothing is a flag.
      [["token", "--", "--help"], "Run"]
    ]
    for (const [args, expected] of cases) assert.strictEqual(tagOf(args), expected, args.join(" "))
  })

  it("canColor: a terminal only, and not with NO_COLOR (non-empty) or TERM=dumb", () => {
    const tty = { isTTY: true }
    assert.isTrue(canColor(tty, { TERM: "xterm" }))
    assert.isTrue(canColor(tty, { NO_COLOR: "" }))
    assert.isFalse(canColor({ isTTY: false }, {}))
    assert.isFalse(canColor({}, {}))
    assert.isFalse(canColor(tty, { NO_COLOR: "1" }))
    assert.isFalse(canColor(tty, { TERM: "dumb" }))
  })

  it("helpPage: bold headings only with colors, lines of at most 100 characters", () => {
    for (const command of [undefined, ...commands]) {
      const plain = helpPage(command, { version: "9.9.9", colors: false })
      const colored = helpPage(command, { version: "9.9.9", colors: true })
      assert.notInclude(plain, "\u001b[")
      assert.include(colored, "\u001b[1mUSAGE\u001b[0m")
      for (const line of plain.split("\n")) assert.isAtMost(line.length, 100, line)
    }
    assert.match(helpPage(undefined, { version: "9.9.9", colors: false }), /^revault-auth 9\.9\.9\n/)
  })

  it("versionIn and missingPeerMessage", () => {
    assert.strictEqual(versionIn('{"version":"1.2.3"}'), "1.2.3")
    assert.strictEqual(versionIn("not json"), "unknown")
    assert.strictEqual(versionIn("{}"), "unknown")
    assert.strictEqual(
      missingPeerMessage("@effect/platform-node", undefined),
      "revault-auth needs @effect/platform-node, an optional peer dependency of effect-revault-auth: install it with npm install @effect/platform-node"
    )
  })
})
