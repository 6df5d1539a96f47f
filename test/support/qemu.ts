/** Test support for QEMU-based end-to-end tests: whether they can run here, and the guest image. */
import { execFileSync } from "node:child_process";
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
