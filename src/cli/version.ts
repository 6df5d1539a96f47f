/**
 * skiff's version, for `skiff --version`: the `version` of the package.json above this file
 * (dist/cli.js when installed, src/cli/version.ts when run from a checkout).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function skiffVersion(from: string = fileURLToPath(import.meta.url)): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version?: string };
      if (pkg.name === "skiff" && typeof pkg.version === "string") return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    if (dirname(dir) === dir) return "unknown";
  }
}
