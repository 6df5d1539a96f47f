/**
 * Test support for QEMU-based end-to-end tests: whether they can run here, the guest image, and
 * the processes a VM's parent leaves behind when it exits abruptly (test/support/vm-exit-child.ts).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { QEMU_BINARY, QEMU_PACKAGE } from "../../src/vm/qemu.js";
import { buildImage, defaultCacheDir, type GuestImage } from "../../src/vm/image.js";

/** Why QEMU tests cannot run here (undefined when they can). */
export function qemuMissing(): string | undefined {
  try {
    execFileSync(QEMU_BINARY, ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return `${QEMU_BINARY} is not installed (apt-get install ${QEMU_PACKAGE})`;
  }
}

/**
 * For a `before` hook of a QEMU test: the guest image (built if needed), or the hook's test
 * skipped with the reason printed when QEMU or the image is not available here.
 */
export function guestImageOrSkip(ctx: Mocha.Context): GuestImage {
  const missing = qemuMissing();
  if (missing) {
    console.log(`      (skipped: ${missing})`);
    ctx.skip();
  }
  try {
    return buildImage({ cacheDir: process.env.SKIFF_VM_CACHE ?? defaultCacheDir() });
  } catch (e) {
    console.log(`      (skipped: the guest image cannot be built here: ${(e as Error).message})`);
    ctx.skip();
  }
}

/**
 * A cache directory of its own whose "current" image is `image` (a symlink to it), for
 * `vmRun({ cacheDir })`: other test runs building images with other inputs into the shared
 * cache move its "current" pointer, which would otherwise change the guest under this test.
 */
export function pinnedImageCache(image: GuestImage): string {
  const dir = mkdtempSync(join(tmpdir(), "skiff-image-pin-"));
  const key = basename(image.dir);
  symlinkSync(image.dir, join(dir, key));
  writeFileSync(join(dir, "current"), key + "\n");
  return dir;
}

/** Process `pid` runs (it exists and is not a zombie waiting for its reaper). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return false;
  }
}

const EXIT_CHILD = fileURLToPath(new URL("./vm-exit-child.ts", import.meta.url));

/**
 * Run test/support/vm-exit-child.ts with `env` (it starts a VM, then calls process.exit with
 * the VM running): the child processes it had when it exited (pid and name), with its output.
 * Rejects (killing it) if it does not exit within `timeoutMs`.
 */
export function exitWithVmRunning(env: Record<string, string>, timeoutMs: number): Promise<{ children: Array<{ pid: number; name: string }>; code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--import", "tsx", EXIT_CHILD], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d) => (output += d));
    p.stderr.on("data", (d) => (output += d));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`the child did not exit within ${timeoutMs} ms: ${output}`));
    }, timeoutMs);
    p.on("close", (code) => {
      clearTimeout(t);
      const m = /^CHILDREN (.*)$/m.exec(output);
      const children = (m?.[1] ?? "").split(" ").filter(Boolean).map((c) => ({ pid: Number(c.split("=")[0]), name: c.slice(c.indexOf("=") + 1) }));
      resolve({ children, code, output });
    });
  });
}
