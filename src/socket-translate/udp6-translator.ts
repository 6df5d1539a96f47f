/**
 * UDP socket translation over IPv6: the IPv6 twin of udp-translator.ts (VPNKit's model: one host
 * datagram socket per guest source address and port; a datagram from any peer on that socket
 * goes back to the guest, the host's ::1 shown as the host alias's IPv6 address).
 *
 * Host sockets are Node `udp6` dgram sockets (the addon's epoll set opens IPv4 sockets only).
 * Flows are keyed by a 32-bit mix of the guest's address hash and port (no string building);
 * the entry's address is compared, and a colliding new flow replaces the old one (counted as an
 * eviction). Bounds as for IPv4: idle expiry (`idleMs`), `maxFlows` with the per-guest share of
 * src/stack/guests.ts, the descriptor budget. Destinations the address policy refuses
 * (`AddressPolicy.resolve6`) get ICMPv6 "administratively prohibited" (RFC 4443 §3.1 code 1).
 */

import { createSocket, type Socket } from "node:dgram";
import type { Logger } from "pino";
import type { NetworkStack, Port } from "../stack/stack.js";
import type { Ipv6Gateway, Udp6Datagram } from "../stack/gateway-ipv6.js";
import { classifyDestination6, formatIpv6, hashIpv6, ipv6Equal, parseIpv6Address, type Ipv6Address } from "../stack/config6.js";
import type { TimerOwner, TimerTarget } from "../stack/timers.js";
import { IdleTable } from "../stack/idle-table.js";
import { shareOption, type Guest } from "../stack/guests.js";
import { admitFlow, countToGuest, flowForDatagram, releaseFlow } from "./udp-flows.js";
import type { FdBudget } from "./fd-budget.js";
import type { AddressPolicy } from "./policy.js";
import { UdpTranslateCounters, type UdpTranslateOptions } from "./udp-translator.js";

/** ICMPv6 Destination Unreachable, administratively prohibited (RFC 4443 §3.1). */
const ADMIN_PROHIBITED = 1;

class Udp6Flow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive: number;
  guest: Guest | undefined;
  sock: Socket | undefined;
  constructor(
    readonly key: number,
    public port: Port,
    public guestMac: number,
    readonly guest6: Ipv6Address,
    readonly guestPort: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

export class Udp6Translator {
  readonly counters = new UdpTranslateCounters();
  private readonly flows: IdleTable<Udp6Flow>;
  private readonly gw: Ipv6Gateway;
  private readonly log: Logger | undefined;
  private readonly fds: FdBudget | undefined;
  private readonly maxFlowsPerGuest: number;

  constructor(
    private readonly stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: UdpTranslateOptions = {},
  ) {
    if (stack.ipv6 === undefined) throw new Error("Udp6Translator: the stack has IPv6 off");
    this.gw = stack.ipv6;
    this.log = opts.log;
    this.fds = opts.fds;
    const maxFlows = opts.maxFlows ?? 4096;
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, maxFlows, "maxFlowsPerGuest");
    this.flows = new IdleTable<Udp6Flow>(opts.timers ?? stack.timers, opts.idleMs ?? 60_000, maxFlows, (f, why) => {
      if (why === "expired") this.counters.flowsExpired++;
      else this.counters.flowsEvicted++;
      this.release(f);
    });
    this.gw.udpForwarder = (_gw, d) => this.fromGuest(d);
  }

  get size(): number {
    return this.flows.size;
  }

  private fromGuest(d: Udp6Datagram): void {
    const c = this.counters;
    const target = this.policy.resolve6(classifyDestination6(this.gw.cfg, d.dst));
    if (!target.ok) {
      c.denied++;
      this.gw.sendUnreachable(d, ADMIN_PROHIBITED);
      return;
    }
    const key = (hashIpv6(d.src) ^ Math.imul(d.srcPort + 1, 0x9e3779b1)) >>> 0;
    let found = this.flows.get(key);
    if (found !== undefined && (found.guestPort !== d.srcPort || !ipv6Equal(found.guest6, d.src))) {
      // A hash collision: the newer flow takes the slot.
      c.flowsEvicted++;
      this.close(found);
      found = undefined;
    }
    const flow = flowForDatagram(this.flows, found, key, d, this.stack.now(), this.fds, c, this.opener);
    if (flow === undefined) return;
    // dgram keeps the buffer until sent: a copy of the borrowed payload.
    flow.sock!.send(Buffer.from(d.payload), d.dstPort, target.host, this.afterSend);
  }

  private readonly afterSend = (err: Error | null): void => {
    if (!err) return;
    this.counters.sendErrors++;
    this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "udp6: send failed");
  };

  private readonly opener = (key: number, d: Udp6Datagram, now: number): Udp6Flow => this.open(key, d, now);

  private open(key: number, d: Udp6Datagram, now: number): Udp6Flow {
    const guest = this.stack.rxGuest;
    admitFlow(this.flows, guest, this.maxFlowsPerGuest, this.counters);
    // The guest's address came from the parse as an immutable object of its own: kept as is.
    const flow = new Udp6Flow(key, d.port, d.srcMac, d.src, d.srcPort, now);
    flow.guest = guest;
    const sock = createSocket({ type: "udp6", ipv6Only: true });
    sock.on("message", (msg, rinfo) => this.toGuest(flow, msg, rinfo.address, rinfo.port));
    sock.on("error", (err) => {
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "udp6: host socket error");
      this.close(flow);
    });
    sock.bind(0);
    sock.unref();
    flow.sock = sock;
    this.flows.add(flow, now);
    this.counters.flowsOpened++;
    return flow;
  }

  private toGuest(flow: Udp6Flow, msg: Uint8Array, address: string, port: number): void {
    const c = this.counters;
    if (!this.flows.has(flow)) return;
    let src = parseIpv6Address(address.replace(/%.*$/, ""));
    if (src === undefined) return;
    // Replies from the host's loopback appear to come from the host alias.
    if (src.w0 === 0 && src.w1 === 0 && src.w2 === 0 && src.w3 === 1) {
      if (this.gw.cfg.hostAlias === null) return;
      src = this.gw.cfg.hostAlias;
    }
    flow.lastActive = this.stack.now();
    countToGuest(c, this.gw.sendUdp(flow.port, flow.guestMac, src, port, flow.guest6, flow.guestPort, msg), msg.length);
  }

  private close(flow: Udp6Flow): void {
    if (this.flows.delete(flow)) this.release(flow);
  }

  private release(flow: Udp6Flow): void {
    releaseFlow(flow, this.fds);
    try {
      flow.sock?.close();
    } catch {
      /* already closed */
    }
  }

  closeAll(): void {
    for (const f of [...this.flows.values()]) this.close(f);
    this.flows.stop();
  }

  list(): Array<{ guest: string; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: `[${formatIpv6(f.guest6)}]:${f.guestPort}`, idleMs: now - f.lastActive }));
  }
}
