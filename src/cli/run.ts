/**
 * `skiff run [options] -- CMD [ARGS...]`: give a command a private network namespace whose only
 * network is skiff (like slirp4netns or pasta).
 *
 * As root: skiff creates a namespace with `ip netns`, opens a TAP device inside it, serves it with
 * its own stack, configures the guest side statically (192.168.65.3/24, default route via the
 * gateway 192.168.65.1), runs CMD inside, and exits with CMD's status after cleaning up. As any
 * other user: the same network in user + network namespaces of its own (./userns-netns.ts).
 */

import type { Logger } from "pino";
import type { ChildProcess } from "node:child_process";
import { formatIpv4, formatMac } from "../common/addr.js";
import { checkSocketPath } from "../common/socket-path.js";
import { broadcastAddress } from "../stack/config.js";
import { createNetwork, type Network } from "../network/network.js";
import { resolveNetworkOptions, type NetworkOptions } from "../network/options.js";
import { parsePublishOptions } from "../network/control.js";
import { checkOutputFile } from "./args.js";
import { cliOptions } from "./serve.js";
import { guestAddress6, ipv6GuestSetup } from "./run-ipv6.js";
import { DEFAULT_MAX_HALF_OPEN, DEFAULT_MAX_TCP_FLOWS } from "../stack/tcp.js";
import { DEFAULT_MAX_DIALS } from "../socket-translate/tcp-translator.js";
import { Netns, requireRootWithIp } from "./netns.js";
import { GUEST_MAC, KILL_GRACE_MS, signalStatus } from "./run-common.js";
import { UserNetns, requireRootlessTools } from "./userns-netns.js";

export interface RunOptions {
  mtu: number;
  pcap?: string;
  subnet?: string;
  subnet6?: string;
  ipv6?: boolean;
  hostIp?: string;
  tap: string;
  /** Destination CIDRs to refuse (replaces the default deny list). */
  deny?: string[];
  /** Extra DNS records, "NAME=IP". */
  dnsRecords?: string[];
  /** Port forwards, docker's `-p [hostAddr:]hostPort:guestPort[/udp]`. */
  publish?: string[];
  /** Serve the control API on this Unix socket. */
  apiSocket?: string;
  /** Checksum and TCP segmentation offload on the TAP device (virtio-net header); default true. */
  offload?: boolean;
  /** Busy-poll window after traffic, µs (0: off); default DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  command: string[];
  log: Logger;
}

/**
 * skiff run's network has one guest, so its share of the TCP tables is the whole table: the
 * per-guest shares (a quarter by default, hard caps: src/stack/guests.ts) keep guests of one
 * network from starving each other, and with a single guest they only refused its 65th
 * concurrent connect. (UDP and ICMP shares are soft: a lone guest already keeps the whole table.)
 */
const ONE_GUEST_LIMITS = { tcpFlowsPerGuest: DEFAULT_MAX_TCP_FLOWS, tcpHalfOpenPerGuest: DEFAULT_MAX_HALF_OPEN, tcpDialsPerGuest: DEFAULT_MAX_DIALS };

export async function run(opts: RunOptions): Promise<number> {
  // Everything that can be checked is checked before anything is opened.
  // An ordinary user gets user + network namespaces of its own (./userns-netns.ts).
  const rootless = process.getuid?.() !== 0;
  if (rootless) requireRootlessTools();
  else requireRootWithIp();
  const base: NetworkOptions = { mtu: opts.mtu, subnet: opts.subnet, subnet6: opts.subnet6, ipv6: opts.ipv6, hostIp: opts.hostIp, deny: opts.deny, dnsRecords: opts.dnsRecords, busyPollUs: opts.busyPollUs, limits: ONE_GUEST_LIMITS, log: opts.log };
  cliOptions(base);
  const cfg = resolveNetworkOptions(base).config;
  const guestIpNum = (cfg.network + 3) >>> 0;
  if (guestIpNum >= broadcastAddress(cfg)) {
    throw new Error(`--subnet ${opts.subnet}: too small for skiff run, which needs the gateway (.1), the host alias (.2) and the guest (.3): use a /29 or larger`);
  }
  const guestIp = formatIpv4(guestIpNum);
  if (opts.pcap !== undefined) checkOutputFile(opts.pcap, "--pcap");
  // A TCP forward on [::1] or [::] goes to the guest's IPv6 address (IPv4 when it refuses there).
  const guestIp6 = guestAddress6(cfg, GUEST_MAC);
  parsePublishOptions(opts.publish ?? [], guestIp, guestIp6);
  if (opts.apiSocket !== undefined) checkSocketPath(opts.apiSocket, "--api-socket");
  // One guest, straight on the gateway (no switch). Its interface is configured statically with
  // the address skiff's DHCP server would give it (a static lease for its MAC), so a DHCP
  // client inside gets the same answer.
  const net: Network = await createNetwork({ ...base, switch: false, defaultGuest: guestIp, defaultGuest6: guestIp6, staticLeases: [{ mac: GUEST_MAC, ip: guestIpNum }] });
  // Signals are handled from the start, so a stop during set-up still cleans up.
  let stopSignal: NodeJS.Signals | undefined;
  let child: ChildProcess | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    stopSignal ??= sig;
    child?.kill(sig);
    // A command that ignores the signal is killed after a grace period: nothing is left behind.
    killTimer ??= setTimeout(() => child?.kill("SIGKILL"), KILL_GRACE_MS);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let ns: Netns | UserNetns | undefined;
  try {
    // From here on, whatever fails closes everything opened so far (finally) and exits at once.
    ns = rootless ? UserNetns.create() : Netns.create();
    // The capture starts before the link is attached: it sees the first frame.
    if (opts.pcap) net.startCapture(opts.pcap);
    net.attach(ns.openTap({ name: opts.tap, mtu: opts.mtu, offload: opts.offload ?? true }));
    ns.exec(["ip", "link", "set", "lo", "up"]);
    ns.exec(["ip", "link", "set", opts.tap, "address", formatMac(GUEST_MAC), "mtu", String(opts.mtu), "up"]);
    ns.exec(["ip", "addr", "add", `${guestIp}/${cfg.prefixLength}`, "dev", opts.tap]);
    ns.exec(["ip", "route", "add", "default", "via", formatIpv4(cfg.gatewayIp)]);
    // IPv6 too, statically (the router advertisements say the same; waiting for SLAAC and DAD
    // would delay the command): the EUI-64 address in the prefix, default route via the gateway.
    for (const argv of ipv6GuestSetup(cfg, GUEST_MAC, opts.tap)) ns.exec(argv);
    // `ip netns exec` runs the command in a mount namespace where /etc/netns/NAME/* is bound
    // over /etc/* (rootless: bound in the namespace's own mount namespace): the command sees
    // skiff's DNS server as its resolver.
    ns.writeEtc("resolv.conf", `# written by skiff run\nnameserver ${formatIpv4(cfg.gatewayIp)}\noptions edns0\n`);
    opts.log.info({ netns: ns.name, ...(ns instanceof UserNetns ? { userns: ns.mapping } : {}), tap: opts.tap, guest: guestIp, gateway: formatIpv4(cfg.gatewayIp) }, "namespace ready");
    if ((opts.publish ?? []).length > 0) await net.forward(opts.publish!);
    if (opts.apiSocket !== undefined) await net.listenApi(opts.apiSocket);
    if (stopSignal) return signalStatus(stopSignal);
    const proc = ns.spawn(opts.command);
    child = proc;
    const code = await new Promise<number>((resolve) => {
      proc.on("error", (e) => {
        opts.log.error(`cannot run ${opts.command[0]}: ${e.message}`);
        resolve(127);
      });
      proc.on("exit", (c, sig) => resolve(c ?? signalStatus(sig ?? "SIGKILL")));
    });
    opts.log.debug({ counters: net.stats().stack }, "stack counters");
    return code;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await net.close();
    ns?.remove();
  }
}
