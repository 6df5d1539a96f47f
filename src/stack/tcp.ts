/**
 * The stack's TCP layer: demultiplexes guests' segments to connections (`TcpFlow`, one
 * `TcpConnection` engine each), holds new SYNs until an owner decides (the gVisor "forwarder"
 * pattern: skiff dials the host first, then completes or refuses the guest's handshake),
 * turns engine output into frames, and drives every connection's timers from the stack's one
 * timer.
 *
 * Read first: RFC 9293 §3.10.7.1 (segments that reach no connection get a RST), §3.10.7.2
 * (a SYN to a listener), RFC 6528 (initial sequence numbers), RFC 6191 (reusing a 4-tuple
 * in TIME-WAIT).
 *
 * IPv6 flows (tcp6.ts) go through the same engine, listeners and bounds; they live in a table
 * of their own (so IPv4 lookups stay uint32-keyed), carry their addresses in `guest6` /
 * `remote6` (their `guestIp` / `remoteIp` are 0), take an MSS 20 bytes smaller (RFC 8200's
 * 40-byte header) and are refused with ICMPv6 (RFC 4443 §3.1) where IPv4 flows get ICMP.
 *
 * Bounds (configurable): flows in total and half-open flows (SYN held or SYN-ACK sent), and
 * each guest's share of both (guests.ts; default a quarter: one guest flooding SYNs leaves the
 * others room); a SYN beyond any bound is refused with RST and counted. Flows skiff opens
 * toward a guest (port forwarding) count against the totals only.
 */

import { isWireError } from "../common/wire-error.js";
import { IpProtocol, emitIpv4, NO_IPV4_OPTIONS, type Ipv4Packet, type Ipv4Repr } from "../ipv4/ipv4.js";
import { setU16, setU32 } from "../common/bytes.js";
import { emitIcmp, icmpLen, type IcmpRepr } from "../ipv4/icmp.js";
import { parseTcp, emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../tcp/wire.js";
import { TcpConnection, resetForUnknown } from "../tcp/connection.js";
import { TcpState } from "../tcp/state.js";
import type { TcpConfig } from "../tcp/config.js";
import { IsnGenerator, randomU32 } from "../tcp/isn.js";
import { formatIpv4 } from "../common/addr.js";
import type { NetworkStack, Port } from "./stack.js";
import { shareOption, type Guest } from "./guests.js";
import { ownTimers, type TimerHost, type TimerOwner, type TimerTarget, type Timers } from "./timers.js";
import { TX_CSUM_PARTIAL, txGsoMeta } from "../common/frame-channel.js";
import { Counters } from "../common/counters.js";
import { formatIpv6, hashIpv6, ipv6Equal, type Ipv6Addr } from "../ipv6/addr.js";
import { NextHeader, upperLayerChecksum6 } from "../ipv6/ipv6.js";
import type { ExtChain } from "../ipv6/ext.js";
import { FlowTable6, sendRaw6, sendSynUnreachable6 } from "./tcp6.js";

/** Most payload of a TCP super-segment: a 64 KiB IPv4 packet with a 60-byte TCP header. */
const MAX_SUPER_SEGMENT_PAYLOAD = 0xffff - 20 - 60;
/** parseTcp options when the link vouched for the checksum (RX_CSUM_VERIFIED). */
const NO_VERIFY = { verifyChecksum: false } as const;

/** Decides what to do with a held SYN: call `flow.accept()`, `flow.refuse()` or `flow.unreachable(code)`. */
export type TcpListener = (flow: TcpFlow) => void;
/** The event bits a flow's handler receives: part of this layer's interface, so its owners (forward/, share/) need not reach into tcp/. */
export { TcpEvent } from "../tcp/state.js";

/** Receives the engine's `TcpEvent` bits for a flow (may call the flow's methods). */
export type TcpFlowHandler = (flow: TcpFlow, events: number) => void;

export interface TcpLayerOptions {
  /** Engine configuration; the MSS defaults to the stack's MTU - 40. */
  tcp?: Partial<TcpConfig>;
  /** All flows, any state. */
  maxFlows?: number;
  /** Flows in SYN-RECEIVED (held or answered). */
  maxHalfOpen?: number;
  /** One guest's share of `maxFlows` (default a quarter). */
  maxFlowsPerGuest?: number;
  /** One guest's share of `maxHalfOpen` (default a quarter). */
  maxHalfOpenPerGuest?: number;
  timers?: TimerHost;
}

export interface TcpConnectOptions {
  /** Source address the guest sees (default: the host alias if enabled, else the gateway). */
  srcIp?: number;
  /** The same for `connect6` (default: the IPv6 host alias if enabled, else the gateway's ULA). */
  src6?: Ipv6Addr;
  /** The owner's handler, installed before the SYN goes out. */
  onEvents?: TcpFlowHandler;
  owner?: unknown;
}

export class TcpLayerCounters extends Counters {
  segmentsIn = 0;
  segmentsOut = 0;
  flowsOpened = 0;
  flowsClosed = 0;
  resetsSent = 0;
  refusedTooMany = 0;
  /** SYNs refused because their guest used its share of flows or half-open flows. */
  refusedGuestShare = 0;
  badSegments = 0;
  /** Loss recovery of the flows closed so far (their engines' counters, summed on close). */
  retransmitTimeouts = 0;
  lossProbes = 0;
  rackRecoveries = 0;
  retransmittedSegments = 0;
}

export class TcpFlow implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  /** Owner's event handler. */
  onEvents: TcpFlowHandler | undefined;
  /** Owner's private state (e.g. the host socket). */
  owner: unknown;
  servicing = false;
  again = false;
  /** Waiting for the end-of-batch service. */
  deferred = false;
  /** Counted in the layer's half-open flows. */
  halfOpen = false;
  removed = false;
  /** The guest whose SYN opened the flow (its share is charged); undefined for active opens. */
  guest: Guest | undefined;
  /** An IPv6 flow's guest and remote addresses (undefined for IPv4 flows; tcp6.ts). */
  guest6: Ipv6Addr | undefined = undefined;
  remote6: Ipv6Addr | undefined = undefined;

  constructor(
    private readonly layer: TcpLayer,
    readonly conn: TcpConnection,
    readonly port: Port,
    public guestMac: number,
    readonly guestIp: number,
    readonly guestPort: number,
    readonly remoteIp: number,
    readonly remotePort: number,
  ) {
    if (port.tcpSegmentation) conn.setSegmentationOffload(MAX_SUPER_SEGMENT_PAYLOAD);
  }

  /** Complete the guest's handshake (SYN-ACK). */
  accept(): void {
    this.conn.accept(this.layer.stack.now());
    this.layer.service(this);
  }

  /** Refuse the guest's SYN with RST (RFC 9293 §3.10.7.1: the port is closed). */
  refuse(): void {
    const rst = this.conn.refuse();
    this.layer.sendSegment(this, rst);
    this.layer.service(this);
  }

  /** Refuse with ICMP destination unreachable (RFC 1122 §3.2.2.1), code given. */
  unreachable(code: number): void {
    this.layer.sendUnreachable(this, code);
    this.conn.abort();
    this.layer.service(this);
  }

  /** Queue bytes toward the guest (TcpConnection.write; `owned` hands the buffer over). `batched`: sent at the end
   *  of the batch (`defer`) with what else it queues: a FIN read with the last bytes rides on their segment. */
  write(data: Uint8Array, owned = false, batched = false): number {
    const n = this.conn.write(data, owned);
    if (n > 0) batched ? this.layer.defer(this) : this.layer.service(this);
    return n;
  }

  read(max?: number): Uint8Array {
    const d = this.conn.read(max);
    if (d.length > 0) this.layer.service(this);
    return d;
  }

  /** Bytes from the guest readable without a copy (TcpConnection.readHead). */
  readHead(max?: number): Uint8Array {
    const d = this.conn.readHead(max);
    if (d.length > 0) this.layer.service(this);
    return d;
  }

  /** Bytes from the guest without a copy, left in place until `consume` (TcpConnection.peekHead). */
  peekHead(max?: number): Uint8Array {
    return this.conn.peekHead(max);
  }

  /** Remove `n` bytes after `peekHead`; may open the window (an ACK). */
  consume(n: number): void {
    this.conn.consume(n);
    if (n > 0) this.layer.service(this);
  }

  get readable(): number {
    return this.conn.readable;
  }

  get writable(): number {
    return this.conn.writable;
  }

  shutdownWrite(): void {
    this.conn.shutdownWrite();
    this.layer.service(this);
  }

  abort(): void {
    this.conn.abort();
    this.layer.service(this);
  }
}

/** Source ports of connections skiff opens toward guests (RFC 6335 dynamic range). */
const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_LAST = 65535;

/** Default bounds of the TCP layer's flows and of the half-open ones among them (all guests together). */
export const DEFAULT_MAX_TCP_FLOWS = 65536;
export const DEFAULT_MAX_HALF_OPEN = 1024;

/** Key of a (address, port) pair without building strings: 48 bits in a double. */
function endpointKey(ip: number, port: number): number {
  return ip * 65536 + port;
}

export class TcpLayer {
  readonly counters = new TcpLayerCounters();
  /** Flows by guest endpoint, then by remote endpoint. */
  private readonly flows = new Map<number, Map<number, TcpFlow>>();
  /** IPv6 flows (tcp6.ts). */
  private readonly flows6 = new FlowTable6<TcpFlow>();
  /** Engine configuration of IPv6 flows: the MSS 20 bytes smaller. */
  private readonly cfg6: Partial<TcpConfig>;
  private flowCount = 0;
  private halfOpen = 0;
  private readonly timers: Timers<TcpFlow>;
  private readonly isn = new IsnGenerator();
  private readonly cfg: Partial<TcpConfig>;
  private readonly maxFlows: number;
  private readonly maxHalfOpen: number;
  private readonly maxFlowsPerGuest: number;
  private readonly maxHalfOpenPerGuest: number;
  /** Listener for SYNs to the gateway's own ports (e.g. DNS over TCP). */
  private readonly local = new Map<number, TcpListener>();
  /** Listener for SYNs to every other destination (socket translation). */
  forwarder: TcpListener | undefined;
  private closed = false;

  constructor(
    readonly stack: NetworkStack,
    opts: TcpLayerOptions = {},
  ) {
    this.cfg = { mss: stack.config.mtu - 40, ...opts.tcp };
    this.cfg6 = { ...this.cfg, mss: Math.min(this.cfg.mss!, stack.config.mtu - 60) };
    this.maxFlows = opts.maxFlows ?? DEFAULT_MAX_TCP_FLOWS;
    this.maxHalfOpen = opts.maxHalfOpen ?? DEFAULT_MAX_HALF_OPEN;
    this.maxFlowsPerGuest = shareOption(opts.maxFlowsPerGuest, this.maxFlows, "maxFlowsPerGuest");
    this.maxHalfOpenPerGuest = shareOption(opts.maxHalfOpenPerGuest, this.maxHalfOpen, "maxHalfOpenPerGuest");
    this.timers = ownTimers<TcpFlow>(opts.timers ?? stack.timers, (flow) => this.service(flow));
    stack.setProtocolHandler(IpProtocol.TCP, (s, port, srcMac, ip, packet) => this.receive(port, srcMac, ip, packet));
    if (stack.ipv6 !== undefined) stack.ipv6.tcpHandler = (port, srcMac, src, dst, packet, chain, verified) => this.receive6(port, srcMac, src, dst, packet, chain, verified);
  }

  /** Serve TCP port `localPort` of the gateway. */
  bindLocal(localPort: number, listener: TcpListener): void {
    if (this.local.has(localPort)) throw new Error(`TCP port ${localPort} of the gateway is already bound`);
    this.local.set(localPort, listener);
  }

  get size(): number {
    return this.flowCount;
  }

  get halfOpenCount(): number {
    return this.halfOpen;
  }

  /**
   * Active open toward a guest (RFC 9293 §3.10.1): a flow in SYN-SENT from an unused
   * ephemeral port (RFC 6056 range) of the source address to `guestIp:guestPort`; the SYN goes
   * out at once, and the owner learns the outcome from its events (Established, or Reset with
   * `conn.error === "refused"` when the guest answers RST). Used by port forwarding.
   *
   * Throws when the guest's MAC is not in the neighbour table (`stack.requestArp` it and
   * retry), when the flow table is full, or when no source port is free.
   */
  connect(guestIp: number, guestPort: number, opts: TcpConnectOptions = {}): TcpFlow {
    const nb = this.stack.neighbors.lookup(guestIp);
    if (nb === undefined) throw new Error(`no neighbour entry for ${formatIpv4(guestIp)} (it has not answered ARP)`);
    const cfg = this.stack.config;
    return this.activeOpen(nb, guestIp, guestPort, opts.srcIp ?? cfg.hostAliasIp ?? cfg.gatewayIp, undefined, undefined, opts);
  }

  /**
   * `connect` over IPv6 (tcp6.ts): from the IPv6 host alias (else the gateway's ULA) to
   * `guest6`, whose MAC must be in the IPv6 neighbour cache (learned from its traffic or a
   * neighbour solicitation); the MSS is the IPv6 one. Throws when IPv6 is off.
   */
  connect6(guest6: Ipv6Addr, guestPort: number, opts: TcpConnectOptions = {}): TcpFlow {
    const gw = this.stack.ipv6;
    if (gw === undefined) throw new Error("IPv6 is off on this network");
    const nb = gw.neighbors.lookup(guest6);
    if (nb === undefined) throw new Error(`no neighbour entry for ${formatIpv6(guest6)} (it has not answered neighbour solicitation)`);
    return this.activeOpen(nb, 0, guestPort, 0, guest6, opts.src6 ?? gw.cfg.hostAlias ?? gw.cfg.gateway, opts);
  }

  private activeOpen(nb: { port: Port; mac: number }, guestIp: number, guestPort: number, src: number, guest6: Ipv6Addr | undefined, src6: Ipv6Addr | undefined, opts: TcpConnectOptions): TcpFlow {
    if (this.closed) throw new Error("the TCP layer is closed");
    if (this.flowCount >= this.maxFlows) {
      this.counters.refusedTooMany++;
      throw new Error(`too many TCP flows (limit ${this.maxFlows})`);
    }
    const srcPort = this.ephemeralPort(guestIp, guestPort, src, guest6, src6);
    const now = this.stack.now();
    const iss = guest6 === undefined ? this.isn.next(src, srcPort, guestIp, guestPort, now) : this.isn.next(hashIpv6(src6!), srcPort, hashIpv6(guest6), guestPort, now);
    const conn = TcpConnection.connect(guest6 === undefined ? this.cfg : this.cfg6, { localPort: srcPort, remotePort: guestPort }, iss, now, randomU32());
    const flow = new TcpFlow(this, conn, nb.port, nb.mac, guestIp, guestPort, src, srcPort);
    flow.guest6 = guest6;
    flow.remote6 = src6;
    flow.onEvents = opts.onEvents;
    flow.owner = opts.owner;
    this.add(flow);
    this.service(flow);
    return flow;
  }

  private nextEphemeral = EPHEMERAL_FIRST + Math.floor(Math.random() * (EPHEMERAL_LAST - EPHEMERAL_FIRST + 1));

  /** RFC 6056 §3.3.4-like: the next port of the range whose 4-tuple is unused. */
  private ephemeralPort(guestIp: number, guestPort: number, src: number, guest6: Ipv6Addr | undefined, src6: Ipv6Addr | undefined): number {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p === EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
      const used = guest6 === undefined ? this.lookup(guestIp, guestPort, src, p) : this.flows6.lookup(guest6, guestPort, src6!, p);
      if (used === undefined) return p;
    }
    throw new Error("no free source port");
  }

  /** Every flow (for stats and tests). */
  *all(): IterableIterator<TcpFlow> {
    for (const m of this.flows.values()) yield* m.values();
    yield* this.flows6.values();
  }

  private lookup(guestIp: number, guestPort: number, remoteIp: number, remotePort: number): TcpFlow | undefined {
    return this.flows.get(endpointKey(guestIp, guestPort))?.get(endpointKey(remoteIp, remotePort));
  }

  private receive(port: Port, srcMac: number, ip: Ipv4Repr, packet: Ipv4Packet): void {
    if (this.closed) return this.stack.counters.drop("tcp-no-service");
    const seg = parseTcp(packet.payload, ip.src, ip.dst, this.stack.rxL4ChecksumVerified ? NO_VERIFY : undefined);
    if (isWireError(seg)) {
      this.counters.badSegments++;
      return this.stack.counters.drop("tcp-malformed");
    }
    this.counters.segmentsIn++;
    this.onSegment(port, srcMac, seg, this.lookup(ip.src, seg.srcPort, ip.dst, seg.dstPort), ip.src, ip.dst, undefined, undefined);
  }

  /** A TCP segment over IPv6 (the IPv6 gateway's `tcpHandler`); `packet` borrowed. */
  private receive6(port: Port, srcMac: number, src: Ipv6Addr, dst: Ipv6Addr, packet: Uint8Array, chain: ExtChain, verified: boolean): void {
    if (this.closed) return this.stack.counters.drop("tcp-no-service");
    const at = chain.offset;
    const len = chain.end - at;
    if (!verified && upperLayerChecksum6(packet, at, len, src, dst, NextHeader.TCP) !== 0) {
      this.counters.badSegments++;
      return this.stack.counters.drop("tcp-malformed");
    }
    const seg = parseTcp(packet.subarray(at, chain.end), 0, 0, NO_VERIFY);
    if (isWireError(seg)) {
      this.counters.badSegments++;
      return this.stack.counters.drop("tcp-malformed");
    }
    this.counters.segmentsIn++;
    this.onSegment(port, srcMac, seg, this.flows6.lookup(src, seg.srcPort, dst, seg.dstPort), 0, 0, src, dst);
  }

  /**
   * A guest's segment, after its IP layer: to its flow, or a new flow for a SYN (held for the
   * listener), or a RST. IPv4 addresses in `src`/`dst`; for IPv6 those are 0 and `src6`/`dst6` set.
   */
  private onSegment(port: Port, srcMac: number, seg: TcpRepr, found: TcpFlow | undefined, src: number, dst: number, src6: Ipv6Addr | undefined, dst6: Ipv6Addr | undefined): void {
    let flow = found;
    const syn = (seg.flags & (TcpFlag.SYN | TcpFlag.ACK | TcpFlag.RST)) === TcpFlag.SYN;
    if (flow !== undefined && syn && flow.conn.acceptsNewSyn(seg)) {
      // RFC 6191: a new incarnation of a connection in TIME-WAIT.
      this.remove(flow);
      flow = undefined;
    }
    if (flow !== undefined) {
      flow.guestMac = srcMac;
      flow.conn.onSegment(seg, this.stack.now());
      this.defer(flow);
      return;
    }
    if (!syn) {
      // RFC 9293 §3.10.7.1: no connection — answer with RST (unless it is one).
      const rst = resetForUnknown(seg);
      if (rst) this.sendAny(port, srcMac, dst, src, dst6, src6, rst);
      return this.stack.counters.drop("tcp-no-service");
    }
    const cfg = this.stack.config;
    const toGateway = dst6 === undefined ? dst === cfg.gatewayIp : ipv6Equal(dst6, cfg.ipv6!.gateway) || ipv6Equal(dst6, cfg.ipv6!.gatewayLinkLocal);
    const listener = toGateway ? this.local.get(seg.dstPort) : this.forwarder;
    const guest = this.stack.rxGuest;
    const overShare = guest !== undefined && (guest.tcpFlows >= this.maxFlowsPerGuest || guest.tcpHalfOpen >= this.maxHalfOpenPerGuest);
    if (listener === undefined || overShare || this.flowCount >= this.maxFlows || this.halfOpen >= this.maxHalfOpen) {
      if (listener !== undefined) {
        if (overShare) this.counters.refusedGuestShare++;
        else this.counters.refusedTooMany++;
      }
      const rst = resetForUnknown(seg);
      if (rst) this.sendAny(port, srcMac, dst, src, dst6, src6, rst);
      return this.stack.counters.drop("tcp-no-service");
    }
    const now = this.stack.now();
    const iss = dst6 === undefined ? this.isn.next(dst, seg.dstPort, src, seg.srcPort, now) : this.isn.next(hashIpv6(dst6), seg.dstPort, hashIpv6(src6!), seg.srcPort, now);
    const tsOffset = randomU32();
    const conn = TcpConnection.fromSyn(dst6 === undefined ? this.cfg : this.cfg6, seg, iss, now, tsOffset);
    flow = new TcpFlow(this, conn, port, srcMac, src, seg.srcPort, dst, seg.dstPort);
    flow.guest6 = src6;
    flow.remote6 = dst6;
    flow.guest = guest;
    this.add(flow);
    listener(flow);
    if (!flow.removed) this.service(flow);
  }

  private add(flow: TcpFlow): void {
    if (flow.guest6 !== undefined) this.flows6.add(flow);
    else {
      const k = endpointKey(flow.guestIp, flow.guestPort);
      let m = this.flows.get(k);
      if (m === undefined) {
        m = new Map();
        this.flows.set(k, m);
      }
      m.set(endpointKey(flow.remoteIp, flow.remotePort), flow);
    }
    this.flowCount++;
    this.halfOpen++;
    this.counters.flowsOpened++;
    flow.halfOpen = true;
    const g = flow.guest;
    if (g !== undefined) {
      g.tcpFlows++;
      g.tcpHalfOpen++;
    }
  }

  private remove(flow: TcpFlow): void {
    if (flow.removed) return;
    flow.removed = true;
    if (flow.guest6 !== undefined) this.flows6.delete(flow);
    else {
      const k = endpointKey(flow.guestIp, flow.guestPort);
      const m = this.flows.get(k);
      m?.delete(endpointKey(flow.remoteIp, flow.remotePort));
      if (m !== undefined && m.size === 0) this.flows.delete(k);
    }
    this.flowCount--;
    if (flow.guest !== undefined) flow.guest.tcpFlows--;
    this.leaveHalfOpen(flow);
    this.counters.flowsClosed++;
    const c = flow.conn.counters;
    this.counters.retransmitTimeouts += c.timeouts;
    this.counters.lossProbes += c.lossProbes;
    this.counters.rackRecoveries += c.rackRecoveries;
    this.counters.retransmittedSegments += c.retransmittedSegments;
    this.timers.cancel(flow);
  }

  /** The flow left SYN-RECEIVED (or closed): it no longer counts against `maxHalfOpen`. */
  private leaveHalfOpen(flow: TcpFlow): void {
    if (!flow.halfOpen) return;
    flow.halfOpen = false;
    this.halfOpen--;
    if (flow.guest !== undefined) flow.guest.tcpHalfOpen--;
  }

  /**
   * Service `flow` once the current batch of received frames is processed (a microtask): the
   * segments of one read batch then produce one ACK and one delivery to the owner (one host
   * socket write) instead of one per segment. @internal (also TcpFlow.write)
   */
  defer(flow: TcpFlow): void {
    if (flow.deferred) return;
    flow.deferred = true;
    this.deferredFlows.push(flow);
    if (this.deferredFlows.length === 1) queueMicrotask(this.flushDeferred);
  }

  private readonly deferredFlows: TcpFlow[] = [];
  private readonly flushDeferred = (): void => {
    const list = this.deferredFlows.splice(0);
    for (const f of list) {
      f.deferred = false;
      this.service(f);
    }
  };

  /** Flush a flow's output, deliver its events, reschedule its timer; remove it when closed. */
  service(flow: TcpFlow): void {
    if (flow.removed) return;
    if (flow.servicing) {
      flow.again = true;
      return;
    }
    flow.servicing = true;
    const conn = flow.conn;
    try {
      let rounds = 0;
      do {
        flow.again = false;
        const now = this.stack.now();
        for (let seg = conn.output(now); seg !== undefined; seg = conn.output(now)) this.sendSegment(flow, seg);
        const extra = conn.takeReset();
        if (extra !== undefined) this.sendSegment(flow, extra);
        const ev = conn.takeEvents();
        if (ev !== 0) {
          flow.again = true;
          flow.onEvents?.(flow, ev);
        }
      } while (flow.again && ++rounds < 64);
    } finally {
      flow.servicing = false;
    }
    if (conn.state !== TcpState.SynReceived) this.leaveHalfOpen(flow);
    if (conn.state === TcpState.Closed) {
      this.remove(flow);
      return;
    }
    const at = conn.pollAt();
    this.timers.schedule(flow, at === -Infinity ? this.stack.now() : at);
  }

  /** Emit one segment of `flow` toward its guest. */
  sendSegment(flow: TcpFlow, seg: TcpRepr): void {
    if (flow.remote6 !== undefined) sendRaw6(this.stack.ipv6!, this.counters, flow.port, flow.guestMac, flow.remote6, flow.guest6!, seg, flow.conn.sendMss);
    else this.sendRaw(flow.port, flow.guestMac, flow.remoteIp, flow.guestIp, seg, flow.conn.sendMss);
  }

  /** A segment that belongs to no flow (a RST) to a guest, over IPv4 or IPv6. */
  private sendAny(port: Port, dstMac: number, src: number, dst: number, src6: Ipv6Addr | undefined, dst6: Ipv6Addr | undefined, seg: TcpRepr): void {
    if (src6 !== undefined) sendRaw6(this.stack.ipv6!, this.counters, port, dstMac, src6, dst6!, seg);
    else this.sendRaw(port, dstMac, src, dst, seg);
  }

  /**
   * Emit a segment on `port`. With checksum offload the checksum is left partial for the link;
   * a segment carrying more than `mss` bytes (segmentation offload, see
   * TcpConnection.setSegmentationOffload) goes as a super-segment the link cuts at `mss`.
   */
  private sendRaw(port: Port, dstMac: number, src: number, dst: number, seg: TcpRepr, mss = 0): void {
    const len = tcpLen(seg);
    const superSegment = mss > 0 && seg.payload.length > mss && port.tcpSegmentation;
    const off = this.stack.beginIpv4(port, dstMac, src, dst, IpProtocol.TCP, len, true, superSegment);
    if (off < 0) return;
    emitTcp(seg, this.stack.txBuffer, off, src, dst, port.txChecksum);
    this.counters.segmentsOut++;
    if (seg.flags & TcpFlag.RST) this.counters.resetsSent++;
    this.stack.finishIpv4(len, superSegment ? txGsoMeta(mss) : port.txChecksum ? TX_CSUM_PARTIAL : 0);
  }

  /** ICMP destination unreachable quoting the guest's SYN (RFC 792; RFC 1122 §3.2.2.1). */
  sendUnreachable(flow: TcpFlow, code: number): void {
    if (flow.guest6 !== undefined) return sendSynUnreachable6(this.stack.ipv6!, flow.port, flow.guestMac, flow.guest6, flow.remote6!, flow.guestPort, flow.remotePort, flow.conn.irs, code);
    // Quote a reconstruction of the guest's SYN: its IP header and the first 8 bytes of TCP
    // (ports and sequence number), which is what the guest needs to match the error.
    const quote = new Uint8Array(28);
    emitIpv4(
      { src: flow.guestIp, dst: flow.remoteIp, protocol: IpProtocol.TCP, ttl: 64, id: 0, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: 20, options: NO_IPV4_OPTIONS },
      quote,
      0,
    );
    setU16(quote, 20, flow.guestPort);
    setU16(quote, 22, flow.remotePort);
    setU32(quote, 24, flow.conn.irs);
    const msg: IcmpRepr = { kind: "dest-unreachable", code, nextHopMtu: 0, original: quote };
    const len = icmpLen(msg);
    const off = this.stack.beginIpv4(flow.port, flow.guestMac, this.stack.config.gatewayIp, flow.guestIp, IpProtocol.ICMP, len, false);
    if (off < 0) return;
    emitIcmp(msg, this.stack.txBuffer, off);
    this.stack.finishIpv4(len);
  }

  /**
   * The stack is shutting down: abort every flow (RFC 9293 §3.10.5: a RST to the guest where
   * the connection is synchronized) and deliver the Reset/Closed events to each flow's owner at
   * once, so relays close their host sockets and dials in flight are abandoned; then stop the
   * timer. Later segments are dropped and `connect` throws. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const f of [...this.all()]) {
      f.deferred = false;
      f.abort();
      // A flow in CLOSED already (or whose owner kept it alive) goes regardless.
      this.remove(f);
    }
    this.deferredFlows.length = 0;
    this.timers.stop();
  }
}
