/** Test support for QEMU-based end-to-end tests: whether they can run here, and the guest image. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
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
