/**
 * What UDP socket translation does the same way for IPv4 (udp-translator.ts) and IPv6
 * (udp6-translator.ts): the flow (a guest's source address and port, its host socket), the flow
 * table (idle expiry, `maxFlows` with the per-guest rule of src/stack/guests.ts), finding or
 * opening the flow a guest datagram leaves on (the descriptor budget, fd-budget.ts, gates new
 * ones), Node `dgram` host sockets, and giving back what a closed flow held. The family's
 * subclass resolves destinations, keys its flows and answers the guest.
 */

import { createSocket } from "node:dgram";
import type { Logger } from "pino";
import type { NetworkStack, Port } from "../stack/stack.js";
import { IdleTable, type IdleEntry } from "../stack/idle-table.js";
import { evictForGuest, shareOption, type Guest } from "../stack/guests.js";
import type { TimerHost, TimerOwner, TimerTarget } from "../stack/timers.js";
import type { Ipv6Address } from "../stack/config6.js";
import { Counters } from "../common/counters.js";
import type { FdBudget } from "./fd-budget.js";

export interface UdpTranslateOptions {
  idleMs?: number;
  maxFlows?: number;
  /** One guest's share of `maxFlows` (default a quarter). */
  maxFlowsPerGuest?: number;
  /** Descriptor budget (fd-budget.ts): a new flow past it is dropped and counted. */
  fds?: FdBudget;
  timers?: TimerHost;
  /** IPv4 host sockets: "native" (default; the addon's epoll set) or "node" (`dgram`). Without the addon, "node". IPv6 ones are Node's. */
  hostSockets?: "native" | "node";
  log?: Logger;
}

export class UdpTranslateCounters extends Counters {
  flowsOpened = 0;
  flowsExpired = 0;
  flowsEvicted = 0;
  /** Flows of a guest at or over its share evicted for a new flow (guests.ts). */
  guestShareEvictions = 0;
  datagramsToHost = 0;
  datagramsToGuest = 0;
  bytesToHost = 0;
  bytesToGuest = 0;
  denied = 0;
  /** New flows dropped because the descriptor budget was spent (fd-budget.ts). */
  fdBudgetRefused = 0;
  sendErrors = 0;
  guestUnreachable = 0;
}

/** A flow's host socket. */
export interface HostDatagram {
  /** Send one datagram to `host` (= `ip` as a string for IPv4; `ip` 0 for IPv6) : `port`; a failure is counted. */
  send(payload: Uint8Array, host: string, ip: number, port: number): void;
  close(): void;
}

/** A flow's socket before it is opened. */
export const CLOSED: HostDatagram = { send: () => {}, close: () => {} };

/** One guest source (IPv4 address and port, or `guest6` and port with `guestIp` 0) and its host socket. */
export class UdpFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive: number;
  /** The guest that opened the flow (charged for it). */
  guest: Guest | undefined;
  sock: HostDatagram = CLOSED;
  constructor(
    readonly key: number,
    public port: Port,
    public guestMac: number,
    readonly guestIp: number,
    readonly guest6: Ipv6Address | undefined,
    readonly guestPort: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/** The flow table and host sockets of one family's UDP translator. */
export abstract class UdpFlowTranslator<D extends { port: Port; srcMac: number; payload: Uint8Array }> {
  readonly counters = new UdpTranslateCounters();
  protected readonly flows: IdleTable<UdpFlow>;
  protected readonly log: Logger | undefined;
  private readonly maxFlowsPerGuest: number;
  private readonly fds: FdBudget | undefined;

  constructor(
    protected readonly stack: NetworkStack,
    private readonly tag: string,
    opts: UdpTranslateOptions,
  ) {
    this.log = opts.log;
    this.fds = opts.fds;
    const maxFlows = opts.maxFlows ?? 4096;
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, maxFlows, "maxFlowsPerGuest");
    this.flows = new IdleTable<UdpFlow>(opts.timers ?? stack.timers, opts.idleMs ?? 60_000, maxFlows, (f, why) => {
      if (why === "expired") this.counters.flowsExpired++;
      else this.counters.flowsEvicted++;
      this.release(f);
    });
  }

  get size(): number {
    return this.flows.size;
  }

  /** The flow datagram `d` leaves on (`found`, or a new one); undefined when the budget is spent. */
  protected flowFor(found: UdpFlow | undefined, key: number, d: D): UdpFlow | undefined {
    return flowForDatagram(this.flows, found, key, d, this.stack.now(), this.fds, this.counters, this.opener);
  }

  private readonly opener = (key: number, d: D, now: number): UdpFlow => {
    const guest = this.stack.rxGuest;
    admitFlow(this.flows, guest, this.maxFlowsPerGuest, this.counters);
    const flow = this.newFlow(key, d, now);
    flow.guest = guest;
    flow.sock = this.hostSocket(flow);
    this.flows.add(flow, now);
    this.counters.flowsOpened++;
    return flow;
  };

  /** The family's flow for the first datagram `d` of a guest source. */
  protected abstract newFlow(key: number, d: D, now: number): UdpFlow;
  /** The flow's host socket. */
  protected abstract hostSocket(flow: UdpFlow): HostDatagram;

  /** A send failed (one handler for every flow: no closure per datagram). */
  protected readonly sendFailed = (code: string): void => {
    this.counters.sendErrors++;
    this.log?.debug({ code }, `${this.tag}: send failed`);
  };

  /** A Node `dgram` host socket of `type`; each datagram received goes to `onMessage`. */
  protected dgramSocket(flow: UdpFlow, type: "udp4" | "udp6", onMessage: (msg: Uint8Array, address: string, port: number) => void): HostDatagram {
    const sock = createSocket(type === "udp6" ? { type, ipv6Only: true } : { type });
    sock.on("message", (msg, rinfo) => onMessage(msg, rinfo.address, rinfo.port));
    sock.on("error", (err) => {
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, `${this.tag}: host socket error`);
      this.close(flow);
    });
    sock.bind(0);
    sock.unref();
    const afterSend = (err: Error | null) => {
      if (err) this.sendFailed((err as NodeJS.ErrnoException).code ?? "EIO");
    };
    return {
      // dgram keeps the buffer until sent: hand it a copy of the borrowed payload.
      send: (payload, host, _ip, port) => sock.send(Buffer.from(payload), port, host, afterSend),
      close: () => {
        try {
          sock.close();
        } catch {
          /* already closed */
        }
      },
    };
  }

  /** A datagram from the host to the flow's guest: is the flow still open (then it is touched)? */
  protected live(flow: UdpFlow): boolean {
    if (!this.flows.has(flow)) return false;
    flow.lastActive = this.stack.now();
    return true;
  }

  protected close(flow: UdpFlow): void {
    if (this.flows.delete(flow)) this.release(flow);
  }

  private release(flow: UdpFlow): void {
    releaseFlow(flow, this.fds);
    flow.sock.close();
  }

  /** Close every flow (shutting down). */
  closeAll(): void {
    for (const f of [...this.flows.values()]) this.close(f);
    this.flows.stop();
  }
}

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
