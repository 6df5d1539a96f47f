/**
 * The argv of vfkit (github.com/crc-org/vfkit, Apple Virtualization framework on macOS) that
 * boots skiff's guest image with its network on skiff. Pure; macOS only to run, so the tests
 * check the argv and nothing here starts a process.
 *
 * vfkit's syntax (doc/usage.md of vfkit):
 *   --cpus N --memory MiB
 *   --bootloader linux,kernel=PATH,initrd=PATH,cmdline="CMDLINE"
 *       vfkit splits the value at commas outside double quotes and strips the quotes around
 *       cmdline's value, so the command line is always quoted and may hold commas and spaces,
 *       but no `"` (there is no escape); paths may hold neither `,` nor `"`.
 *   --device virtio-net,unixSocketPath=PATH,mac=MAC
 *       VZFileHandleNetworkDeviceAttachment on a Unix datagram socket: skiff's vfkit channel
 *       (`openVfkit(PATH)` in src/link/vfkit.ts, or `skiff serve --vfkit PATH`) binds PATH.
 *       Device options are split at every comma, so PATH may not hold one.
 *   --device virtio-serial,logFilePath=PATH   the console (`hvc0` in the guest) to a file
 *   --device virtio-serial,stdio              ...or on vfkit's own stdin/stdout
 *   --device virtio-rng                       entropy for the guest
 *
 * The guest's console is the virtio console, so the command line needs `console=hvc0`
 * (`kernelAppend(cfg, "hvc0")`). On Apple silicon the kernel must be an uncompressed arm64
 * `Image`; skiff's image builder makes an amd64 guest, bootable by vfkit on Intel Macs only.
 */

import { configChecks, type LinuxBootConfig } from "./boot-config.js";

export const VFKIT_BINARY = "vfkit";

export interface VfkitConfig extends LinuxBootConfig {
  /** The network: skiff's vfkit socket (skiff binds it) and the guest's MAC. */
  net?: { socketPath: string; mac: string };
  /** Console to this file, or (`"stdio"`) on vfkit's terminal. */
  console: { logFile: string } | "stdio";
  /** vfkit's REST API (`unix:///PATH`, `tcp://HOST:PORT`); default none. */
  restfulUri?: string;
}

/** The vfkit argv (without the binary); throws `VmConfigError` for a config vfkit cannot take. */
export function vfkitArgs(cfg: VfkitConfig): string[] {
  const c = configChecks("vfkit");
  c.boot(cfg, `,"`);
  if (cfg.cmdline.includes(`"`)) c.fail("cmdline", `contains '"', which vfkit cannot quote`);
  const args = [
    "--cpus", String(cfg.cpus),
    "--memory", String(cfg.memoryMiB),
    "--bootloader", `linux,kernel=${cfg.kernel},initrd=${cfg.initrd},cmdline="${cfg.cmdline}"`,
  ];
  if (cfg.net) {
    const path = c.path("net.socketPath", cfg.net.socketPath, ",");
    args.push("--device", `virtio-net,unixSocketPath=${path},mac=${c.mac("net.mac", cfg.net.mac)}`);
  }
  if (cfg.console === "stdio") args.push("--device", "virtio-serial,stdio");
  else args.push("--device", `virtio-serial,logFilePath=${c.path("console.logFile", cfg.console?.logFile, ",")}`);
  args.push("--device", "virtio-rng");
  if (cfg.restfulUri !== undefined) args.push("--restful-uri", c.path("restfulUri", cfg.restfulUri, ""));
  return args;
}
