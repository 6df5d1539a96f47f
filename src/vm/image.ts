/**
 * `skiff vm image build`: a small guest (kernel + initramfs) built from Debian packages only.
 *
 * - the kernel package `linux-image-amd64` depends on (e.g. `linux-image-6.1.0-56-amd64`) gives
 *   `/boot/vmlinuz-*` and the modules virtio-net and 9p need (Debian builds them as modules;
 *   the package has no modules.dep, so dependencies are read from each `.ko`'s `depends=`);
 * - `busybox-static` gives every userland tool the init script uses;
 * - `skiff-agent` (native/guest-agent.c, compiled static here; see agent.ts) replays the shares'
 *   host file events in the guest.
 *
 * Packages are fetched with `apt-get download` (the candidate versions of the configured
 * sources) and unpacked with `dpkg-deb -x`. The image lives in `CACHE/<key>/` where the key
 * hashes the package versions and the init script: the same inputs give the same bytes.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, copyFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { writeInitramfs, type CpioEntry } from "./initramfs.js";
import { INIT_SCRIPT, UDHCPC_SCRIPT } from "./init.js";
import { AGENT_PATH, agentSourceHash, buildAgent } from "./agent.js";

/** Modules the guest loads (with their dependencies, resolved from the package). */
/** 9pnet_fd is 9P's TCP transport (`mount -t 9p -o trans=tcp`): host directories shared by skiff's gateway (src/share/). */
export const GUEST_MODULES = ["virtio_pci", "virtio_net", "9pnet_virtio", "9pnet_fd", "9p"];
const BUILDER_VERSION = "2";

export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  packages: Record<string, string>;
}

export function defaultCacheDir(): string {
  return skiffCacheDir("vm");
}

/** `$XDG_CACHE_HOME/skiff/NAME` (default `~/.cache/skiff/NAME`). */
export function skiffCacheDir(name: string): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "skiff", name);
}

/** A failure a user fixes by installing or configuring something (printed as one line). */
export class VmSetupError extends Error {}

/** Run a setup tool (apt, dpkg-deb); failures become a one-line VmSetupError. */
export function run(cmd: string, args: string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new VmSetupError(`${cmd} not found: building the guest image needs a Debian system with apt and dpkg`);
    throw new VmSetupError(`${cmd} ${args.join(" ")} failed: ${(err.stderr ?? err.message).trim().split("\n").pop()}`);
  }
}

function candidate(pkg: string): string | undefined {
  const m = /Candidate:\s*(\S+)/.exec(run("apt-cache", ["policy", pkg]));
  return m && m[1] !== "(none)" ? m[1] : undefined;
}

/** Resolve the kernel package and the versions the image is built from. */
export function resolvePackages(progress: (s: string) => void = () => {}): Record<string, string> {
  if (candidate("linux-image-amd64") === undefined || candidate("busybox-static") === undefined) {
    if (process.getuid?.() !== 0) throw new VmSetupError("apt does not know linux-image-amd64 / busybox-static: run `apt-get update` as root");
    progress("apt-get update");
    run("apt-get", ["update", "-qq"]);
  }
  const deps = run("apt-cache", ["depends", "linux-image-amd64"]);
  const m = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)/.exec(deps);
  if (!m) throw new VmSetupError("cannot find the kernel package linux-image-amd64 depends on");
  const out: Record<string, string> = {};
  for (const p of [m[1], "busybox-static"]) {
    const v = candidate(p);
    if (!v) throw new VmSetupError(`no installable version of ${p}`);
    out[p] = v;
  }
  return out;
}

/**
 * What this version of skiff puts into an image besides the packages: the builder, /init, the
 * udhcpc script and the module list. An image built by another version (an older /init) is
 * never booted by this one.
 */
export function builderHash(): string {
  return createHash("sha256").update(BUILDER_VERSION).update(INIT_SCRIPT).update(UDHCPC_SCRIPT).update(GUEST_MODULES.join(",")).update(agentSourceHash()).digest("hex").slice(0, 16);
}

export function imageKey(packages: Record<string, string>): string {
  const h = createHash("sha256").update(builderHash());
  for (const [p, v] of Object.entries(packages).sort()) h.update(`${p}=${v}\n`);
  return h.digest("hex").slice(0, 16);
}

/**
 * The image in `dir` if it is one this version of skiff built (its manifest names `builder`:
 * this image builder's hash by default; the docker image's builder passes its own).
 */
export function imageIn(dir: string, builder = builderHash()): GuestImage | undefined {
  const manifest = join(dir, "manifest.json");
  if (!existsSync(manifest)) return undefined;
  let m: { packages?: Record<string, string>; builder?: string };
  try {
    m = JSON.parse(readFileSync(manifest, "utf8")) as typeof m;
  } catch {
    return undefined;
  }
  if (m.builder !== builder || m.packages === undefined) return undefined;
  return { dir, kernel: join(dir, "vmlinuz"), initrd: join(dir, "initrd.img"), packages: m.packages };
}

/**
 * An image in `cacheDir` built by this version of skiff, without touching apt: the one
 * `current` names when it is ours, else the newest of ours (another version of skiff, or
 * another image builder, may share the cache and move `current`). Undefined when there is none.
 */
export function findImage(cacheDir = defaultCacheDir()): GuestImage | undefined {
  return findBuilt(cacheDir, (dir) => imageIn(dir));
}

/** `findImage`'s search with another builder's loader (`load` returns undefined for images not its own). */
export function findBuilt<T extends GuestImage>(cacheDir: string, load: (dir: string) => T | undefined): T | undefined {
  const cur = join(cacheDir, "current");
  if (existsSync(cur)) {
    const img = load(join(cacheDir, readFileSync(cur, "utf8").trim()));
    if (img !== undefined) return img;
  }
  if (!existsSync(cacheDir)) return undefined;
  let best: { img: T; at: number } | undefined;
  for (const e of readdirSync(cacheDir, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith(".")) continue;
    const img = load(join(cacheDir, e.name));
    if (img === undefined) continue;
    const at = statSync(join(img.dir, "manifest.json")).mtimeMs;
    if (best === undefined || at > best.at) best = { img, at };
  }
  return best?.img;
}

/** `.ko` dependencies, from the `depends=` string of its `.modinfo` section. */
export function moduleDepends(ko: Uint8Array): string[] {
  const s = Buffer.from(ko).toString("latin1");
  const i = s.indexOf("\0depends=");
  if (i < 0) return [];
  const v = s.slice(i + 9, s.indexOf("\0", i + 9));
  return v ? v.split(",") : [];
}

/** Dependency-first load order of `wanted` given a name → deps lookup. */
export function loadOrder(wanted: string[], depsOf: (m: string) => string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (m: string, path: string[]) => {
    if (seen.has(m)) return;
    if (path.includes(m)) throw new Error(`module dependency cycle: ${[...path, m].join(" -> ")}`);
    for (const d of depsOf(m)) visit(d, [...path, m]);
    seen.add(m);
    order.push(m);
  };
  for (const m of wanted) visit(m, []);
  return order;
}

/** Every `.ko` under `dir`, by module name (dashes as underscores). */
function walk(dir: string, found: Map<string, string>): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, found);
    else if (e.name.endsWith(".ko")) found.set(e.name.slice(0, -3).replace(/-/g, "_"), p);
  }
}

/**
 * The kernel unpacked at `root` (`/boot/vmlinuz-*`, `/lib/modules/VER`): `wanted` modules with
 * their dependencies in load order, and their bytes (`ko`).
 */
export function kernelModules(root: string, kernelPackage: string, wanted: string[]): { vmlinuz: string; kver: string; order: string[]; ko: (m: string) => Uint8Array } {
  const vmlinuz = readdirSync(join(root, "boot")).find((f) => f.startsWith("vmlinuz-"));
  if (!vmlinuz) throw new VmSetupError("the kernel package has no /boot/vmlinuz-*");
  const kver = vmlinuz.slice("vmlinuz-".length);
  const kos = new Map<string, string>();
  walk(join(root, "lib", "modules", kver), kos);
  const cache = new Map<string, Uint8Array>();
  const ko = (m: string) => {
    const p = kos.get(m);
    if (!p) throw new VmSetupError(`module ${m} is not in ${kernelPackage}`);
    if (!cache.has(m)) cache.set(m, readFileSync(p));
    return cache.get(m)!;
  };
  const order = loadOrder(wanted, (m) => moduleDepends(ko(m)).map((d) => d.replace(/-/g, "_")));
  return { vmlinuz, kver, order, ko };
}

/** Build (or reuse) the image for the current package versions. */
export function buildImage(opts: { cacheDir?: string; progress?: (s: string) => void } = {}): GuestImage {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const progress = opts.progress ?? (() => {});
  progress("resolving package versions");
  const packages = resolvePackages(progress);
  const key = imageKey(packages);
  return cachedImage(cacheDir, key, (dir) => imageIn(dir), (work, out) => {
    for (const [p, v] of Object.entries(packages)) {
      progress(`downloading ${p} ${v}`);
      run("apt-get", ["download", "-qq", `${p}=${v}`], work);
    }
    const debs = readdirSync(work).filter((f) => f.endsWith(".deb"));
    const root = join(work, "root");
    for (const d of debs) {
      progress(`unpacking ${d}`);
      run("dpkg-deb", ["-x", join(work, d), root]);
    }
    const { vmlinuz, kver, order, ko } = kernelModules(root, Object.keys(packages)[0], GUEST_MODULES);
    progress(`initramfs: busybox + ${order.length} modules (${order.join(" ")})`);
    const enc = new TextEncoder();
    const agentFile = join(work, "skiff-agent");
    const noAgent = buildAgent(agentFile);
    if (noAgent !== undefined) progress(`no skiff-agent in the image (shares without file events): ${noAgent}`);
    const entries: CpioEntry[] = [
      ...["bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "root", "sbin", "usr", "usr/bin", "usr/sbin"].map((name) => ({ kind: "dir" as const, name })),
      { kind: "chardev", name: "dev/console", major: 5, minor: 1 },
      { kind: "file", name: "bin/busybox", data: readFileSync(join(root, "bin", "busybox")), mode: 0o755 },
      { kind: "symlink", name: "bin/sh", target: "busybox" },
      { kind: "file", name: "init", data: enc.encode(INIT_SCRIPT), mode: 0o755 },
      { kind: "file", name: "etc/udhcpc.sh", data: enc.encode(UDHCPC_SCRIPT), mode: 0o755 },
      { kind: "file", name: "lib/modules/skiff.order", data: enc.encode(order.join("\n") + "\n") },
      ...order.map((m) => ({ kind: "file" as const, name: `lib/modules/${m}.ko`, data: ko(m) })),
      ...(noAgent === undefined ? [{ kind: "file" as const, name: AGENT_PATH, data: readFileSync(agentFile), mode: 0o755 }] : []),
    ];
    mkdirSync(out);
    copyFileSync(join(root, "boot", vmlinuz), join(out, "vmlinuz"));
    writeFileSync(join(out, "initrd.img"), writeInitramfs(entries));
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ key, builder: builderHash(), kernel: kver, packages, modules: order }, null, 2) + "\n");
  }, progress);
}

/**
 * The cache step both image builders share: reuse `cacheDir/key` when `load` accepts it, else run
 * `build(work, out)` in a fresh work directory inside the cache, move `out` into place and point
 * `current` at it. The cache is private to its owner (0700); `current` is replaced by rename, so
 * a link planted there is never followed.
 */
export function cachedImage<T>(
  cacheDir: string,
  key: string,
  load: (dir: string) => T | undefined,
  build: (work: string, out: string) => void,
  progress: (s: string) => void,
): T {
  const dir = join(cacheDir, key);
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const setCurrent = (): void => {
    const tmp = join(cacheDir, `.current-${process.pid}`);
    rmSync(tmp, { force: true });
    writeFileSync(tmp, key + "\n", { flag: "wx", mode: 0o600 });
    renameSync(tmp, join(cacheDir, "current"));
  };
  const existing = load(dir);
  if (existing !== undefined) {
    setCurrent();
    progress(`image ${key} is up to date`);
    return existing;
  }
  const work = mkdtempSync(join(cacheDir, ".build-"));
  try {
    const out = join(work, "out");
    build(work, out);
    rmSync(dir, { recursive: true, force: true });
    renameSync(out, dir);
    setCurrent();
    progress(`image ${key} built in ${dir}`);
    const img = load(dir);
    if (img === undefined) throw new VmSetupError(`the image built in ${dir} does not load`);
    return img;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
