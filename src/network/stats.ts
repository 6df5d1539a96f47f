/**
 * The counters of a network as one plain object (`Network.stats()`, the control API's
 * GET /stats): the services' stats tree (`NetworkServices.stats`: per attachment, the stack's
 * drops, TCP, socket translation, the descriptor budget, the shares, DHCP and DNS) with the
 * forwards, the capture and, with IPv6 on, its addresses, learned guests and UDP added.
 */

import type { ForwardManager } from "../forward/manager.js";
import type { StatsTree } from "../common/counters.js";
import { formatMac } from "../common/addr.js";
import { formatIpv6 } from "../stack/config6.js";
import type { CaptureControl, CaptureStatus } from "./capture.js";
import type { NetworkServices } from "./services.js";

/** The shape of `Network.stats()`: plain numbers, strings and arrays, ready for JSON. */
export interface NetworkStats {
  attachments: Array<{ id: number; name: string } & Record<string, number | string>>;
  stack: Record<string, unknown>;
  tcp: Record<string, unknown>;
  tcpTranslate: Record<string, unknown>;
  udpTranslate: Record<string, unknown>;
  icmpTranslate: Record<string, unknown>;
  fdBudget: Record<string, number | null>;
  forwards: Array<Record<string, unknown>>;
  capture?: CaptureStatus;
  /** The 9P share server: its counters and open connections. */
  shares: Record<string, number>;
  /** The DHCP server: messages by type, and drops by reason. */
  dhcp: Record<string, unknown>;
  /** The DNS server: its UDP and TCP service, the resolver, forwarding to the host's resolvers. */
  dns: { service: Record<string, number>; resolver: Record<string, number>; upstream: Record<string, number> };
  /** The learning switch between guests (with `switch: true`): frames by kind, drops by reason. */
  switch?: Record<string, unknown>;
  /** Guest listeners open (`listenQemuStream`, `listenVmnet`): the address, and vmnet's handshake counters. */
  listeners?: Array<{ address: string } & Record<string, unknown>>;
  /** IPv6 (absent when off): the addressing plan, the guests' addresses learned, UDP translation over IPv6. */
  ipv6?: {
    prefix: string;
    gateway: string;
    hostAlias: string | null;
    neighbors: Array<{ ip: string; mac: string; port: number }>;
    neighborEvictions: number;
    udpTranslate: Record<string, unknown>;
    /** ICMPv6 echo translation: its counters, mode ("dgram", "raw", "disabled") and live flows. */
    icmpTranslate: Record<string, unknown>;
  };
}

/** The network's stats tree: the services' groups, then the forwards, the capture (when given) and IPv6 (when on). */
export function networkStatsTree(net: NetworkServices, forwards: ForwardManager, capture?: CaptureControl): StatsTree {
  return net.stats
    .extend()
    .value("forwards", () => forwards.stats())
    .value("capture", () => capture?.status())
    .value("ipv6", () => ipv6Stats(net));
}

/** A snapshot of `tree` (built by `networkStatsTree`) with its type. */
export function networkStats(tree: StatsTree): NetworkStats {
  return tree.snapshot() as unknown as NetworkStats;
}

function ipv6Stats(net: NetworkServices): NetworkStats["ipv6"] {
  const gw = net.stack.ipv6;
  if (gw === undefined) return undefined;
  const c = gw.cfg;
  return {
    prefix: `${formatIpv6(c.prefix)}/64`,
    gateway: formatIpv6(c.gateway),
    hostAlias: c.hostAlias === null ? null : formatIpv6(c.hostAlias),
    neighbors: gw.neighbors.list().map((n) => ({ ip: formatIpv6(n.addr), mac: formatMac(n.mac), port: n.port.id })),
    neighborEvictions: gw.neighbors.evictions,
    udpTranslate: { ...(net.udp6 ? net.udp6.counters.snapshot() : {}), flowsOpen: net.udp6?.size ?? 0 },
    icmpTranslate: { ...(net.icmp6 ? net.icmp6.counters.snapshot() : {}), mode: net.icmp6?.mode ?? "disabled", flowsOpen: net.icmp6?.size ?? 0 },
  };
}
