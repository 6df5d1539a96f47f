/**
 * `pcap inspect` on IPv6 (RFC 8200 §3, §4): the `ipv6` layer (fixed header and the
 * extension-header walk of src/ipv6/ext.ts: upper-layer protocol, fragment fields) and the
 * `icmpv6` layer (RFC 4443 §2.1 type/code with the checksum over the IPv6 pseudo-header; echo
 * id/seq, §4; the target of Neighbor Discovery messages, RFC 4861 §4.3-§4.4; a Router
 * Advertisement's header and its prefix, MTU, RDNSS and DNSSL options, RFC 4861 §4.2, §4.6.2,
 * §4.6.4, RFC 8106 §5.1-§5.2; the quoted packet's addresses of an error, §3). TCP and UDP over IPv6 are decoded by inspect.ts with the
 * IPv6 pseudo-header sum from here. Not a hot path.
 */

import { getU16, getU32 } from "../common/bytes.js";
import { WireError } from "../common/wire-error.js";
import { formatIpv6, readIpv6Addr, type Ipv6Addr } from "../ipv6/addr.js";
import { walkExtensionHeaders, type ExtChain } from "../ipv6/ext.js";
import { Icmpv6Type } from "../ipv6/icmpv6.js";
import { parseNdpOptions } from "../ipv6/ndp-options.js";
import { IPV6_HEADER_LEN, NextHeader, parseIpv6, pseudoHeaderSum6, upperLayerChecksum6 } from "../ipv6/ipv6.js";
import type { LayerError } from "./inspect-apps.js";

export interface Ipv6Layer {
  src: string;
  dst: string;
  /** The upper-layer protocol after the extension headers (6, 17, 58, 59, …). */
  nextHeader: number;
  hopLimit: number;
  trafficClass: number;
  flowLabel: number;
  payloadLength: number;
  /** Extension headers walked. */
  extensionHeaders: number;
  /** Fragment header fields, when there is one (offset in bytes). */
  fragment?: { offset: number; more: boolean; id: number };
  /** Present (true) when the frame ends before Payload Length. */
  truncated?: true;
}

export interface Icmpv6Layer {
  type: number;
  code: number;
  id?: number;
  seq?: number;
  /** Target address of a Neighbor Solicitation or Advertisement. */
  target?: string;
  /** Packet Too Big's MTU. */
  mtu?: number;
  original?: { src: string; dst: string; nextHeader: number };
  /** A Router Advertisement (RFC 4861 §4.2) and what SLAAC and DNS take from its options. */
  ra?: RaFields;
  checksumOk: boolean | null;
}

export interface RaFields {
  curHopLimit: number;
  /** The flags byte (M 0x80, O 0x40, …). */
  flags: number;
  /** Seconds; 0: not a default router. */
  routerLifetime: number;
  /** Prefix Information options as "prefix/length" (§4.6.2). */
  prefixes: string[];
  /** The MTU option (§4.6.4). */
  mtu?: number;
  /** RDNSS servers and DNSSL domains (RFC 8106 §5.1, §5.2). */
  rdnss: string[];
  dnssl: string[];
  /** Present when the options could not be walked. */
  badOptions?: true;
}

/** RA message header length before the options (RFC 4861 §4.2). */
const RA_HEADER_LEN = 16;

function decodeRa(bytes: Uint8Array): RaFields {
  const ra: RaFields = { curHopLimit: bytes[4], flags: bytes[5], routerLifetime: getU16(bytes, 6), prefixes: [], rdnss: [], dnssl: [] };
  const opts = parseNdpOptions(bytes, RA_HEADER_LEN, bytes.length);
  if (opts instanceof WireError) {
    ra.badOptions = true;
    return ra;
  }
  for (const o of opts) {
    if (o.type === "prefix") ra.prefixes.push(`${formatIpv6(o.prefix)}/${o.prefixLength}`);
    else if (o.type === "mtu") ra.mtu = o.mtu;
    else if (o.type === "rdnss") ra.rdnss.push(...o.servers.map(formatIpv6));
    else if (o.type === "dnssl") ra.dnssl.push(...o.domains);
  }
  return ra;
}

/** What inspect.ts needs to go on above the IPv6 layer. */
export interface Ipv6Decoded {
  layer: Ipv6Layer;
  src: Ipv6Addr;
  dst: Ipv6Addr;
  /** The upper-layer bytes present (from the chain's offset). */
  l4: Uint8Array;
  /** Upper-layer length Payload Length claims (bounded by the frame on the wire). */
  l4Length: number;
  /** Whole, unfragmented: checksums can be judged, upper layers decoded. */
  whole: boolean;
  /** A later fragment: no upper-layer header to decode. */
  laterFragment: boolean;
}

export function decodeIpv6Layer(bytes: Uint8Array, wireLen: number): Ipv6Decoded | WireError {
  const ip = parseIpv6(bytes, { allowTruncated: true });
  if (ip instanceof WireError) return ip;
  const end = IPV6_HEADER_LEN + ip.payloadLength;
  const present = end <= bytes.length;
  const chain = walkExtensionHeaders(bytes, undefined, { allowTruncated: true });
  if (chain instanceof WireError) return chain;
  const layer: Ipv6Layer = {
    src: formatIpv6(ip.src),
    dst: formatIpv6(ip.dst),
    nextHeader: chain.protocol,
    hopLimit: ip.hopLimit,
    trafficClass: ip.trafficClass,
    flowLabel: ip.flowLabel,
    payloadLength: ip.payloadLength,
    extensionHeaders: chain.headers,
  };
  if (chain.fragmentAt >= 0) layer.fragment = { offset: chain.fragmentOffset, more: chain.moreFragments, id: chain.fragmentId };
  if (!present) layer.truncated = true;
  const fragmented = chain.fragmentAt >= 0 && (chain.moreFragments || chain.fragmentOffset !== 0);
  return {
    layer,
    src: ip.src,
    dst: ip.dst,
    l4: bytes.subarray(chain.offset, Math.min(end, bytes.length)),
    l4Length: Math.min(end, wireLen) - chain.offset,
    whole: present && !fragmented,
    laterFragment: chain.fragmentAt >= 0 && chain.fragmentOffset !== 0,
  };
}

/** The IPv6 pseudo-header sum (RFC 8200 §8.1) for an upper layer of `protocol`. */
export function pseudoSum6(src: Ipv6Addr, dst: Ipv6Addr, protocol: number, length: number): number {
  return pseudoHeaderSum6(src, dst, protocol, length);
}

export function decodeIcmpv6Layer(bytes: Uint8Array, v6: Ipv6Decoded): Icmpv6Layer | LayerError {
  if (bytes.length < 4) return { layer: "icmpv6", reason: "truncated" };
  const type = bytes[0];
  const layer: Icmpv6Layer = { type, code: bytes[1], checksumOk: null };
  if ((type === Icmpv6Type.EchoRequest || type === Icmpv6Type.EchoReply) && bytes.length >= 8) {
    layer.id = getU16(bytes, 4);
    layer.seq = getU16(bytes, 6);
  } else if ((type === Icmpv6Type.NeighborSolicitation || type === Icmpv6Type.NeighborAdvertisement) && bytes.length >= 24) {
    layer.target = formatIpv6(readIpv6Addr(bytes, 8));
  } else if (type === Icmpv6Type.RouterAdvertisement && bytes.length >= RA_HEADER_LEN) {
    layer.ra = decodeRa(bytes);
  } else if (type >= Icmpv6Type.DestUnreachable && type <= Icmpv6Type.ParameterProblem && bytes.length >= 8 + IPV6_HEADER_LEN) {
    if (type === Icmpv6Type.PacketTooBig) layer.mtu = getU32(bytes, 4);
    const q = bytes.subarray(8);
    const chain: ExtChain | WireError = walkExtensionHeaders(q, undefined, { allowTruncated: true });
    layer.original = { src: formatIpv6(readIpv6Addr(q, 8)), dst: formatIpv6(readIpv6Addr(q, 24)), nextHeader: chain instanceof WireError ? q[6] : chain.protocol };
  }
  if (v6.whole) layer.checksumOk = upperLayerChecksum6(bytes, 0, bytes.length, v6.src, v6.dst, NextHeader.ICMPv6) === 0;
  return layer;
}

const ICMPV6_NAMES: Record<number, string> = { 1: "unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "param-problem", 128: "echo-request", 129: "echo-reply", 133: "router-solicitation", 134: "router-advertisement", 135: "neighbor-solicitation", 136: "neighbor-advertisement", 137: "redirect" };

export function ipv6Text(ip: Ipv6Layer): string {
  let s = `ipv6 ${ip.src}→${ip.dst} hlim ${ip.hopLimit} len ${ip.payloadLength}`;
  if (ip.fragment) s += ` frag ${ip.fragment.offset}${ip.fragment.more ? "+" : ""} id ${ip.fragment.id}`;
  if (ip.truncated) s += " truncated";
  if (ip.nextHeader !== NextHeader.ICMPv6 && ip.nextHeader !== NextHeader.UDP && ip.nextHeader !== NextHeader.TCP) s += ` next ${ip.nextHeader}`;
  return s;
}

export function icmpv6Text(c: Icmpv6Layer): string {
  let s = `icmpv6 ${ICMPV6_NAMES[c.type] ?? `type ${c.type}`}`;
  if (c.code !== 0) s += ` code ${c.code}`;
  if (c.id !== undefined) s += ` id 0x${c.id.toString(16).padStart(4, "0")} seq ${c.seq}`;
  if (c.target !== undefined) s += ` target ${c.target}`;
  if (c.mtu !== undefined) s += ` mtu ${c.mtu}`;
  if (c.original) s += ` for ${c.original.src}→${c.original.dst} next ${c.original.nextHeader}`;
  if (c.ra) {
    const r = c.ra;
    s += ` lifetime ${r.routerLifetime}${r.flags & 0x80 ? " M" : ""}${r.flags & 0x40 ? " O" : ""}`;
    if (r.prefixes.length) s += ` prefix ${r.prefixes.join(",")}`;
    if (r.mtu !== undefined) s += ` mtu ${r.mtu}`;
    if (r.rdnss.length) s += ` rdnss ${r.rdnss.join(",")}`;
    if (r.dnssl.length) s += ` dnssl ${r.dnssl.join(",")}`;
    if (r.badOptions) s += " bad-options";
  }
  return c.checksumOk === false ? `${s} bad-checksum` : s;
}
