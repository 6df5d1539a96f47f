/**
 * UDP socket translation: a flow table keyed by the guest's source address and port, one host
 * datagram socket per flow (VPNKit's model). A guest datagram to any destination leaves from
 * that socket; a datagram from *any* peer arriving on the socket goes back to the guest's
 * address and port, with the peer's address as its source (the host's 127.0.0.1 shown as the
 * host alias), which is what STUN-like and DNS-like clients expect.
 *
 * Bounds (configurable): flows idle for `idleMs` (default 60 s) are closed; beyond `maxFlows`
 * the least recently used flow is evicted, by the per-guest rule of src/stack/guests.ts
 * (`maxFlowsPerGuest`, default a quarter of `maxFlows`): a guest at its share loses its own
 * oldest flow, and a guest within its share is never evicted by another's flood. Broadcasts never get here (the stack keeps them);
 * destinations the address policy refuses are dropped, counted and answered with ICMP
 * "administratively prohibited" (RFC 1812 §5.2.7.1, code 13). Fragmented datagrams are
 * reassembled by the stack before they arrive.
 *
 * Host sockets come from the addon's epoll set (`NativeDatagramSocket`: datagrams of every ready
 * socket in one call per loop iteration, sends are one synchronous sendto()), or are Node
 * `dgram` sockets when the addon is missing or `hostSockets: "node"`.
 */

import { createSocket, type Socket } from "node:dgram";
import type { Logger } from "pino";
import { formatIpv4, parseIpv4Address } from "../common/addr.js";
import type { NetworkStack, Port } from "../stack/stack.js";
import { sendUdp, sendUdpUnreachable, type UdpDatagram } from "../stack/gateway-udp.js";
import { IcmpUnreachCode } from "../stack/gateway-icmp.js";
import type { TimerOwner, TimerTarget, TimerHost } from "../stack/timers.js";
import { IdleTable } from "../stack/idle-table.js";
import { shareOption, type Guest } from "../stack/guests.js";
import { admitFlow, countToGuest, flowForDatagram, releaseFlow } from "./udp-flows.js";
import type { FdBudget } from "./fd-budget.js";
import type { AddressPolicy } from "./policy.js";
import { errnoName } from "../native/addon.js";
import { nativeStreams, type NativeStreamGroup } from "./native-stream.js";
import { Counters } from "../common/counters.js";

export interface UdpTranslateOptions {
  idleMs?: number;
  maxFlows?: number;
  /** One guest's share of `maxFlows` (default a quarter). */
  maxFlowsPerGuest?: number;
  /** Descriptor budget (fd-budget.ts): a new flow past it is dropped and counted. */
  fds?: FdBudget;
  timers?: TimerHost;
  /** Host sockets: "native" (default; the addon's epoll set) or "node" (`dgram`). Without the addon, "node". */
  hostSockets?: "native" | "node";
  log?: Logger;
}

/** A flow's host socket. */
interface HostDatagram {
  /** Send one datagram to `host` (= `ip` as a string) : `port`; a failure goes to `sendFailed`. */
  send(payload: Uint8Array, host: string, ip: number, port: number): void;
  close(): void;
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

class UdpFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  lastActive: number;
  /** The guest that opened the flow (charged for it). */
  guest: Guest | undefined;
  constructor(
    readonly key: number,
    public sock: HostDatagram,
    public port: Port,
    public guestMac: number,
    readonly guestIp: number,
    readonly guestPort: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/** A flow's socket before it is opened. */
const CLOSED: HostDatagram = { send: () => {}, close: () => {} };

export class UdpTranslator {
  readonly counters = new UdpTranslateCounters();
  private readonly flows: IdleTable<UdpFlow>;
  private readonly log: Logger | undefined;
  private readonly group: NativeStreamGroup | undefined;
  private readonly maxFlowsPerGuest: number;
  private readonly fds: FdBudget | undefined;

  constructor(
    private readonly stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: UdpTranslateOptions = {},
  ) {
    this.log = opts.log;
    this.fds = opts.fds;
    this.group = opts.hostSockets === "node" ? undefined : nativeStreams();
    const host = opts.timers ?? stack.timers;
    const maxFlows = opts.maxFlows ?? 4096;
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, maxFlows, "maxFlowsPerGuest");
    this.flows = new IdleTable<UdpFlow>(host, opts.idleMs ?? 60_000, maxFlows, (f, why) => {
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
      // Refused like a TCP SYN or an echo request: "administratively prohibited" (RFC 1812 §5.2.7.1).
      c.denied++;
      sendUdpUnreachable(this.stack, d, IcmpUnreachCode.AdminProhibited);
      return;
    }
    const key = d.srcIp * 65536 + d.srcPort;
    const flow = flowForDatagram(this.flows, this.flows.get(key), key, d, this.stack.now(), this.fds, c, this.opener);
    if (flow === undefined) return;
    flow.sock.send(d.payload, target.host, target.ip, d.dstPort);
  }

  /** A send failed (one handler for every flow: no closure per datagram). */
  private readonly sendFailed = (code: string): void => {
    this.counters.sendErrors++;
    this.log?.debug({ code }, "udp: send failed");
  };

  private readonly opener = (key: number, d: UdpDatagram, now: number): UdpFlow => this.open(key, d, now);

  private open(key: number, d: UdpDatagram, now: number): UdpFlow {
    const guest = this.stack.rxGuest;
    admitFlow(this.flows, guest, this.maxFlowsPerGuest, this.counters);
    const flow = new UdpFlow(key, CLOSED, d.port, d.srcMac, d.srcIp, d.srcPort, now);
    flow.guest = guest;
    const native = this.group?.openUdp((bytes, ip, port) => this.toGuest(flow, bytes, ip, port));
    if (native !== undefined && typeof native !== "string") {
      flow.sock = {
        send: (payload, _host, ip, port) => {
          const n = native.send(payload, ip, port);
          if (n < 0) this.sendFailed(errnoName(-n));
        },
        close: () => native.close(),
      };
    } else {
      if (native !== undefined) this.log?.debug({ code: native }, "udp: addon socket refused; using dgram");
      flow.sock = this.dgramSocket(flow);
    }
    this.flows.add(flow, now);
    this.counters.flowsOpened++;
    return flow;
  }

  private dgramSocket(flow: UdpFlow): HostDatagram {
    const sock: Socket = createSocket({ type: "udp4" });
    sock.on("message", (msg, rinfo) => {
      const src = parseIpv4Address(rinfo.address);
      if (src !== undefined) this.toGuest(flow, msg, src, rinfo.port);
    });
    sock.on("error", (err) => {
      this.log?.debug({ code: (err as NodeJS.ErrnoException).code }, "udp: host socket error");
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

  private toGuest(flow: UdpFlow, msg: Uint8Array, srcIp: number, port: number): void {
    const c = this.counters;
    if (!this.flows.has(flow)) return;
    let src = srcIp;
    // Replies from the host's loopback appear to come from the host alias.
    if (src >>> 24 === 127) {
      if (this.stack.config.hostAliasIp === null) return;
      src = this.stack.config.hostAliasIp;
    }
    flow.lastActive = this.stack.now();
    countToGuest(c, sendUdp(this.stack, flow.port, flow.guestMac, src, port, flow.guestIp, flow.guestPort, msg), msg.length);
  }

  private close(flow: UdpFlow): void {
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

  /** Flow listing for stats and tests. */
  list(): Array<{ guest: string; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: `${formatIpv4(f.guestIp)}:${f.guestPort}`, idleMs: now - f.lastActive }));
  }
}
