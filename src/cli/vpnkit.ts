/**
 * `skiff vpnkit --ethernet PATH --mtu N [--host-ip IP]`: a drop-in for the `vpnkit` binary as
 * RootlessKit (`--net=vpnkit --vpnkit-binary=…`) and hyperkit (`virtio-vpnkit,path=…`) start
 * it (reference/vpnkit.md §2.2). skiff listens on PATH for vmnet connections (one VIF each,
 * `src/link/vmnet.ts`) and serves them all with one network: gateway 192.168.65.1 (ARP, DHCP,
 * DNS on UDP and TCP 53, ICMP echo), the host's 127.0.0.1 as 192.168.65.2 unless
 * `--host-ip 0.0.0.0`, and every other destination through host sockets.
 *
 * A UUID's MAC and address are fixed for the life of the process (and derived from the UUID,
 * so also across restarts); each VIF's MAC gets a DHCP static lease for its address, so the
 * DHCP exchange RootlessKit runs on both of its connections gives the same answer.
 */

import type { Logger } from "pino";
import { startControl, type Control } from "./forward.js";
import { formatIpv4 } from "../common/addr.js";
import { VmnetIdentities, VmnetListener, describeVif } from "../link/vmnet.js";
import type { FrameChannel } from "../link/channel.js";
import type { StreamFrameChannel } from "../link/stream-channel.js";
import { broadcastAddress } from "../stack/config.js";
import { Network } from "./network.js";
import { StopSignal } from "./stop.js";
import { checkSocketPath } from "../common/socket-path.js";

export interface VpnkitOptions {
  ethernet: string;
  mtu: number;
  hostIp?: string;
  subnet?: string;
  log: Logger;
  /** Control API socket (forwards need an explicit guestAddr: each VIF has its own address). */
  apiSocket?: string;
  /** Resolves when the command should stop (tests); SIGINT/SIGTERM always stop it. */
  stop?: Promise<unknown>;
  /** Called once the socket listens. */
  onReady?: () => void;
}

/**
 * vpnkit's flags skiff accepts and ignores (reference/vpnkit.md §1.17), as `[flag, takes a
 * value]`. `--ethernet`, `--mtu`, `--host-ip` and `--debug` are honoured.
 */
export const IGNORED_VPNKIT_FLAGS: ReadonlyArray<readonly [string, boolean]> = [
  ["--port", true],
  ["--introspection", true],
  ["--diagnostics", true],
  ["--pcap", true],
  ["--pcap-snaplen", true],
  ["--max-connections", true],
  ["--vsock-path", true],
  ["--port-forwards", true],
  ["--dns", true],
  ["--http", true],
  ["--http-api-path", true],
  ["--hosts", true],
  ["--host-names", true],
  ["--gateway-names", true],
  ["--vm-names", true],
  ["--listen-backlog", true],
  ["--port-max-idle-time", true],
  ["--server-macaddr", true],
  ["--domain", true],
  ["--allowed-bind-addresses", true],
  ["--gateway-ip", true],
  ["--lowest-ip", true],
  ["--highest-ip", true],
  ["--dhcp-path", true],
  ["--udpv4-forwards", true],
  ["--tcpv4-forwards", true],
  ["--gateway-forwards", true],
  ["--forwards", true],
  ["--gc-compact-interval", true],
];

/** Serve until SIGINT/SIGTERM (or `stop`); returns the exit status. */
export async function vpnkit(opts: VpnkitOptions): Promise<number> {
  const { log } = opts;
  // Checked before anything is opened.
  checkSocketPath(opts.ethernet, "--ethernet");
  if (opts.apiSocket !== undefined) checkSocketPath(opts.apiSocket, "--api-socket");
  const net = new Network({ mtu: opts.mtu, hostIp: opts.hostIp, subnet: opts.subnet, log });
  const cfg = net.stack.config;
  const stop = new StopSignal(opts.stop);
  const channels = new Set<FrameChannel>();
  let listener: VmnetListener | undefined;
  let control: Control | undefined;
  try {
    listener = await listenVmnet(net, opts.ethernet, opts.mtu, (channel) => {
      channels.add(channel);
      net.stack.attach(channel);
      channel.once("closed", () => channels.delete(channel));
    }, log);
    if (opts.apiSocket !== undefined) control = await startControl(net, { apiSocket: opts.apiSocket, log });
    log.info(
      { ethernet: opts.ethernet, mtu: opts.mtu, gateway: formatIpv4(cfg.gatewayIp), hostIp: cfg.hostAliasIp === null ? null : formatIpv4(cfg.hostAliasIp) },
      "vpnkit: listening",
    );
    opts.onReady?.();
    await stop.stopped;
    log.info({ signal: stop.signal, handshakes: listener.counters.handshakes, refused: listener.counters.drops }, "vpnkit: stopping");
    return 0;
  } finally {
    stop.dispose();
    await control?.close();
    await listener?.close();
    for (const c of channels) c.close();
    net.close();
  }
}

/**
 * Listen for vmnet clients on `path` for `net`: each UUID gets a stable MAC and address (with a
 * DHCP static lease), and each accepted connection is handed to `attach` (the stack itself, or
 * a switch port when several kinds of guests share the network).
 */
export async function listenVmnet(
  net: Network,
  path: string,
  mtu: number,
  attach: (channel: StreamFrameChannel) => void,
  log: Logger,
): Promise<VmnetListener> {
  const cfg = net.stack.config;
  const identities = new VmnetIdentities({
    poolFirst: (cfg.network + 3) >>> 0,
    poolLast: (broadcastAddress(cfg) - 1) >>> 0,
    reserved: [cfg.gatewayIp, cfg.hostAliasAddress],
    reservedMacs: [cfg.gatewayMac],
  });
  const listener = await VmnetListener.listen(path, { identities, mtu });
  let leases = 0;
  listener.on("channel", (channel, vif) => {
    // A new UUID: its MAC gets a static lease before its first frame can arrive.
    const all = identities.all();
    if (all.length !== leases) {
      leases = all.length;
      net.setStaticLeases(all.map((v) => ({ mac: v.mac, ip: v.ip })));
    }
    attach(channel);
    log.info({ vif: describeVif(vif), channel: channel.name }, "vmnet: VIF connected");
    channel.once("closed", (err) => log.info({ channel: channel.name, stats: channel.stats.snapshot(), error: err?.message }, "vmnet: VIF closed"));
  });
  listener.on("rejected", (reason, detail) => log.warn({ reason, detail }, "vmnet: connection refused during handshake"));
  listener.on("error", (e) => log.error(`vmnet listener: ${e.message}`));
  return listener;
}
