/**
 * `skiff serve`: one skiff network for any number of guests attached in any of the supported
 * ways — QEMU `-netdev stream` (Unix or TCP, skiff listening), QEMU `-netdev dgram`, VPNKit's
 * vmnet protocol (hyperkit, RootlessKit), vfkit — all on one learning switch with the gateway,
 * so guests reach each other directly and share DHCP, DNS, socket translation and the host
 * directories given with `--share NAME=DIR[:ro]` (9P on the gateway's TCP port 564). Runs until
 * SIGINT/SIGTERM, then closes everything and removes the sockets it created.
 */

import type { Logger } from "pino";
import { formatIpv4 } from "../common/addr.js";
import { checkSocketPath, prepareSocketPath } from "../common/socket-path.js";
import { createNetwork, type Network } from "../network/network.js";
import { resolveNetworkOptions, type NetworkOptions } from "../network/options.js";
import { StopSignal } from "./stop.js";
import { checkOutputFile } from "./args.js";
import { parseShareArg } from "../share/registry.js";

export interface ServeOptions {
  qemuStream: string[];
  qemuDgram: string[];
  vmnet: string[];
  vfkit: string[];
  mtu: number;
  subnet?: string;
  subnet6?: string;
  ipv6?: boolean;
  hostIp?: string;
  deny?: string[];
  dnsRecords?: string[];
  /** `NAME=HOSTDIR[:ro]`: host directories served over 9P (src/share/). */
  shares?: string[];
  pcap?: string;
  apiSocket?: string;
  /** Busy-poll window after traffic, µs (0: off); default DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  log: Logger;
  /** Resolves when the command should stop (tests); SIGINT/SIGTERM always stop it. */
  stop?: Promise<unknown>;
  onReady?: () => void;
}

export async function serve(opts: ServeOptions): Promise<number> {
  const { log } = opts;
  const attachments = opts.qemuStream.length + opts.qemuDgram.length + opts.vmnet.length + opts.vfkit.length;
  if (attachments === 0) throw new Error("nothing to serve: give at least one of --qemu-stream, --qemu-dgram, --vmnet, --vfkit");
  const shares = (opts.shares ?? []).map(parseShareArg);
  const options: NetworkOptions = { mtu: opts.mtu, subnet: opts.subnet, subnet6: opts.subnet6, ipv6: opts.ipv6, hostIp: opts.hostIp, deny: opts.deny, dnsRecords: opts.dnsRecords, shares, defaultGuest: null, busyPollUs: opts.busyPollUs, log };
  // Checked before anything is opened.
  cliOptions(options);
  if (opts.pcap !== undefined) checkOutputFile(opts.pcap, "--pcap");
  for (const [flag, paths] of [["--qemu-stream", opts.qemuStream.filter((a) => a.startsWith("unix:")).map((a) => a.slice(5))], ["--qemu-dgram", opts.qemuDgram], ["--vmnet", opts.vmnet], ["--vfkit", opts.vfkit], ["--api-socket", opts.apiSocket === undefined ? [] : [opts.apiSocket]]] as const) {
    for (const path of paths) checkSocketPath(path, flag);
  }
  // The datagram sockets are bound as given: one a running process holds is refused by its flag.
  for (const path of opts.qemuDgram) await prepareSocketPath(path, "--qemu-dgram");
  for (const path of opts.vfkit) await prepareSocketPath(path, "--vfkit");
  const net = await createNetwork(options);
  const stop = new StopSignal(opts.stop);
  try {
    // From here on, whatever fails closes everything opened so far (finally) and exits at once.
    // One capture for the whole network, from the first guest's first frame.
    if (opts.pcap) net.startCapture(opts.pcap);
    for (const addr of opts.qemuStream) await net.listenQemuStream(addr);
    for (const path of opts.qemuDgram) await net.openQemuDgram(path);
    for (const path of opts.vfkit) await net.openVfkit(path);
    for (const path of opts.vmnet) await net.listenVmnet(path);
    if (opts.apiSocket !== undefined) await net.listenApi(opts.apiSocket);
    log.info({ gateway: formatIpv4(net.config.gatewayIp), attachments }, "serve: ready");
    opts.onReady?.();
    await stop.stopped;
    log.info({ signal: stop.signal }, "serve: stopping");
    return 0;
  } finally {
    stop.dispose();
    await net.close();
  }
}

/**
 * The library's options checked as the command's: a bad one is reported with the command's flag
 * ("--subnet ..."), before anything is opened.
 */
export function cliOptions(options: NetworkOptions): void {
  try {
    resolveNetworkOptions(options);
  } catch (e) {
    const option = (e as { option?: string }).option;
    if (option === undefined) throw e;
    const flag = "--" + option.replace(/\[\d+\].*$/, "").replace(/s$/, "").replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
    const why = (e as Error).message.slice(option.length + 2);
    throw new Error(why.startsWith('"') ? `${flag} ${why}` : `${flag}: ${why}`);
  }
}

export type { Network };
