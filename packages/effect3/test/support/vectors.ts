import { readFileSync } from "node:fs"

/** Reads a shared test vector file from packages/shared/test-vectors. */
export const readVector = (name: string): unknown =>
  JSON.parse(readFileSync(new URL(`../../../shared/test-vectors/${name}`, import.meta.url), "utf8"))
