/**
 * Which Debian packages the docker guest is built from, at which versions.
 *
 * The roots are the kernel package `linux-image-amd64` depends on, `busybox-static` (the
 * init's userland), `docker.io`, `containerd`, `runc`, `tini` and `iptables`. Their shared
 * libraries come from the Depends closure restricted to library packages (names starting with
 * `lib`, first alternative of an or-group): Depends such as `adduser`, `lsb-base`, `netbase`,
 * `dmsetup` or `init-system-helpers` only matter to a system managed by dpkg and systemd, which
 * the guest is not. The closure is then checked against the binaries themselves: every
 * `DT_NEEDED` of every ELF file in the guest must be present (src/desktop/image.ts), so a
 * library missing from the Depends data fails the build instead of the guest.
 *
 * `apt-cache depends` and `apt-cache policy` are called once per level of the closure with
 * every package of the level, not once per package.
 */

import { run as apt, VmSetupError } from "../vm/image.js";

/** The packages whose programs the guest runs (besides the kernel). */
export const ROOT_PACKAGES = ["busybox-static", "docker.io", "containerd", "runc", "tini", "iptables"];

/** `apt-cache depends A B …` output → package → its Depends/PreDepends (first alternative of each group). */
export function parseDepends(out: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  let cur: string[] | undefined;
  let inOr = false;
  for (const line of out.split("\n")) {
    if (line.length > 0 && !line.startsWith(" ")) {
      cur = [];
      m.set(line.trim(), cur);
      inOr = false;
      continue;
    }
    const d = /^\s+(\|)?(?:Pre)?Depends:\s+(\S+)/.exec(line);
    if (d && cur) {
      // "|Depends: a" starts an or-group whose next line is the other alternative: keep the first.
      if (!inOr && !d[2].startsWith("<")) cur.push(d[2]);
      inOr = d[1] === "|";
      continue;
    }
    if (/^\s+\S+:/.test(line)) inOr = false;
  }
  return m;
}

/** `apt-cache policy A B …` output → package → candidate version (absent when none). */
export function parsePolicy(out: string): Map<string, string> {
  const m = new Map<string, string>();
  let cur: string | undefined;
  for (const line of out.split("\n")) {
    const h = /^(\S+):$/.exec(line);
    if (h) cur = h[1];
    const c = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (c && cur && c[1] !== "(none)") m.set(cur, c[1]);
  }
  return m;
}

/** The library closure of `roots`: every `lib*` package reachable through Depends. */
export function libraryClosure(roots: string[], dependsOf: (pkgs: string[]) => Map<string, string[]>): string[] {
  const seen = new Set<string>();
  let level = roots;
  while (level.length > 0) {
    const deps = dependsOf(level);
    const next: string[] = [];
    for (const p of level) {
      for (const d of deps.get(p) ?? []) {
        const name = d.replace(/:any$/, "");
        if (!name.startsWith("lib") || seen.has(name)) continue;
        seen.add(name);
        next.push(name);
      }
    }
    level = next;
  }
  return [...seen].sort();
}

/** Package → version for the docker guest (kernel, roots, their libraries). */
export function resolveDockerPackages(progress: (s: string) => void = () => {}): Record<string, string> {
  const policy = (pkgs: string[]) => parsePolicy(apt("apt-cache", ["policy", ...pkgs]));
  if (!policy(["linux-image-amd64", ...ROOT_PACKAGES]).has("docker.io")) {
    if (process.getuid?.() !== 0) throw new VmSetupError("apt does not know docker.io: run `apt-get update` as root");
    progress("apt-get update");
    apt("apt-get", ["update", "-qq"]);
  }
  const k = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(apt("apt-cache", ["depends", "linux-image-amd64"]));
  if (!k) throw new VmSetupError("cannot find the kernel package linux-image-amd64 depends on");
  const libs = libraryClosure(ROOT_PACKAGES, (pkgs) => parseDepends(apt("apt-cache", ["depends", ...pkgs])));
  const all = [k[1], ...ROOT_PACKAGES, ...libs];
  const versions = policy(all);
  const out: Record<string, string> = {};
  for (const p of all) {
    const v = versions.get(p);
    if (!v) throw new VmSetupError(`no installable version of ${p}`);
    out[p] = v;
  }
  return out;
}
