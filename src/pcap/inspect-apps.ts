/**
 * `pcap inspect`, the application layers: DHCP (RFC 2131 §2, options of RFC 2132) on UDP ports
 * 67/68 and DNS (RFC 1035 §4.1, decoded by `dns-packet`) on port 53, decoded from a borrowed
 * payload into plain JSON-able layers, and their part of a text line. `inspect.ts` calls these
 * once the transport layer below has been decoded; nothing here throws, whatever the bytes.
 *
 * Also the small text helpers both files use (hex numbers and bytes, wire strings made safe
 * for a text line).
 */

import dnsPacket from "dns-packet";
import { formatIpv4, formatMac } from "../common/addr.js";
import { getU16, getU32 } from "../common/bytes.js";
import { WireError } from "../common/wire-error.js";
import { decodeDomainSearch, DhcpMessageType, DhcpOption, messageType, parseDhcp, readIpList } from "../dhcp/wire.js";

/** Why a layer could not be decoded. */
export interface LayerError {
  layer: string;
  reason: string;
}

/** A number as "0x" and `width` hex digits. */
export const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, "0")}`;

/** Bytes as lowercase hex, no separators. */
export function bytesHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16);
  return s;
}

/** Strings from the wire in a text line: control characters, quotes and backslashes escaped. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return /[\x00-\x20\x7f-\x9f"\\]/.test(s) || s === "" ? JSON.stringify(s) : s;
}

export type DhcpOptionValue = string | number | string[] | number[];

export interface DhcpOptionField {
  code: number;
  name?: string;
  /** Decoded for known options (addresses, numbers, strings, domain list); hex otherwise. */
  value: DhcpOptionValue;
}

export interface DhcpLayer {
  /** 1 BOOTREQUEST, 2 BOOTREPLY. */
  op: number;
  xid: number;
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: string;
  /** Option 53 by name ("DISCOVER", ...), null for plain BOOTP. */
  messageType: string | null;
  options: DhcpOptionField[];
}

export interface DnsRecordField {
  name: string;
  type: string;
  class?: string;
  ttl?: number;
  /** Record data with byte strings as hex; for OPT the EDNS fields. */
  data?: unknown;
}

export interface DnsLayer {
  id: number;
  /** True for a response. */
  qr: boolean;
  opcode: string;
  rcode: string;
  flags: { aa: boolean; tc: boolean; rd: boolean; ra: boolean; ad: boolean; cd: boolean };
  questions: Array<{ name: string; type: string; class?: string }>;
  answers: DnsRecordField[];
  authorities: DnsRecordField[];
  additionals: DnsRecordField[];
}

// ---- DHCP (RFC 2131, RFC 2132) ----

const DHCP_MESSAGE_TYPE_NAMES: Record<number, string> = {
  [DhcpMessageType.Discover]: "DISCOVER",
  [DhcpMessageType.Offer]: "OFFER",
  [DhcpMessageType.Request]: "REQUEST",
  [DhcpMessageType.Decline]: "DECLINE",
  [DhcpMessageType.Ack]: "ACK",
  [DhcpMessageType.Nak]: "NAK",
  [DhcpMessageType.Release]: "RELEASE",
  [DhcpMessageType.Inform]: "INFORM",
  9: "FORCERENEW", // RFC 3203
  10: "LEASEQUERY", // RFC 4388 §6.1
  11: "LEASEUNASSIGNED",
  12: "LEASEUNKNOWN",
  13: "LEASEACTIVE",
};

export function dhcpMessageTypeName(t: number): string {
  return DHCP_MESSAGE_TYPE_NAMES[t] ?? `TYPE${t}`;
}

/** How an option's value is shown. */
type OptionKind = "ip" | "ips" | "u32" | "i32" | "u16" | "u8" | "text" | "codes" | "messageType" | "domains" | "hex";

/** Known options: name and value kind (RFC 2132 sections noted; RFC 3397 for 119). */
const DHCP_OPTIONS: Record<number, [string, OptionKind]> = {
  [DhcpOption.SubnetMask]: ["subnetMask", "ip"], // §3.3
  2: ["timeOffset", "i32"], // §3.4
  [DhcpOption.Router]: ["router", "ips"], // §3.5
  4: ["timeServers", "ips"], // §3.6
  [DhcpOption.DnsServers]: ["dnsServers", "ips"], // §3.8
  [DhcpOption.HostName]: ["hostName", "text"], // §3.14
  [DhcpOption.DomainName]: ["domainName", "text"], // §3.17
  23: ["defaultTtl", "u8"], // §4.5
  [DhcpOption.InterfaceMtu]: ["interfaceMtu", "u16"], // §5.1
  [DhcpOption.BroadcastAddress]: ["broadcastAddress", "ip"], // §5.3
  42: ["ntpServers", "ips"], // §8.3
  [DhcpOption.RequestedIp]: ["requestedIp", "ip"], // §9.1
  [DhcpOption.LeaseTime]: ["leaseTime", "u32"], // §9.2
  [DhcpOption.Overload]: ["overload", "u8"], // §9.3
  [DhcpOption.MessageType]: ["messageType", "messageType"], // §9.6
  [DhcpOption.ServerId]: ["serverId", "ip"], // §9.7
  [DhcpOption.ParameterList]: ["parameterList", "codes"], // §9.8
  [DhcpOption.Message]: ["message", "text"], // §9.9
  [DhcpOption.MaxMessageSize]: ["maxMessageSize", "u16"], // §9.10
  [DhcpOption.RenewalTime]: ["renewalTime", "u32"], // §9.11
  [DhcpOption.RebindingTime]: ["rebindingTime", "u32"], // §9.12
  60: ["vendorClass", "text"], // §9.13
  [DhcpOption.ClientId]: ["clientId", "hex"], // §9.14
  66: ["tftpServer", "text"], // §9.4
  67: ["bootFile", "text"], // §9.5
  81: ["clientFqdn", "hex"], // RFC 4702
  [DhcpOption.DomainSearch]: ["domainSearch", "domains"], // RFC 3397
  121: ["classlessRoutes", "hex"], // RFC 3442
};

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

/** The value of one option, decoded by kind; hex when its length does not fit the kind. */
function dhcpOptionValue(kind: OptionKind, data: Uint8Array): DhcpOptionValue {
  const n = data.length;
  switch (kind) {
    case "ip":
      if (n === 4) return formatIpv4(getU32(data, 0));
      break;
    case "ips":
      if (n > 0 && n % 4 === 0) return readIpList(data).map(formatIpv4);
      break;
    case "u32":
      if (n === 4) return getU32(data, 0);
      break;
    case "i32":
      if (n === 4) return getU32(data, 0) | 0;
      break;
    case "u16":
      if (n === 2) return getU16(data, 0);
      break;
    case "u8":
      if (n === 1) return data[0];
      break;
    case "text":
      return latin1(data);
    case "codes":
      return Array.from(data);
    case "messageType":
      if (n === 1) return dhcpMessageTypeName(data[0]);
      break;
    case "domains": {
      const names = decodeDomainSearch(data);
      if (!(names instanceof WireError)) return names;
      break;
    }
    case "hex":
      break;
  }
  return bytesHex(data);
}

/** Decode a DHCP/BOOTP message (a UDP payload). */
export function decodeDhcpLayer(bytes: Uint8Array): DhcpLayer | WireError {
  const m = parseDhcp(bytes);
  if (m instanceof WireError) return m;
  const mt = messageType(m);
  return {
    op: m.op,
    xid: m.xid,
    ciaddr: formatIpv4(m.ciaddr),
    yiaddr: formatIpv4(m.yiaddr),
    siaddr: formatIpv4(m.siaddr),
    giaddr: formatIpv4(m.giaddr),
    chaddr: formatMac(m.chaddr),
    messageType: mt === undefined ? null : dhcpMessageTypeName(mt),
    options: m.options.map(({ code, data }) => {
      const known = DHCP_OPTIONS[code];
      if (!known) return { code, value: bytesHex(data) };
      return { code, name: known[0], value: dhcpOptionValue(known[1], data) };
    }),
  };
}

// ---- DNS (RFC 1035 §4.1, through dns-packet) ----

/** dns-packet's values as plain JSON: byte strings become hex. */
function plain(v: unknown, depth = 0): unknown {
  if (v instanceof Uint8Array) return bytesHex(v);
  if (depth > 8 || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map((x) => plain(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = plain(x, depth + 1);
  return out;
}

function dnsRecord(r: dnsPacket.Answer): DnsRecordField {
  if (r.type === "OPT") {
    // RFC 6891 §6.1.2: the OPT pseudo-record's class and TTL carry EDNS fields.
    return {
      name: r.name,
      type: r.type,
      data: plain({ udpPayloadSize: r.udpPayloadSize, extendedRcode: r.extendedRcode, ednsVersion: r.ednsVersion, flags: r.flags, options: r.options }),
    };
  }
  const out: DnsRecordField = { name: r.name, type: r.type };
  if (r.class !== undefined) out.class = r.class;
  if (r.ttl !== undefined) out.ttl = r.ttl;
  if ("data" in r && r.data !== undefined) out.data = plain(r.data);
  return out;
}

/** Decode a DNS message (a UDP payload, or the message after TCP's 2-byte length). */
export function decodeDnsLayer(bytes: Uint8Array): DnsLayer | LayerError {
  let p: dnsPacket.DecodedPacket & { opcode?: string; rcode?: string };
  try {
    p = dnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    return { layer: "dns", reason: e instanceof Error ? e.message : String(e) };
  }
  return {
    id: p.id ?? 0,
    qr: p.flag_qr,
    opcode: p.opcode ?? "",
    rcode: p.rcode ?? "",
    flags: { aa: p.flag_aa, tc: p.flag_tc, rd: p.flag_rd, ra: p.flag_ra, ad: p.flag_ad, cd: p.flag_cd },
    questions: (p.questions ?? []).map((q) => (q.class === undefined ? { name: q.name, type: q.type } : { name: q.name, type: q.type, class: q.class })),
    answers: (p.answers ?? []).map(dnsRecord),
    authorities: (p.authorities ?? []).map(dnsRecord),
    additionals: (p.additionals ?? []).map(dnsRecord),
  };
}

function dhcpValueText(v: DhcpOptionValue): string {
  if (Array.isArray(v)) return v.map((x) => (typeof x === "string" ? printable(x) : String(x))).join(",");
  return typeof v === "string" ? printable(v) : String(v);
}

/** The DHCP part of a text line. */
export function dhcpText(m: DhcpLayer): string {
  let s = `dhcp ${m.messageType ?? (m.op === 1 ? "BOOTREQUEST" : m.op === 2 ? "BOOTREPLY" : `op ${m.op}`)} xid ${hex(m.xid, 8)} chaddr ${m.chaddr}`;
  if (m.ciaddr !== "0.0.0.0") s += ` ciaddr ${m.ciaddr}`;
  if (m.yiaddr !== "0.0.0.0") s += ` yiaddr ${m.yiaddr}`;
  if (m.siaddr !== "0.0.0.0") s += ` siaddr ${m.siaddr}`;
  if (m.giaddr !== "0.0.0.0") s += ` giaddr ${m.giaddr}`;
  for (const o of m.options) {
    if (o.code === DhcpOption.MessageType) continue;
    s += ` ${o.name ?? `opt${o.code}`}=${dhcpValueText(o.value)}`;
  }
  return s;
}

function dnsRecordText(r: DnsRecordField): string {
  if (r.type === "OPT") return "OPT";
  const data = typeof r.data === "string" ? ` ${printable(r.data)}` : "";
  return `${r.type} ${printable(r.name)}${data}`;
}

/** The DNS part of a text line. */
export function dnsText(m: DnsLayer): string {
  let s = `dns ${m.qr ? "response" : "query"} ${hex(m.id, 4)}`;
  if (m.opcode !== "QUERY") s += ` ${m.opcode}`;
  if (m.qr) s += ` ${m.rcode}`;
  for (const q of m.questions) s += ` ${q.type} ${printable(q.name)}`;
  if (m.answers.length > 0) s += ` → ${m.answers.map(dnsRecordText).join(", ")}`;
  if (m.authorities.length > 0) s += ` auth ${m.authorities.map(dnsRecordText).join(", ")}`;
  if (m.additionals.length > 0) s += ` add ${m.additionals.map(dnsRecordText).join(", ")}`;
  return s;
}

