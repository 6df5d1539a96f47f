/**
 * The counters of a network as one plain object (`Network.stats()`, the control API's
 * GET /stats): per attachment, the stack's drops, TCP, socket translation, the descriptor
 * budget, the forwards and the capture.
 */

import type { ForwardManager } from "../forward/manager.js";
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
  };
}
