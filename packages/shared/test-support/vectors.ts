import { readFileSync } from "node:fs"

/** Reads a shared test vector file from packages/shared/test-vectors. */
export const readVector = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../test-vectors/${name}`, import.meta.url), "utf8"))

/** The vendor's OpenAPI document, from the shared folder beside the repository. */
export const readOpenApi = (): unknown =>
  JSON.parse(readFileSync(new URL("../../../../shared/revault-api/auth.openapi.json", import.meta.url), "utf8"))
