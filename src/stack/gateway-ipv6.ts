/**
 * The gateway on IPv6: receive checks, source validation, dispatch and the transmit buffer
 * for IPv6 packets (RFC 8200 §3-§4; the addresses of config6.ts).
 *
 * Receive (`receive`, called by stack.ts for EtherType 0x86DD):
 *  - the fixed header and the extension-header chain are walked with bounds (ext.ts); a chain
 *    that cannot be walked is dropped (counted; RFC 8200 §4 leaves errors for unknown headers
 *    to hosts, and a gateway that answers them helps scanners more than guests);
 *  - source validation: a guest's source is link-local (fe80::/10) or inside the guest prefix,
 *    never one of the gateway's addresses; the unspecified address only for ICMPv6 (Duplicate
 *    Address Detection and MLD, RFC 4862 §5.4.2, RFC 3810 §5.2.13); everything else is dropped
 *    ("src6-not-allowed");
 *  - destinations: the gateway's addresses (its ULA, link-local, the host alias), the
 *    all-nodes / all-routers / solicited-node / all-DHCP-servers groups (RFC 4291 §2.7.1,
 *    RFC 8415 §7.1), and — for TCP and UDP — any address outside the guest prefix (socket
 *    translation, through `udpForwarder` / `tcpHandler`). Another guest's address is not
 *    ours: guests reach each other through the switch;
 *  - fragments are reassembled (fragments.ts; bounded), then dispatched as a whole packet;
 *  - guests' addresses are learned into the neighbour cache (neighbors6.ts).
 * ICMPv6 goes to ndp-service.ts (Neighbor Discovery, router advertisements) or is an echo
 * request (RFC 4443 §4.1): to the gateway it is answered here (§4.2); to the host alias or any
 * other unicast address it goes to `echoForwarder` (ICMPv6 echo translation through host ping
 * sockets, src/socket-translate/icmp6-translator.ts) when one is installed; without one the
 * alias is answered here and any other address gets "administratively prohibited" (§3.1) at
 * once. UDP to the gateway's services (DNS on 53, stateless DHCPv6 on 547,
 * dhcp6-service.ts) or to the forwarder.
 *
 * Transmit: `begin(port, dstMac, src, dst, nextHeader, l4Len, hopLimit)` writes Ethernet and
 * IPv6 headers into the one transmit buffer and returns where the upper layer goes; `finish`
 * sends it. No allocation per packet beyond the address objects of a parse.
 */

import { getU16, setU16 } from "../common/bytes.js";
import { isWireError } from "../common/wire-error.js";
import { emitEthernet, EtherType } from "../ethernet/ethernet.js";
import {
  ipv6Equal,
  isLinkLocal6,
  isUnspecified6,
  readIpv6Addr,
  type Ipv6Addr,
} from "../ipv6/addr.js";
import { isFragmented, walkExtensionHeaders, type ExtChain } from "../ipv6/ext.js";
import { Ipv6Reassembler } from "../ipv6/fragments.js";
import { emitIcmpv6, icmpv6Len, Icmpv6Type, type Icmpv6Repr } from "../ipv6/icmpv6.js";
import { IPV6_HEADER_LEN, NextHeader, upperLayerChecksum6, type Ipv6Repr, emitIpv6, pseudoHeaderSum6 } from "../ipv6/ipv6.js";
import { checksumFinish, onesSum } from "../ipv4/checksum.js";
import { GSO_MAX_FRAME, maxFrameLen } from "../common/frame-channel.js";
import { sendIpv6Fragments } from "./fragment-tx.js";
import { inPrefix64, type Ipv6Config } from "./config6.js";
import type { StackConfig } from "./config.js";
import type { StackCounters } from "./counters.js";
import { NeighborCache6 } from "./neighbors6.js";
import { NdpService } from "./ndp-service.js";
import type { Port } from "./port.js";
import type { SharedTimers } from "./timers.js";

/** What the IPv6 gateway needs of the stack (implemented by NetworkStack; no import cycle). */
export interface Ipv6StackView {
  readonly config: StackConfig;
  readonly counters: StackCounters;
  readonly timers: SharedTimers;
  readonly now: () => number;
  readonly rxL4ChecksumVerified: boolean;
  readonly attached: readonly Port[];
  /** Send `frame` (a whole Ethernet frame) on `port`, counted. */
  transmitFrame(port: Port, frame: Uint8Array, txMeta?: number): boolean;
}

/** One UDP datagram received over IPv6 (payload borrowed for the call). */
export interface Udp6Datagram {
  port: Port;
  srcMac: number;
  src: Ipv6Addr;
  srcPort: number;
  dst: Ipv6Addr;
  dstPort: number;
  payload: Uint8Array;
  /** The whole IPv6 packet (borrowed), for quoting in an ICMPv6 error. */
  packet: Uint8Array;
}

export type Udp6Handler = (gw: Ipv6Gateway, d: Udp6Datagram) => void;

/**
 * Handler of a guest's echo request beyond the gateway (checksum verified): `msg` is the ICMPv6
 * message (type 128, identifier at 4, sequence at 6, data from 8) and `packet` the whole IPv6
 * packet, both borrowed for the call.
 */
export type Echo6Forwarder = (port: Port, srcMac: number, src: Ipv6Addr, dst: Ipv6Addr, msg: Uint8Array, packet: Uint8Array) => void;

/**
 * Handler of TCP segments over IPv6 (the TCP layer); `packet` and `chain` are borrowed;
 * `verified`: the link vouched for the checksum.
 */
export type Tcp6Handler = (port: Port, srcMac: number, src: Ipv6Addr, dst: Ipv6Addr, packet: Uint8Array, chain: ExtChain, verified: boolean) => void;

const UDP_HEADER_LEN = 8;
/** Hop limit of packets the gateway originates (RFC 8200 §3 leaves it to the node; 64 as Linux). */
const HOP_LIMIT = 64;

export class Ipv6Gateway {
  readonly cfg: Ipv6Config;
  readonly neighbors: NeighborCache6<Port>;
  readonly ndp: NdpService;
  readonly fragments = new Ipv6Reassembler();
  private readonly udpServices = new Map<number, Udp6Handler>();
  /** UDP to destinations beyond the gateway (socket translation). */
  udpForwarder: Udp6Handler | undefined;
  /** TCP to the gateway or beyond (the TCP layer). */
  tcpHandler: Tcp6Handler | undefined;
  /** Echo requests to the host alias and beyond (ICMPv6 echo translation). */
  echoForwarder: Echo6Forwarder | undefined;
  private readonly tx: Uint8Array;
  private txPort: Port | undefined;
  private txL4Off = 0;
  /** The packet begun by `begin` is over the MTU and goes in fragments (RFC 8200 §4.5). */
  private txFragment = false;
  private fragScratch: Uint8Array | undefined;
  /** Identification of the gateway's fragmented packets; random start (RFC 7739). */
  private fragId = (Math.random() * 0x100000000) >>> 0;

  constructor(readonly stack: Ipv6StackView) {
    this.cfg = stack.config.ipv6!;
    this.neighbors = new NeighborCache6<Port>(this.cfg.maxNeighbors);
    this.tx = new Uint8Array(Math.max(maxFrameLen(stack.config.mtu), GSO_MAX_FRAME + IPV6_HEADER_LEN));
    this.ndp = new NdpService(this);
  }

  get counters(): StackCounters {
    return this.stack.counters;
  }

  close(): void {
    this.ndp.close();
  }

  /** Serve UDP port `localPort` of the gateway's IPv6 addresses. */
  bindUdp(localPort: number, handler: Udp6Handler): void {
    if (this.udpServices.has(localPort)) throw new Error(`UDP port ${localPort} of the IPv6 gateway is already bound`);
    this.udpServices.set(localPort, handler);
  }

  unbindUdp(localPort: number): void {
    this.udpServices.delete(localPort);
  }

  /** The handler bound to UDP port `localPort` of the gateway, if any. */
  udpService(localPort: number): Udp6Handler | undefined {
    return this.udpServices.get(localPort);
  }

  /** The gateway's own unicast addresses (its ULA, its link-local, the host alias when on). */
  isGatewayAddress(a: Ipv6Addr): boolean {
    const c = this.cfg;
    return ipv6Equal(a, c.gateway) || ipv6Equal(a, c.gatewayLinkLocal) || (c.hostAlias !== null && ipv6Equal(a, c.hostAlias));
  }

  /** An address no guest may use as its own: the gateway's, and the alias's even when it is off. */
  isReserved(a: Ipv6Addr): boolean {
    return this.isGatewayAddress(a) || ipv6Equal(a, this.cfg.hostAliasAddress) || (inPrefix64(this.cfg, a) && a.w2 === 0 && a.w3 === 0);
  }

  /** A source address a guest may send from (link-local or in the prefix, not reserved). */
  guestSourceOk(a: Ipv6Addr): boolean {
    return (isLinkLocal6(a) || inPrefix64(this.cfg, a)) && !this.isReserved(a);
  }

  /**
   * The switch's ingress filter for IPv6 (stack.ts `mayForward`): the source must be one a guest
   * may use, or unspecified for ICMPv6 (DAD, MLD).
   */
  mayForwardSource(packet: Uint8Array): boolean {
    if (packet.length < IPV6_HEADER_LEN) return false;
    const src = readIpv6Addr(packet, 8);
    // DAD probes (ICMPv6) and MLD reports (behind a Hop-by-Hop header) come from ::.
    if (isUnspecified6(src)) return packet[6] === NextHeader.ICMPv6 || packet[6] === NextHeader.HopByHop;
    return this.guestSourceOk(src);
  }

  // ---- receive ---------------------------------------------------------------------

  /** One IPv6 packet (`payload` of an Ethernet frame, borrowed). Never throws on any bytes. */
  receive(port: Port, srcMac: number, dstMac: number, payload: Uint8Array): void {
    const c = this.stack.counters;
    let packet = payload;
    let chain = walkExtensionHeaders(packet);
    if (isWireError(chain)) return c.drop(packet.length < IPV6_HEADER_LEN || packet[0] >>> 4 !== 6 || chain.reason === "truncated" ? "ipv6-malformed" : "ipv6-ext-header");
    const src = readIpv6Addr(packet, 8);
    const dst = readIpv6Addr(packet, 24);
    const proto = chain.protocol;
    if (isUnspecified6(src)) {
      if (proto !== NextHeader.ICMPv6) return c.drop("src6-not-allowed");
    } else if (!this.guestSourceOk(src)) {
      return c.drop("src6-not-allowed");
    }
    if (!this.acceptsDestination(dst, proto)) return c.drop("ipv6-not-for-us");
    if (!isUnspecified6(src)) this.neighbors.learn(src, srcMac, port);
    if (isFragmented(chain) || chain.fragmentAt >= 0) {
      const whole = this.fragments.add(packet, chain, this.stack.now());
      if (whole === undefined) {
        if (this.fragments.lastDrop !== undefined) c.drop("ipv6-fragment");
        return;
      }
      const again = walkExtensionHeaders(whole);
      if (isWireError(again)) return c.drop("ipv6-ext-header");
      packet = whole;
      chain = again;
    }
    const verified = this.stack.rxL4ChecksumVerified && packet === payload;
    switch (chain.protocol) {
      case NextHeader.ICMPv6:
        return this.receiveIcmp(port, srcMac, src, dst, packet, chain);
      case NextHeader.UDP:
        return this.receiveUdp(port, srcMac, src, dst, packet, chain, verified);
      case NextHeader.TCP:
        if (this.tcpHandler === undefined || dst.w0 >>> 24 === 0xff) return c.drop("ipv6-no-handler");
        return this.tcpHandler(port, srcMac, src, dst, packet, chain, verified);
      default:
        return c.drop("ipv6-no-handler");
    }
  }

  /**
   * The gateway's unicast addresses and the groups it listens to; for TCP and UDP also any
   * unicast address outside the guest prefix and link-local range (translated to host sockets).
   */
  private acceptsDestination(dst: Ipv6Addr, proto: number): boolean {
    if (dst.w0 >>> 24 === 0xff) {
      // ff02::1, ff02::2, ff02::1:2, ff02::1:ffXX:XXXX (link-local scope only).
      if (dst.w0 !== 0xff020000 || dst.w1 !== 0) return false;
      if (dst.w2 === 0) return dst.w3 === 1 || dst.w3 === 2 || dst.w3 === 0x00010002;
      return dst.w2 === 1 && dst.w3 >>> 24 === 0xff;
    }
    if (this.isGatewayAddress(dst) || ipv6Equal(dst, this.cfg.hostAliasAddress)) return true;
    if (isLinkLocal6(dst) || inPrefix64(this.cfg, dst) || isUnspecified6(dst)) return false;
    return proto === NextHeader.TCP || proto === NextHeader.UDP || proto === NextHeader.ICMPv6;
  }

  private receiveIcmp(port: Port, srcMac: number, src: Ipv6Addr, dst: Ipv6Addr, packet: Uint8Array, chain: ExtChain): void {
    const c = this.stack.counters;
    const at = chain.offset;
    const msg = packet.subarray(at, chain.end);
    if (msg.length < 4) return c.drop("icmpv6-malformed");
    const type = msg[0];
    if (type >= Icmpv6Type.RouterSolicitation && type <= Icmpv6Type.Redirect) {
      return this.ndp.receive(port, srcMac, src, dst, packet[7], msg);
    }
    if (type !== Icmpv6Type.EchoRequest || msg[1] !== 0 || msg.length < 8 || isUnspecified6(src)) return c.drop("icmpv6-unhandled");
    if (upperLayerChecksum6(msg, 0, msg.length, src, dst, NextHeader.ICMPv6) !== 0) return c.drop("icmpv6-malformed");
    const fwd = this.echoForwarder;
    const toAlias = this.cfg.hostAlias !== null && ipv6Equal(dst, this.cfg.hostAlias);
    if (fwd !== undefined && dst.w0 >>> 24 !== 0xff && (toAlias || !this.isGatewayAddress(dst))) return fwd(port, srcMac, src, dst, msg, packet);
    if (!this.isGatewayAddress(dst)) {
      // Echo beyond the gateway is not forwarded over IPv6: say so at once (RFC 4443 §3.1 code 1)
      // rather than let the guest's ping time out. Never for a multicast destination (§2.4(e)).
      c.drop("icmpv6-unhandled");
      if (dst.w0 >>> 24 !== 0xff) this.sendError(port, srcMac, src, Icmpv6Type.DestUnreachable, 1, packet);
      return;
    }
    // RFC 4443 §4.2: the reply carries the request's identifier, sequence and data.
    if (this.sendEchoReply(port, srcMac, dst, src, getU16(msg, 4), getU16(msg, 6), msg.subarray(8))) c.icmpv6EchoReplies++;
  }

  /** An ICMPv6 echo reply (RFC 4443 §4.2) from `src` to a guest; false when it could not go. */
  sendEchoReply(port: Port, dstMac: number, src: Ipv6Addr, dst: Ipv6Addr, id: number, seq: number, data: Uint8Array): boolean {
    const reply: Icmpv6Repr = { kind: "echo-reply", id, seq, data };
    const len = icmpv6Len(reply);
    const off = this.begin(port, dstMac, src, dst, NextHeader.ICMPv6, len, HOP_LIMIT, false, true);
    if (off < 0) return false;
    emitIcmpv6(reply, this.tx, off, src, dst);
    return this.finish(len);
  }

  private receiveUdp(port: Port, srcMac: number, src: Ipv6Addr, dst: Ipv6Addr, packet: Uint8Array, chain: ExtChain, verified: boolean): void {
    const c = this.stack.counters;
    const at = chain.offset;
    const avail = chain.end - at;
    if (avail < UDP_HEADER_LEN) return c.drop("udp-malformed");
    const len = getU16(packet, at + 4);
    // RFC 8200 §8.1: the checksum is mandatory over IPv6 (zero is invalid); RFC 768 length.
    if (len < UDP_HEADER_LEN || len > avail || getU16(packet, at + 6) === 0) return c.drop("udp-malformed");
    if (!verified && upperLayerChecksum6(packet, at, len, src, dst, NextHeader.UDP) !== 0) return c.drop("udp-malformed");
    const d: Udp6Datagram = {
      port,
      srcMac,
      src,
      srcPort: getU16(packet, at),
      dst,
      dstPort: getU16(packet, at + 2),
      payload: packet.subarray(at + UDP_HEADER_LEN, at + len),
      packet,
    };
    const local = dst.w0 >>> 24 === 0xff || this.isGatewayAddress(dst) || ipv6Equal(dst, this.cfg.hostAliasAddress);
    const toGateway = local && !(this.cfg.hostAlias !== null && ipv6Equal(dst, this.cfg.hostAlias));
    if (toGateway) {
      const service = this.udpServices.get(d.dstPort);
      if (service !== undefined) return service(this, d);
      c.drop("udp-no-service");
      if (dst.w0 >>> 24 !== 0xff) this.sendUnreachable(d, 4 /* port unreachable, RFC 4443 §3.1 */);
      return;
    }
    if (this.udpForwarder !== undefined) return this.udpForwarder(this, d);
    c.drop("udp-no-service");
    this.sendUnreachable(d, ipv6Equal(dst, this.cfg.hostAliasAddress) ? 1 : 0);
  }

  // ---- transmit --------------------------------------------------------------------

  /**
   * Start an IPv6 packet of `l4Len` upper-layer bytes: returns the offset in `txBuffer` where
   * they go, or -1 (counted) when the packet would not fit the MTU (or 64 KiB for a TCP
   * super-segment).
   */
  begin(port: Port, dstMac: number, src: Ipv6Addr, dst: Ipv6Addr, nextHeader: number, l4Len: number, hopLimit: number, superSegment = false, fragmentable = false): number {
    // A fragmentable packet (the gateway's echo replies) over the MTU goes in fragments (finish).
    this.txFragment = fragmentable && !superSegment && IPV6_HEADER_LEN + l4Len > this.stack.config.mtu;
    if (l4Len > 0xffff || IPV6_HEADER_LEN + l4Len > (superSegment || this.txFragment ? 0xffff + IPV6_HEADER_LEN : this.stack.config.mtu)) {
      this.stack.counters.drop("tx-too-big");
      return -1;
    }
    const t = this.tx;
    const o = emitEthernet({ dst: dstMac, src: this.stack.config.gatewayMac, ethertype: EtherType.IPv6 }, t, 0);
    const r = TX_IP6;
    r.src = src;
    r.dst = dst;
    r.nextHeader = nextHeader;
    r.hopLimit = hopLimit;
    r.payloadLength = l4Len;
    emitIpv6(r, t, o);
    this.txPort = port;
    this.txL4Off = o + IPV6_HEADER_LEN;
    return this.txL4Off;
  }

  get txBuffer(): Uint8Array {
    return this.tx;
  }

  /** Send the packet begun by `begin` once its `l4Len` bytes are in place. */
  finish(l4Len: number, txMeta = 0): boolean {
    const port = this.txPort;
    if (port === undefined) return false;
    this.txPort = undefined;
    const frame = this.tx.subarray(0, this.txL4Off + l4Len);
    if (this.txFragment) {
      this.txFragment = false;
      if (txMeta !== 0) return (this.stack.counters.drop("tx-too-big"), false);
      this.stack.counters.txFragmented++;
      const scratch = (this.fragScratch ??= new Uint8Array(maxFrameLen(this.stack.config.mtu)));
      this.fragId = (this.fragId + 1) >>> 0;
      return sendIpv6Fragments(frame, this.stack.config.mtu, this.fragId, scratch, (f) => this.stack.transmitFrame(port, f));
    }
    return this.stack.transmitFrame(port, frame, txMeta);
  }

  /** Send a UDP datagram to a guest (checksum computed; RFC 8200 §8.1 never zero). */
  sendUdp(port: Port, dstMac: number, src: Ipv6Addr, srcPort: number, dst: Ipv6Addr, dstPort: number, payload: Uint8Array): boolean {
    const len = UDP_HEADER_LEN + payload.length;
    const off = this.begin(port, dstMac, src, dst, NextHeader.UDP, len, HOP_LIMIT);
    if (off < 0) return false;
    const t = this.tx;
    setU16(t, off, srcPort);
    setU16(t, off + 2, dstPort);
    setU16(t, off + 4, len);
    setU16(t, off + 6, 0);
    t.set(payload, off + UDP_HEADER_LEN);
    const sum = checksumFinish(onesSum(t, off, len, pseudoHeaderSum6(src, dst, NextHeader.UDP, len)));
    setU16(t, off + 6, sum === 0 ? 0xffff : sum);
    return this.finish(len);
  }

  /**
   * ICMPv6 Destination Unreachable (RFC 4443 §3.1) with `code` for a datagram a guest sent,
   * quoting as much of it as fits the minimum MTU (§2.4(c)); from the gateway's address.
   */
  sendUnreachable(d: { port: Port; srcMac: number; src: Ipv6Addr; packet: Uint8Array }, code: number): void {
    this.sendError(d.port, d.srcMac, d.src, Icmpv6Type.DestUnreachable, code, d.packet);
  }

  /** An ICMPv6 error quoting `invoking` (cut to fit 1280 bytes), to `dst` from the gateway. */
  sendError(port: Port, dstMac: number, dst: Ipv6Addr, type: number, code: number, invoking: Uint8Array): void {
    if (isUnspecified6(dst) || dst.w0 >>> 24 === 0xff) return; // RFC 4443 §2.4(e)
    const end = Math.min(invoking.length, IPV6_HEADER_LEN + getU16(invoking, 4));
    const quote = invoking.subarray(0, Math.min(end, 1280 - IPV6_HEADER_LEN - 8));
    const src = isLinkLocal6(dst) ? this.cfg.gatewayLinkLocal : this.cfg.gateway;
    const msg: Icmpv6Repr = type === Icmpv6Type.DestUnreachable ? { kind: "dest-unreachable", code, original: quote } : { kind: "other", type, code, rest: 0, data: quote };
    const len = icmpv6Len(msg);
    const off = this.begin(port, dstMac, src, dst, NextHeader.ICMPv6, len, HOP_LIMIT);
    if (off < 0) return;
    emitIcmpv6(msg, this.tx, off, src, dst);
    this.finish(len);
  }
}

/** Reused representation for the transmit path (fields overwritten per packet). */
const TX_IP6: Ipv6Repr = {
  src: undefined as unknown as Ipv6Addr,
  dst: undefined as unknown as Ipv6Addr,
  nextHeader: 0,
  hopLimit: HOP_LIMIT,
  trafficClass: 0,
  flowLabel: 0,
  payloadLength: 0,
};
