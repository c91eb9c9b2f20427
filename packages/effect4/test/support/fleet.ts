// A real fleet for tests and bench B6: `redis-server` processes started on a unix socket (or a free
// loopback port) in a temporary directory, and child processes running test/support/fleetChild.ts.
// Every process started here is tracked and stopped by `stopAll`.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const packageRoot = fileURLToPath(new URL("../..", import.meta.url))
const childScript = fileURLToPath(new URL("./fleetChild.ts", import.meta.url))

const started = new Set<ChildProcess>()

export const tempDir = (): string => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "revault-fleet-"))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `predicate` every 50 ms for at most `timeoutMs`; answers whether it held. */
export const until = async (predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> => {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await predicate()) return true
    await sleep(50)
  }
  return predicate()
}

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = NodeNet.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

export interface RedisServer {
  readonly socket: string
  readonly port: number
  readonly tlsPort: number
  readonly ca: string
  readonly password: string
  /** Stops the server (SIGKILL: it keeps nothing, as `--save ""` and no AOF say). */
  readonly stop: () => Promise<void>
  /** Starts it again, empty, on the same socket and ports. */
  readonly restart: () => Promise<void>
  readonly pause: () => void
  readonly resume: () => void
}

const waitExit = (child: ChildProcess, ms: number) =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : Promise.race([new Promise<void>((resolve) => child.once("exit", () => resolve())), sleep(ms)])

/** Stops a process: SIGCONT (it may be paused), SIGTERM, then SIGKILL after a second. */
export const stop = async (child: ChildProcess): Promise<void> => {
  started.delete(child)
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill("SIGCONT")
  child.kill("SIGTERM")
  await waitExit(child, 1_000)
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  await waitExit(child, 1_000)
}

export const stopAll = async (): Promise<void> => {
  await Promise.all([...started].map(stop))
}

/** A self-signed CA and a server certificate for 127.0.0.1, made with `openssl` in `dir`. */
const makeCertificates = (dir: string) => {
  const run = (args: ReadonlyArray<string>) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" })
  run(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=fleet-test-ca"].concat([
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt"
    ])
  )
  run(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"])
  NodeFs.writeFileSync(NodePath.join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1\n")
  run(
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"].concat([
      "-extfile",
      "ext.cnf",
      "-out",
      "server.crt"
    ])
  )
}

/**
 * Starts `redis-server` on a unix socket in a fresh temporary directory (TCP off), or with
 * `tcp: true` on free loopback ports too, a password and TLS.
 */
export const startRedis = async (options: { readonly tcp?: boolean } = {}): Promise<RedisServer> => {
  const dir = tempDir()
  const socket = NodePath.join(dir, "redis.sock")
  const password = options.tcp ? "fleet-test-password" : ""
  const port = options.tcp ? await freePort() : 0
  const tlsPort = options.tcp ? await freePort() : 0
  if (options.tcp) makeCertificates(dir)
  const args = [
    "--unixsocket",
    socket,
    "--unixsocketperm",
    "700",
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--daemonize",
    "no"
  ]
  if (options.tcp) {
    args.push("--requirepass", password, "--tls-port", String(tlsPort), "--tls-cert-file", "server.crt")
    args.push("--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no")
  }
  let server: ChildProcess | undefined
  const launch = async () => {
    NodeFs.rmSync(socket, { force: true })
    const child = spawn("redis-server", args, { cwd: dir, stdio: ["ignore", "ignore", "ignore"] })
    started.add(child)
    server = child
    if (!(await until(() => NodeFs.existsSync(socket), 10_000))) throw new Error("redis-server did not start")
  }
  await launch()
  return {
    socket,
    port,
    tlsPort,
    ca: options.tcp ? NodeFs.readFileSync(NodePath.join(dir, "ca.crt"), "utf8") : "",
    password,
    stop: async () => {
      if (server === undefined) return
      started.delete(server)
      server.kill("SIGCONT")
      server.kill("SIGKILL")
      await waitExit(server, 2_000)
    },
    restart: launch,
    pause: () => server?.kill("SIGSTOP"),
    resume: () => server?.kill("SIGCONT")
  }
}

/** What a child reported last. */
export interface Report {
  readonly reads: number
  readonly errors: Readonly<Record<string, number>>
  readonly token: string
}

export interface FleetChild {
  readonly process: ChildProcess
  readonly last: () => Report | undefined
  readonly go: () => void
}

export const startChild = (env: Record<string, string>): FleetChild => {
  // tsx as a loader in the one process (its CLI would put a parent process in between, which
  // neither passes on stdin reliably nor dies with a killed child).
  const child = spawn(process.execPath, ["--import", "tsx", childScript], {
    cwd: packageRoot,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", TSX_TSCONFIG_PATH: "", ...env },
    stdio: ["pipe", "pipe", process.env.FLEET_CHILD_STDERR === "1" ? "inherit" : "ignore"]
  })
  started.add(child)
  let last: Report | undefined
  let buffer = ""
  child.stdout?.setEncoding("utf8")
  child.stdout?.on("data", (chunk: string) => {
    buffer += chunk
    const lines = buffer.split("\n")
    buffer = lines.pop() ?? ""
    for (const line of lines) {
      if (process.env.FLEET_CHILD_LOG) NodeFs.appendFileSync(process.env.FLEET_CHILD_LOG, `${child.pid} ${line}\n`)
      // Log lines of the library share stdout; only reports start so.
      if (!line.startsWith('{"reads"')) continue
      try {
        last = JSON.parse(line) as Report
      } catch {
        // A torn line: the next report replaces it.
      }
    }
  })
  return { process: child, last: () => last, go: () => child.stdin?.write("go\n") }
}

/** Whether every child reported a token, the same one. */
export const converged = (children: ReadonlyArray<FleetChild>): boolean => {
  const tokens = children.map((c) => c.last()?.token ?? "")
  return tokens.every((t) => t !== "" && t === tokens[0])
}

export const errorsOf = (children: ReadonlyArray<FleetChild>): Record<string, number> => {
  const total: Record<string, number> = {}
  for (const child of children) {
    for (const [tag, n] of Object.entries(child.last()?.errors ?? {})) total[tag] = (total[tag] ?? 0) + n
  }
  return total
}
