/**
 * Frames a hostile guest sends in the soak test (test/soak/soak.test.ts): well-formed
 * templates built with skiff's own codecs (ARP, DHCP, IPv4 with UDP, TCP, ICMP, fragments),
 * and seeded damage to them (truncation, bit flips, junk, header fields set to extremes).
 * A small deterministic PRNG (xorshift32) so a failing run is repeated by its seed.
 */
import { emitEthernet, EtherType, ETH_HEADER_LEN } from "../../src/ethernet/ethernet.js";
import { emitArp, ArpOp } from "../../src/ethernet/arp.js";
import { emitIpv4, NO_IPV4_OPTIONS, IpProtocol, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitUdp } from "../../src/ipv4/udp.js";
import { emitIcmp } from "../../src/ipv4/icmp.js";
import { emitTcp, TcpFlag, NO_TCP_OPTIONS, type TcpRepr } from "../../src/tcp/wire.js";
import { emitDhcp, dhcpLen, DhcpMessageType, DhcpOption, type DhcpRepr, type DhcpOptionEntry } from "../../src/dhcp/wire.js";

export class Rng {
  constructor(private s: number) {
    if (this.s === 0) this.s = 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** 0 ≤ r < n. */
  int(n: number): number {
    return this.next() % Math.max(1, n);
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

export const BROADCAST = 0xffff_ffff_ffff;
const IP_HDR = 20;

/** An Ethernet frame carrying `payload` (already emitted) with the given EtherType. */
export function ethFrame(src: number, dst: number, ethertype: number, payload: Uint8Array): Uint8Array {
  const buf = new Uint8Array(ETH_HEADER_LEN + payload.length);
  emitEthernet({ src, dst, ethertype }, buf, 0);
  buf.set(payload, ETH_HEADER_LEN);
  return buf;
}

export function arpFrame(srcMac: number, senderIp: number, targetIp: number, op: number = ArpOp.Request): Uint8Array {
  const arp = new Uint8Array(28);
  emitArp({ op, senderMac: srcMac, senderIp, targetMac: 0, targetIp }, arp, 0);
  return ethFrame(srcMac, BROADCAST, EtherType.ARP, arp);
}

function ipv4Repr(src: number, dst: number, protocol: number, payloadLength: number, over: Partial<Ipv4Repr> = {}): Ipv4Repr {
  return { src, dst, protocol, ttl: 64, id: 0, tos: 0, df: false, mf: false, fragmentOffset: 0, payloadLength, options: NO_IPV4_OPTIONS, ...over };
}

/** An IPv4 packet in an Ethernet frame; `l4` is called to write the payload at its offset. */
function ipFrame(srcMac: number, dstMac: number, ip: Ipv4Repr, l4: (buf: Uint8Array, off: number) => void): Uint8Array {
  const buf = new Uint8Array(ETH_HEADER_LEN + IP_HDR + ip.payloadLength);
  emitEthernet({ src: srcMac, dst: dstMac, ethertype: EtherType.IPv4 }, buf, 0);
  l4(buf, ETH_HEADER_LEN + IP_HDR);
  emitIpv4(ip, buf, ETH_HEADER_LEN);
  return buf;
}

export function udpFrame(srcMac: number, dstMac: number, src: number, dst: number, srcPort: number, dstPort: number, payload: Uint8Array): Uint8Array {
  return ipFrame(srcMac, dstMac, ipv4Repr(src, dst, IpProtocol.UDP, 8 + payload.length), (buf, off) =>
    emitUdp({ srcPort, dstPort, payload }, buf, off, src, dst),
  );
}

export function tcpFrame(srcMac: number, dstMac: number, src: number, dst: number, seg: Partial<TcpRepr> & { srcPort: number; dstPort: number }): Uint8Array {
  const repr: TcpRepr = { seq: 0, ack: 0, flags: TcpFlag.SYN, window: 65535, urgentPointer: 0, options: NO_TCP_OPTIONS, payload: new Uint8Array(0), ...seg };
  const buf = new Uint8Array(ETH_HEADER_LEN + IP_HDR + 60 + repr.payload.length);
  emitEthernet({ src: srcMac, dst: dstMac, ethertype: EtherType.IPv4 }, buf, 0);
  const tcpBytes = emitTcp(repr, buf, ETH_HEADER_LEN + IP_HDR, src, dst);
  emitIpv4(ipv4Repr(src, dst, IpProtocol.TCP, tcpBytes), buf, ETH_HEADER_LEN);
  return buf.subarray(0, ETH_HEADER_LEN + IP_HDR + tcpBytes);
}

export function echoFrame(srcMac: number, dstMac: number, src: number, dst: number, id: number, seq: number, data: Uint8Array): Uint8Array {
  return ipFrame(srcMac, dstMac, ipv4Repr(src, dst, IpProtocol.ICMP, 8 + data.length), (buf, off) =>
    emitIcmp({ kind: "echo-request", id, seq, data }, buf, off),
  );
}

/** One IPv4 fragment with raw payload bytes (offset in bytes, a multiple of 8). */
export function fragmentFrame(srcMac: number, dstMac: number, src: number, dst: number, id: number, offset: number, mf: boolean, payload: Uint8Array): Uint8Array {
  return ipFrame(srcMac, dstMac, ipv4Repr(src, dst, IpProtocol.UDP, payload.length, { id, fragmentOffset: offset, mf }), (buf, off) => buf.set(payload, off));
}

/** A DHCP client message (DISCOVER, or REQUEST for `requested`) from `mac`, broadcast. */
export function dhcpFrame(mac: number, xid: number, type: number, requested?: number, server?: number): Uint8Array {
  const options: DhcpOptionEntry[] = [{ code: DhcpOption.MessageType, data: Uint8Array.of(type) }];
  if (requested !== undefined) options.push({ code: DhcpOption.RequestedIp, data: u32(requested) });
  if (server !== undefined) options.push({ code: DhcpOption.ServerId, data: u32(server) });
  const repr: DhcpRepr = {
    op: 1, htype: 1, hlen: 6, hops: 0, xid, secs: 0, broadcast: false, ciaddr: 0, yiaddr: 0, siaddr: 0, giaddr: 0,
    chaddr: mac, sname: "", file: "", options,
  } as DhcpRepr;
  const payload = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, payload, 0);
  return udpFrame(mac, BROADCAST, 0, 0xffff_ffff, 68, 67, payload);
}

export { DhcpMessageType };

function u32(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** Damage a valid frame: truncate, flip bits (anywhere or in the headers), append junk, or replace it with noise. */
export function damage(rng: Rng, frame: Uint8Array): Uint8Array {
  const out = Uint8Array.from(frame);
  switch (rng.int(5)) {
    case 0:
      return out.subarray(0, rng.int(out.length + 1));
    case 1: {
      for (let i = 1 + rng.int(6); i > 0; i--) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    }
    case 2: {
      // Header damage: somewhere in Ethernet + IPv4 + the transport's first bytes.
      for (let i = 1 + rng.int(3); i > 0; i--) out[ETH_HEADER_LEN + rng.int(Math.min(out.length - ETH_HEADER_LEN, 48))] = rng.int(256);
      return out;
    }
    case 3: {
      const joined = new Uint8Array(out.length + rng.int(64));
      joined.set(out);
      joined.set(rng.bytes(joined.length - out.length), out.length);
      return joined;
    }
    default: {
      const noise = rng.bytes(rng.int(1600));
      // Keep the Ethernet header plausible half of the time so the noise reaches the IP layer.
      if (rng.int(2) === 0 && noise.length >= ETH_HEADER_LEN) noise.set(out.subarray(0, ETH_HEADER_LEN));
      return noise;
    }
  }
}

export { TcpFlag };
