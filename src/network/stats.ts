/**
 * The counters of a network as one plain object (`Network.stats()`, the control API's
 * GET /stats): the services' stats tree (`NetworkServices.stats`: per attachment, the stack's
 * drops, TCP, socket translation, the descriptor budget, the shares, DHCP and DNS) with the
 * forwards and the capture added.
 */

import type { ForwardManager } from "../forward/manager.js";
import type { StatsTree } from "../common/counters.js";
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
}

/** The network's stats tree: the services' groups, then the forwards and the capture (when given). */
export function networkStatsTree(net: NetworkServices, forwards: ForwardManager, capture?: CaptureControl): StatsTree {
  return net.stats
    .extend()
    .value("forwards", () => forwards.stats())
    .value("capture", () => capture?.status());
}

/** A snapshot of `tree` (built by `networkStatsTree`) with its type. */
export function networkStats(tree: StatsTree): NetworkStats {
  return tree.snapshot() as unknown as NetworkStats;
}
