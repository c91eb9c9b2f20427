// Module hooks (node --import of a register call, see cli.test.ts) that append the URL of every
// module the process loads to the file given as `data`: what `revault-auth --version` loads.
import { appendFileSync } from "node:fs"

let file = ""

export const initialize = (data) => {
  file = data
}

export const load = (url, context, nextLoad) => {
  appendFileSync(file, `${url}\n`)
  return nextLoad(url, context)
}
