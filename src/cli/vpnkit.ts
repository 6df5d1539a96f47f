/**
 * `skiff vpnkit --ethernet PATH --mtu N [--host-ip IP]`: a drop-in for the `vpnkit` binary as
 * RootlessKit (`--net=vpnkit --vpnkit-binary=…`) and hyperkit (`virtio-vpnkit,path=…`) start
 * it. skiff listens on PATH for vmnet connections (one VIF each,
 * `src/link/vmnet.ts`) and serves them all with one network: gateway 192.168.65.1 (ARP, DHCP,
 * DNS on UDP and TCP 53, ICMP echo), the host's 127.0.0.1 as 192.168.65.2 unless
 * `--host-ip 0.0.0.0`, and every other destination through host sockets.
 *
 * A UUID's MAC and address are fixed for the life of the process (and derived from the UUID,
 * so also across restarts); each VIF's MAC gets a DHCP static lease for its address, so the
 * DHCP exchange RootlessKit runs on both of its connections gives the same answer.
 */

import type { Logger } from "pino";
import { formatIpv4 } from "../common/addr.js";
import { checkSocketPath } from "../common/socket-path.js";
import { createNetwork } from "../network/network.js";
import { StopSignal } from "./stop.js";
import { cliOptions } from "./serve.js";

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
 * vpnkit's flags skiff accepts and ignores, as `[flag, takes a
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
  // Checked before anything is opened. Each VIF attaches straight to the gateway (vpnkit's
  // topology: VIFs do not see each other's frames).
  const options = { mtu: opts.mtu, hostIp: opts.hostIp, subnet: opts.subnet, switch: false, defaultGuest: null, log };
  cliOptions(options);
  checkSocketPath(opts.ethernet, "--ethernet");
  if (opts.apiSocket !== undefined) checkSocketPath(opts.apiSocket, "--api-socket");
  const net = await createNetwork(options);
  const cfg = net.config;
  const stop = new StopSignal(opts.stop);
  try {
    await net.listenVmnet(opts.ethernet);
    // Forwards need an explicit guestAddr through the API: each VIF has its own address.
    if (opts.apiSocket !== undefined) await net.listenApi(opts.apiSocket);
    log.info(
      { ethernet: opts.ethernet, mtu: opts.mtu, gateway: formatIpv4(cfg.gatewayIp), hostIp: cfg.hostAliasIp === null ? null : formatIpv4(cfg.hostAliasIp) },
      "vpnkit: listening",
    );
    opts.onReady?.();
    await stop.stopped;
    log.info({ signal: stop.signal }, "vpnkit: stopping");
    return 0;
  } finally {
    stop.dispose();
    await net.close();
  }
}
