/**
 * UDP socket translation: a flow table keyed by the guest's source address and port, one host
 * datagram socket per flow (VPNKit's model). A guest datagram to any destination leaves from
 * that socket; a datagram from *any* peer arriving on the socket goes back to the guest's
 * address and port, with the peer's address as its source (the host's 127.0.0.1 shown as the
 * host alias), which is what STUN-like and DNS-like clients expect.
 *
 * Bounds (configurable): flows idle for `idleMs` (default 60 s) are closed; beyond `maxFlows`
 * the least recently used flow is evicted. Broadcasts never get here (the stack keeps them);
 * destinations the address policy refuses are dropped and counted. Fragmented datagrams are
 * reassembled by the stack before they arrive.
 */

import { createSocket, type Socket } from "node:dgram";
import type { Logger } from "pino";
import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import { sendUdp, type UdpDatagram } from "../stack/udp.js";
import { realTimerHost, type TimerTarget, type TimerHost } from "../stack/timers.js";
import { IdleTable } from "../stack/idle-table.js";
import type { AddressPolicy } from "./policy.js";

export interface UdpTranslateOptions {
  idleMs?: number;
  maxFlows?: number;
  timers?: TimerHost;
  log?: Logger;
}

export class UdpTranslateCounters {
  flowsOpened = 0;
  flowsExpired = 0;
  flowsEvicted = 0;
  datagramsToHost = 0;
  datagramsToGuest = 0;
  bytesToHost = 0;
  bytesToGuest = 0;
  denied = 0;
  sendErrors = 0;
  guestUnreachable = 0;
}

class UdpFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  lastActive: number;
  constructor(
    readonly key: number,
    readonly sock: Socket,
    public port: Port,
    public guestMac: number,
    readonly guestIp: number,
    readonly guestPort: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

export class UdpTranslator {
  readonly counters = new UdpTranslateCounters();
  private readonly flows: IdleTable<UdpFlow>;
  private readonly log: Logger | undefined;

  constructor(
    private readonly stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: UdpTranslateOptions = {},
  ) {
    this.log = opts.log;
    const host = opts.timers ?? { ...realTimerHost, now: () => stack.now() };
    this.flows = new IdleTable<UdpFlow>(host, opts.idleMs ?? 60_000, opts.maxFlows ?? 4096, (f, why) => {
      if (why === "expired") this.counters.flowsExpired++;
      else this.counters.flowsEvicted++;
      this.release(f);
    });
    stack.udpForwarder = (_s, d) => this.fromGuest(d);
  }

  get size(): number {
    return this.flows.size;
  }

  private fromGuest(d: UdpDatagram): void {
    const c = this.counters;
    const target = this.policy.resolve(d.dstIp);
    if (!target.ok) {
      c.denied++;
      return;
    }
    const now = this.stack.now();
    const key = d.srcIp * 65536 + d.srcPort;
    let flow = this.flows.get(key);
    if (flow === undefined) flow = this.open(key, d, now);
    else {
      this.flows.touch(flow, now);
      flow.port = d.port;
      flow.guestMac = d.srcMac;
    }
    c.datagramsToHost++;
    c.bytesToHost += d.payload.length;
    // dgram keeps the buffer until sent: hand it a copy of the borrowed payload.
    flow.sock.send(Buffer.from(d.payload), d.dstPort, target.host, (err) => {
      if (err) {
        c.sendErrors++;
        this.log?.debug({ dst: `${target.host}:${d.dstPort}`, code: (err as NodeJS.ErrnoException).code }, "udp: send failed");
      }
    });
  }

  private open(key: number, d: UdpDatagram, now: number): UdpFlow {
    this.flows.makeRoom();
    const sock = createSocket({ type: "udp4" });
    const flow = new UdpFlow(key, sock, d.port, d.srcMac, d.srcIp, d.srcPort, now);
    this.flows.add(flow, now);
    this.counters.flowsOpened++;
    sock.on("message", (msg, rinfo) => this.toGuest(flow, msg, rinfo.address, rinfo.port));
    sock.on("error", (err) => {
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "udp: host socket error");
      this.close(flow);
    });
    sock.bind(0);
    sock.unref();
    return flow;
  }

  private toGuest(flow: UdpFlow, msg: Buffer, address: string, port: number): void {
    const c = this.counters;
    if (!this.flows.has(flow)) return;
    let src = parseIpv4Address(address);
    if (src === undefined) return;
    // Replies from the host's loopback appear to come from the host alias.
    if (src >>> 24 === 127) {
      if (this.stack.config.hostAliasIp === null) return;
      src = this.stack.config.hostAliasIp;
    }
    flow.lastActive = this.stack.now();
    if (sendUdp(this.stack, flow.port, flow.guestMac, src, port, flow.guestIp, flow.guestPort, msg)) {
      c.datagramsToGuest++;
      c.bytesToGuest += msg.length;
    } else c.guestUnreachable++;
  }

  private close(flow: UdpFlow): void {
    if (this.flows.delete(flow)) this.release(flow);
  }

  private release(flow: UdpFlow): void {
    try {
      flow.sock.close();
    } catch {
      /* already closed */
    }
  }

  /** Close every flow (shutting down). */
  closeAll(): void {
    for (const f of [...this.flows.values()]) this.close(f);
    this.flows.stop();
  }

  /** Flow listing for stats and tests. */
  list(): Array<{ guest: string; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: `${formatIpv4(f.guestIp)}:${f.guestPort}`, idleMs: now - f.lastActive }));
  }
}
