/**
 * The flow bookkeeping UDP socket translation does the same way for IPv4 (udp-translator.ts)
 * and IPv6 (udp6-translator.ts): finding or opening the flow a guest datagram leaves on (the
 * descriptor budget, fd-budget.ts, gates new ones), making room for a new flow by the per-guest
 * rule of src/stack/guests.ts, and giving back what a closed flow held.
 */

import type { Port } from "../stack/stack.js";
import type { IdleEntry, IdleTable } from "../stack/idle-table.js";
import { evictForGuest, type Guest } from "../stack/guests.js";
import type { FdBudget } from "./fd-budget.js";

/** What the helpers need of a flow. */
export interface UdpFlowEntry extends IdleEntry {
  port: Port;
  guestMac: number;
  guest: Guest | undefined;
}

/** The counters the helpers keep (a `UdpTranslateCounters`). */
export interface UdpFlowCounters {
  fdBudgetRefused: number;
  guestShareEvictions: number;
  datagramsToHost: number;
  bytesToHost: number;
}

const COUNT = (g: Guest): number => g.udpFlows;

/**
 * The flow a guest datagram `d` goes out on: `found` (touched, and moved to the port and MAC the
 * datagram came from) or a new one from `open`; undefined when the descriptor budget is spent
 * (counted). Counts the datagram toward the host.
 */
export function flowForDatagram<F extends UdpFlowEntry, D extends { port: Port; srcMac: number; payload: Uint8Array }>(
  flows: IdleTable<F>,
  found: F | undefined,
  key: number,
  d: D,
  now: number,
  fds: FdBudget | undefined,
  c: UdpFlowCounters,
  open: (key: number, d: D, now: number) => F,
): F | undefined {
  let flow = found;
  if (flow === undefined) {
    if (fds !== undefined && !fds.tryAcquire()) {
      c.fdBudgetRefused++;
      return undefined;
    }
    flow = open(key, d, now);
  } else {
    flows.touch(flow, now);
    flow.port = d.port;
    flow.guestMac = d.srcMac;
  }
  c.datagramsToHost++;
  c.bytesToHost += d.payload.length;
  return flow;
}

/** Room for one more flow of `guest` (its share first, then the table's cap); charges the guest. */
export function admitFlow<F extends UdpFlowEntry>(flows: IdleTable<F>, guest: Guest | undefined, share: number, c: UdpFlowCounters): void {
  if (evictForGuest(flows, guest, share, COUNT)) c.guestShareEvictions++;
  flows.makeRoom();
  if (guest !== undefined) guest.udpFlows++;
}

/** Count a datagram toward the guest: delivered (`sent`), or not (the guest's link refused it). */
export function countToGuest(c: { datagramsToGuest: number; bytesToGuest: number; guestUnreachable: number }, sent: boolean, len: number): void {
  if (sent) {
    c.datagramsToGuest++;
    c.bytesToGuest += len;
  } else c.guestUnreachable++;
}

/** Give back a closed flow's share and descriptor. */
export function releaseFlow(flow: UdpFlowEntry, fds: FdBudget | undefined): void {
  if (flow.guest !== undefined) flow.guest.udpFlows--;
  fds?.release();
}
