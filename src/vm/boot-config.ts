/**
 * What every launcher's argv builder needs to boot skiff's guest image (kernel + initramfs +
 * command line, CPUs, memory), and the checks they share. The builders (vfkit.ts, hyperkit.ts)
 * are pure: a config in, an argv out, or a `VmConfigError` naming the field at fault.
 */

import { isMulticastMac, parseMac } from "../common/addr.js";

export interface LinuxBootConfig {
  kernel: string;
  initrd: string;
  /** Kernel command line (e.g. from `kernelAppend`). */
  cmdline: string;
  cpus: number;
  memoryMiB: number;
}

/** A config a launcher cannot express or would refuse; the message names tool and field. */
export class VmConfigError extends Error {
  constructor(tool: string, field: string, why: string) {
    super(`${tool}: ${field} ${why}`);
  }
}

/** A checker bound to one tool's name, so every message says which launcher refused what. */
export function configChecks(tool: string) {
  const fail = (field: string, why: string): never => {
    throw new VmConfigError(tool, field, why);
  };
  /** A non-empty value without the characters `forbidden` (the tool's option separators). */
  const path = (field: string, v: string | undefined, forbidden: string): string => {
    if (typeof v !== "string" || v.length === 0) return fail(field, "is missing");
    for (const c of forbidden) if (v.includes(c)) fail(field, `${JSON.stringify(v)} contains ${JSON.stringify(c)}, which ${tool} takes as an option separator`);
    return v;
  };
  const int = (field: string, v: number, min: number, max: number): number => {
    if (!Number.isInteger(v) || v < min || v > max) fail(field, `must be an integer in ${min}..${max} (got ${v})`);
    return v;
  };
  /** A unicast MAC, returned as given. */
  const mac = (field: string, v: string): string => {
    const m = parseMac(v);
    if (m === undefined) return fail(field, `${JSON.stringify(v)} is not a MAC address (xx:xx:xx:xx:xx:xx)`);
    if (isMulticastMac(m)) fail(field, `${v} is a multicast address (the first octet's low bit is set)`);
    return v;
  };
  /** The fields of `LinuxBootConfig`; paths may not hold `pathForbidden`. */
  const boot = (cfg: LinuxBootConfig, pathForbidden: string): void => {
    path("kernel", cfg.kernel, pathForbidden);
    path("initrd", cfg.initrd, pathForbidden);
    if (typeof cfg.cmdline !== "string" || cfg.cmdline.trim().length === 0) fail("cmdline", "is empty");
    int("cpus", cfg.cpus, 1, 64);
    int("memoryMiB", cfg.memoryMiB, 64, 1 << 20);
  };
  return { fail, path, int, mac, boot };
}
