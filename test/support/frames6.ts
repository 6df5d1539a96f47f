/**
 * Frames a guest sends over IPv6, built for tests that drive a NetworkStack directly
 * (test/stack/gateway-ipv6*.test.ts), and a reader of the IPv6 frames the stack sent.
 */
import { emitEthernet, EtherType, parseEthernet } from "../../src/ethernet/ethernet.js";
import { emitIpv6, NextHeader, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { Ipv6Addr, type Ipv6Addr as A } from "../../src/ipv6/addr.js";
import { emitNdp, ndpLen, type NdpRepr } from "../../src/ipv6/ndp.js";
import { isWireError } from "../../src/common/wire-error.js";
import { getU16, setU16 } from "../../src/common/bytes.js";
import { GUEST_MAC, GW_MAC, type RecordingChannel } from "./stack.js";

export function frame(src: A, dst: A, nextHeader: number, l4: Uint8Array, hopLimit = 64, dstMac = GW_MAC, srcMac = GUEST_MAC): Uint8Array {
  const f = new Uint8Array(14 + 40 + l4.length);
  const o = emitEthernet({ dst: dstMac, src: srcMac, ethertype: EtherType.IPv6 }, f);
  emitIpv6({ src, dst, nextHeader, hopLimit, trafficClass: 0, flowLabel: 0, payloadLength: l4.length }, f, o);
  f.set(l4, o + 40);
  return f;
}

export function ndpFrame(src: A, dst: A, nd: NdpRepr, dstMac = GW_MAC): Uint8Array {
  const b = new Uint8Array(ndpLen(nd));
  emitNdp(nd, b, 0, src, dst);
  return frame(src, dst, NextHeader.ICMPv6, b, 255, dstMac);
}

export function udpFrame(src: A, sport: number, dst: A, dport: number, payload: Uint8Array, dstMac = GW_MAC): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  setU16(u, 0, sport);
  setU16(u, 2, dport);
  setU16(u, 4, u.length);
  u.set(payload, 8);
  setU16(u, 6, upperLayerChecksum6(u, 0, u.length, src, dst, NextHeader.UDP));
  return frame(src, dst, NextHeader.UDP, u, 64, dstMac);
}

export interface Sent6 {
  dstMac: number;
  src: A;
  dst: A;
  nextHeader: number;
  hopLimit: number;
  l4: Uint8Array;
}

export function sent6(ch: RecordingChannel): Sent6[] {
  return ch.sent.flatMap((f) => {
    const e = parseEthernet(f);
    if (isWireError(e) || e.ethertype !== EtherType.IPv6) return [];
    const p = f.subarray(14);
    const v = new DataView(p.buffer, p.byteOffset);
    const rd = (o: number) => new Ipv6Addr(v.getUint32(o), v.getUint32(o + 4), v.getUint32(o + 8), v.getUint32(o + 12));
    return [{ dstMac: e.dst, src: rd(8), dst: rd(24), nextHeader: p[6], hopLimit: p[7], l4: p.subarray(40, 40 + getU16(p, 4)) }];
  });
}


/** A guest's TCP SYN over IPv6 (20-byte header, no options), checksum filled. */
export function tcpSyn6(src: A, srcPort: number, dst: A, dstPort: number): Uint8Array {
  const t = new Uint8Array(20);
  setU16(t, 0, srcPort);
  setU16(t, 2, dstPort);
  t[12] = 5 << 4;
  t[13] = 0x02;
  setU16(t, 14, 65535);
  setU16(t, 16, upperLayerChecksum6(t, 0, 20, src, dst, NextHeader.TCP));
  return frame(src, dst, NextHeader.TCP, t);
}
