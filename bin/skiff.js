#!/usr/bin/env node
// The `skiff` command: runs the built CLI (dist/cli.js). `npm ci` builds it (the `prepare` script).
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = join(root, "dist", "cli.js");
if (!existsSync(built)) {
  process.stderr.write(`skiff: ${built} is missing; run \`npm run build\` (or \`npm ci\`) in ${root}\n`);
  process.exit(1);
}
const { main } = await import(pathToFileURL(built).href);
process.exitCode = await main(process.argv);
