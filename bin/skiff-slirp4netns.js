#!/usr/bin/env node
// `skiff slirp4netns` under its own name, for tools that take one program path for slirp4netns
// (RootlessKit --slirp4netns-binary, Podman network_cmd_path); a symlink named slirp4netns works too.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, join } from "node:path";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const built = join(root, "dist", "cli.js");
if (!existsSync(built)) {
  process.stderr.write(`skiff-slirp4netns: ${built} is missing; run \`npm run build\` (or \`npm ci\`) in ${root}\n`);
  process.exit(1);
}
const { main } = await import(pathToFileURL(built).href);
process.exitCode = await main([process.argv[0], process.argv[1], "slirp4netns", ...process.argv.slice(2)]);
