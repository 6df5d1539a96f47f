/**
 * `pcap inspect --json` against tshark (Debian's `tshark`), field by field, frame by frame:
 * every recorded fixture in fixtures/pcaps/, and a synthetic capture of the awkward cases
 * (802.1Q tag, bad IPv4/UDP/TCP/ICMP checksums, no UDP checksum, fragments, a frame cut by
 * the snapshot length, a frame shorter than its IPv4 Total Length, ICMP errors, DNS over TCP, a malformed DNS message, unknown types).
 *
 * tshark runs with IPv4 reassembly off (each fragment is judged alone, as inspect does), raw
 * TCP sequence numbers, and IPv4/UDP/TCP checksum verification on.
 */

import { expect } from "chai";
import dnsPacket from "dns-packet";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectCommand } from "../../src/cli/pcap-inspect.js";
import { setU16 } from "../../src/common/bytes.js";
import { dhcpLen, emitDhcp, type DhcpRepr } from "../../src/dhcp/wire.js";
import { emitEthernet, type EthernetRepr } from "../../src/ethernet/ethernet.js";
import { emitIcmp, icmpLen, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { emitIpv4, NO_IPV4_OPTIONS, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitUdp } from "../../src/ipv4/udp.js";
import { emitPcapHeader, emitPcapRecordHeader, PCAP_HEADER_LEN, PCAP_RECORD_HEADER_LEN } from "../../src/pcap/format.js";
import { dhcpMessageTypeName, type DnsLayer, type DnsRecordField, type InspectedFrame } from "../../src/pcap/inspect.js";
import { emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/pcaps/", import.meta.url));

interface DnsCodes {
  toType(name: string): number;
  toOpcode(name: string): number;
  toRcode(name: string): number;
  toClass(name: string): number;
}
const require = createRequire(import.meta.url);
const dnsTypes = require("dns-packet/types") as Pick<DnsCodes, "toType">;
const dnsOpcodes = require("dns-packet/opcodes") as Pick<DnsCodes, "toOpcode">;
const dnsRcodes = require("dns-packet/rcodes") as Pick<DnsCodes, "toRcode">;
const dnsClasses = require("dns-packet/classes") as Pick<DnsCodes, "toClass">;

type Value = string | number | boolean;

/**
 * One tshark field and how to read the same thing from inspect's JSON. `ours` returns
 * undefined when the comparison does not apply to the frame. `tshark` rewrites tshark's
 * occurrences first (default: as they are); `first` compares only tshark's first occurrence.
 */
interface FieldCheck {
  field: string;
  ours(f: InspectedFrame): Value[] | undefined;
  tshark?(values: string[], f: InspectedFrame): string[];
  first?: boolean;
}

const hex = (n: number, width: number) => `0x${n.toString(16).padStart(width, "0")}`;
const bit = (b: boolean) => (b ? "1" : "0");
const opt = <T, R>(x: T | undefined, f: (x: T) => R[]): R[] => (x === undefined ? [] : f(x));
/** tshark's checksum status: 0 bad, 1 good, 2 unverified, 3 not present. */
const status = (ok: boolean | null, absent = false) => (ok === null ? (absent ? "3" : "2") : ok ? "1" : "0");

/** True when the frame's ICMP message quotes a datagram: tshark decodes its UDP/TCP header too. */
const quotesDatagram = (f: InspectedFrame) => f.layers.icmp?.original !== undefined;
const wholeDatagram = (f: InspectedFrame) => {
  const ip = f.layers.ipv4;
  return ip !== undefined && !ip.truncated && !ip.mf && ip.fragmentOffset === 0;
};

/** The frame was whole on the wire, yet shorter than its IPv4 Total Length. */
const shortOnWire = (f: InspectedFrame) => f.layers.ipv4?.truncated === true && f.length === f.capturedLength;

function dhcpValues(f: InspectedFrame, code: number): Value[] {
  const out: Value[] = [];
  for (const o of f.layers.dhcp?.options ?? []) {
    if (o.code !== code) continue;
    if (Array.isArray(o.value)) out.push(...o.value);
    else out.push(o.value);
  }
  return out;
}

/** Every resource record of a DNS message, in wire order. */
function records(d: DnsLayer): DnsRecordField[] {
  return [...d.answers, ...d.authorities, ...d.additionals];
}

/**
 * A DNS field, not compared when inspect calls the message malformed (tshark still shows the
 * header it read before giving up; `_ws.malformed` compares the verdict).
 */
function dns(f: InspectedFrame, read: (d: DnsLayer) => Value[]): Value[] | undefined {
  if (f.error?.layer === "dns") return undefined;
  return opt(f.layers.dns, read);
}

const DHCP_TYPE_CODES = new Map(Array.from({ length: 13 }, (_, i) => [dhcpMessageTypeName(i + 1), i + 1]));
/** Options whose value inspect prints as hex: compared with tshark's raw option bytes. */
const isHexOption = (o: { code: number; name?: string }) => o.name === undefined || o.code === 61;

const CHECKS: FieldCheck[] = [
  // frame
  { field: "frame.time_epoch", ours: (f) => [f.time.padEnd(f.time.indexOf(".") + 10, "0")] },
  { field: "frame.len", ours: (f) => [f.length] },
  { field: "frame.cap_len", ours: (f) => [f.capturedLength] },
  // eth (IEEE 802.3, 802.1Q)
  { field: "eth.src", ours: (f) => opt(f.layers.eth, (e) => [e.src]) },
  { field: "eth.dst", ours: (f) => opt(f.layers.eth, (e) => [e.dst]) },
  { field: "eth.type", ours: (f) => opt(f.layers.eth, (e) => [e.vlan ? "0x8100" : e.type]) },
  { field: "vlan.id", ours: (f) => opt(f.layers.eth?.vlan, (v) => [v.id]) },
  { field: "vlan.priority", ours: (f) => opt(f.layers.eth?.vlan, (v) => [v.pcp]) },
  { field: "vlan.etype", ours: (f) => opt(f.layers.eth?.vlan && f.layers.eth, (e) => [e.type]) },
  // arp
  { field: "arp.opcode", ours: (f) => opt(f.layers.arp, (a) => [a.op]) },
  { field: "arp.src.hw_mac", ours: (f) => opt(f.layers.arp, (a) => [a.senderMac]) },
  { field: "arp.src.proto_ipv4", ours: (f) => opt(f.layers.arp, (a) => [a.senderIp]) },
  { field: "arp.dst.hw_mac", ours: (f) => opt(f.layers.arp, (a) => [a.targetMac]) },
  { field: "arp.dst.proto_ipv4", ours: (f) => opt(f.layers.arp, (a) => [a.targetIp]) },
  // ipv4: src/dst/proto also of the datagram quoted by an ICMP error; the rest of the outer header only
  { field: "ip.src", ours: (f) => [...opt(f.layers.ipv4, (i) => [i.src]), ...opt(f.layers.icmp?.original, (o) => [o.src])] },
  { field: "ip.dst", ours: (f) => [...opt(f.layers.ipv4, (i) => [i.dst]), ...opt(f.layers.icmp?.original, (o) => [o.dst])] },
  { field: "ip.proto", ours: (f) => [...opt(f.layers.ipv4, (i) => [i.protocol]), ...opt(f.layers.icmp?.original, (o) => [o.protocol])] },
  { field: "ip.ttl", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [i.ttl]) },
  { field: "ip.id", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [hex(i.id, 4)]) },
  { field: "ip.dsfield", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [hex(i.tos, 2)]) },
  { field: "ip.flags.df", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [bit(i.df)]) },
  { field: "ip.flags.mf", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [bit(i.mf)]) },
  // tshark 4.0 shows the fragment offset in 8-byte units, inspect in bytes
  { field: "ip.frag_offset", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [i.fragmentOffset / 8]) },
  { field: "ip.len", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [i.totalLength]) },
  { field: "ip.hdr_len", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [i.headerLength]) },
  { field: "ip.checksum.status", first: true, ours: (f) => opt(f.layers.ipv4, (i) => [bit(i.headerChecksumOk)]) },
  // icmp
  { field: "icmp.type", ours: (f) => opt(f.layers.icmp, (c) => [c.type]) },
  { field: "icmp.code", ours: (f) => opt(f.layers.icmp, (c) => [c.code]) },
  { field: "icmp.ident", ours: (f) => opt(f.layers.icmp?.id, (id) => [id]) },
  { field: "icmp.seq", ours: (f) => opt(f.layers.icmp?.seq, (seq) => [seq]) },
  { field: "icmp.mtu", ours: (f) => opt(f.layers.icmp?.nextHopMtu, (m) => [m]) },
  { field: "icmp.checksum.status", ours: (f) => opt(f.layers.icmp, (c) => [status(c.checksumOk)]) },
  // udp (not compared beside an ICMP error: tshark's values are the quoted datagram's)
  { field: "udp.srcport", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.udp, (u) => [u.srcPort])) },
  { field: "udp.dstport", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.udp, (u) => [u.dstPort])) },
  { field: "udp.length", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.udp, (u) => [u.length])) },
  {
    field: "udp.checksum.status",
    ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.udp, (u) => [status(u.checksumOk, wholeDatagram(f))])),
  },
  // tcp
  { field: "tcp.srcport", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.tcp, (t) => [t.srcPort])) },
  { field: "tcp.dstport", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.tcp, (t) => [t.dstPort])) },
  { field: "tcp.seq_raw", ours: (f) => (quotesDatagram(f) ? undefined : opt(f.layers.tcp, (t) => [t.seq])) },
  { field: "tcp.ack_raw", ours: (f) => opt(f.layers.tcp, (t) => [t.ack]) },
  { field: "tcp.flags", ours: (f) => opt(f.layers.tcp, (t) => [hex(t.flagsValue, 4)]) },
  { field: "tcp.window_size_value", ours: (f) => opt(f.layers.tcp, (t) => [t.window]) },
  { field: "tcp.hdr_len", ours: (f) => opt(f.layers.tcp, (t) => [t.dataOffset]) },
  { field: "tcp.len", ours: (f) => opt(f.layers.tcp, (t) => [t.payloadLength]) },
  { field: "tcp.urgent_pointer", ours: (f) => opt(f.layers.tcp, (t) => [t.urgentPointer]) },
  // Not compared on a frame shorter on the wire than its Total Length: tshark judges the sum
  // over the bytes present, inspect does not judge an incomplete datagram.
  { field: "tcp.checksum.status", ours: (f) => (shortOnWire(f) ? undefined : opt(f.layers.tcp, (t) => [status(t.checksumOk)])) },
  { field: "tcp.options.mss_val", ours: (f) => opt(f.layers.tcp?.options.mss, (m) => [m]) },
  { field: "tcp.options.wscale.shift", ours: (f) => opt(f.layers.tcp?.options.windowScale, (w) => [w]) },
  {
    field: "tcp.options.sack_perm",
    tshark: (v) => v.map(() => "present"),
    ours: (f) => (f.layers.tcp?.options.sackPermitted ? ["present"] : []),
  },
  { field: "tcp.options.timestamp.tsval", ours: (f) => opt(f.layers.tcp?.options.timestamp, (t) => [t.tsVal]) },
  { field: "tcp.options.timestamp.tsecr", ours: (f) => opt(f.layers.tcp?.options.timestamp, (t) => [t.tsEcr]) },
  { field: "tcp.options.sack_le", ours: (f) => opt(f.layers.tcp?.options.sack, (s) => s.map(([l]) => l)) },
  { field: "tcp.options.sack_re", ours: (f) => opt(f.layers.tcp?.options.sack, (s) => s.map(([, r]) => r)) },
  // dhcp
  { field: "dhcp.type", ours: (f) => opt(f.layers.dhcp, (d) => [d.op]) },
  { field: "dhcp.id", ours: (f) => opt(f.layers.dhcp, (d) => [hex(d.xid, 8)]) },
  { field: "dhcp.ip.client", ours: (f) => opt(f.layers.dhcp, (d) => [d.ciaddr]) },
  { field: "dhcp.ip.your", ours: (f) => opt(f.layers.dhcp, (d) => [d.yiaddr]) },
  { field: "dhcp.ip.server", ours: (f) => opt(f.layers.dhcp, (d) => [d.siaddr]) },
  { field: "dhcp.ip.relay", ours: (f) => opt(f.layers.dhcp, (d) => [d.giaddr]) },
  // the first is chaddr; option 61's hardware address follows
  { field: "dhcp.hw.mac_addr", first: true, ours: (f) => opt(f.layers.dhcp, (d) => [d.chaddr]) },
  {
    field: "dhcp.option.dhcp",
    ours: (f) => opt(f.layers.dhcp?.messageType ?? undefined, (t) => [DHCP_TYPE_CODES.get(t) ?? t]),
  },
  // Pad (0) and End (255) are not options in inspect's list
  {
    field: "dhcp.option.type",
    tshark: (v) => v.filter((c) => c !== "0" && c !== "255"),
    ours: (f) => opt(f.layers.dhcp, (d) => d.options.map((o) => o.code)),
  },
  {
    field: "dhcp.option.value",
    tshark: (v, f) => v.filter((_, i) => f.layers.dhcp?.options[i] !== undefined && isHexOption(f.layers.dhcp.options[i])),
    ours: (f) => opt(f.layers.dhcp, (d) => d.options.filter(isHexOption).map((o) => String(o.value))),
  },
  { field: "dhcp.option.subnet_mask", ours: (f) => dhcpValues(f, 1) },
  { field: "dhcp.option.router", ours: (f) => dhcpValues(f, 3) },
  { field: "dhcp.option.domain_name_server", ours: (f) => dhcpValues(f, 6) },
  { field: "dhcp.option.hostname", ours: (f) => dhcpValues(f, 12) },
  { field: "dhcp.option.domain_name", ours: (f) => dhcpValues(f, 15) },
  { field: "dhcp.option.requested_ip_address", ours: (f) => dhcpValues(f, 50) },
  { field: "dhcp.option.ip_address_lease_time", ours: (f) => dhcpValues(f, 51) },
  { field: "dhcp.option.dhcp_server_id", ours: (f) => dhcpValues(f, 54) },
  { field: "dhcp.option.request_list_item", ours: (f) => dhcpValues(f, 55) },
  { field: "dhcp.option.dhcp_max_message_size", ours: (f) => dhcpValues(f, 57) },
  { field: "dhcp.option.renewal_time_value", ours: (f) => dhcpValues(f, 58) },
  { field: "dhcp.option.rebinding_time_value", ours: (f) => dhcpValues(f, 59) },
  { field: "dhcp.option.vendor_class_id", ours: (f) => dhcpValues(f, 60) },
  // dns
  { field: "dns.id", ours: (f) => dns(f, (d) => [hex(d.id, 4)]) },
  { field: "dns.flags.response", ours: (f) => dns(f, (d) => [bit(d.qr)]) },
  { field: "dns.flags.opcode", ours: (f) => dns(f, (d) => [dnsOpcodes.toOpcode(d.opcode)]) },
  { field: "dns.flags.rcode", ours: (f) => dns(f, (d) => (d.qr ? [dnsRcodes.toRcode(d.rcode)] : [])) },
  { field: "dns.flags.authoritative", ours: (f) => dns(f, (d) => (d.qr ? [bit(d.flags.aa)] : [])) },
  { field: "dns.flags.truncated", ours: (f) => dns(f, (d) => [bit(d.flags.tc)]) },
  { field: "dns.flags.recdesired", ours: (f) => dns(f, (d) => [bit(d.flags.rd)]) },
  { field: "dns.flags.recavail", ours: (f) => dns(f, (d) => (d.qr ? [bit(d.flags.ra)] : [])) },
  { field: "dns.count.queries", ours: (f) => dns(f, (d) => [d.questions.length]) },
  { field: "dns.count.answers", ours: (f) => dns(f, (d) => [d.answers.length]) },
  { field: "dns.count.auth_rr", ours: (f) => dns(f, (d) => [d.authorities.length]) },
  { field: "dns.count.add_rr", ours: (f) => dns(f, (d) => [d.additionals.length]) },
  { field: "dns.qry.name", ours: (f) => dns(f, (d) => d.questions.map((q) => q.name)) },
  { field: "dns.qry.type", ours: (f) => dns(f, (d) => d.questions.map((q) => dnsTypes.toType(q.type))) },
  {
    field: "dns.qry.class",
    ours: (f) => dns(f, (d) => d.questions.map((q) => hex(dnsClasses.toClass(q.class ?? "IN"), 4))),
  },
  { field: "dns.resp.name", ours: (f) => dns(f, (d) => records(d).map((r) => (r.name === "." ? "<Root>" : r.name))) },
  { field: "dns.resp.type", ours: (f) => dns(f, (d) => records(d).map((r) => dnsTypes.toType(r.type))) },
  { field: "dns.resp.ttl", ours: (f) => dns(f, (d) => records(d).filter((r) => r.type !== "OPT").map((r) => r.ttl ?? "")) },
  { field: "dns.a", ours: (f) => dns(f, (d) => records(d).filter((r) => r.type === "A").map((r) => String(r.data))) },
  { field: "dns.aaaa", ours: (f) => dns(f, (d) => records(d).filter((r) => r.type === "AAAA").map((r) => String(r.data))) },
  { field: "dns.cname", ours: (f) => dns(f, (d) => records(d).filter((r) => r.type === "CNAME").map((r) => String(r.data))) },
  // a message tshark calls malformed is the one inspect reports as a dns/dhcp error
  {
    field: "_ws.malformed",
    tshark: (v) => v.flatMap((m) => /Malformed Packet: (DNS|DHCP)/.exec(m)?.[1].toLowerCase() ?? []),
    ours: (f) => (f.error && (f.error.layer === "dns" || f.error.layer === "dhcp") ? [f.error.layer] : []),
  },
];

const TSHARK_PREFS = [
  "ip.defragment:FALSE",
  "tcp.relative_sequence_numbers:FALSE",
  "ip.check_checksum:TRUE",
  "udp.check_checksum:TRUE",
  "tcp.check_checksum:TRUE",
];
/** Separates occurrences of one field; a character no value here contains. */
const AGG = "\u001f";

/** tshark's values: one map per frame, field name to its occurrences. */
function tsharkFields(file: string): Array<Map<string, string[]>> {
  const args = ["-r", file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", `aggregator=${AGG}`];
  for (const p of TSHARK_PREFS) args.push("-o", p);
  for (const c of CHECKS) args.push("-e", c.field);
  const r = spawnSync("tshark", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  // tshark warns on stderr when run as root; only the status matters.
  if (r.status !== 0) throw new Error(`tshark -r ${file} failed (${r.status}): ${r.stderr}`);
  return r.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const cols = line.split("\t");
      return new Map(CHECKS.map((c, i) => [c.field, cols[i] ? cols[i].split(AGG) : []]));
    });
}

function inspectJson(file: string): InspectedFrame[] {
  let out = "";
  let err = "";
  const status = inspectCommand(file, { json: true }, { out: (t) => ((out += t), true), err: (t) => void (err += t) });
  expect(status, err).to.equal(0);
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as InspectedFrame);
}

interface Coverage {
  frames: number;
  /** Comparisons made, and of those where tshark had at least one value. */
  compared: number;
  nonEmpty: number;
  fields: Set<string>;
}

function compareWithTshark(file: string, cov: Coverage): void {
  const theirs = tsharkFields(file);
  const ours = inspectJson(file);
  expect(ours.length, `${file}: frame count`).to.equal(theirs.length);
  cov.frames += ours.length;
  ours.forEach((f, i) => {
    for (const c of CHECKS) {
      const mine = c.ours(f);
      if (mine === undefined) continue;
      let t = theirs[i].get(c.field) ?? [];
      if (c.tshark) t = c.tshark(t, f);
      if (c.first) t = t.slice(0, 1);
      expect(mine.map(String), `${file} frame ${f.frame} ${c.field}`).to.deep.equal(t);
      cov.compared++;
      if (t.length > 0) {
        cov.nonEmpty++;
        cov.fields.add(c.field);
      }
    }
  });
}

// ---- the synthetic capture ----

const GUEST_MAC = 0x525400123456;
const GW_MAC = 0x025000000001;
const GUEST = 0xc0a84103;
const GW = 0xc0a84101;

/** Ethernet + IPv4 + a transport message written by `l4` into the bytes after the IPv4 header. */
function frame(ip: Partial<Ipv4Repr> & { protocol: number }, l4: Uint8Array, eth: Partial<EthernetRepr> = {}): Uint8Array {
  const e: EthernetRepr = { dst: GW_MAC, src: GUEST_MAC, ethertype: 0x0800, ...eth };
  const hl = e.vlan ? 18 : 14;
  const b = new Uint8Array(hl + 20 + l4.length);
  emitEthernet(e, b);
  const repr: Ipv4Repr = { src: GUEST, dst: GW, ttl: 64, id: 0x4242, tos: 0, df: false, mf: false, fragmentOffset: 0, payloadLength: l4.length, options: NO_IPV4_OPTIONS, ...ip };
  emitIpv4(repr, b, hl);
  b.set(l4, hl + 20);
  return b;
}

function udp(srcPort: number, dstPort: number, payload: Uint8Array, checksum = true): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  emitUdp({ srcPort, dstPort, payload }, b, 0, GUEST, GW, { checksum });
  return b;
}

function tcp(over: Partial<TcpRepr>): Uint8Array {
  const r: TcpRepr = { srcPort: 40000, dstPort: 80, seq: 3_000_000_000, ack: 17, flags: TcpFlag.ACK, window: 502, urgentPointer: 0, options: {}, payload: new Uint8Array(0), ...over };
  const b = new Uint8Array(tcpLen(r));
  emitTcp(r, b, 0, GUEST, GW);
  return b;
}

function icmp(r: IcmpRepr): Uint8Array {
  const b = new Uint8Array(icmpLen(r));
  emitIcmp(r, b);
  return b;
}

function dhcp(options: DhcpRepr["options"]): Uint8Array {
  const r: DhcpRepr = { op: 2, htype: 1, hlen: 6, hops: 0, xid: 0xdeadbeef, secs: 0, broadcast: true, ciaddr: 0, yiaddr: GUEST, siaddr: GW, giaddr: 0, chaddr: GUEST_MAC, sname: "", file: "", options };
  const b = new Uint8Array(dhcpLen(r));
  emitDhcp(r, b);
  return b;
}

function syntheticCapture(): Uint8Array {
  const query = dnsPacket.encode({ type: "query", id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: "AAAA", name: "example.com" }] });
  const answer = dnsPacket.encode({
    type: "response",
    id: 0x1234,
    flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name: "www.example.com" }],
    answers: [
      { type: "CNAME", name: "www.example.com", ttl: 300, data: "example.com" },
      { type: "A", name: "example.com", ttl: 60, data: "93.184.216.34" },
    ],
    authorities: [{ type: "NS", name: "example.com", ttl: 3600, data: "ns.example.com" }],
    additionals: [{ type: "AAAA", name: "ns.example.com", ttl: 3600, data: "2001:db8::53" }],
  });
  const nx = dnsPacket.encode({ type: "response", id: 7, flags: 3, questions: [{ type: "A", name: "nope.internal" }] });
  const badDns = Uint8Array.from(query);
  badDns[12] = 60;
  const tcpDns = new Uint8Array(2 + query.length);
  setU16(tcpDns, 0, query.length);
  tcpDns.set(query, 2);
  const big = udp(5000, 9999, new Uint8Array(100).fill(7));
  const quoted = frame({ protocol: 17 }, udp(5000, 9999, new Uint8Array(4))).subarray(14, 14 + 28);
  const withSack = frame({ protocol: 6 }, tcp({ options: { sack: [[100, 200], [300, 400]], timestamp: { tsVal: 5, tsEcr: 6 } }, payload: new Uint8Array(300) }));

  const frames: Array<{ data: Uint8Array; originalLength?: number }> = [];
  const add = (data: Uint8Array, originalLength?: number) => frames.push({ data, originalLength });
  add(frame({ protocol: 17 }, udp(5353, 53, query), { vlan: { pcp: 3, dei: false, id: 100 } }));
  const badIp = frame({ protocol: 17 }, udp(5000, 53, query));
  badIp[14 + 10] ^= 0xff;
  add(badIp);
  add(frame({ protocol: 17 }, udp(5000, 9999, Uint8Array.of(1, 2, 3), false)));
  const badUdp = frame({ protocol: 17 }, udp(5000, 9999, Uint8Array.of(1, 2, 3)));
  badUdp[14 + 20 + 8] ^= 1;
  add(badUdp);
  add(frame({ protocol: 17, mf: true, id: 99 }, big.subarray(0, 48)));
  add(frame({ protocol: 17, fragmentOffset: 48, id: 99 }, big.subarray(48)));
  add(withSack.subarray(0, 14 + 20 + 52 + 10), withSack.length);
  // A frame shorter on the wire than its IPv4 Total Length claims (not a snapshot cut).
  const short = frame({ protocol: 6 }, tcp({ payload: new Uint8Array(100) }));
  setU16(short, 14 + 2, 1000);
  add(short);
  add(frame({ protocol: 6, df: true }, tcp({ dstPort: 53, flags: TcpFlag.PSH | TcpFlag.ACK, payload: tcpDns })));
  const badTcp = frame({ protocol: 6 }, tcp({ flags: TcpFlag.SYN | TcpFlag.ECE | TcpFlag.CWR, ack: 0, options: { mss: 536, windowScale: 14, sackPermitted: true } }));
  badTcp[badTcp.length - 1] ^= 0x40;
  add(badTcp);
  add(frame({ protocol: 6 }, tcp({ flags: TcpFlag.URG | TcpFlag.ACK | TcpFlag.FIN | TcpFlag.RST, urgentPointer: 9, payload: new Uint8Array(9) })));
  add(frame({ protocol: 1 }, icmp({ kind: "dest-unreachable", code: 3, nextHopMtu: 0, original: quoted })));
  const badIcmp = icmp({ kind: "dest-unreachable", code: 4, nextHopMtu: 1400, original: quoted });
  badIcmp[5] ^= 1;
  add(frame({ protocol: 1, tos: 0xb8 }, badIcmp));
  add(frame({ protocol: 1, ttl: 1 }, icmp({ kind: "echo-reply", id: 0xbeef, seq: 65535, data: new Uint8Array(3) })));
  add(frame({ protocol: 17 }, udp(5000, 53, badDns)));
  add(frame({ protocol: 17 }, udp(53, 5000, answer)));
  add(frame({ protocol: 17 }, udp(53, 5000, nx)));
  add(
    frame(
      { protocol: 17, src: GW, dst: 0xffffffff },
      udp(67, 68, dhcp([
        { code: 53, data: Uint8Array.of(6) },
        { code: 54, data: Uint8Array.of(192, 168, 65, 1) },
        { code: 58, data: Uint8Array.of(0, 0, 0x0e, 0x10) },
        { code: 59, data: Uint8Array.of(0, 0, 0x18, 0x9c) },
        { code: 6, data: Uint8Array.of(192, 168, 65, 1, 8, 8, 8, 8) },
        { code: 224, data: Uint8Array.of(1, 2, 3) },
      ])),
    ),
  );
  add(frame({ protocol: 47 }, new Uint8Array(12)));
  const v6 = new Uint8Array(14 + 40);
  emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: 0x86dd }, v6);
  v6[14] = 0x60;
  add(v6);

  const len = PCAP_HEADER_LEN + frames.reduce((n, f) => n + PCAP_RECORD_HEADER_LEN + f.data.length, 0);
  const out = new Uint8Array(len);
  let o = emitPcapHeader({ linkType: 1, snaplen: 262144, nanosecond: true }, out);
  frames.forEach((f, i) => {
    o += emitPcapRecordHeader({ tsSec: 1_795_000_000 + i, tsFrac: 123_456_789, capturedLength: f.data.length, originalLength: f.originalLength ?? f.data.length }, out, o);
    out.set(f.data, o);
    o += f.data.length;
  });
  return out;
}

// ---- the suite ----

const HAVE_TSHARK = !spawnSync("tshark", ["--version"], { stdio: "ignore" }).error;
const FIXTURE_FILES = readdirSync(FIXTURES).filter((n) => n.endsWith(".pcap")).sort();

describe("pcap inspect agrees with tshark", function () {
  this.timeout(60_000);
  const cov: Coverage = { frames: 0, compared: 0, nonEmpty: 0, fields: new Set() };
  let dir: string;

  before(function () {
    if (!HAVE_TSHARK) {
      console.log("    (skipped: tshark is not installed; Debian package `tshark`)");
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-inspect-tshark-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (cov.frames > 0) {
      console.log(
        `    (${cov.compared} field comparisons over ${cov.frames} frames, ${cov.nonEmpty} with a tshark value, ` +
          `${cov.fields.size} of ${CHECKS.length} fields exercised)`,
      );
    }
  });

  it("has fixtures to compare", () => {
    expect(FIXTURE_FILES.length).to.be.greaterThan(0);
  });

  for (const name of FIXTURE_FILES) {
    it(`on every frame of ${name}`, () => compareWithTshark(join(FIXTURES, name), cov));
  }

  it("on a synthetic capture of awkward frames", () => {
    const p = join(dir, "awkward.pcap");
    writeFileSync(p, syntheticCapture());
    compareWithTshark(p, cov);
  });

  it("compares every field somewhere", () => {
    const never = CHECKS.map((c) => c.field).filter((f) => !cov.fields.has(f));
    expect(never, "fields tshark never had a value for").to.deep.equal([]);
  });
});
