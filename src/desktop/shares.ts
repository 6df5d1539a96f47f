/**
 * Which host directories `skiff docker` shares into its VM, at the same paths (issue 16): by
 * default the user's home and /tmp, the way Docker Desktop shares /Users and /tmp, so
 * `docker run -v "$PWD":/src …` works from anywhere under them; `--shares LIST` replaces that
 * list (`none`: no default shares), `-v HOSTDIR[:ro]` adds to it.
 *
 * The result is sorted so a directory is mounted before the ones inside it; a directory given
 * twice is shared once (an explicit `-v` wins, with its `:ro`); a default that does not exist is
 * left out (reported). Paths the guest's own system lives on (`/`, /proc, /usr, /var/lib/docker…)
 * are refused: a share mounted there would hide the guest's files.
 */

import { existsSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { resolve } from "node:path";

export interface SharedDir {
  dir: string;
  readOnly: boolean;
}

/** The default `--shares` value: the home directory and /tmp. */
export function defaultSharesText(home = homedir()): string {
  return [home, "/tmp"].join(",");
}

/** Guest paths a share may not cover (the guest's system and runtime directories). */
const GUEST_OWN = ["/proc", "/sys", "/dev", "/run", "/var/run", "/var/lib/docker", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/skiff"];

function refused(dir: string): string | undefined {
  if (dir === "/") return "the root directory";
  const hit = GUEST_OWN.find((p) => dir === p || dir.startsWith(p + "/"));
  return hit && `${hit} is the guest's own`;
}

/**
 * The directories to share: `sharesText` (comma-separated, `none` or empty for none) then the
 * `-v HOSTDIR[:ro]` values. Throws a usage error naming a refused or missing `-v` directory;
 * `notes` receives one line per default left out.
 */
export function dockerShares(sharesText: string, volumes: string[], notes: (s: string) => void = () => {}): SharedDir[] {
  const byDir = new Map<string, SharedDir>();
  const words = sharesText.trim() === "none" ? [] : sharesText.split(",").map((w) => w.trim()).filter(Boolean);
  for (const w of words) {
    const dir = resolve(w);
    const why = refused(dir);
    if (why) throw new Error(`--shares ${w}: cannot share ${why}`);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      notes(`not sharing ${dir}: no such directory`);
      continue;
    }
    byDir.set(dir, { dir, readOnly: false });
  }
  for (const spec of volumes) {
    const readOnly = spec.endsWith(":ro");
    const dir = resolve(readOnly ? spec.slice(0, -3) : spec);
    const why = refused(dir);
    if (why) throw new Error(`-v ${spec}: cannot share ${why}`);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`-v ${spec}: ${dir} is not a directory`);
    byDir.set(dir, { dir, readOnly });
  }
  // A string sorts before its extensions, so a directory comes before those inside it.
  return [...byDir.values()].sort((a, b) => (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0));
}
