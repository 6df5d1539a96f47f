/**
 * skiff's IPv6 codecs against tshark (Debian's tshark 4.0), field by field and frame by frame:
 * every capture in fixtures/pcaps/ipv6/ (recorded from a real Linux guest and dnsmasq by
 * fixtures/pcaps/record.sh), and a synthetic capture of cases the guest did not produce
 * (Destination Options, a Routing header, an atomic fragment, ICMPv6 errors quoting a packet,
 * a bad checksum, a Redirect, an RA with several RDNSS servers and search domains, a stateless
 * DHCPv6 INFORMATION-REQUEST and REPLY).
 *
 * tshark runs with IPv6 reassembly off (each fragment is judged alone, as the walk does) and
 * UDP/TCP checksum verification on; ICMPv6 checksums are always verified by tshark.
 */

import { expect } from "chai";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { emitPcapHeader, emitPcapRecordHeader, PCAP_HEADER_LEN, PCAP_RECORD_HEADER_LEN } from "../../src/pcap/format.js";
import { WireError } from "../../src/common/wire-error.js";
import { readPcapFile } from "../../src/pcap/reader.js";
import { emitFragmentHeader, emitOptionsHeader } from "../../src/ipv6/ext.js";
import { emitIcmpv6, icmpv6Len, type Icmpv6Repr } from "../../src/ipv6/icmpv6.js";
import { emitIpv6, IPV6_HEADER_LEN, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { emitNdp, ndpLen, type NdpRepr } from "../../src/ipv6/ndp.js";
import { dhcpv6Len, duidLl, emitDhcpv6, type Dhcpv6Message } from "../../src/ipv6/dhcpv6.js";
import type { Ipv6Addr } from "../../src/ipv6/addr.js";
import { FIELDS, ourFields, type Fields } from "./tshark-fields.js";
import { a6, cat, GATEWAY, GUEST, hex } from "./helpers.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/pcaps/ipv6/", import.meta.url));
const haveTshark = spawnSync("tshark", ["--version"], { encoding: "utf8" }).status === 0;

/** tshark's values of FIELDS for every frame of `file`. */
function tsharkFields(file: string): Fields[] {
  const args = ["-r", file, "-o", "ipv6.defragment:FALSE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-T", "json"];
  for (const f of FIELDS) args.push("-e", f);
  const r = spawnSync("tshark", args, { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`tshark failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as Array<{ _source: { layers: Fields } }>).map((x) => x._source.layers);
}

/** Compare every frame of `file`; returns the fields that were compared on at least one frame. */
function compare(file: string): Set<string> {
  const cap = readPcapFile(file);
  if (cap instanceof WireError) throw new Error(cap.toString());
  const theirs = tsharkFields(file);
  expect(theirs.length).to.equal(cap.packets.length);
  const seen = new Set<string>();
  cap.packets.forEach((p, i) => {
    const d = p.data;
    const ours = d[12] === 0x86 && d[13] === 0xdd ? ourFields(d.subarray(14)) : {};
    for (const field of FIELDS) {
      const want = theirs[i][field] ?? [];
      expect(ours[field] ?? [], `frame ${i + 1} ${field}`).to.deep.equal(want);
      if (want.length > 0) seen.add(field);
    }
  });
  return seen;
}

/** An Ethernet frame around an IPv6 packet. */
function eth(ip: Uint8Array): Uint8Array {
  return cat(hex("525400123456 025000000001 86dd"), ip);
}

/** A whole IPv6 packet: header, then `ext` (extension headers), then the upper layer written by `upper`. */
function pkt(nextHeader: number, ext: Uint8Array, upperLen: number, upper: (b: Uint8Array, off: number) => void, src = GUEST, dst = GATEWAY, hop = 64): Uint8Array {
  const b = new Uint8Array(IPV6_HEADER_LEN + ext.length + upperLen);
  emitIpv6({ src, dst, nextHeader, hopLimit: hop, trafficClass: 0x2e, flowLabel: 0xabcde, payloadLength: ext.length + upperLen }, b);
  b.set(ext, IPV6_HEADER_LEN);
  upper(b, IPV6_HEADER_LEN + ext.length);
  return b;
}

const icmp = (r: Icmpv6Repr, src = GUEST, dst = GATEWAY, nh = 58, ext: Uint8Array = new Uint8Array(0)) =>
  pkt(nh, ext, icmpv6Len(r), (b, o) => emitIcmpv6(r, b, o, src, dst), src, dst);
const nd = (r: NdpRepr, src: ReturnType<typeof a6>, dst: ReturnType<typeof a6>) =>
  pkt(58, new Uint8Array(0), ndpLen(r), (b, o) => emitNdp(r, b, o, src, dst), src, dst, 255);

function udpDatagram(src = GUEST, dst = GATEWAY): Uint8Array {
  return pkt(17, new Uint8Array(0), 12, (b, o) => {
    b.set(hex("d431 0035 000c 0000 61626364"), o);
    const c = (() => {
      let s = 0;
      for (const w of [src.w0, src.w1, src.w2, src.w3, dst.w0, dst.w1, dst.w2, dst.w3]) s += (w >>> 16) + (w & 0xffff);
      s += 12 + 17 + 0xd431 + 0x35 + 12 + 0x6162 + 0x6364;
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      return ~s & 0xffff;
    })();
    b[o + 6] = c >>> 8;
    b[o + 7] = c & 0xff;
  }, src, dst);
}

/** A UDP datagram over IPv6 with its checksum (RFC 8200 §8.1). */
function udp6(srcPort: number, dstPort: number, payload: Uint8Array, src: Ipv6Addr, dst: Ipv6Addr): Uint8Array {
  return pkt(17, new Uint8Array(0), 8 + payload.length, (b, o) => {
    const len = 8 + payload.length;
    b.set([srcPort >>> 8, srcPort & 0xff, dstPort >>> 8, dstPort & 0xff, len >>> 8, len & 0xff, 0, 0], o);
    b.set(payload, o + 8);
    const c = upperLayerChecksum6(b, o, len, src, dst, 17);
    b[o + 6] = c >>> 8;
    b[o + 7] = c & 0xff;
  }, src, dst);
}

function dhcp(m: Dhcpv6Message): Uint8Array {
  const b = new Uint8Array(dhcpv6Len(m));
  emitDhcpv6(m, b);
  return b;
}

function syntheticFrames(): Uint8Array[] {
  const echo: Icmpv6Repr = { kind: "echo-request", id: 0x1234, seq: 7, data: hex("00112233") };
  const destOpts = new Uint8Array(16);
  emitOptionsHeader(58, [{ type: 0x1e, data: hex("0102030405") }], destOpts);
  // A Segment Routing Header (type 4, RFC 8754 §2) with one segment, segments left 0, then a Fragment header.
  const routing = hex("2c02 0400 00000000 20010db8000000000000000000000001");
  const atomic = new Uint8Array(8);
  emitFragmentHeader({ nextHeader: 58, fragmentOffset: 0, moreFragments: false, id: 0xdeadbeef }, atomic);
  const badSum = icmp(echo);
  badSum[IPV6_HEADER_LEN + 2] ^= 0x55;
  const quoted = udpDatagram();
  const ll = a6("fe80::50:ff:fe00:1");
  const guestLl = a6("fe80::5054:ff:fe12:3456");
  return [
    icmp(echo, GUEST, GATEWAY, 60, destOpts),
    icmp(echo, GUEST, GATEWAY, 43, cat(routing, atomic)),
    badSum,
    udpDatagram(),
    icmp({ kind: "dest-unreachable", code: 4, original: quoted }, GATEWAY, GUEST),
    icmp({ kind: "packet-too-big", mtu: 1280, original: quoted }, GATEWAY, GUEST),
    icmp({ kind: "param-problem", code: 1, pointer: 40, original: quoted }, GATEWAY, GUEST),
    icmp({ kind: "time-exceeded", code: 1, original: quoted }, GATEWAY, GUEST),
    nd({
      kind: "ra", curHopLimit: 64, flags: 0x48, routerLifetime: 0, reachableTime: 30000, retransTimer: 1000,
      options: [
        { type: "source-lla", mac: 0x025000000001 },
        { type: "mtu", mtu: 65000 },
        { type: "prefix", prefixLength: 64, flags: 0x80, validLifetime: 0xffffffff, preferredLifetime: 0, prefix: a6("fd53:6b69:6666:1::") },
        { type: "rdnss", lifetime: 600, servers: [a6("fd53:6b69:6666::1"), a6("fd53:6b69:6666::2")] },
        { type: "dnssl", lifetime: 600, domains: ["internal", "docker.internal", "a.b.example"] },
      ],
    }, ll, a6("ff02::1")),
    nd({ kind: "na", router: false, solicited: false, override: true, target: guestLl, options: [{ type: "target-lla", mac: 0x525400123456 }] }, guestLl, a6("ff02::1")),
    nd({ kind: "redirect", target: a6("fe80::9"), destination: a6("2001:db8::9"), options: [{ type: "target-lla", mac: 0x525400000009 }] }, ll, guestLl),
    nd({ kind: "rs", options: [{ type: "source-lla", mac: 0x525400123456 }] }, guestLl, a6("ff02::2")),
    udp6(546, 547, dhcp({
      msgType: 11, transactionId: 0xabcdef,
      options: [
        { type: "client-id", duid: duidLl(0x525400123456) },
        { type: "oro", requested: [23, 24, 32] },
        { type: "elapsed-time", centiseconds: 150 },
      ],
    }), guestLl, a6("ff02::1:2")),
    udp6(547, 546, dhcp({
      msgType: 7, transactionId: 0xabcdef,
      options: [
        { type: "server-id", duid: duidLl(0x025000000001) },
        { type: "client-id", duid: duidLl(0x525400123456) },
        { type: "dns-servers", servers: [a6("fd53:6b69:6666::1"), a6("fd53:6b69:6666::3")] },
        { type: "domain-list", domains: ["internal", "docker.internal"] },
        { type: "information-refresh-time", seconds: 86400 },
        { type: "status", status: 0, message: "all good" },
      ],
    }), ll, guestLl),
  ].map(eth);
}

function writePcap(path: string, frames: Uint8Array[]): void {
  const out = new Uint8Array(PCAP_HEADER_LEN + frames.reduce((n, f) => n + PCAP_RECORD_HEADER_LEN + f.length, 0));
  let o = emitPcapHeader({ linkType: 1, snaplen: 262144, nanosecond: false }, out);
  frames.forEach((f, i) => {
    o += emitPcapRecordHeader({ tsSec: 1_796_000_000 + i, tsFrac: 0, capturedLength: f.length, originalLength: f.length }, out, o);
    out.set(f, o);
    o += f.length;
  });
  writeFileSync(path, out, { mode: 0o600 });
}

describe("ipv6 codecs agree with tshark", function () {
  before(function () {
    if (!haveTshark) {
      console.log("    skipped: tshark is not installed (apt-get install tshark)");
      this.skip();
    }
  });

  const files = readdirSync(FIXTURES).filter((n) => n.endsWith(".pcap")).sort();
  const seen = new Set<string>();

  it("has the recorded IPv6 captures", () => {
    expect(files).to.deep.equal(["frag-ping.pcap", "ndp-slaac.pcap", "skiff-guest.pcap", "udp-tcp.pcap"]);
  });

  for (const name of files) {
    it(`on every frame of ${name}`, () => {
      for (const f of compare(join(FIXTURES, name))) seen.add(f);
    });
  }

  it("on every frame of a synthetic capture of the awkward cases", () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-ipv6-tshark-"));
    try {
      const p = join(dir, "awkward.pcap");
      writePcap(p, syntheticFrames());
      for (const f of compare(p)) seen.add(f);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("compared every field on at least one frame", () => {
    expect(FIELDS.filter((f) => !seen.has(f))).to.deep.equal([]);
  });
});
