/**
 * DHCPv6 message codec for stateless configuration (RFC 8415; the DNS options of RFC 3646):
 * what a gateway needs to answer an INFORMATION-REQUEST with DNS servers and a domain search
 * list (RFC 8415 §6.1 "Stateless DHCP", §18.2.6, §18.3.6), and to read the messages a guest's
 * client sends. UDP framing (ports 546/547, multicast ff02::1:2) is the caller's.
 *
 * Layout (RFC 8415 §8): msg-type (1), transaction-id (3), options; each option (§21.1) is
 * option-code (2), option-len (2), option-data. Relay-agent messages (§9, RELAY-FORW and
 * RELAY-REPL) have another layout and are refused ("relay message"): skiff is the only server on
 * its link and no relay sits between it and a guest.
 *
 * Options decoded by name: Client and Server Identifier (§21.2, §21.3: a DUID, kept as bytes),
 * Option Request (§21.7), Elapsed Time (§21.9), Status Code (§21.13), Rapid Commit (§21.14),
 * DNS Recursive Name Server (23, RFC 3646 §3), Domain Search List (24, RFC 3646 §4, names as in
 * RFC 8415 §10) and Information Refresh Time (§21.23). Anything else is kept raw ("other").
 * `parseDhcpv6` never throws; `emitDhcpv6` writes into a caller's buffer.
 */

import { getU16, getU32, setMac, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { Ipv6Addr, ipv6Equal, readIpv6Addr, writeIpv6Addr } from "./addr.js";
import { domainNamesLen, readDomainNames, writeDomainNames } from "./dns-names.js";

export const DHCPV6_CLIENT_PORT = 546;
export const DHCPV6_SERVER_PORT = 547;
/** All_DHCP_Relay_Agents_and_Servers, ff02::1:2 (RFC 8415 §7.1). */
export const ALL_DHCP_RELAY_AGENTS_AND_SERVERS = new Ipv6Addr(0xff020000, 0, 0, 0x00010002);
export const DHCPV6_HEADER_LEN = 4;

/** Message types (RFC 8415 §7.3). */
export const Dhcpv6MsgType = {
  Solicit: 1,
  Advertise: 2,
  Request: 3,
  Confirm: 4,
  Renew: 5,
  Rebind: 6,
  Reply: 7,
  Release: 8,
  Decline: 9,
  Reconfigure: 10,
  InformationRequest: 11,
  RelayForw: 12,
  RelayRepl: 13,
} as const;

/** Option codes (RFC 8415 §21; 23 and 24 RFC 3646). */
export const Dhcpv6OptionCode = {
  ClientId: 1,
  ServerId: 2,
  IaNa: 3,
  IaTa: 4,
  Oro: 6,
  ElapsedTime: 8,
  StatusCode: 13,
  RapidCommit: 14,
  DnsServers: 23,
  DomainList: 24,
  IaPd: 25,
  InformationRefreshTime: 32,
} as const;

/** Largest DUID: 130 bytes including its 2-byte type (RFC 8415 §11.1). */
const MAX_DUID_LEN = 130;

export type Dhcpv6Option =
  | { type: "client-id" | "server-id"; duid: Uint8Array }
  | { type: "oro"; requested: number[] }
  | { type: "elapsed-time"; centiseconds: number }
  | { type: "status"; status: number; message: string }
  | { type: "rapid-commit" }
  | { type: "dns-servers"; servers: Ipv6Addr[] }
  | { type: "domain-list"; domains: string[] }
  | { type: "information-refresh-time"; seconds: number }
  | { type: "other"; code: number; data: Uint8Array };

export interface Dhcpv6Message {
  msgType: number;
  /** 24-bit transaction id. */
  transactionId: number;
  options: Dhcpv6Option[];
}

/** DUID-LL of an Ethernet address (RFC 8415 §11.4: type 3, hardware type 1, the 6 bytes). */
export function duidLl(mac: number): Uint8Array {
  const d = new Uint8Array(10);
  setU16(d, 0, 3);
  setU16(d, 2, 1);
  setMac(d, 4, mac);
  return d;
}

const fail = (reason: string) => new WireError("dhcpv6", reason);

/** Decode one option's data `b[d, end)`; undefined when its data is malformed for its code. */
function decodeOption(code: number, b: Uint8Array, d: number, end: number): Dhcpv6Option | undefined {
  const len = end - d;
  switch (code) {
    case Dhcpv6OptionCode.ClientId:
    case Dhcpv6OptionCode.ServerId:
      if (len < 2 || len > MAX_DUID_LEN) return undefined;
      return { type: code === 1 ? "client-id" : "server-id", duid: b.subarray(d, end) };
    case Dhcpv6OptionCode.Oro: {
      if (len % 2 !== 0) return undefined;
      const requested: number[] = [];
      for (let i = d; i < end; i += 2) requested.push(getU16(b, i));
      return { type: "oro", requested };
    }
    case Dhcpv6OptionCode.ElapsedTime:
      return len === 2 ? { type: "elapsed-time", centiseconds: getU16(b, d) } : undefined;
    case Dhcpv6OptionCode.StatusCode: {
      if (len < 2) return undefined;
      const message = Buffer.from(b.buffer, b.byteOffset + d + 2, len - 2).toString("utf8");
      return { type: "status", status: getU16(b, d), message };
    }
    case Dhcpv6OptionCode.RapidCommit:
      return len === 0 ? { type: "rapid-commit" } : undefined;
    case Dhcpv6OptionCode.DnsServers: {
      if (len % 16 !== 0) return undefined;
      const servers: Ipv6Addr[] = [];
      for (let i = d; i < end; i += 16) servers.push(readIpv6Addr(b, i));
      return { type: "dns-servers", servers };
    }
    case Dhcpv6OptionCode.DomainList: {
      const domains = readDomainNames(b, d, end, false);
      return domains === undefined ? undefined : { type: "domain-list", domains };
    }
    case Dhcpv6OptionCode.InformationRefreshTime:
      return len === 4 ? { type: "information-refresh-time", seconds: getU32(b, d) } : undefined;
    default:
      return { type: "other", code, data: b.subarray(d, end) };
  }
}

/**
 * Parse one DHCPv6 message (the UDP payload). Reasons (layer "dhcpv6"): "truncated" (under 4
 * bytes), "relay message" (§9 formats are not handled), "bad option length" (an option past
 * the end), "bad option N" (data malformed for option code N: a DUID of 0 or over 130 bytes, an
 * odd ORO, a wrong fixed length, a DNS server list not a multiple of 16, a bad domain list).
 * Borrowed: DUIDs and raw option data are views into `bytes`.
 */
export function parseDhcpv6(bytes: Uint8Array): Parsed<Dhcpv6Message> {
  const n = bytes.length;
  if (n < DHCPV6_HEADER_LEN) return fail("truncated");
  const msgType = bytes[0];
  if (msgType === Dhcpv6MsgType.RelayForw || msgType === Dhcpv6MsgType.RelayRepl) return fail("relay message");
  const options: Dhcpv6Option[] = [];
  for (let i = DHCPV6_HEADER_LEN; i < n; ) {
    if (i + 4 > n) return fail("bad option length");
    const code = getU16(bytes, i);
    const end = i + 4 + getU16(bytes, i + 2);
    if (end > n) return fail("bad option length");
    const o = decodeOption(code, bytes, i + 4, end);
    if (o === undefined) return fail(`bad option ${code}`);
    options.push(o);
    i = end;
  }
  return { msgType, transactionId: getU32(bytes, 0) & 0xffffff, options };
}

/** Data length of `o` on the wire. */
function optionDataLen(o: Dhcpv6Option): number {
  switch (o.type) {
    case "client-id":
    case "server-id":
      return o.duid.length;
    case "oro":
      return 2 * o.requested.length;
    case "elapsed-time":
      return 2;
    case "status":
      return 2 + Buffer.byteLength(o.message, "utf8");
    case "rapid-commit":
      return 0;
    case "dns-servers":
      return 16 * o.servers.length;
    case "domain-list":
      return domainNamesLen(o.domains);
    case "information-refresh-time":
      return 4;
    default:
      return o.data.length;
  }
}

/** Whole message length: header and options. */
export function dhcpv6Len(m: Dhcpv6Message): number {
  let n = DHCPV6_HEADER_LEN;
  for (const o of m.options) n += 4 + optionDataLen(o);
  return n;
}

const CODES: Record<Exclude<Dhcpv6Option["type"], "other">, number> = {
  "client-id": Dhcpv6OptionCode.ClientId,
  "server-id": Dhcpv6OptionCode.ServerId,
  oro: Dhcpv6OptionCode.Oro,
  "elapsed-time": Dhcpv6OptionCode.ElapsedTime,
  status: Dhcpv6OptionCode.StatusCode,
  "rapid-commit": Dhcpv6OptionCode.RapidCommit,
  "dns-servers": Dhcpv6OptionCode.DnsServers,
  "domain-list": Dhcpv6OptionCode.DomainList,
  "information-refresh-time": Dhcpv6OptionCode.InformationRefreshTime,
};

/**
 * Write the message at `buf[off]`, options in order. Returns its length. Throws RangeError (a
 * programmer error) for an option over 65535 bytes, a DUID outside 2..130 bytes, a bad domain
 * name, or a transaction id over 24 bits.
 */
export function emitDhcpv6(m: Dhcpv6Message, buf: Uint8Array, off = 0): number {
  if (!(m.transactionId >= 0 && m.transactionId <= 0xffffff)) throw new RangeError(`dhcpv6: transaction id ${m.transactionId} is not 24 bits`);
  setU32(buf, off, ((m.msgType << 24) | m.transactionId) >>> 0);
  let at = off + DHCPV6_HEADER_LEN;
  for (const o of m.options) {
    const len = optionDataLen(o);
    if (len > 0xffff) throw new RangeError(`dhcpv6: option of ${len} bytes exceeds 65535`);
    setU16(buf, at, o.type === "other" ? o.code : CODES[o.type]);
    setU16(buf, at + 2, len);
    const d = at + 4;
    switch (o.type) {
      case "client-id":
      case "server-id":
        if (len < 2 || len > MAX_DUID_LEN) throw new RangeError(`dhcpv6: DUID of ${len} bytes (2..130)`);
        buf.set(o.duid, d);
        break;
      case "oro":
        o.requested.forEach((c, k) => setU16(buf, d + 2 * k, c));
        break;
      case "elapsed-time":
        setU16(buf, d, o.centiseconds);
        break;
      case "status":
        setU16(buf, d, o.status);
        buf.set(Buffer.from(o.message, "utf8"), d + 2);
        break;
      case "rapid-commit":
        break;
      case "dns-servers":
        o.servers.forEach((s, k) => writeIpv6Addr(buf, d + 16 * k, s));
        break;
      case "domain-list":
        writeDomainNames(o.domains, buf, d);
        break;
      case "information-refresh-time":
        setU32(buf, d, o.seconds);
        break;
      default:
        buf.set(o.data, d);
        break;
    }
    at = d + len;
  }
  return at - off;
}

/** The first option of `type` in `m`, or undefined. */
export function findDhcpv6Option<T extends Dhcpv6Option["type"]>(m: Dhcpv6Message, type: T): Extract<Dhcpv6Option, { type: T }> | undefined {
  for (const o of m.options) if (o.type === type) return o as Extract<Dhcpv6Option, { type: T }>;
  return undefined;
}

/**
 * Should a server with DUID `serverDuid` answer this INFORMATION-REQUEST? RFC 8415 §16.12:
 * discard it when it carries a Server Identifier that is not ours, or any IA option (IA_NA,
 * IA_TA, IA_PD). Returns the reason to discard, or undefined to answer.
 */
export function informationRequestRefusal(m: Dhcpv6Message, serverDuid: Uint8Array): string | undefined {
  if (m.msgType !== Dhcpv6MsgType.InformationRequest) return "not an information-request";
  for (const o of m.options) {
    if (o.type === "server-id" && Buffer.compare(o.duid, serverDuid) !== 0) return "another server's identifier";
    if (o.type === "other" && (o.code === Dhcpv6OptionCode.IaNa || o.code === Dhcpv6OptionCode.IaTa || o.code === Dhcpv6OptionCode.IaPd)) {
      return "IA option in an information-request";
    }
  }
  return undefined;
}

/** True when `a` is the DHCPv6 servers' multicast address ff02::1:2. */
export function isAllDhcpServers(a: Ipv6Addr): boolean {
  return ipv6Equal(a, ALL_DHCP_RELAY_AGENTS_AND_SERVERS);
}
