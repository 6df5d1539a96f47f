#!/usr/bin/env node
// The `skiff` command: runs the built CLI (dist/cli.cjs). `npm ci` builds it (the `prepare` script).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
// The CommonJS build: its dependencies (pino, commander, ...) are CommonJS packages, and loading
// them through require() rather than ESM import spares the ESM-to-CommonJS interop, about 5 MB of
// resident memory for the life of the process (issue 20: idle RSS).
const built = join(root, "dist", "cli.cjs");
if (!existsSync(built)) {
  process.stderr.write(`skiff: ${built} is missing; run \`npm run build\` (or \`npm ci\`) in ${root}\n`);
  process.exit(1);
}
const { main } = createRequire(import.meta.url)(built);
process.exitCode = await main(process.argv);
