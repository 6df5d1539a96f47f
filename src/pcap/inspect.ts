/**
 * `pcap inspect`: decode one captured Ethernet frame into named layers, and format the result
 * as one text line or one JSON object. This file holds the link, network and transport layers
 * and the line format; the application layers (DHCP, DNS) are in `inspect-apps.ts`.
 *
 * Layers, in decode order: eth (IEEE 802.3 with EtherType, one 802.1Q tag), arp (RFC 826),
 * ipv4 (RFC 791 §3.1) or ipv6 (RFC 8200 §3-§4, with icmpv6: inspect-ipv6.ts), then icmp
 * (RFC 792), udp (RFC 768) or tcp (RFC 9293 §3.1), then on top
 * of UDP ports 67/68 dhcp (RFC 2131 §2, RFC 2132) and on UDP or TCP port 53 dns (RFC 1035 §4.1,
 * decoded by `dns-packet`; over TCP the message follows a 2-byte length, RFC 1035 §4.2.2).
 * Every codec is called with checksum verification off; checksums are reported as fields
 * instead (`headerChecksumOk`, `checksumOk`).
 *
 * Rules:
 *  - A layer that fails to decode becomes `error: {layer, reason}` after the layers that did;
 *    decoding stops there. Nothing here throws, whatever the bytes.
 *  - An EtherType or IP protocol that is not decoded ends the frame cleanly: the number is in
 *    the last layer (`eth.type`, `ipv4.protocol`).
 *  - Checksums are judged only on complete, unfragmented datagrams. When the IPv4 datagram is
 *    cut short (capture snapshot length, or Total Length beyond the frame) or is a first
 *    fragment, the transport header is decoded from the bytes present with `checksumOk: null`
 *    and nothing above it is decoded; a later fragment (offset > 0) has no transport header,
 *    so decoding ends after ipv4 (RFC 791 §3.2).
 *  - A TCP or UDP checksum that fails but holds exactly the pseudo-header sum is a partial
 *    checksum left for the link to complete (checksum offload, as tcpdump on a TAP or veth
 *    with offloads records it): `checksumOk: false` with `checksumPartial: true`, shown as
 *    "partial-checksum(offload)" rather than "bad-checksum". skiff's own captures hold
 *    completed checksums (src/pcap/l4-checksum.ts); this is for captures taken elsewhere.
 *
 * Not a hot path: one object and a few strings per frame are fine here.
 */

import { formatIpv4, formatMac } from "../common/addr.js";
import { getU16 } from "../common/bytes.js";
import { checksumFinish, onesSum, pseudoHeaderSum } from "../ipv4/checksum.js";
import { decodeIcmpv6Layer, decodeIpv6Layer, icmpv6Text, ipv6Text, pseudoSum6, type Icmpv6Layer, type Ipv6Layer } from "./inspect-ipv6.js";
import { WireError } from "../common/wire-error.js";
import { ArpOp, parseArp } from "../ethernet/arp.js";
import { EtherType, parseEthernet } from "../ethernet/ethernet.js";
import { IcmpPacket, IcmpType, parseIcmp } from "../ipv4/icmp.js";
import { IpProtocol, Ipv4Packet, isFragment, parseIpv4 } from "../ipv4/ipv4.js";
import { UDP_HEADER_LEN, UdpPacket, parseUdp } from "../ipv4/udp.js";
import { describeTcpOptions, parseTcp, TcpFlag, TcpSegment, type TcpOptions } from "../tcp/wire.js";
import {
  decodeDhcpLayer,
  decodeDnsLayer,
  dhcpText,
  dnsText,
  hex,
  printable,
  type DhcpLayer,
  type DnsLayer,
  type LayerError,
} from "./inspect-apps.js";
import { packetTimeNs, type PcapPacket } from "./reader.js";

export { dhcpMessageTypeName } from "./inspect-apps.js";
export type { Icmpv6Layer, Ipv6Layer } from "./inspect-ipv6.js";
export type { DhcpLayer, DhcpOptionField, DhcpOptionValue, DnsLayer, DnsRecordField, LayerError } from "./inspect-apps.js";

export interface EthLayer {
  src: string;
  dst: string;
  /** EtherType of the payload (after any 802.1Q tag) as "0x0800". */
  type: string;
  vlan?: { id: number; pcp: number; dei: boolean };
}

export interface ArpLayer {
  /** ar$op: 1 request, 2 reply (RFC 826). */
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
}

export interface Ipv4Layer {
  src: string;
  dst: string;
  protocol: number;
  ttl: number;
  id: number;
  tos: number;
  df: boolean;
  mf: boolean;
  /** In bytes. */
  fragmentOffset: number;
  totalLength: number;
  headerLength: number;
  headerChecksumOk: boolean;
  /** Present (true) when the frame ends before Total Length. */
  truncated?: true;
}

export interface IcmpLayer {
  type: number;
  code: number;
  /** Echo identifier and sequence number (types 0 and 8). */
  id?: number;
  seq?: number;
  /** Next-hop MTU of "fragmentation needed" (RFC 1191 §4). */
  nextHopMtu?: number;
  /** The quoted datagram of an error message (RFC 792), when its header is readable. */
  original?: { src: string; dst: string; protocol: number };
  checksumOk: boolean | null;
}

export interface UdpLayer {
  srcPort: number;
  dstPort: number;
  /** The Length field (header and data). */
  length: number;
  /** null: no checksum sent (field 0), or the datagram is incomplete or a fragment. */
  checksumOk: boolean | null;
  /** Present when the failing checksum is the pseudo-header sum only (offload; see the file comment). */
  checksumPartial?: true;
}

export interface TcpLayer {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Control bits by name, low bit first, e.g. "SYN,ACK"; "" when none is set. */
  flags: string;
  flagsValue: number;
  window: number;
  /** Header length in bytes. */
  dataOffset: number;
  urgentPointer: number;
  options: TcpOptions;
  /** null when the datagram is incomplete or a fragment. */
  checksumOk: boolean | null;
  /** Present when the failing checksum is the pseudo-header sum only (offload; see the file comment). */
  checksumPartial?: true;
  /** Payload bytes the IPv4 datagram says the segment carries, bounded by the frame's length on the wire. */
  payloadLength: number;
}

export interface FrameLayers {
  eth?: EthLayer;
  arp?: ArpLayer;
  ipv4?: Ipv4Layer;
  ipv6?: Ipv6Layer;
  icmp?: IcmpLayer;
  icmpv6?: Icmpv6Layer;
  udp?: UdpLayer;
  tcp?: TcpLayer;
  dhcp?: DhcpLayer;
  dns?: DnsLayer;
}

/** What one frame decodes to: the layers in decode order, then the failure if any. */
export interface DecodedFrame {
  layers: FrameLayers;
  error?: LayerError;
}

/** One frame of a capture as `pcap inspect --json` prints it. */
export interface InspectedFrame {
  /** 1-based position in the file. */
  frame: number;
  /** Epoch seconds with 9 decimals (ns files) or 6 (µs files). */
  time: string;
  /** Length on the wire. */
  length: number;
  capturedLength: number;
  layers: FrameLayers;
  error?: LayerError;
}

function fail(d: DecodedFrame, e: WireError | LayerError): DecodedFrame {
  d.error = { layer: e.layer, reason: e.reason };
  return d;
}

/**
 * Decode one Ethernet frame (the captured bytes, without FCS). `wireLen` is the frame's length
 * on the wire (pcap "Original Packet Length", without FCS), at least `frame.length`. Never throws.
 */
export function decodeFrame(frame: Uint8Array, wireLen = frame.length): DecodedFrame {
  const d: DecodedFrame = { layers: {} };
  const eth = parseEthernet(frame);
  if (eth instanceof WireError) return fail(d, eth);
  const ethLayer: EthLayer = { src: formatMac(eth.src), dst: formatMac(eth.dst), type: hex(eth.ethertype, 4) };
  if (eth.vlan) ethLayer.vlan = { id: eth.vlan.id, pcp: eth.vlan.pcp, dei: eth.vlan.dei };
  d.layers.eth = ethLayer;
  const ethLen = eth.vlan ? 18 : 14;
  const payload = frame.subarray(ethLen);
  switch (eth.ethertype) {
    case EtherType.ARP:
      return decodeArp(payload, d);
    case EtherType.IPv4:
      return decodeIpv4(payload, Math.max(payload.length, wireLen - ethLen), d);
    case EtherType.IPv6:
      return decodeIpv6(payload, Math.max(payload.length, wireLen - ethLen), d);
    default:
      return d;
  }
}

/** RFC 8200: the fixed header and extension headers, then ICMPv6, UDP or TCP. */
function decodeIpv6(bytes: Uint8Array, wireLen: number, d: DecodedFrame): DecodedFrame {
  const v6 = decodeIpv6Layer(bytes, wireLen);
  if (v6 instanceof WireError) return fail(d, v6);
  d.layers.ipv6 = v6.layer;
  if (v6.laterFragment) return d;
  const { src, dst } = v6;
  const ctx: L4Context = { pseudo: (proto, len) => pseudoSum6(src, dst, proto, len), v6: true, whole: v6.whole, payloadLength: v6.l4Length };
  switch (v6.layer.nextHeader) {
    case 58: {
      const c = decodeIcmpv6Layer(v6.l4, v6);
      if ("reason" in c) return fail(d, c);
      d.layers.icmpv6 = c;
      return d;
    }
    case IpProtocol.UDP:
      return decodeUdp(v6.l4, ctx, d);
    case IpProtocol.TCP:
      return decodeTcp(v6.l4, ctx, d);
    default:
      return d;
  }
}

function decodeArp(bytes: Uint8Array, d: DecodedFrame): DecodedFrame {
  const arp = parseArp(bytes);
  if (arp instanceof WireError) return fail(d, arp);
  d.layers.arp = {
    op: arp.op,
    senderMac: formatMac(arp.senderMac),
    senderIp: formatIpv4(arp.senderIp),
    targetMac: formatMac(arp.targetMac),
    targetIp: formatIpv4(arp.targetIp),
  };
  return d;
}

/** `wireLen`: bytes of the datagram's frame on the wire after the Ethernet header. */
function decodeIpv4(bytes: Uint8Array, wireLen: number, d: DecodedFrame): DecodedFrame {
  // RFC 791 §3.1. allowTruncated: a frame cut before Total Length still has a readable header.
  const ip = parseIpv4(bytes, { verifyChecksum: false, allowTruncated: true });
  if (ip instanceof WireError) return fail(d, ip);
  const view = new Ipv4Packet(bytes);
  const hl = view.headerLen;
  const tl = view.totalLength;
  const layer: Ipv4Layer = {
    src: formatIpv4(ip.src),
    dst: formatIpv4(ip.dst),
    protocol: ip.protocol,
    ttl: ip.ttl,
    id: ip.id,
    tos: ip.tos,
    df: ip.df,
    mf: ip.mf,
    fragmentOffset: ip.fragmentOffset,
    totalLength: tl,
    headerLength: hl,
    headerChecksumOk: view.checksumOk(),
  };
  const present = tl <= bytes.length;
  if (!present) layer.truncated = true;
  d.layers.ipv4 = layer;
  // RFC 791 §3.2: only the first fragment (offset 0) carries the transport header.
  if (ip.fragmentOffset !== 0) return d;
  const whole = present && !isFragment(ip);
  const l4 = bytes.subarray(hl, Math.min(tl, bytes.length));
  // The payload is what Total Length claims, but never more than the frame carried on the
  // wire (a frame shorter than its claim); a snapshot length cut keeps the claim, as tshark does.
  const ctx: L4Context = { pseudo: (proto, len) => pseudoHeaderSum(ip.src, ip.dst, proto, len), v6: false, whole, payloadLength: Math.min(tl, wireLen) - hl };
  switch (ip.protocol) {
    case IpProtocol.ICMP:
      return decodeIcmp(l4, ctx, d);
    case IpProtocol.UDP:
      return decodeUdp(l4, ctx, d);
    case IpProtocol.TCP:
      return decodeTcp(l4, ctx, d);
    default:
      return d;
  }
}

interface L4Context {
  /** The pseudo-header sum (RFC 9293 §3.1 / RFC 8200 §8.1) for `protocol` and `length`. */
  pseudo: (protocol: number, length: number) => number;
  /** Over IPv6: a zero UDP checksum is invalid there (RFC 8200 §8.1), not "none". */
  v6: boolean;
  /** The whole unfragmented datagram is present: checksums can be judged, upper layers decoded. */
  whole: boolean;
  /** Total Length (bounded by the frame's length on the wire) minus the IPv4 header length. */
  payloadLength: number;
}

function decodeIcmp(bytes: Uint8Array, ctx: L4Context, d: DecodedFrame): DecodedFrame {
  const icmp = parseIcmp(bytes, { verifyChecksum: false });
  if (icmp instanceof WireError) return fail(d, icmp);
  const view = new IcmpPacket(bytes);
  const layer: IcmpLayer = { type: view.type, code: view.code, checksumOk: null };
  switch (icmp.kind) {
    case "echo-request":
    case "echo-reply":
      layer.id = icmp.id;
      layer.seq = icmp.seq;
      break;
    case "dest-unreachable":
    case "time-exceeded": {
      if (icmp.kind === "dest-unreachable" && icmp.code === 4) layer.nextHopMtu = icmp.nextHopMtu;
      const orig = parseIpv4(icmp.original, { verifyChecksum: false, allowTruncated: true });
      if (!(orig instanceof WireError)) {
        layer.original = { src: formatIpv4(orig.src), dst: formatIpv4(orig.dst), protocol: orig.protocol };
      }
      break;
    }
    default:
      break;
  }
  layer.checksumOk = ctx.whole ? view.checksumOk() : null;
  d.layers.icmp = layer;
  return d;
}

/** DHCP server and client ports (RFC 2131 §4.1). */
const DHCP_PORTS = new Set([67, 68]);
/** DNS port (RFC 1035 §4.2). */
const DNS_PORT = 53;

function decodeUdp(bytes: Uint8Array, ctx: L4Context, d: DecodedFrame): DecodedFrame {
  let payload: Uint8Array | null = null;
  if (ctx.whole) {
    const udp = parseUdp(bytes, 0, 0, { verifyChecksum: false });
    if (udp instanceof WireError) return fail(d, udp);
    payload = udp.payload;
  } else {
    // Part of the datagram only: the header, if present, is all that can be read.
    if (bytes.length < UDP_HEADER_LEN) return fail(d, new WireError("udp", "truncated"));
    if (getU16(bytes, 4) < UDP_HEADER_LEN) return fail(d, new WireError("udp", "bad length"));
  }
  const view = new UdpPacket(bytes);
  const udpLayer: UdpLayer = {
    srcPort: view.srcPort,
    dstPort: view.dstPort,
    length: view.length,
    checksumOk: !ctx.whole ? null : view.checksum === 0 ? (ctx.v6 ? false : null) : l4ChecksumOk(bytes.subarray(0, view.length), IpProtocol.UDP, ctx),
  };
  if (udpLayer.checksumOk === false && isPartialChecksum(bytes, 6, IpProtocol.UDP, ctx)) udpLayer.checksumPartial = true;
  d.layers.udp = udpLayer;
  if (payload === null || payload.length === 0) return d;
  if (DHCP_PORTS.has(view.srcPort) || DHCP_PORTS.has(view.dstPort)) {
    const dhcp = decodeDhcpLayer(payload);
    if (dhcp instanceof WireError) return fail(d, dhcp);
    d.layers.dhcp = dhcp;
    return d;
  }
  if (view.srcPort === DNS_PORT || view.dstPort === DNS_PORT) return withDns(decodeDnsLayer(payload), d);
  return d;
}

/**
 * The checksum field at `at` of the whole segment `bytes` holds the pseudo-header sum (RFC 9293
 * §3.1, RFC 768), folded and not complemented: what an offloading sender leaves for its link.
 */
function isPartialChecksum(bytes: Uint8Array, at: number, protocol: number, ctx: L4Context): boolean {
  return getU16(bytes, at) === ctx.pseudo(protocol, bytes.length);
}

/** The segment's checksum verifies over the pseudo-header and every byte of it. */
function l4ChecksumOk(bytes: Uint8Array, protocol: number, ctx: L4Context): boolean {
  return checksumFinish(onesSum(bytes, 0, bytes.length, ctx.pseudo(protocol, bytes.length))) === 0;
}

/** Flag names, low bit first (RFC 9293 §3.1; ECE and CWR from RFC 3168 §23.2). */
const TCP_FLAG_NAMES: Array<[number, string]> = [
  [TcpFlag.FIN, "FIN"],
  [TcpFlag.SYN, "SYN"],
  [TcpFlag.RST, "RST"],
  [TcpFlag.PSH, "PSH"],
  [TcpFlag.ACK, "ACK"],
  [TcpFlag.URG, "URG"],
  [TcpFlag.ECE, "ECE"],
  [TcpFlag.CWR, "CWR"],
];

export function tcpFlagNames(flags: number): string {
  const names: string[] = [];
  for (const [bit, name] of TCP_FLAG_NAMES) if (flags & bit) names.push(name);
  return names.join(",");
}

function decodeTcp(bytes: Uint8Array, ctx: L4Context, d: DecodedFrame): DecodedFrame {
  // On a partial datagram parseTcp sees only the bytes present: the header must be there.
  const tcp = parseTcp(bytes, 0, 0, { verifyChecksum: false });
  if (tcp instanceof WireError) return fail(d, tcp);
  const view = new TcpSegment(bytes);
  const hl = view.dataOffset;
  const tcpLayer: TcpLayer = {
    srcPort: tcp.srcPort,
    dstPort: tcp.dstPort,
    seq: tcp.seq,
    ack: tcp.ack,
    flags: tcpFlagNames(tcp.flags),
    flagsValue: tcp.flags,
    window: tcp.window,
    dataOffset: hl,
    urgentPointer: tcp.urgentPointer,
    options: { ...tcp.options },
    checksumOk: ctx.whole ? l4ChecksumOk(bytes, IpProtocol.TCP, ctx) : null,
    payloadLength: Math.max(0, ctx.payloadLength - hl),
  };
  if (tcpLayer.checksumOk === false && isPartialChecksum(bytes, 16, IpProtocol.TCP, ctx)) tcpLayer.checksumPartial = true;
  d.layers.tcp = tcpLayer;
  if (!ctx.whole || (tcp.srcPort !== DNS_PORT && tcp.dstPort !== DNS_PORT)) return d;
  // RFC 1035 §4.2.2: a 2-byte length, then the message; decoded only when it is all here.
  const p = tcp.payload;
  if (p.length < 2) return d;
  const len = getU16(p, 0);
  if (2 + len > p.length) return d;
  return withDns(decodeDnsLayer(p.subarray(2, 2 + len)), d);
}

function withDns(dns: DnsLayer | LayerError, d: DecodedFrame): DecodedFrame {
  if ("reason" in dns) return fail(d, dns);
  d.layers.dns = dns;
  return d;
}

// ---- frames of a capture ----

/** Epoch time of a packet: 9 decimals for nanosecond files, 6 for microsecond files. */
export function formatPacketTime(p: PcapPacket, nanosecond: boolean): string {
  return formatNs(packetTimeNs(p), nanosecond);
}

/** Seconds (possibly negative) from a nanosecond count, with 9 or 6 decimals. */
function formatNs(ns: bigint, nanosecond: boolean): string {
  const sign = ns < 0n ? "-" : "";
  const a = ns < 0n ? -ns : ns;
  const frac = a % 1_000_000_000n;
  const fracText = nanosecond ? frac.toString().padStart(9, "0") : (frac / 1000n).toString().padStart(6, "0");
  return `${sign}${a / 1_000_000_000n}.${fracText}`;
}

/**
 * Decode one packet record. `fcsLen` bytes of frame check sequence at the end of the frame
 * (pcap header P bit) are left out of the decode.
 */
export function inspectPacket(p: PcapPacket, frame: number, nanosecond: boolean, fcsLen = 0): InspectedFrame {
  const bytes = fcsLen > 0 && p.originalLength === p.capturedLength ? p.data.subarray(0, Math.max(0, p.data.length - fcsLen)) : p.data;
  const d = decodeFrame(bytes, Math.max(bytes.length, p.originalLength - fcsLen));
  const out: InspectedFrame = {
    frame,
    time: formatPacketTime(p, nanosecond),
    length: p.originalLength,
    capturedLength: p.capturedLength,
    layers: d.layers,
  };
  if (d.error) out.error = d.error;
  return out;
}

/** One JSON object (one line, no trailing newline). */
export function formatFrameJson(f: InspectedFrame): string {
  return JSON.stringify(f);
}

function ethText(e: EthLayer): string {
  const vlan = e.vlan ? ` vlan ${e.vlan.id}${e.vlan.pcp ? ` pcp ${e.vlan.pcp}` : ""}` : "";
  return `eth ${e.src}→${e.dst}${vlan} ${e.type}`;
}

function arpText(a: ArpLayer): string {
  if (a.op === ArpOp.Request) return `arp request who-has ${a.targetIp} tell ${a.senderIp}`;
  if (a.op === ArpOp.Reply) return `arp reply ${a.senderIp} is-at ${a.senderMac}`;
  return `arp op ${a.op} sender ${a.senderIp} (${a.senderMac}) target ${a.targetIp} (${a.targetMac})`;
}

function ipv4Text(ip: Ipv4Layer): string {
  let s = `ipv4 ${ip.src}→${ip.dst} ttl ${ip.ttl} id ${hex(ip.id, 4)} len ${ip.totalLength}`;
  if (ip.df) s += " DF";
  if (ip.mf || ip.fragmentOffset) s += ` frag ${ip.fragmentOffset}${ip.mf ? "+" : ""}`;
  if (!ip.headerChecksumOk) s += " bad-checksum";
  if (ip.truncated) s += " truncated";
  if (ip.protocol !== IpProtocol.ICMP && ip.protocol !== IpProtocol.UDP && ip.protocol !== IpProtocol.TCP) s += ` proto ${ip.protocol}`;
  return s;
}

function checksumText(ok: boolean | null | undefined, partial?: true): string {
  if (ok !== false) return "";
  return partial ? " partial-checksum(offload)" : " bad-checksum";
}

function icmpText(c: IcmpLayer): string {
  let s: string;
  if (c.type === IcmpType.EchoRequest && c.id !== undefined) s = `icmp echo-request id ${hex(c.id, 4)} seq ${c.seq}`;
  else if (c.type === IcmpType.EchoReply && c.id !== undefined) s = `icmp echo-reply id ${hex(c.id, 4)} seq ${c.seq}`;
  else if (c.type === IcmpType.DestUnreachable) s = `icmp unreachable code ${c.code}`;
  else if (c.type === IcmpType.TimeExceeded) s = `icmp time-exceeded code ${c.code}`;
  else s = `icmp type ${c.type} code ${c.code}`;
  if (c.nextHopMtu !== undefined) s += ` mtu ${c.nextHopMtu}`;
  if (c.original) s += ` for ${c.original.src}→${c.original.dst} proto ${c.original.protocol}`;
  return s + checksumText(c.checksumOk);
}

function udpText(u: UdpLayer): string {
  return `udp ${u.srcPort}→${u.dstPort} len ${u.length}${checksumText(u.checksumOk, u.checksumPartial)}`;
}

function tcpText(t: TcpLayer): string {
  const opts = describeTcpOptions(t.options);
  return (
    `tcp ${t.srcPort}→${t.dstPort} [${t.flags}] seq ${t.seq} ack ${t.ack} win ${t.window} len ${t.payloadLength}` +
    (opts ? ` ${opts}` : "") +
    checksumText(t.checksumOk, t.checksumPartial)
  );
}

/**
 * One text line (no trailing newline): frame number, `relativeNs` (time since the first
 * frame) in seconds, then every layer, " | " between them, and `error layer: reason` last.
 */
export function formatFrameText(f: InspectedFrame, relativeNs: bigint, nanosecond: boolean): string {
  const parts: string[] = [];
  const l = f.layers;
  if (l.eth) parts.push(ethText(l.eth));
  if (l.arp) parts.push(arpText(l.arp));
  if (l.ipv4) parts.push(ipv4Text(l.ipv4));
  if (l.ipv6) parts.push(ipv6Text(l.ipv6));
  if (l.icmp) parts.push(icmpText(l.icmp));
  if (l.icmpv6) parts.push(icmpv6Text(l.icmpv6));
  if (l.udp) parts.push(udpText(l.udp));
  if (l.tcp) parts.push(tcpText(l.tcp));
  if (l.dhcp) parts.push(dhcpText(l.dhcp));
  if (l.dns) parts.push(dnsText(l.dns));
  // Reasons are plain text; only control characters are escaped (JSON escapes, unquoted).
  if (f.error) parts.push(`error ${f.error.layer}: ${JSON.stringify(f.error.reason).slice(1, -1)}`);
  const cut = f.capturedLength < f.length ? ` (${f.capturedLength} of ${f.length} bytes)` : "";
  return `${f.frame} ${formatNs(relativeNs, nanosecond)}${cut} ${parts.join(" | ")}`;
}
