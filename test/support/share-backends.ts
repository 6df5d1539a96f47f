/**
 * Test and bench support (issue 15): run one shell script in a QEMU TCG guest (skiff's guest
 * image, the same kernel every time) with a host directory mounted at /mnt by one of three 9P
 * servers, so skiff's share is compared with its peers on equal terms:
 *   - "skiff":     skiff's 9P2000.L server on the gateway, TCP 564, reached through skiff's TCP
 *                  (`skiff vm run`, src/share/);
 *   - "virtio-9p": QEMU's own server (`-virtfs local,security_model=mapped-xattr`), mounted with
 *                  trans=virtio;
 *   - "diod":      Debian's userspace 9P server on the host's loopback, reached by the guest over
 *                  QEMU's user networking (slirp) at 10.0.2.2, trans=tcp.
 * All three mount with version=9p2000.L and msize=1 MiB (each transport clamps it) and the
 * client's default cache mode. The script travels in the share itself (`.steps.sh`: the kernel
 * command line is too short) and its output lines come back. Programs the scripts need are C
 * files under test/guest/, compiled statically on the host (`compileGuestProgram`).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { vmRun } from "../../src/cli/vm.js";
import { Vm } from "../../src/vm/qemu.js";
import type { GuestImage } from "../../src/vm/image.js";

export type ShareBackend = "skiff" | "virtio-9p" | "diod";
export const SHARE_BACKENDS: ShareBackend[] = ["skiff", "virtio-9p", "diod"];

const here = dirname(fileURLToPath(import.meta.url));
const MSIZE = 1 << 20;

/** Why a backend cannot run here (undefined when it can). */
export function backendMissing(b: ShareBackend): string | undefined {
  if (b !== "diod") return undefined;
  try {
    execFileSync("diod", ["--help"], { stdio: "ignore" });
    return undefined;
  } catch (e) {
    // diod --help exits non-zero but runs; ENOENT means it is not installed.
    return (e as NodeJS.ErrnoException).code === "ENOENT" ? "diod is not installed (apt-get install diod)" : undefined;
  }
}

/** Compile test/guest/NAME.c statically into `outDir/NAME`; throws with gcc's message. */
export function compileGuestProgram(name: string, outDir: string): string {
  const out = join(outDir, name);
  execFileSync("gcc", ["-static", "-O2", "-Wall", "-o", out, join(here, "..", "guest", `${name}.c`)], { stdio: ["ignore", "ignore", "pipe"] });
  return out;
}

/** Why guest programs cannot be compiled here (undefined when they can). */
export function compilerMissing(): string | undefined {
  try {
    execFileSync("gcc", ["--version"], { stdio: "ignore" });
    return existsSync("/usr/lib/x86_64-linux-gnu/libc.a") ? undefined : "static libc missing (apt-get install libc6-dev)";
  } catch {
    return "gcc is not installed (apt-get install gcc libc6-dev)";
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface BackendRun {
  backend: ShareBackend;
  /** The host directory mounted at /mnt. */
  dir: string;
  /** Shell script run in the guest after the mount (as root, cwd /root). */
  script: string;
  image: GuestImage;
  /** A cache directory whose current image is `image` (test/support/qemu.ts pinnedImageCache). */
  cacheDir: string;
  memoryMiB?: number;
  /** skiff's link MTU (default 65520). */
  mtu?: number;
  /** Extra 9P mount options (comma-separated, appended). */
  mountOptions?: string;
  consoleLog?: string;
  /** Each output line of the script as it arrives. */
  onLine?: (line: string) => void;
}

export interface BackendResult {
  status: number | undefined;
  lines: string[];
}

/** Boot a guest, mount `dir` at /mnt through `backend`, run `script`, collect its output. */
export async function runOnBackend(o: BackendRun): Promise<BackendResult> {
  const lines: string[] = [];
  const push = (l: string) => {
    lines.push(l);
    o.onLine?.(l);
  };
  writeFileSync(join(o.dir, ".steps.sh"), o.script);
  const extra = o.mountOptions ? `,${o.mountOptions}` : "";
  const after = "cp /mnt/.steps.sh /tmp/ && sh /tmp/.steps.sh";
  if (o.backend === "skiff") {
    const mount = `mount -t 9p -o trans=tcp,port=564,version=9p2000.L,aname=share,msize=${MSIZE}${extra} 192.168.65.1 /mnt`;
    const status = await vmRun({
      cpus: 1, memoryMiB: o.memoryMiB ?? 512, mtu: o.mtu ?? 65520, accel: "tcg", cacheDir: o.cacheDir,
      command: ["sh", "-c", `mkdir -p /mnt && ${mount} && ${after}`], shares: [{ name: "share", path: o.dir }],
      consoleLog: o.consoleLog, output: push, log: pino({ level: "silent" }),
    });
    return { status, lines };
  }
  let diod: ChildProcess | undefined;
  let diodErr = "";
  let mount: string;
  const qemuArgs: string[] = ["-netdev", "user,id=n0", "-device", "virtio-net-pci,netdev=n0,romfile="];
  if (o.backend === "virtio-9p") {
    qemuArgs.push("-virtfs", `local,path=${o.dir.replace(/,/g, ",,")},mount_tag=share,security_model=mapped-xattr,id=fs0`);
    mount = `mount -t 9p -o trans=virtio,version=9p2000.L,msize=${MSIZE}${extra} share /mnt`;
  } else {
    const port = await freePort();
    const debug = process.env.SKIFF_DIOD_DEBUG ? ["-d", process.env.SKIFF_DIOD_DEBUG] : [];
    diod = spawn("diod", ["-f", "-n", "-L", "stderr", ...debug, "-l", `127.0.0.1:${port}`, "-e", o.dir], { stdio: ["ignore", "ignore", "pipe"] });
    diod.stderr!.on("data", (b: Buffer) => void (diodErr = (diodErr + b.toString()).slice(-4000)));
    diod.once("exit", (code) => code && push(`(diod exited ${code}: ${diodErr.trim()})`));
    mount = `mount -t 9p -o trans=tcp,port=${port},version=9p2000.L,aname=${o.dir},uname=root,msize=${MSIZE}${extra} 10.0.2.2 /mnt`;
  }
  try {
    let passThrough = false;
    const vm = Vm.start(
      {
        kernel: o.image.kernel, initrd: o.image.initrd, accel: "tcg", cpus: 1, memoryMiB: o.memoryMiB ?? 512,
        command: `mkdir -p /mnt && ${mount} && ${after}`, extraArgs: qemuArgs,
      },
      {
        logFile: o.consoleLog,
        onLine: (l) => {
          if (/SKIFF-(READY|EXIT)/.test(l)) passThrough = l.includes("SKIFF-READY");
          else if (passThrough) push(l);
        },
      },
    );
    const r = await vm.exited;
    if (r.status !== 0 && diodErr) push(`(diod's log: ${diodErr.trim()})`);
    return { status: r.status, lines };
  } finally {
    if (diod && diod.exitCode === null) {
      diod.kill("SIGTERM");
      await new Promise((res) => diod!.once("exit", res));
    }
  }
}

/** A fresh directory `base/name` for one backend's run. */
export function freshDir(base: string, name: string): string {
  const d = join(base, name);
  mkdirSync(d, { recursive: true });
  return d;
}
