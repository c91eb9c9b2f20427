/**
 * The vitest configuration of both lines, as a plain object (this folder has no node_modules):
 * each line's vitest.config.ts passes it to its own vitest's `defineConfig`, with its `src/`.
 */
export const vitestConfig = (src: string) => ({
  resolve: {
    // Keep `src/internal/shared/*` (a symlink to packages/shared/src) under src, as tsc does.
    preserveSymlinks: true,
    // Examples import the package by name, as users do; in this repository that name is the source.
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
