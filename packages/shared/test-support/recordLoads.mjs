// Module hooks (node --import of this file, see cli.test.ts of either line) that append the URL of
// every module the process loads to the file named by REVAULT_AUTH_LOADED: what
// `revault-auth --version` loads.
import { appendFileSync } from "node:fs"
import * as module from "node:module"
import { isMainThread } from "node:worker_threads"

const file = process.env.REVAULT_AUTH_LOADED ?? ""

export const load = (url, context, nextLoad) => {
  appendFileSync(file, `${url}\n`)
  return nextLoad(url, context)
}

// Node 24 (the Effect 4 line) runs synchronous hooks in this thread. Node 20 (the Effect 3 line) has
// only `register`, which loads this file again on its hooks thread and uses the `load` it exports.
if (typeof module.registerHooks === "function") module.registerHooks({ load })
else if (isMainThread) module.register(import.meta.url)
