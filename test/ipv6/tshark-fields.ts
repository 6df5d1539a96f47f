/**
 * skiff's reading of one IPv6 packet, as the tshark field names of Wireshark's ipv6, icmpv6,
 * udp and tcp dissectors (tshark 4.0): the expected side of test/ipv6/tshark.test.ts. Each
 * field is a list of strings in tshark's text form, in wire order (an ICMPv6 error's quoted
 * packet adds a second occurrence of the ipv6.* fields, as tshark's nested dissection does).
 */
import { getU16 } from "../../src/common/bytes.js";
import { formatMac } from "../../src/common/addr.js";
import { WireError } from "../../src/common/wire-error.js";
import { formatIpv6 } from "../../src/ipv6/addr.js";
import { walkExtensionHeaders, type ExtChain } from "../../src/ipv6/ext.js";
import { parseIcmpv6 } from "../../src/ipv6/icmpv6.js";
import { Ipv6Packet, parseIpv6, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { parseNdp } from "../../src/ipv6/ndp.js";
import { DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT, parseDhcpv6 } from "../../src/ipv6/dhcpv6.js";
import type { NdpOption } from "../../src/ipv6/ndp-options.js";

export type Fields = Record<string, string[]>;

/** The fields compared; a test fails when one of them is never seen in any frame. */
export const FIELDS = [
  "ipv6.version", "ipv6.tclass", "ipv6.flow", "ipv6.plen", "ipv6.nxt", "ipv6.hlim", "ipv6.src", "ipv6.dst",
  "ipv6.hopopts.nxt", "ipv6.opt.router_alert", "ipv6.dstopts.nxt", "ipv6.routing.type", "ipv6.routing.segleft",
  "ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.ident",
  "icmpv6.type", "icmpv6.code", "icmpv6.checksum", "icmpv6.checksum.status", "icmpv6.echo.identifier",
  "icmpv6.echo.sequence_number", "icmpv6.mtu", "icmpv6.pointer",
  "icmpv6.nd.ns.target_address", "icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.r", "icmpv6.nd.na.flag.s",
  "icmpv6.nd.na.flag.o", "icmpv6.nd.ra.cur_hop_limit", "icmpv6.nd.ra.flag", "icmpv6.nd.ra.router_lifetime",
  "icmpv6.nd.ra.reachable_time", "icmpv6.nd.ra.retrans_timer", "icmpv6.opt.type", "icmpv6.opt.length",
  "icmpv6.opt.linkaddr", "icmpv6.opt.prefix", "icmpv6.opt.prefix.length", "icmpv6.opt.prefix.flag",
  "icmpv6.opt.prefix.valid_lifetime", "icmpv6.opt.prefix.preferred_lifetime", "icmpv6.opt.mtu",
  "icmpv6.opt.rdnss", "icmpv6.opt.rdnss.lifetime", "icmpv6.opt.dnssl", "icmpv6.opt.dnssl.lifetime",
  "udp.srcport", "udp.dstport", "udp.checksum.status", "tcp.srcport", "tcp.dstport", "tcp.checksum.status",
  "dhcpv6.msgtype", "dhcpv6.xid", "dhcpv6.option.type", "dhcpv6.duid.bytes", "dhcpv6.requested_option_code",
  "dhcpv6.elapsed_time", "dhcpv6.dns_server", "dhcpv6.search_list_entry", "dhcpv6.tld", "dhcpv6.status_code", "dhcpv6.status_msg",
] as const;

const hexN = (n: number, width: number) => `0x${n.toString(16).padStart(width, "0")}`;

function add(f: Fields, name: string, v: string | number): void {
  (f[name] ??= []).push(String(v));
}

const OPTION_CODES: Record<Exclude<NdpOption["type"], "other">, number> = {
  "source-lla": 1, "target-lla": 2, prefix: 3, "redirected-header": 4, mtu: 5, rdnss: 25, dnssl: 31,
};

function ndpOptions(f: Fields, options: NdpOption[]): void {
  for (const o of options) {
    add(f, "icmpv6.opt.type", o.type === "other" ? o.code : OPTION_CODES[o.type]);
  }
  // Lengths from the wire: one per option, in order (tshark reads them as given).
  for (const o of options) {
    switch (o.type) {
      case "source-lla":
      case "target-lla":
        add(f, "icmpv6.opt.linkaddr", formatMac(o.mac));
        break;
      case "prefix":
        add(f, "icmpv6.opt.prefix.length", o.prefixLength);
        add(f, "icmpv6.opt.prefix.flag", hexN(o.flags, 2));
        add(f, "icmpv6.opt.prefix.valid_lifetime", o.validLifetime);
        add(f, "icmpv6.opt.prefix.preferred_lifetime", o.preferredLifetime);
        add(f, "icmpv6.opt.prefix", formatIpv6(o.prefix));
        break;
      case "mtu":
        add(f, "icmpv6.opt.mtu", o.mtu);
        break;
      case "rdnss":
        add(f, "icmpv6.opt.rdnss.lifetime", o.lifetime);
        for (const s of o.servers) add(f, "icmpv6.opt.rdnss", formatIpv6(s));
        break;
      case "dnssl":
        add(f, "icmpv6.opt.dnssl.lifetime", o.lifetime);
        for (const d of o.domains) add(f, "icmpv6.opt.dnssl", d);
        break;
      default:
        break;
    }
  }
}

/** Header fields, walked extension headers. Returns the chain (or undefined when the walk failed). */
function ipv6Fields(f: Fields, b: Uint8Array): ExtChain | undefined {
  const p = new Ipv6Packet(b);
  add(f, "ipv6.version", p.version);
  add(f, "ipv6.tclass", hexN(p.trafficClass, 8));
  add(f, "ipv6.flow", hexN(p.flowLabel, 6));
  add(f, "ipv6.plen", p.payloadLength);
  add(f, "ipv6.nxt", p.nextHeader);
  add(f, "ipv6.hlim", p.hopLimit);
  add(f, "ipv6.src", formatIpv6(p.src));
  add(f, "ipv6.dst", formatIpv6(p.dst));
  const c = walkExtensionHeaders(b);
  if (c instanceof WireError) return undefined;
  // Each extension header: the byte at its start is its Next Header (RFC 8200 §4).
  let nh = p.nextHeader;
  let at = 40;
  for (let i = 0; i < c.headers; i++) {
    if (nh === 0) add(f, "ipv6.hopopts.nxt", b[at]);
    if (nh === 60) add(f, "ipv6.dstopts.nxt", b[at]);
    if (nh === 43) {
      add(f, "ipv6.routing.type", b[at + 2]);
      add(f, "ipv6.routing.segleft", b[at + 3]);
    }
    if (nh === 44) {
      add(f, "ipv6.fraghdr.nxt", b[at]);
      add(f, "ipv6.fraghdr.offset", c.fragmentOffset / 8);
      add(f, "ipv6.fraghdr.more", c.moreFragments ? 1 : 0);
      add(f, "ipv6.fraghdr.ident", hexN(c.fragmentId, 8));
      if (c.fragmentOffset !== 0) break;
    }
    const len = nh === 44 ? 8 : nh === 51 ? (b[at + 1] + 2) * 4 : (b[at + 1] + 1) * 8;
    nh = b[at];
    at += len;
  }
  if (c.routerAlert >= 0) add(f, "ipv6.opt.router_alert", c.routerAlert);
  return c;
}

/** Fields for one IPv6 packet `b` (Ethernet header removed), added to `f`. */
export function ourFields(b: Uint8Array, f: Fields = {}): Fields {
  const h = parseIpv6(b);
  if (h instanceof WireError) return f;
  const c = ipv6Fields(f, b);
  if (c === undefined || c.fragmentOffset !== 0) return f; // a later fragment: data, not a header
  const upper = b.subarray(c.offset, c.end);
  const fragmented = c.fragmentAt >= 0 && c.moreFragments;
  // tshark verifies an upper-layer checksum only over a whole datagram (2 = unverified).
  const status = () => (fragmented ? "2" : upperLayerChecksum6(b, c.offset, c.end - c.offset, h.src, h.dst, c.protocol) === 0 ? "1" : "0");
  if (c.protocol === 17 && upper.length >= 8) {
    add(f, "udp.srcport", getU16(upper, 0));
    add(f, "udp.dstport", getU16(upper, 2));
    add(f, "udp.checksum.status", status());
    const ports = [getU16(upper, 0), getU16(upper, 2)];
    if (ports.includes(DHCPV6_CLIENT_PORT) || ports.includes(DHCPV6_SERVER_PORT)) dhcpv6Fields(f, upper.subarray(8, getU16(upper, 4)));
  } else if (c.protocol === 6 && upper.length >= 20) {
    add(f, "tcp.srcport", getU16(upper, 0));
    add(f, "tcp.dstport", getU16(upper, 2));
    add(f, "tcp.checksum.status", status());
  } else if (c.protocol === 58 && upper.length >= 4) {
    add(f, "icmpv6.type", upper[0]);
    add(f, "icmpv6.code", upper[1]);
    add(f, "icmpv6.checksum", hexN(getU16(upper, 2), 4));
    add(f, "icmpv6.checksum.status", status());
    const m = parseIcmpv6(upper, h.src, h.dst, { verifyChecksum: false });
    if (m instanceof WireError) return f;
    switch (m.kind) {
      case "echo-request":
      case "echo-reply":
        add(f, "icmpv6.echo.identifier", hexN(m.id, 4));
        add(f, "icmpv6.echo.sequence_number", m.seq);
        break;
      case "packet-too-big":
        add(f, "icmpv6.mtu", m.mtu);
        break;
      case "param-problem":
        add(f, "icmpv6.pointer", m.pointer);
        break;
      default:
        break;
    }
    if (m.kind === "dest-unreachable" || m.kind === "packet-too-big" || m.kind === "time-exceeded" || m.kind === "param-problem") {
      // tshark dissects the quoted packet as a packet of its own (the tests quote whole ones).
      ourFields(m.original, f);
    }
    const nd = parseNdp(upper, h.src, h.dst, h.hopLimit, { verifyChecksum: false });
    if (nd instanceof WireError) return f;
    switch (nd.kind) {
      case "ra":
        add(f, "icmpv6.nd.ra.cur_hop_limit", nd.curHopLimit);
        add(f, "icmpv6.nd.ra.flag", hexN(nd.flags, 2));
        add(f, "icmpv6.nd.ra.router_lifetime", nd.routerLifetime);
        add(f, "icmpv6.nd.ra.reachable_time", nd.reachableTime);
        add(f, "icmpv6.nd.ra.retrans_timer", nd.retransTimer);
        break;
      case "ns":
        add(f, "icmpv6.nd.ns.target_address", formatIpv6(nd.target));
        break;
      case "na":
        add(f, "icmpv6.nd.na.flag.r", nd.router ? 1 : 0);
        add(f, "icmpv6.nd.na.flag.s", nd.solicited ? 1 : 0);
        add(f, "icmpv6.nd.na.flag.o", nd.override ? 1 : 0);
        add(f, "icmpv6.nd.na.target_address", formatIpv6(nd.target));
        break;
      default:
        break;
    }
    ndpOptions(f, nd.options);
    // Option lengths straight from the wire, one per option.
    for (let at = c.offset + fixedNdpLen(upper[0]); at + 1 < c.end && b[at + 1] > 0; at += b[at + 1] * 8) add(f, "icmpv6.opt.length", b[at + 1]);
  }
  return f;
}

function fixedNdpLen(type: number): number {
  return type === 133 ? 8 : type === 134 ? 16 : type === 137 ? 40 : 24;
}

/** DHCPv6 fields of a message (RFC 8415 §8, §21). */
function dhcpv6Fields(f: Fields, b: Uint8Array): void {
  const m = parseDhcpv6(b);
  if (m instanceof WireError) return;
  add(f, "dhcpv6.msgtype", m.msgType);
  add(f, "dhcpv6.xid", hexN(m.transactionId, 6));
  for (let at = 4; at + 4 <= b.length; at += 4 + getU16(b, at + 2)) add(f, "dhcpv6.option.type", getU16(b, at));
  for (const o of m.options) {
    switch (o.type) {
      case "client-id":
      case "server-id":
        add(f, "dhcpv6.duid.bytes", Buffer.from(o.duid).toString("hex"));
        break;
      case "oro":
        for (const c of o.requested) add(f, "dhcpv6.requested_option_code", c);
        break;
      case "elapsed-time":
        add(f, "dhcpv6.elapsed_time", o.centiseconds * 10);
        break;
      case "status":
        add(f, "dhcpv6.status_code", o.status);
        add(f, "dhcpv6.status_msg", o.message);
        break;
      case "dns-servers":
        for (const s of o.servers) add(f, "dhcpv6.dns_server", formatIpv6(s));
        break;
      case "domain-list":
        // tshark prints names with the root's dot, and single-label names as "TLDs".
        for (const d of o.domains) add(f, d.includes(".") ? "dhcpv6.search_list_entry" : "dhcpv6.tld", `${d}.`);
        break;
      default:
        break;
    }
  }
}
