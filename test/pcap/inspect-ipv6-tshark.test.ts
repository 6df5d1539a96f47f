/**
 * `pcap inspect --json` on IPv6 against tshark, field by field: a capture of the frames skiff's
 * IPv6 gateway exchanges with a guest (neighbour solicitation and advertisement, router
 * solicitation and advertisement, echo, DNS over UDP, stateless DHCPv6, a TCP SYN and the RST,
 * ICMPv6 port unreachable quoting a datagram, a fragment), built by the stack itself, plus
 * damaged checksums; and every recorded capture in fixtures/pcaps/ipv6/ (Linux guests against
 * dnsmasq and against skiff: MLD with Hop-by-Hop options, DAD, SLAAC, fragments, DNS over UDP and
 * TCP, flow labels and traffic classes of a real kernel). tshark runs with IPv6 reassembly off
 * and UDP/TCP checksum checks on.
 */
import { expect } from "chai";
import dnsPacket from "dns-packet";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectCommand } from "../../src/cli/pcap-inspect.js";
import { emitPcapHeader, emitPcapRecordHeader, PCAP_HEADER_LEN, PCAP_RECORD_HEADER_LEN } from "../../src/pcap/format.js";
import type { InspectedFrame } from "../../src/pcap/inspect.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { TcpLayer } from "../../src/stack/tcp.js";
import { createDnsServer } from "../../src/stack/dns-service.js";
import { RecordingChannel, GUEST_MAC } from "../support/stack.js";
import { frame, ndpFrame, tcpSyn6, udpFrame } from "../support/frames6.js";
import { IPV6_ALL_ROUTERS, IPV6_UNSPECIFIED, linkLocalFromMac, multicastMac6, parseIpv6Address, solicitedNode } from "../../src/ipv6/addr.js";
import { emitIcmpv6, icmpv6Len } from "../../src/ipv6/icmpv6.js";
import { emitFragmentHeader } from "../../src/ipv6/ext.js";
import { NextHeader } from "../../src/ipv6/ipv6.js";
import { setU16 } from "../../src/common/bytes.js";
import { Dhcpv6MsgType, dhcpv6Len, duidLl, emitDhcpv6 } from "../../src/ipv6/dhcpv6.js";

const FIXTURES6 = fileURLToPath(new URL("../../fixtures/pcaps/ipv6/", import.meta.url));
const HAVE_TSHARK = !spawnSync("tshark", ["--version"], { stdio: "ignore" }).error;
const GW6 = parseIpv6Address("fd73:6b69:6666::1")!;
const GUEST6 = parseIpv6Address("fd73:6b69:6666::3")!;
const GUEST_LL = linkLocalFromMac(GUEST_MAC);
const AGG = "\u001f";

type Ours = (f: InspectedFrame) => Array<string | number> | undefined;
const status = (ok: boolean | null | undefined) => (ok === null || ok === undefined ? "2" : ok ? "1" : "0");
const CHECKS: Array<{ field: string; ours: Ours; first?: boolean }> = [
  { field: "ipv6.src", first: true, ours: (f) => (f.layers.ipv6 ? [f.layers.ipv6.src] : []) },
  { field: "ipv6.dst", first: true, ours: (f) => (f.layers.ipv6 ? [f.layers.ipv6.dst] : []) },
  { field: "ipv6.hlim", first: true, ours: (f) => (f.layers.ipv6 ? [f.layers.ipv6.hopLimit] : []) },
  { field: "ipv6.plen", first: true, ours: (f) => (f.layers.ipv6 ? [f.layers.ipv6.payloadLength] : []) },
  { field: "ipv6.flow", first: true, ours: (f) => (f.layers.ipv6 ? [`0x${f.layers.ipv6.flowLabel.toString(16).padStart(6, "0")}`] : []) },
  { field: "ipv6.tclass", first: true, ours: (f) => (f.layers.ipv6 ? [`0x${f.layers.ipv6.trafficClass.toString(16).padStart(8, "0")}`] : []) },
  // The Next Header of the fixed header (compared below as the chain's upper-layer protocol).
  { field: "ipv6.nxt", first: true, ours: () => undefined },
  { field: "ipv6.hopopts.nxt", first: true, ours: () => undefined },
  { field: "ipv6.dstopts.nxt", first: true, ours: () => undefined },
  { field: "ipv6.fraghdr.nxt", first: true, ours: () => undefined },
  { field: "ipv6.fraghdr.offset", first: true, ours: (f) => (f.layers.ipv6?.fragment ? [f.layers.ipv6.fragment.offset / 8] : []) },
  { field: "ipv6.fraghdr.ident", first: true, ours: (f) => (f.layers.ipv6?.fragment ? [`0x${f.layers.ipv6.fragment.id.toString(16).padStart(8, "0")}`] : []) },
  { field: "icmpv6.type", first: true, ours: (f) => (f.layers.icmpv6 ? [f.layers.icmpv6.type] : []) },
  { field: "icmpv6.code", first: true, ours: (f) => (f.layers.icmpv6 ? [f.layers.icmpv6.code] : []) },
  { field: "icmpv6.echo.identifier", ours: (f) => (f.layers.icmpv6?.id !== undefined ? [`0x${f.layers.icmpv6.id.toString(16).padStart(4, "0")}`] : []) },
  { field: "icmpv6.echo.sequence_number", ours: (f) => (f.layers.icmpv6?.seq !== undefined ? [f.layers.icmpv6.seq] : []) },
  { field: "icmpv6.nd.ns.target_address", ours: (f) => (f.layers.icmpv6?.type === 135 ? [f.layers.icmpv6.target!] : []) },
  { field: "icmpv6.nd.na.target_address", ours: (f) => (f.layers.icmpv6?.type === 136 ? [f.layers.icmpv6.target!] : []) },
  // Router Advertisements (RFC 4861 §4.2, §4.6.2, §4.6.4; RFC 8106 §5).
  { field: "icmpv6.nd.ra.cur_hop_limit", ours: (f) => (f.layers.icmpv6?.ra ? [f.layers.icmpv6.ra.curHopLimit] : []) },
  { field: "icmpv6.nd.ra.flag", ours: (f) => (f.layers.icmpv6?.ra ? [`0x${f.layers.icmpv6.ra.flags.toString(16).padStart(2, "0")}`] : []) },
  { field: "icmpv6.nd.ra.router_lifetime", ours: (f) => (f.layers.icmpv6?.ra ? [f.layers.icmpv6.ra.routerLifetime] : []) },
  { field: "icmpv6.opt.prefix", ours: (f) => (f.layers.icmpv6?.ra ? f.layers.icmpv6.ra.prefixes.map((p) => p.split("/")[0]) : []) },
  { field: "icmpv6.opt.prefix.length", ours: (f) => (f.layers.icmpv6?.ra ? f.layers.icmpv6.ra.prefixes.map((p) => p.split("/")[1]) : []) },
  { field: "icmpv6.opt.mtu", ours: (f) => (f.layers.icmpv6?.ra?.mtu !== undefined ? [f.layers.icmpv6.ra.mtu] : []) },
  { field: "icmpv6.opt.rdnss", ours: (f) => f.layers.icmpv6?.ra?.rdnss ?? [] },
  { field: "icmpv6.opt.dnssl", ours: (f) => f.layers.icmpv6?.ra?.dnssl ?? [] },
  { field: "icmpv6.checksum.status", first: true, ours: (f) => (f.layers.icmpv6 ? [status(f.layers.icmpv6.checksumOk)] : []) },
  // Beside an ICMPv6 error tshark also decodes the quoted datagram's header: the outer layers only here.
  { field: "udp.srcport", first: true, ours: (f) => (f.layers.udp ? [f.layers.udp.srcPort] : undefined) },
  { field: "udp.dstport", first: true, ours: (f) => (f.layers.udp ? [f.layers.udp.dstPort] : undefined) },
  { field: "udp.checksum.status", first: true, ours: (f) => (f.layers.udp ? [status(f.layers.udp.checksumOk)] : undefined) },
  { field: "tcp.srcport", ours: (f) => (f.layers.tcp ? [f.layers.tcp.srcPort] : []) },
  { field: "tcp.dstport", ours: (f) => (f.layers.tcp ? [f.layers.tcp.dstPort] : []) },
  { field: "tcp.checksum.status", ours: (f) => (f.layers.tcp ? [status(f.layers.tcp.checksumOk)] : []) },
  { field: "dns.qry.name", ours: (f) => (f.layers.dns ? f.layers.dns.questions.map((q) => q.name) : []) },
];

/** The frames: each guest frame, then what the stack answered. */
async function exchange(): Promise<Uint8Array[]> {
  const stack = new NetworkStack();
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  const tcp = new TcpLayer(stack);
  const dns = createDnsServer(stack, { hostsPath: null, servers: [], tcp });
  const out: Uint8Array[] = [];
  const send = async (f: Uint8Array) => {
    ch.sent.length = 0;
    stack.receive(port, f);
    await new Promise((r) => setTimeout(r, 5));
    out.push(f, ...ch.sent);
  };
  try {
    await send(ndpFrame(GUEST6, solicitedNode(GW6), { kind: "ns", target: GW6, options: [{ type: "source-lla", mac: GUEST_MAC }] }, multicastMac6(solicitedNode(GW6))));
    await send(ndpFrame(IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, { kind: "rs", options: [] }, multicastMac6(IPV6_ALL_ROUTERS)));
    const echo = { kind: "echo-request" as const, id: 0x1234, seq: 7, data: new Uint8Array(24).fill(9) };
    const e = new Uint8Array(icmpv6Len(echo));
    emitIcmpv6(echo, e, 0, GUEST6, GW6);
    await send(frame(GUEST6, GW6, NextHeader.ICMPv6, e));
    await send(udpFrame(GUEST6, 5353, GW6, 53, dnsPacket.encode({ type: "query", id: 3, questions: [{ type: "AAAA", name: "host.internal" }] })));
    const info = { msgType: Dhcpv6MsgType.InformationRequest, transactionId: 0xabcdef, options: [{ type: "client-id" as const, duid: duidLl(GUEST_MAC) }] };
    const d = new Uint8Array(dhcpv6Len(info));
    emitDhcpv6(info, d, 0);
    const all = parseIpv6Address("ff02::1:2")!;
    await send(udpFrame(GUEST_LL, 546, all, 547, d, multicastMac6(all)));
    await send(udpFrame(GUEST6, 4000, GW6, 9999, new Uint8Array(5)));
    // A SYN to a closed port of the gateway: RST.
    await send(tcpSyn6(GUEST6, 40000, GW6, 81));
    // A first fragment, and a UDP datagram with a damaged checksum.
    const frag = new Uint8Array(8 + 64);
    emitFragmentHeader({ nextHeader: NextHeader.UDP, fragmentOffset: 0, moreFragments: true, id: 0x42 }, frag, 0);
    setU16(frag, 8, 1);
    setU16(frag, 10, 2);
    setU16(frag, 12, 100);
    setU16(frag, 14, 0x1234); // a checksum that cannot be judged on a fragment
    out.push(frame(GUEST6, GW6, NextHeader.Fragment, frag));
    const bad = udpFrame(GUEST6, 5000, GW6, 53, new Uint8Array(12));
    bad[bad.length - 1] ^= 0xff;
    out.push(bad);
    return out;
  } finally {
    dns.close();
    tcp.close();
    stack.close();
  }
}

function writePcap(path: string, frames: Uint8Array[]): void {
  let len = PCAP_HEADER_LEN;
  for (const f of frames) len += PCAP_RECORD_HEADER_LEN + f.length;
  const b = new Uint8Array(len);
  let o = emitPcapHeader({ snaplen: 65535, linkType: 1, nanosecond: false }, b, 0);
  frames.forEach((f, i) => {
    o += emitPcapRecordHeader({ tsSec: 1000 + i, tsFrac: 0, capturedLength: f.length, originalLength: f.length }, b, o);
    b.set(f, o);
    o += f.length;
  });
  writeFileSync(path, b);
}

function inspect(file: string): InspectedFrame[] {
  let out = "";
  expect(inspectCommand(file, { json: true }, { out: (t) => ((out += t), true), err: () => {} })).to.equal(0);
  return out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as InspectedFrame);
}

/** The upper-layer protocol as tshark shows it: the Next Header of the last extension header, else of the fixed header. */
function tsharkUpperLayer(cols: string[][]): string[] {
  const at = (field: string) => cols[CHECKS.findIndex((c) => c.field === field)].slice(0, 1);
  for (const f of ["ipv6.fraghdr.nxt", "ipv6.dstopts.nxt", "ipv6.hopopts.nxt", "ipv6.nxt"]) if (at(f).length) return at(f);
  return [];
}

/** Compare every CHECKS field of every frame of `file` with tshark's; returns how many values were equal. */
function compareWithTshark(file: string): number {
  const args = ["-r", file, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", `aggregator=${AGG}`, "-o", "ipv6.defragment:FALSE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"];
  for (const c of CHECKS) args.push("-e", c.field);
  const r = spawnSync("tshark", args, { encoding: "utf8" });
  expect(r.status, r.stderr).to.equal(0);
  const theirs = r.stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t").map((c) => (c === "" ? [] : c.split(AGG))));
  const ours = inspect(file);
  expect(ours.length).to.equal(theirs.length);
  let compared = 0;
  ours.forEach((f, i) => {
    CHECKS.forEach((c, k) => {
      const mine = c.ours(f);
      if (mine === undefined) return;
      const t = c.first ? theirs[i][k].slice(0, 1) : theirs[i][k];
      expect(mine.map(String), `${file} frame ${i + 1} ${c.field} (${JSON.stringify(f.layers)})`).to.deep.equal(t);
      if (t.length > 0) compared++;
    });
    if (f.layers.ipv6) {
      expect([String(f.layers.ipv6.nextHeader)], `${file} frame ${i + 1} upper-layer protocol`).to.deep.equal(tsharkUpperLayer(theirs[i]));
      compared++;
    }
  });
  return compared;
}

describe("pcap inspect agrees with tshark on IPv6", function () {
  this.timeout(60_000);
  let dir: string;
  before(function () {
    if (!HAVE_TSHARK) {
      console.log("    (skipped: tshark is not installed; Debian package `tshark`)");
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), "skiff-v6-pcap-"));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("every compared field of every frame is equal", async () => {
    const file = join(dir, "v6.pcap");
    const frames = await exchange();
    expect(frames.length).to.be.greaterThan(14);
    writePcap(file, frames);
    expect(compareWithTshark(file)).to.be.greaterThan(100);
  });

  const recorded = readdirSync(FIXTURES6).filter((f) => f.endsWith(".pcap")).sort();
  it("the recorded captures are there (Linux guests against dnsmasq and against skiff)", () => {
    expect(recorded).to.include.members(["ndp-slaac.pcap", "frag-ping.pcap", "udp-tcp.pcap", "skiff-guest.pcap"]);
  });
  for (const name of recorded) {
    it(`agrees on every frame of the recorded ipv6/${name}`, () => {
      // Each frame at least: addresses, hop limit, payload length, flow label, traffic class, next header, ICMPv6 type or ports.
      const frames = inspect(join(FIXTURES6, name)).length;
      expect(compareWithTshark(join(FIXTURES6, name))).to.be.at.least(frames * 7);
    });
  }
});
