// Build configuration: the library (ESM + CJS + .d.ts) and the CLI entry.
import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "src/index.ts", cli: "src/cli/main.ts" },
  format: ["esm", "cjs"],
  dts: { entry: { index: "src/index.ts" } },
  target: "node20",
  platform: "node",
  sourcemap: true,
  clean: true,
  shims: true,
  splitting: false,
});
