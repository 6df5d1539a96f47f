/**
 * TCP over IPv6 for the stack's TCP layer (tcp.ts): the flow table of IPv6 flows and the
 * segment emitter. The engine (src/tcp/) is the same for both families; only the addresses
 * and the pseudo-header of the checksum differ (RFC 8200 §8.1; RFC 9293 §3.1 for IPv4).
 *
 * The table is apart from the IPv4 one so the IPv4 hot path keeps its uint32 keys: an IPv6
 * flow is found by a 32-bit mix of both addresses' hashes and both ports (no string building),
 * in a small bucket whose entries are compared exactly.
 *
 * The emitter writes the segment with the TCP codec (which knows the IPv4 pseudo-header only:
 * it is given 0.0.0.0 for both addresses) and then moves the checksum from that pseudo-header
 * to the IPv6 one incrementally (RFC 1624 §3: HC' = ~(~HC + ~m + m')), without a second pass
 * over the payload. With checksum offload the field holds just the IPv6 pseudo-header sum.
 */

import { hashIpv6, ipv6Equal, type Ipv6Addr } from "../ipv6/addr.js";
import { NextHeader, pseudoHeaderSum6 } from "../ipv6/ipv6.js";
import { checksumFinish, foldSum, pseudoHeaderSum } from "../ipv4/checksum.js";
import { getU16, setU16, setU32 } from "../common/bytes.js";
import { emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../tcp/wire.js";
import { IPV6_HEADER_LEN, emitIpv6 } from "../ipv6/ipv6.js";
import { TX_CSUM_PARTIAL, txGsoMeta } from "../common/frame-channel.js";
import type { Ipv6Gateway } from "./gateway-ipv6.js";
import type { Port } from "./port.js";

/** The fields of a flow the IPv6 table keys on. */
export interface Flow6Key {
  readonly guest6: Ipv6Addr | undefined;
  readonly guestPort: number;
  readonly remote6: Ipv6Addr | undefined;
  readonly remotePort: number;
}

function key(g: Ipv6Addr, gp: number, r: Ipv6Addr, rp: number): number {
  return (hashIpv6(g) ^ Math.imul(gp + 1, 0x9e3779b1) ^ Math.imul(hashIpv6(r) ^ rp, 0x85ebca6b)) >>> 0;
}

export class FlowTable6<F extends Flow6Key> {
  private readonly buckets = new Map<number, F[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  lookup(g: Ipv6Addr, gp: number, r: Ipv6Addr, rp: number): F | undefined {
    const b = this.buckets.get(key(g, gp, r, rp));
    if (b === undefined) return undefined;
    for (const f of b) {
      if (f.guestPort === gp && f.remotePort === rp && ipv6Equal(f.guest6!, g) && ipv6Equal(f.remote6!, r)) return f;
    }
    return undefined;
  }

  add(f: F): void {
    const k = key(f.guest6!, f.guestPort, f.remote6!, f.remotePort);
    const b = this.buckets.get(k);
    if (b === undefined) this.buckets.set(k, [f]);
    else b.push(f);
    this.count++;
  }

  delete(f: F): void {
    const k = key(f.guest6!, f.guestPort, f.remote6!, f.remotePort);
    const b = this.buckets.get(k);
    const i = b === undefined ? -1 : b.indexOf(f);
    if (i < 0) return;
    b!.splice(i, 1);
    if (b!.length === 0) this.buckets.delete(k);
    this.count--;
  }

  *values(): IterableIterator<F> {
    for (const b of this.buckets.values()) yield* b;
  }
}

/**
 * Write `seg` at `buf[off]` with its checksum over the IPv6 pseudo-header of `src` and `dst`
 * (or, with `partialChecksum`, only that pseudo-header's sum, for the link to complete).
 * Returns the segment length.
 */
export function emitTcp6(seg: TcpRepr, buf: Uint8Array, off: number, src: Ipv6Addr, dst: Ipv6Addr, partialChecksum: boolean): number {
  const len = emitTcp(seg, buf, off, 0, 0, partialChecksum);
  const p6 = pseudoHeaderSum6(src, dst, NextHeader.TCP, len);
  if (partialChecksum) {
    setU16(buf, off + 16, p6);
    return len;
  }
  const p4 = pseudoHeaderSum(0, 0, NextHeader.TCP, len);
  const old = getU16(buf, off + 16);
  setU16(buf, off + 16, checksumFinish(foldSum((~old & 0xffff) + (~p4 & 0xffff) + p6)));
  return len;
}

/**
 * ICMPv6 Destination Unreachable code (RFC 4443 §3.1) for the ICMP (IPv4) code a translator
 * refuses with: net → no route (0), host → address unreachable (3), port → port unreachable
 * (4), administratively prohibited (13) → administratively prohibited (1).
 */
export function unreachCode6(icmp4Code: number): number {
  switch (icmp4Code) {
    case 0:
      return 0;
    case 3:
      return 4;
    case 13:
      return 1;
    default:
      return 3;
  }
}

/**
 * Emit one segment toward a guest over IPv6 (the TCP layer's `sendRaw` for IPv6 flows): a
 * segment carrying more than `mss` bytes goes as a super-segment the link cuts at `mss`.
 */
export function sendRaw6(gw: Ipv6Gateway, counters: { segmentsOut: number; resetsSent: number }, port: Port, dstMac: number, src: Ipv6Addr, dst: Ipv6Addr, seg: TcpRepr, mss = 0): void {
  const len = tcpLen(seg);
  const superSegment = mss > 0 && seg.payload.length > mss && port.tcpSegmentation;
  const off = gw.begin(port, dstMac, src, dst, NextHeader.TCP, len, gw.stack.config.ttl, superSegment);
  if (off < 0) return;
  emitTcp6(seg, gw.txBuffer, off, src, dst, port.txChecksum);
  counters.segmentsOut++;
  if (seg.flags & TcpFlag.RST) counters.resetsSent++;
  gw.finish(len, superSegment ? txGsoMeta(mss) : port.txChecksum ? TX_CSUM_PARTIAL : 0);
}

/**
 * ICMPv6 destination unreachable (RFC 4443 §3.1) for a guest's SYN, quoting a reconstruction
 * of it (IPv6 header, ports, sequence number `irs`); `icmp4Code` as for IPv4 (unreachCode6).
 */
export function sendSynUnreachable6(gw: Ipv6Gateway, port: Port, guestMac: number, guest6: Ipv6Addr, remote6: Ipv6Addr, guestPort: number, remotePort: number, irs: number, icmp4Code: number): void {
  const quote = new Uint8Array(IPV6_HEADER_LEN + 8);
  emitIpv6({ src: guest6, dst: remote6, nextHeader: NextHeader.TCP, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: 20 }, quote, 0);
  setU16(quote, IPV6_HEADER_LEN, guestPort);
  setU16(quote, IPV6_HEADER_LEN + 2, remotePort);
  setU32(quote, IPV6_HEADER_LEN + 4, irs);
  gw.sendUnreachable({ port, srcMac: guestMac, src: guest6, packet: quote }, unreachCode6(icmp4Code));
}
