/** Test support: why QEMU-based end-to-end tests cannot run here (undefined when they can). */
import { execFileSync } from "node:child_process";
import { QEMU_BINARY, QEMU_PACKAGE } from "../../src/vm/qemu.js";

export function qemuMissing(): string | undefined {
  try {
    execFileSync(QEMU_BINARY, ["--version"], { stdio: "ignore" });
    return undefined;
  } catch {
    return `${QEMU_BINARY} is not installed (apt-get install ${QEMU_PACKAGE})`;
  }
}
