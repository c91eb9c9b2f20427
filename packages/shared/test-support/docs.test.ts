// One file for both lines: packages/effect4/test/docs.test.ts and packages/effect3/test/docs.test.ts
// link here, and with preserveSymlinks `root` below is the line's folder, so each line checks its own docs.
//
// The documentation cannot rot: every TypeScript block of README.md and docs/*.md is compiled
// against the sources, every relative link must lead somewhere, every public export carries TSDoc
// with `@since` and `@category`, and the pages that list the errors and the metrics list them all.
// The `@example` blocks of the TSDoc in src/ are compiled the same way, and the main functions must
// have one.
//
// Conventions for code blocks (also described in docs/README.md):
// - ```ts or ```typescript: compiled by `tsc`, each block as its own ES module, with
//   `effect-revault-auth` and `effect-revault-auth/*` mapped to src/.
// - ```ts no-check: shown as TypeScript, never compiled (code for packages this repository does
//   not install, such as @effect/opentelemetry).
// - An HTML comment `<!-- prelude ... -->` right above a block (blank lines allowed) is a hidden
//   prelude: its lines are compiled in front of the block, so a fragment can use names the page
//   declared earlier. Errors are still reported at the block's own lines.
import { execFile } from "node:child_process"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { basename, dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import ts from "typescript"
import * as AuthError from "../src/AuthError.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const tsc = join(root, "node_modules", "typescript", "bin", "tsc")

const markdownFiles = (): ReadonlyArray<string> => [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .sort()
    .map((name) => `docs/${name}`)
]

// The public modules: what typedoc documents and `exports` ("./*") serves.
const publicModules = (): ReadonlyArray<string> =>
  readdirSync(join(root, "src"))
    .filter((name) => name.endsWith(".ts") && name !== "cli.ts")
    .sort()

interface Block {
  /** Where the block's first line of code is, as `file:line`, for messages. */
  readonly file: string
  readonly line: number
  readonly lang: string
  readonly check: boolean
  readonly prelude: ReadonlyArray<string>
  readonly code: ReadonlyArray<string>
}

const openFence = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/
const preludeComment = /^<!--\s*prelude\b([\s\S]*?)-->$/

/** Every fenced block of a markdown text, with the hidden prelude that precedes it, if any. */
const extractBlocks = (file: string, text: string): ReadonlyArray<Block> => {
  const lines = text.split(/\r?\n/)
  const blocks: Array<Block> = []
  for (let i = 0; i < lines.length; i++) {
    const open = openFence.exec(lines[i] ?? "")
    if (open === null) continue
    const [, fence = "```", lang = "", info = ""] = open
    let end = i + 1
    while (end < lines.length && !(lines[end] ?? "").trim().startsWith(fence)) end++
    // A prelude comment ends on the last non-blank line above the fence.
    let above = i - 1
    while (above >= 0 && (lines[above] ?? "").trim() === "") above--
    let prelude: ReadonlyArray<string> = []
    if (above >= 0 && (lines[above] ?? "").trim().endsWith("-->")) {
      let start = above
      while (start > 0 && !(lines[start] ?? "").includes("<!--")) start--
      const comment = preludeComment.exec(
        lines
          .slice(start, above + 1)
          .join("\n")
          .trim()
      )
      if (comment !== null) {
        prelude = (comment[1] ?? "")
          .replace(/^[^\S\n]*\n/, "")
          .replace(/\n[^\S\n]*$/, "")
          .split("\n")
      }
    }
    blocks.push({
      file,
      line: i + 2,
      lang,
      check: !info.split(/\s+/).includes("no-check"),
      prelude,
      code: lines.slice(i + 1, end)
    })
    i = end
  }
  return blocks
}

const isTypeScript = (block: Block) => block.lang === "ts" || block.lang === "typescript"

// Every TypeScript file under src/, internal ones included (src/internal/shared is a link).
const sourceFiles = (dir = "src"): ReadonlyArray<string> =>
  readdirSync(join(root, dir))
    .sort()
    .flatMap((name) => {
      const path = `${dir}/${name}`
      if (statSync(join(root, path)).isDirectory()) return sourceFiles(path)
      return name.endsWith(".ts") ? [path] : []
    })

/**
 * The fenced blocks under an `@example` tag in the doc comments of a TypeScript source, with the
 * lines they have in that file. Other blocks of a comment (a module overview's sketch) are prose.
 */
const extractExamples = (file: string, text: string): ReadonlyArray<Block> =>
  [...text.matchAll(/\/\*\*[\s\S]*?\*\//g)].flatMap((comment) => {
    // Line n (1-based) of `body` is line `opening + n - 1` of the file.
    const opening = text.slice(0, comment.index).split("\n").length
    const body = comment[0]
      .replace(/\*\/$/, "")
      .split("\n")
      .map((line, i) => (i === 0 ? line.replace(/^\/\*\*\s?/, "") : line.replace(/^\s*\* ?/, "")))
    const blocks = extractBlocks(file, body.join("\n"))
    const inBlocks = new Set(blocks.flatMap((b) => b.code.map((_, i) => b.line - 1 + i)))
    return blocks
      .filter((block) => {
        // The tag a block belongs to is the last tag line above its fence.
        for (let i = block.line - 3; i >= 0; i--) {
          const tag = /^@(\w+)/.exec(body[i] ?? "")
          if (tag !== null && !inBlocks.has(i)) return tag[1] === "example"
        }
        return false
      })
      .map((block) => ({ ...block, line: opening + block.line - 1 }))
  })

// The functions a user meets first: each has an `@example` (checked below, and compiled above).
const mainFunctions: ReadonlyArray<readonly [module: string, name: string]> = [
  ["RevaultAuth.ts", "layer"],
  ["RevaultAuth.ts", "layerConfig"],
  ["RevaultAuth.ts", "layerTest"],
  ["AuthService.ts", "layerStub"],
  ["AuthPool.ts", "client"],
  ["MockRevault.ts", "layer"]
]

const run = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.promise(() =>
    promisify(execFile)(process.execPath, [...args], { cwd, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout }) => ({ code: 0, stdout }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({
        code: typeof error.code === "number" ? error.code : -1,
        stdout: `${error.stdout ?? ""}${error.stderr ?? ""}`
      })
    )
  )

// A temporary folder outside the repository, removed afterwards. Its `node_modules` is a link to
// the repository's, so the blocks resolve `effect` and `@effect/*` to the very copies src/ uses.
const tempProject = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = mkdtempSync(join(tmpdir(), "revault-docs-"))
    symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir")
    writeFileSync(join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }))
    return dir
  }),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/**
 * Compiles the blocks, one module each, and returns the compiler's errors as `file:line: message`,
 * mapped back to the markdown lines.
 */
const typecheck = (blocks: ReadonlyArray<Block>) =>
  Effect.gen(function* () {
    const dir = yield* tempProject
    mkdirSync(join(dir, "blocks"))
    const sources = new Map<string, Block>()
    blocks.forEach((block, index) => {
      const name = `blocks/${String(index).padStart(3, "0")}-${block.file.replace(/[^\w]+/g, "_")}-${block.line}.ts`
      sources.set(name, block)
      writeFileSync(join(dir, name), [...block.prelude, ...block.code, ""].join("\n"))
    })
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          moduleDetection: "force",
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noImplicitOverride: true,
          skipLibCheck: true,
          verbatimModuleSyntax: true,
          types: ["node"],
          noEmit: true,
          // Imported by name, as users do; in this repository the name is the source.
          baseUrl: root,
          paths: { "effect-revault-auth": ["src/index.ts"], "effect-revault-auth/*": ["src/*.ts"] }
        },
        files: [...sources.keys()]
      })
    )
    const result = yield* run([tsc, "-p", "tsconfig.json", "--pretty", "false"], dir)
    const errors: Array<string> = []
    for (const line of result.stdout.split("\n")) {
      const match = /^(.+?)\((\d+),(\d+)\): (error TS\d+: .*)$/.exec(line)
      if (match === null) {
        // A message continued on the next lines belongs to the error above it.
        if (/^\s/.test(line) && errors.length > 0) errors[errors.length - 1] += `\n${line}`
        else if (line.trim() !== "") errors.push(line)
        continue
      }
      const [, file = "", row = "0", , message = ""] = match
      const block = sources.get(file.replaceAll("\\", "/"))
      const at =
        block === undefined
          ? relative(root, resolve(dir, file))
          : `${block.file}:${block.line + Number(row) - 1 - block.prelude.length}`
      errors.push(`${at}: ${message}`)
    }
    if (result.code !== 0 && errors.length === 0) errors.push(`tsc exited with ${result.code}: ${result.stdout}`)
    return errors
  }).pipe(Effect.scoped)

// A page that proves the checker itself: one block that must fail (at a known line), one skipped,
// one that compiles only with its prelude.
const fixture = [
  "# fixture",
  "",
  "```ts",
  'import * as Effect from "effect/Effect"',
  'export const wrong: Effect.Effect<number> = Effect.succeed("not a number")',
  "```",
  "",
  "```ts no-check",
  "this is not TypeScript",
  "```",
  "",
  "<!-- prelude",
  'import { AuthService } from "effect-revault-auth"',
  "-->",
  "",
  "```ts",
  'export const layer = AuthService.layerStub("test-token")',
  "```"
].join("\n")

describe("documentation", () => {
  it("extracts blocks with their line, language, no-check flag and prelude", () => {
    const blocks = extractBlocks("fixture.md", fixture)
    assert.deepStrictEqual(
      blocks.map((b) => [b.line, b.lang, b.check, b.prelude.length, b.code.length]),
      [
        [4, "ts", true, 0, 2],
        [9, "ts", false, 0, 1],
        [17, "ts", true, 1, 1]
      ]
    )
  })

  it.live(
    "every ts block of README.md, docs/*.md and the TSDoc @examples in src/ compiles against src/",
    () =>
      Effect.gen(function* () {
        const blocks = markdownFiles().flatMap((file) =>
          extractBlocks(file, readFileSync(join(root, file), "utf8")).filter((b) => isTypeScript(b) && b.check)
        )
        assert.isAtLeast(blocks.length, 10, "expected the docs to hold TypeScript blocks")
        const examples = sourceFiles().flatMap((file) =>
          extractExamples(file, readFileSync(join(root, file), "utf8")).filter((b) => isTypeScript(b) && b.check)
        )
        assert.isAtLeast(examples.length, mainFunctions.length, "expected the TSDoc to hold @example blocks")
        const probe = extractBlocks("fixture.md", fixture).filter((b) => isTypeScript(b) && b.check)
        const errors = yield* typecheck([...blocks, ...examples, ...probe])
        // The checker works: the fixture's bad block fails at its line, its prelude block compiles.
        const probeErrors = errors.filter((e) => e.startsWith("fixture.md:"))
        assert.strictEqual(probeErrors.length, 1, probeErrors.join("\n"))
        assert.match(probeErrors[0] ?? "", /^fixture\.md:5: error TS\d+: Type /)
        const docErrors = errors.filter((e) => !e.startsWith("fixture.md:"))
        assert.deepStrictEqual(docErrors, [], `code blocks that do not compile:\n${docErrors.join("\n")}`)
      }),
    300_000
  )

  it("extracts the ts blocks of @example tags only, at their lines in the source", () => {
    const source = [
      "/**", //                                 1
      " * An overview with a sketch:", //       2
      " *", //                                  3
      " * ```ts", //                            4
      " * sketch()", //                         5
      " * ```", //                              6
      " *", //                                  7
      " * @example", //                         8
      " * ```ts", //                            9
      " * const a = 1", //                      10
      " * ```", //                              11
      " *", //                                  12
      " * @since 1.0.0", //                     13
      " */", //                                 14
      "export const a = 1", //                  15
      "/** @example", //                        16
      " * ```ts", //                            17
      " * @decorated()", //                     18
      " * const b = 2", //                      19
      " * ```", //                              20
      " */" //                                  21
    ].join("\n")
    assert.deepStrictEqual(
      extractExamples("x.ts", source).map((b) => [b.line, b.code.join("|")]),
      [
        [10, "const a = 1"],
        [18, "@decorated()|const b = 2"]
      ]
    )
  })

  it("the main functions carry an @example with a ts block", () => {
    const missing: Array<string> = []
    for (const [module, name] of mainFunctions) {
      const source = ts.createSourceFile(
        module,
        readFileSync(join(root, "src", module), "utf8"),
        ts.ScriptTarget.Latest,
        true
      )
      const declaration = source.statements
        .filter(ts.isVariableStatement)
        .flatMap((s) => [...s.declarationList.declarations])
        .find((d) => d.name.getText() === name)
      const examples = (declaration === undefined ? [] : ts.getJSDocTags(declaration))
        .filter((tag) => tag.tagName.text === "example")
        .map((tag) => ts.getTextOfJSDocComment(tag.comment) ?? "")
      if (!examples.some((text) => text.includes("```ts"))) missing.push(`${module.replace(/\.ts$/, "")}.${name}`)
    }
    assert.deepStrictEqual(missing, [])
  })

  it("typedoc opens each module page with its overview and the index page with the README", () => {
    // typedoc takes a file's opening comment as the module's page only when it says `@module`.
    const noOverview = publicModules().filter((name) => {
      const opening = /^\/\*\*([\s\S]*?)\*\//.exec(readFileSync(join(root, "src", name), "utf8"))?.[1] ?? ""
      const prose = opening.replace(/^\s*\* ?/gm, "").split(/^@/m)[0] ?? ""
      return !/^\s*@module\s*$/m.test(opening.replace(/^\s*\* ?/gm, "")) || prose.trim().length === 0
    })
    assert.deepStrictEqual(noOverview, [])
    const options = JSON.parse(readFileSync(join(root, "typedoc.json"), "utf8"))
    assert.strictEqual(options.readme, "README.md")
    assert.strictEqual(options.treatWarningsAsErrors, true)
  })

  it("the docs give each line's @effect/vitest, vitest and @effect/opentelemetry versions as its package.json pins them", () => {
    // Both lines live side by side in this repository; each page names its own line and the other.
    const self = basename(resolve(root))
    const other = self === "effect4" ? "effect3" : "effect4"
    const pinned = (line: string, name: string): string => {
      const manifest: { devDependencies?: Record<string, string> } = JSON.parse(
        readFileSync(join(root, "..", line, "package.json"), "utf8")
      )
      const version = manifest.devDependencies?.[name]
      assert.isDefined(version, `${line}: no devDependency ${name}`)
      return version ?? ""
    }
    const vitest = (line: string) => `@effect/vitest@${pinned(line, "@effect/vitest")} vitest@${pinned(line, "vitest")}`
    const otel = (line: string) => `@effect/opentelemetry@^${pinned(line, "@effect/opentelemetry")}`
    const wanted: ReadonlyArray<readonly [file: string, text: string]> = [
      ["README.md", `npm i -D ${vitest(self)}`],
      ["README.md", vitest(other)],
      ["README.md", otel(self)],
      ["README.md", otel(other)],
      ["docs/testing.md", `npm i -D ${vitest(self)}`],
      ["docs/testing.md", `npm i -D ${vitest(other)}`],
      ["docs/observability.md", otel(self)],
      ["docs/observability.md", otel(other)]
    ]
    const absent = wanted.filter(([file, text]) => !readFileSync(join(root, file), "utf8").includes(text))
    assert.deepStrictEqual(
      absent.map(([file, text]) => `${file}: ${text}`),
      []
    )
  })

  it("relative links lead to files that exist", () => {
    const broken: Array<string> = []
    for (const file of markdownFiles()) {
      const source = readFileSync(join(root, file), "utf8")
      // Links in prose only: a code block may well show `](...)` that is not a link.
      const inBlocks = new Set(extractBlocks(file, source).flatMap((b) => b.code.map((_, i) => b.line + i)))
      const text = source
        .split(/\r?\n/)
        .filter((_, i) => !inBlocks.has(i + 1))
        .join("\n")
        .replace(/`[^`\n]*`/g, "")
      for (const [, target = ""] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/i.test(target) || target.startsWith("#")) continue
        const path = resolve(dirname(join(root, file)), decodeURIComponent(target.replace(/#.*$/, "")))
        if (!existsSync(path)) broken.push(`${file}: ${target}`)
      }
    }
    assert.deepStrictEqual(broken, [])
  })

  it("every export of a public module has TSDoc with @since and @category", () => {
    const missing: Array<string> = []
    for (const name of publicModules()) {
      const text = readFileSync(join(root, "src", name), "utf8")
      const source = ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true)
      for (const statement of source.statements) {
        const exported =
          ts.isExportDeclaration(statement) ||
          ts.isExportAssignment(statement) ||
          (ts.canHaveModifiers(statement) &&
            (ts.getModifiers(statement) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword))
        if (!exported) continue
        const tags = ts
          .getJSDocCommentsAndTags(statement)
          .filter(ts.isJSDoc)
          .flatMap((doc) => [...(doc.tags ?? [])].map((tag) => tag.tagName.text))
        const absent = ["since", "category"].filter((tag) => !tags.includes(tag))
        if (absent.length > 0) {
          const line = source.getLineAndCharacterOfPosition(statement.getStart()).line + 1
          missing.push(`src/${name}:${line}: no ${absent.map((t) => `@${t}`).join(" or ")}`)
        }
      }
    }
    assert.deepStrictEqual(missing, [])
  })

  it("docs/errors.md describes every error class", () => {
    const text = readFileSync(join(root, "docs", "errors.md"), "utf8")
    const tags = Object.entries(AuthError)
      .filter(([name, value]) => typeof value === "function" && /^[A-Z]\w*Error$/.test(name))
      .map(([name]) => name)
    assert.isAtLeast(tags.length, 8)
    assert.deepStrictEqual(
      tags.filter((tag) => !text.includes(`## ${tag}`)),
      []
    )
  })

  it("docs/observability.md names every metric the library records", () => {
    const text = readFileSync(join(root, "docs", "observability.md"), "utf8")
    const sources = [
      ...publicModules().map((n) => join("src", n)),
      // Modules only: src/internal/shared is a folder (the Effect-free code, which records no metric).
      ...readdirSync(join(root, "src", "internal"))
        .filter((n) => n.endsWith(".ts"))
        .map((n) => join("src", "internal", n))
    ]
    const names = sources.flatMap((file) =>
      [
        ...readFileSync(join(root, file), "utf8").matchAll(
          /Metric\.(?:counter|gauge|histogram|summary|frequency)\(\s*"([^"]+)"/g
        )
      ].map(([, name = ""]) => name)
    )
    assert.isAtLeast(names.length, 3)
    assert.deepStrictEqual(
      names.filter((name) => !text.includes(name)),
      []
    )
  })
})
