import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"
import { vitestConfig } from "../shared/config/vitest.js"

export default defineConfig(vitestConfig(fileURLToPath(new URL("./src/", import.meta.url))))
