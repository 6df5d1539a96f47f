/**
 * Choosing QEMU's accelerator. `auto` must never pick one that cannot boot a guest:
 *
 * - macOS → `hvf`;
 * - Linux → `kvm` only when `/dev/kvm` opens read-write AND the host is not itself a guest
 *   (no `hypervisor` flag in /proc/cpuinfo): nested KVM often opens fine and then hangs the
 *   guest (as on this project's CI machines), so a nested host gets `tcg`.
 *   `SKIFF_VM_NESTED_KVM=1` trusts nested KVM anyway;
 * - anything else → `tcg`.
 */

import { closeSync, openSync, readFileSync, constants } from "node:fs";

export type Accel = "kvm" | "tcg" | "hvf";
export type AccelRequest = Accel | "auto";

export interface AccelFacts {
  platform: NodeJS.Platform;
  /** /dev/kvm opened read-write. */
  kvmUsable: boolean;
  /** The host CPU reports it runs under a hypervisor. */
  nested: boolean;
  /** The user asked to trust nested KVM. */
  trustNestedKvm: boolean;
}

/** The accelerator to use (pure: facts in, decision and reason out). */
export function chooseAccel(requested: AccelRequest, f: AccelFacts): { accel: Accel; reason: string } {
  if (requested !== "auto") return { accel: requested, reason: "requested" };
  if (f.platform === "darwin") return { accel: "hvf", reason: "macOS" };
  if (f.platform !== "linux") return { accel: "tcg", reason: `no hardware accelerator on ${f.platform}` };
  if (!f.kvmUsable) return { accel: "tcg", reason: "/dev/kvm cannot be opened" };
  if (f.nested && !f.trustNestedKvm) return { accel: "tcg", reason: "nested virtualisation (set SKIFF_VM_NESTED_KVM=1 to try KVM)" };
  return { accel: "kvm", reason: "/dev/kvm usable" };
}

export function hostAccelFacts(): AccelFacts {
  let kvmUsable = false;
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
    kvmUsable = true;
  } catch {
    // absent or no permission
  }
  let nested = false;
  try {
    nested = /^flags\s*:.*\bhypervisor\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    // not Linux
  }
  return { platform: process.platform, kvmUsable, nested, trustNestedKvm: process.env.SKIFF_VM_NESTED_KVM === "1" };
}
