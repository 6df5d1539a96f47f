/**
 * The counters of a network as one plain object (`Network.stats()`, the control API's
 * GET /stats): per attachment, the stack's drops, TCP, socket translation, the descriptor
 * budget, the forwards and the capture; with IPv6 on, its addresses, learned guests and UDP.
 */

import type { ForwardManager } from "../forward/manager.js";
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
  /** IPv6 (absent when off): the addressing plan, the guests' addresses learned, UDP translation over IPv6. */
  ipv6?: {
    prefix: string;
    gateway: string;
    hostAlias: string | null;
    neighbors: Array<{ ip: string; mac: string; port: number }>;
    neighborEvictions: number;
    udpTranslate: Record<string, unknown>;
  };
}

export function networkStats(net: NetworkServices, forwards: ForwardManager, capture?: CaptureControl): NetworkStats {
  return {
    attachments: net.stack.attached.map((p) => ({ id: p.id, name: p.channel.name, ...p.channel.stats.snapshot() })),
    stack: net.stack.counters.snapshot(),
    tcp: { ...net.tcp.counters, flowsOpen: net.tcp.size, halfOpen: net.tcp.halfOpenCount },
    tcpTranslate: { ...net.tcpTranslator.counters },
    udpTranslate: { ...net.udp.counters, flowsOpen: net.udp.size },
    icmpTranslate: { ...net.icmp.counters },
    fdBudget: { ...net.fds.counters, size: Number.isFinite(net.fds.size) ? net.fds.size : null },
    forwards: forwards.stats() as unknown as Array<Record<string, unknown>>,
    ...(capture ? { capture: capture.status() } : {}),
    shares: { ...net.shares.counters, connectionsOpen: net.shares.connections },
    ...ipv6Stats(net),
  };
}

function ipv6Stats(net: NetworkServices): Pick<NetworkStats, "ipv6"> {
  const gw = net.stack.ipv6;
  if (gw === undefined) return {};
  const c = gw.cfg;
  return {
    ipv6: {
      prefix: `${formatIpv6(c.prefix)}/64`,
      gateway: formatIpv6(c.gateway),
      hostAlias: c.hostAlias === null ? null : formatIpv6(c.hostAlias),
      neighbors: gw.neighbors.list().map((n) => ({ ip: formatIpv6(n.addr), mac: formatMac(n.mac), port: n.port.id })),
      neighborEvictions: gw.neighbors.evictions,
      udpTranslate: { ...net.udp6?.counters, flowsOpen: net.udp6?.size ?? 0 },
    },
  };
}
