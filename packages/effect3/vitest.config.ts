import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

// Examples import the package by name, as users do; in this repository that name is the source.
const src = fileURLToPath(new URL("./src/", import.meta.url))

export default defineConfig({
  resolve: {
    // Keep `src/internal/shared/*` (a symlink to packages/shared/src) under src, as tsc does.
    preserveSymlinks: true,
    alias: [
      { find: /^effect-revault-auth$/, replacement: `${src}index.ts` },
      { find: /^effect-revault-auth\/(.*)$/, replacement: `${src}$1.ts` }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
