/**
 * How a request that got no answer is told, the same in the library's `TransportError` and in the
 * command line: what went wrong on the wire, then where.
 *
 * @since 2.1.0
 */

/**
 * The codes of an error and of the causes below it (`ECONNREFUSED`, `UND_ERR_SOCKET`), four levels
 * at most: a transport's own message ("fetch failed") hides them.
 *
 * @since 2.1.0
 * @category describing
 */
export const codesOf = (error: unknown): Array<string> => {
  const codes: Array<string> = []
  let current = error
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") codes.push(current.code)
    current = "cause" in current ? current.cause : undefined
  }
  return codes
}

/**
 * `what: went: wrong (where)`, leaving out missing or empty parts; `no connection (where)` when
 * nothing is said.
 *
 * @since 2.1.0
 * @category describing
 */
export const transportDetail = (what: ReadonlyArray<string | undefined>, where: string): string => {
  const said = what.filter((part): part is string => part !== undefined && part !== "")
  return `${said.length === 0 ? "no connection" : said.join(": ")} (${where})`
}
