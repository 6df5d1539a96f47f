/**
 * `skiff docker`'s guest image, built from Debian packages only (issue 16), in the style of the
 * small image (src/vm/image.ts): `apt-get download` of the versions src/desktop/packages.ts
 * resolves, `dpkg-deb -x` of each, no maintainer scripts, no systemd.
 *
 * Three files in `CACHE/<key>/`, the key hashing the package versions, both init stages, the
 * udhcpc script, the module list and this builder's version:
 * - `vmlinuz`: the kernel of the package `linux-image-amd64` depends on;
 * - `initrd.img`: busybox, `/init` (stage 1) and the modules docker needs with their
 *   dependencies (read from each `.ko`'s `depends=`): virtio blk/net, ext4, overlay, bridge,
 *   br_netfilter, veth, conntrack/NAT and the iptables (legacy) tables and matches dockerd uses;
 * - `system.img`: a read-only ext4 disk (src/desktop/disk.ts) with docker.io, containerd, runc,
 *   tini, iptables (its `iptables` names point at xtables-legacy-multi, as Debian's alternatives
 *   would), their libraries, busybox, `/skiff/init` (stage 2) and the file-event agent
 *   `/sbin/skiff-agent` (built by src/vm/agent.ts, as for the small image; stage 2 starts it for
 *   each share, src/vm/init.ts MOUNT_SHARES). Documentation, the docker CLI
 *   and other programs the guest never runs are left out.
 * Before the disk is made every ELF file's `DT_NEEDED` sonames and interpreter are checked
 * against the tree (src/desktop/elf.ts): a missing library fails the build, naming it.
 */

import { createHash } from "node:crypto";
import { chmodSync } from "node:fs";
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, copyFileSync, openSync, readSync, closeSync } from "node:fs";
import { join } from "node:path";
import { cachedImage, findBuilt, imageIn as guestImageIn, kernelModules, run as apt, skiffCacheDir, VmSetupError, type GuestImage } from "../vm/image.js";
import { writeInitramfs, type CpioEntry } from "../vm/initramfs.js";
import { UDHCPC_SCRIPT } from "../vm/init.js";
import { AGENT_PATH, agentSourceHash, buildAgent } from "../vm/agent.js";
import { GUEST_PROXY, GUEST_PROXY_PATH, STAGE1_INIT, STAGE2_INIT } from "./init.js";
import { resolveDockerPackages } from "./packages.js";
import { elfDeps, isElf } from "./elf.js";
import { makeSystemDisk } from "./disk.js";
import { fixTimes, treeBytes, treeDigest, treeFiles } from "./tree.js";

const BUILDER_VERSION = "4";

/** Modules loaded by stage 1, in this order after their dependencies. */
export const DOCKER_MODULES = [
  "crc32c_generic", "virtio_pci", "virtio_blk", "virtio_net", "ext4", "overlay",
  "bridge", "br_netfilter", "veth", "nf_conntrack", "nf_nat",
  "ip_tables", "iptable_filter", "iptable_nat", "iptable_raw", "xt_addrtype", "xt_conntrack", "xt_MASQUERADE", "xt_nat", "xt_tcpudp",
  // 9P over TCP: host directories shared by skiff's gateway (src/share/).
  "9pnet_fd", "9p",
];

/** Files of the packages the guest never uses (paths relative to the tree). */
const PRUNE = ["usr/share", "usr/lib/x86_64-linux-gnu/gconv", "usr/bin/docker", "usr/bin/dnet", "usr/bin/ovrouter", "usr/bin/containerd-shim", "usr/bin/containerd-shim-runc-v1", "etc/init.d", "etc/default", "lib/systemd", "usr/lib/systemd"];

/** The names Debian's alternatives give iptables, pointed at the legacy multi-call binary. */
const IPTABLES_NAMES = ["iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"];

/** Files the builder writes into the tree (their times are fixed like the directories'). */
const CREATED = ["skiff/init", "skiff/udhcpc.sh", GUEST_PROXY_PATH.slice(1), "usr/lib/os-release"];
/** The time given to what the builder creates (2000-01-01T00:00:00Z). */
const FIXED_EPOCH = 946684800;

export interface DockerImage extends GuestImage {
  /** The read-only system disk. */
  system: string;
}

export function defaultDockerCacheDir(): string {
  return skiffCacheDir("docker");
}

/** What this version of skiff puts into the docker image besides the packages (an image by another version is never booted). */
export function dockerBuilderHash(): string {
  return createHash("sha256").update(BUILDER_VERSION).update(STAGE1_INIT).update(STAGE2_INIT).update(GUEST_PROXY).update(UDHCPC_SCRIPT).update(DOCKER_MODULES.join(",")).update(agentSourceHash()).digest("hex").slice(0, 16);
}

export function dockerImageKey(packages: Record<string, string>): string {
  const h = createHash("sha256").update(dockerBuilderHash());
  for (const [p, v] of Object.entries(packages).sort()) h.update(`${p}=${v}\n`);
  return h.digest("hex").slice(0, 16);
}

function imageIn(dir: string): DockerImage | undefined {
  const img = guestImageIn(dir, dockerBuilderHash());
  return img && { ...img, system: join(dir, "system.img") };
}

/** A docker image in `cacheDir` built by this version of skiff (the one `current` names, else the newest), without touching apt. */
export function findDockerImage(cacheDir = defaultDockerCacheDir()): DockerImage | undefined {
  return findBuilt(cacheDir, imageIn);
}

function head(path: string, n: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(n);
    return b.subarray(0, readSync(fd, b, 0, n, 0));
  } finally {
    closeSync(fd);
  }
}

const LIB_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64", "lib", "usr/lib"];

/**
 * Sonames needed by an ELF file of `root` that no library directory of `root` holds, as
 * "file: soname" lines (empty: the closure is complete).
 */
export function missingLibraries(root: string): string[] {
  const have = new Set<string>();
  for (const d of LIB_DIRS) {
    if (!existsSync(join(root, d))) continue;
    for (const e of readdirSync(join(root, d))) have.add(e);
  }
  const missing: string[] = [];
  for (const f of treeFiles(root)) {
    const p = join(root, f);
    if (!isElf(head(p, 4))) continue;
    const deps = elfDeps(readFileSync(p));
    if (!deps) {
      missing.push(`${f}: not a readable ELF64 file`);
      continue;
    }
    for (const n of deps.needed) if (!have.has(n)) missing.push(`${f}: ${n}`);
    if (deps.interp !== undefined && !lexists(join(root, deps.interp))) missing.push(`${f}: interpreter ${deps.interp}`);
  }
  return missing;
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Build (or reuse) the docker guest image for the current package versions. */
export function buildDockerImage(opts: { cacheDir?: string; progress?: (s: string) => void } = {}): DockerImage {
  const cacheDir = opts.cacheDir ?? defaultDockerCacheDir();
  const progress = opts.progress ?? (() => {});
  progress("resolving package versions");
  const packages = resolveDockerPackages(progress);
  const key = dockerImageKey(packages);
  return cachedImage(cacheDir, key, imageIn, (work, out) => {
    const names = Object.keys(packages);
    progress(`downloading ${names.length} packages (${names.slice(0, 7).join(", ")} and ${names.length - 7} libraries)`);
    apt("apt-get", ["download", "-qq", ...Object.entries(packages).map(([p, v]) => `${p}=${v}`)], work);
    const debs = readdirSync(work).filter((f) => f.endsWith(".deb")).sort();
    const kernelDeb = debs.find((d) => d.startsWith("linux-image-"));
    if (!kernelDeb) throw new VmSetupError("the kernel package was not downloaded");
    const root = join(work, "root");
    const kroot = join(work, "kernel");
    for (const d of debs) {
      progress(`unpacking ${d}`);
      apt("dpkg-deb", ["-x", join(work, d), d === kernelDeb ? kroot : root]);
    }
    for (const p of PRUNE) rmSync(join(root, p), { recursive: true, force: true });
    for (const n of IPTABLES_NAMES) {
      rmSync(join(root, "usr/sbin", n), { force: true });
      symlinkSync("xtables-legacy-multi", join(root, "usr/sbin", n));
    }
    for (const d of ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp", "root", "var/lib/docker", "sys/fs/cgroup", "skiff", "usr/lib"]) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, "skiff/init"), STAGE2_INIT, { mode: 0o755 });
    // dockerd reports the OS from os-release (base-files, not in the guest).
    writeFileSync(join(root, "usr/lib/os-release"), 'NAME="skiff docker guest"\nID=skiff\nVERSION_ID="1"\nPRETTY_NAME="skiff docker guest (Debian packages)"\n');
    writeFileSync(join(root, "skiff/udhcpc.sh"), UDHCPC_SCRIPT, { mode: 0o755 });
    writeFileSync(join(root, GUEST_PROXY_PATH.slice(1)), GUEST_PROXY, { mode: 0o755 });
    // Modes as written, whatever the builder's umask.
    for (const f of ["skiff/init", "skiff/udhcpc.sh", GUEST_PROXY_PATH.slice(1)]) chmodSync(join(root, f), 0o755);
    // The shares' file events (src/share/events.ts): without a C compiler the image has no agent
    // and shares work without them, as in the small image.
    const noAgent = buildAgent(join(root, AGENT_PATH));
    if (noAgent === undefined) chmodSync(join(root, AGENT_PATH), 0o755);
    else progress(`no skiff-agent in the image (shares without file events): ${noAgent}`);
    progress("checking every binary's shared libraries");
    const missing = missingLibraries(root);
    if (missing.length > 0) throw new VmSetupError(`the docker guest lacks shared libraries: ${missing.slice(0, 8).join("; ")}`);

    const { vmlinuz, kver, order, ko } = kernelModules(kroot, kernelDeb, DOCKER_MODULES);
    progress(`initramfs: busybox + ${order.length} modules`);
    const enc = new TextEncoder();
    const entries: CpioEntry[] = [
      ...["bin", "dev", "lib", "lib/modules", "proc", "sys", "sbin", "usr", "usr/bin", "usr/sbin"].map((name) => ({ kind: "dir" as const, name })),
      { kind: "chardev", name: "dev/console", major: 5, minor: 1 },
      { kind: "file", name: "bin/busybox", data: readFileSync(join(root, "bin", "busybox")), mode: 0o755 },
      { kind: "symlink", name: "bin/sh", target: "busybox" },
      { kind: "file", name: "init", data: enc.encode(STAGE1_INIT), mode: 0o755 },
      { kind: "file", name: "lib/modules/skiff.order", data: enc.encode(order.join("\n") + "\n") },
      ...order.map((m) => ({ kind: "file" as const, name: `lib/modules/${m}.ko`, data: ko(m) })),
    ];
    mkdirSync(out);
    copyFileSync(join(kroot, "boot", vmlinuz), join(out, "vmlinuz"));
    writeFileSync(join(out, "initrd.img"), writeInitramfs(entries));
    fixTimes(root, [...CREATED, ...(existsSync(join(root, AGENT_PATH)) ? [AGENT_PATH] : []), ...IPTABLES_NAMES.map((n) => `usr/sbin/${n}`)], FIXED_EPOCH);
    const digest = treeDigest(root);
    const bytes = treeBytes(root);
    // Room for ext4's metadata and inode tables on top of the files: a fifth more plus 32 MiB.
    const sizeMiB = Math.ceil((bytes * 1.2) / (1 << 20)) + 32;
    progress(`system disk: ${(bytes / (1 << 20)).toFixed(0)} MiB of files in a ${sizeMiB} MiB ext4 image`);
    makeSystemDisk(join(out, "system.img"), root, sizeMiB, key.padEnd(32, "0"));
    writeFileSync(join(out, "manifest.json"), JSON.stringify({ key, builder: dockerBuilderHash(), kernel: kver, packages, modules: order, systemMiB: sizeMiB, systemTreeSha256: digest }, null, 2) + "\n");
  }, progress);
}
