/**
 * The argv of hyperkit (github.com/moby/hyperkit, Hypervisor.framework on Intel Macs) that
 * boots skiff's guest image with its network on skiff. Pure; macOS only to run, so the tests
 * check the argv and nothing here starts a process.
 *
 * hyperkit's syntax (its usage text and option parsing in src/hyperkit.c, src/lib/*.c):
 *   -A (ACPI tables) -u (RTC in UTC) -F PIDFILE -c CPUS -m MEM (suffix M: MiB)
 *   -s 0:0,hostbridge -s 31,lpc             PCI host bridge and the LPC bus for the serial port
 *   -s 1:0,virtio-vpnkit,path=PATH,uuid=UUID[,preferred_ipv4=IP]
 *       the network over VPNKit's vmnet protocol: skiff's vmnet listener (`skiff serve
 *       --vmnet PATH`, `skiff vpnkit --ethernet PATH`; src/link/vmnet.ts) listens on PATH and
 *       gives each UUID a stable MAC and address. Options are split at every comma.
 *   -s 2,virtio-rnd                         entropy for the guest
 *   -U UUID                                 the VM's UUID (optional)
 *   -l com1,BACKEND[,log=RING]              the first serial port (`ttyS0`, so the command line
 *       needs `console=ttyS0`): BACKEND is `stdio` or `autopty=LINK` (a pty whose name hyperkit
 *       writes to LINK); `log=RING` also keeps the output in a memory-mapped ring-buffer file
 *       (not plain text). `log=` alone is refused by hyperkit, hence a backend is required.
 *   -f kexec,KERNEL,INITRD,CMDLINE
 *       the value is split at its first three commas only, so CMDLINE is passed verbatim —
 *       commas, spaces and quotes included — and must NOT be quoted (quotes would reach the
 *       kernel); KERNEL and INITRD may not hold a comma. In a shell the whole argument is
 *       quoted once, e.g. `-f "kexec,$K,$I,console=ttyS0 quiet"`.
 */

import { parseIpv4Address } from "../common/addr.js";
import { configChecks, type LinuxBootConfig } from "./boot-config.js";

export const HYPERKIT_BINARY = "hyperkit";

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export interface HyperkitConfig extends LinuxBootConfig {
  /** hyperkit writes its pid here (-F). */
  pidFile?: string;
  /** The VM's UUID (-U). */
  vmUuid?: string;
  /** The network: skiff's vmnet socket and the VIF's UUID (its MAC and address follow from it). */
  vpnkit?: { socketPath: string; uuid: string; preferredIpv4?: string };
  /** The serial console: on hyperkit's terminal or a pty (LINK receives its name); RING keeps a ring-buffer log. */
  console: { stdio: true; ring?: string } | { autopty: string; ring?: string };
}

/** The hyperkit argv (without the binary); throws `VmConfigError` for a config hyperkit cannot take. */
export function hyperkitArgs(cfg: HyperkitConfig): string[] {
  const c = configChecks("hyperkit");
  c.boot(cfg, ",");
  const uuid = (field: string, v: string) => (UUID_RE.test(v) ? v : c.fail(field, `${JSON.stringify(v)} is not a UUID (8-4-4-4-12 hex digits)`));
  const args = ["-A", "-u"];
  if (cfg.pidFile !== undefined) args.push("-F", c.path("pidFile", cfg.pidFile, ""));
  args.push("-c", String(cfg.cpus), "-m", `${cfg.memoryMiB}M`, "-s", "0:0,hostbridge", "-s", "31,lpc");
  if (cfg.vpnkit) {
    const v = cfg.vpnkit;
    let dev = `1:0,virtio-vpnkit,path=${c.path("vpnkit.socketPath", v.socketPath, ",")},uuid=${uuid("vpnkit.uuid", v.uuid)}`;
    if (v.preferredIpv4 !== undefined) {
      if (parseIpv4Address(v.preferredIpv4) === undefined) c.fail("vpnkit.preferredIpv4", `${JSON.stringify(v.preferredIpv4)} is not a dotted IPv4 address`);
      dev += `,preferred_ipv4=${v.preferredIpv4}`;
    }
    args.push("-s", dev);
  }
  args.push("-s", "2,virtio-rnd");
  if (cfg.vmUuid !== undefined) args.push("-U", uuid("vmUuid", cfg.vmUuid));
  const con = cfg.console;
  if (!con || !("stdio" in con || "autopty" in con)) c.fail("console", "needs stdio or autopty (hyperkit refuses a serial port with only a log)");
  let com1 = "stdio" in con ? "com1,stdio" : `com1,autopty=${c.path("console.autopty", con.autopty, ",")}`;
  if (con.ring !== undefined) com1 += `,log=${c.path("console.ring", con.ring, ",")}`;
  args.push("-l", com1);
  args.push("-f", `kexec,${cfg.kernel},${cfg.initrd},${cfg.cmdline}`);
  return args;
}
