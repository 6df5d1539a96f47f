#!/usr/bin/env node
// `npm pack` / `npm publish` (prepack): copy the addon built for this machine into
// prebuilds/<platform>-<arch>/skiff.node, prebuildify's layout, with the namespace helper
// executable skiff-userns beside it, so the package ships prebuilt binaries for this platform
// and the install script builds only on other platforms. Fails when the addon has not been
// built (`npm run build:native`).
import { chmodSync, copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const built = join(root, "native", "build", "Release", "skiff.node");
if (!existsSync(built)) {
  console.error(`prebuilds: ${built} is missing: run \`npm run build:native\` first`);
  process.exit(1);
}
const dir = join(root, "prebuilds", `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
copyFileSync(built, join(dir, "skiff.node"));
const helper = join(dirname(built), "skiff-userns");
if (existsSync(helper)) {
  copyFileSync(helper, join(dir, "skiff-userns"));
  chmodSync(join(dir, "skiff-userns"), 0o755);
}
console.log(`prebuilds: ${join(dir, "skiff.node")}`);
