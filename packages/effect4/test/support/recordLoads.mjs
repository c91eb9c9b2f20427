// Module hooks (node --import of this file, see cli.test.ts) that append the URL of every module
// the process loads to the file named by REVAULT_AUTH_LOADED: what `revault-auth --version` loads.
import { appendFileSync } from "node:fs"
import { registerHooks } from "node:module"

const file = process.env.REVAULT_AUTH_LOADED ?? ""

registerHooks({
  load: (url, context, nextLoad) => {
    appendFileSync(file, `${url}\n`)
    return nextLoad(url, context)
  }
})
