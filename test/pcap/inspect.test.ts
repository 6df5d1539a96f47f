import { expect } from "chai";
import fc from "fast-check";
import dnsPacket from "dns-packet";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { inspectCommand, type InspectIo } from "../../src/cli/pcap-inspect.js";
import { setU16 } from "../../src/common/bytes.js";
import { dhcpLen, DhcpOption, emitDhcp, encodeDomainSearch, ipListOption, u32Option, type DhcpRepr } from "../../src/dhcp/wire.js";
import { ArpOp, emitArp, ARP_LEN } from "../../src/ethernet/arp.js";
import { emitEthernet, EtherType, type VlanTag } from "../../src/ethernet/ethernet.js";
import { pseudoHeaderSum } from "../../src/ipv4/checksum.js";
import { emitIcmp, icmpLen, type IcmpRepr } from "../../src/ipv4/icmp.js";
import { emitIpv4, NO_IPV4_OPTIONS, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitUdp } from "../../src/ipv4/udp.js";
import { emitPcapHeader, emitPcapRecordHeader, PCAP_HEADER_LEN, PCAP_RECORD_HEADER_LEN } from "../../src/pcap/format.js";
import { decodeFrame, inspectPacket, formatFrameText, type DecodedFrame, type InspectedFrame } from "../../src/pcap/inspect.js";
import { emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../../src/tcp/wire.js";
import { damaged } from "../support/arbitraries.js";

// ---- frame builders (the codecs' emitters; checksums correct unless a test breaks them) ----

const GUEST_MAC = 0x525400123456;
const GW_MAC = 0x025000000001;
const GUEST = 0xc0a84103; // 192.168.65.3
const GW = 0xc0a84101; // 192.168.65.1

function ethFrame(ethertype: number, payload: Uint8Array, vlan?: VlanTag): Uint8Array {
  const hl = vlan ? 18 : 14;
  const b = new Uint8Array(hl + payload.length);
  emitEthernet(vlan ? { dst: GW_MAC, src: GUEST_MAC, ethertype, vlan } : { dst: GW_MAC, src: GUEST_MAC, ethertype }, b);
  b.set(payload, hl);
  return b;
}

function ipPacket(protocol: number, payload: Uint8Array, over: Partial<Ipv4Repr> = {}): Uint8Array {
  const repr: Ipv4Repr = {
    src: GUEST,
    dst: GW,
    protocol,
    ttl: 64,
    id: 0x1234,
    tos: 0,
    df: true,
    mf: false,
    fragmentOffset: 0,
    payloadLength: payload.length,
    options: NO_IPV4_OPTIONS,
    ...over,
  };
  const b = new Uint8Array(20 + payload.length);
  emitIpv4(repr, b);
  b.set(payload, 20);
  return b;
}

function udpDatagram(srcPort: number, dstPort: number, payload: Uint8Array, checksum = true): Uint8Array {
  const b = new Uint8Array(8 + payload.length);
  emitUdp({ srcPort, dstPort, payload }, b, 0, GUEST, GW, { checksum });
  return b;
}

function tcpSegment(over: Partial<TcpRepr>): Uint8Array {
  const repr: TcpRepr = {
    srcPort: 51736,
    dstPort: 80,
    seq: 1000,
    ack: 0,
    flags: TcpFlag.SYN,
    window: 64240,
    urgentPointer: 0,
    options: {},
    payload: new Uint8Array(0),
    ...over,
  };
  const b = new Uint8Array(tcpLen(repr));
  emitTcp(repr, b, 0, GUEST, GW);
  return b;
}

function icmpMessage(repr: IcmpRepr): Uint8Array {
  const b = new Uint8Array(icmpLen(repr));
  emitIcmp(repr, b);
  return b;
}

const ipFrame = (protocol: number, l4: Uint8Array, over: Partial<Ipv4Repr> = {}) =>
  ethFrame(EtherType.IPv4, ipPacket(protocol, l4, over));
const udpFrame = (srcPort: number, dstPort: number, payload: Uint8Array, checksum = true) =>
  ipFrame(17, udpDatagram(srcPort, dstPort, payload, checksum));

const dnsQuery = dnsPacket.encode({
  type: "query",
  id: 0x37a4,
  flags: dnsPacket.RECURSION_DESIRED,
  questions: [{ type: "A", name: "host.internal" }],
});
const dnsResponse = dnsPacket.encode({
  type: "response",
  id: 0x37a4,
  flags: dnsPacket.AUTHORITATIVE_ANSWER,
  questions: [{ type: "A", name: "host.internal" }],
  answers: [{ type: "A", name: "host.internal", ttl: 60, data: "192.168.65.2" }],
});

function dhcpMessage(options: DhcpRepr["options"], over: Partial<DhcpRepr> = {}): Uint8Array {
  const repr: DhcpRepr = {
    op: 1,
    htype: 1,
    hlen: 6,
    hops: 0,
    xid: 0x8480876f,
    secs: 0,
    broadcast: false,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: GUEST_MAC,
    sname: "",
    file: "",
    options,
    ...over,
  };
  const b = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, b);
  return b;
}

const arpRequest = (() => {
  const a = new Uint8Array(ARP_LEN);
  emitArp({ op: ArpOp.Request, senderMac: GUEST_MAC, senderIp: GUEST, targetMac: 0, targetIp: GW }, a);
  return ethFrame(EtherType.ARP, a);
})();

/** A classic µs pcap file (little-endian) of the given frames. */
function pcapBytes(frames: Array<Uint8Array | { data: Uint8Array; originalLength: number }>, linkType = 1): Uint8Array {
  const recs = frames.map((f) => (f instanceof Uint8Array ? { data: f, originalLength: f.length } : f));
  const out = new Uint8Array(PCAP_HEADER_LEN + recs.reduce((n, r) => n + PCAP_RECORD_HEADER_LEN + r.data.length, 0));
  let o = emitPcapHeader({ linkType, snaplen: 262144, nanosecond: false }, out);
  recs.forEach((r, i) => {
    o += emitPcapRecordHeader({ tsSec: 1_700_000_000 + i, tsFrac: 250, capturedLength: r.data.length, originalLength: r.originalLength }, out, o);
    out.set(r.data, o);
    o += r.data.length;
  });
  return out;
}

function decoded(frame: Uint8Array): DecodedFrame {
  const d = decodeFrame(frame);
  // Every decode result is plain JSON.
  expect(JSON.parse(JSON.stringify(d))).to.deep.equal(d);
  return d;
}

// ---- the layers ----

describe("pcap/inspect decodeFrame", () => {
  it("decodes an ARP request", () => {
    expect(decoded(arpRequest)).to.deep.equal({
      layers: {
        eth: { src: "52:54:00:12:34:56", dst: "02:50:00:00:00:01", type: "0x0806" },
        arp: { op: 1, senderMac: "52:54:00:12:34:56", senderIp: "192.168.65.3", targetMac: "00:00:00:00:00:00", targetIp: "192.168.65.1" },
      },
    });
  });

  it("decodes IPv4 and an ICMP echo request, keeping layer keys in decode order", () => {
    const f = ipFrame(1, icmpMessage({ kind: "echo-request", id: 0x1468, seq: 3, data: new Uint8Array(56).fill(0xab) }), { id: 0x0a87 });
    const d = decoded(f);
    expect(Object.keys(d.layers)).to.deep.equal(["eth", "ipv4", "icmp"]);
    expect(d.layers.ipv4).to.deep.equal({
      src: "192.168.65.3",
      dst: "192.168.65.1",
      protocol: 1,
      ttl: 64,
      id: 0x0a87,
      tos: 0,
      df: true,
      mf: false,
      fragmentOffset: 0,
      totalLength: 84,
      headerLength: 20,
      headerChecksumOk: true,
    });
    expect(d.layers.icmp).to.deep.equal({ type: 8, code: 0, id: 0x1468, seq: 3, checksumOk: true });
    expect(d.error).to.equal(undefined);
  });

  it("decodes an ICMP error with its quoted datagram, and judges the ICMP checksum", () => {
    const quoted = ipPacket(17, udpDatagram(5000, 9999, new Uint8Array(4))).subarray(0, 28);
    const msg = icmpMessage({ kind: "dest-unreachable", code: 4, nextHopMtu: 1400, original: quoted });
    expect(decoded(ipFrame(1, msg)).layers.icmp).to.deep.equal({
      type: 3,
      code: 4,
      nextHopMtu: 1400,
      original: { src: "192.168.65.3", dst: "192.168.65.1", protocol: 17 },
      checksumOk: true,
    });
    msg[9] ^= 1;
    expect(decoded(ipFrame(1, msg)).layers.icmp?.checksumOk).to.equal(false);
  });

  it("decodes UDP and a DNS query and response", () => {
    const q = decoded(udpFrame(33391, 53, dnsQuery));
    expect(Object.keys(q.layers)).to.deep.equal(["eth", "ipv4", "udp", "dns"]);
    expect(q.layers.udp).to.deep.equal({ srcPort: 33391, dstPort: 53, length: 8 + dnsQuery.length, checksumOk: true });
    expect(q.layers.dns).to.deep.include({ id: 0x37a4, qr: false, opcode: "QUERY", questions: [{ name: "host.internal", type: "A", class: "IN" }], answers: [] });
    expect(q.layers.dns?.flags.rd).to.equal(true);
    const r = decoded(udpFrame(53, 33391, dnsResponse));
    expect(r.layers.dns).to.deep.include({ qr: true, rcode: "NOERROR" });
    expect(r.layers.dns?.answers).to.deep.equal([{ name: "host.internal", type: "A", class: "IN", ttl: 60, data: "192.168.65.2" }]);
    expect(r.layers.dns?.flags.aa).to.equal(true);
  });

  it("reports a UDP checksum of zero as null and a wrong one as false", () => {
    expect(decoded(udpFrame(5000, 9999, Uint8Array.of(1, 2, 3), false)).layers.udp?.checksumOk).to.equal(null);
    const f = udpFrame(5000, 9999, Uint8Array.of(1, 2, 3));
    f[14 + 20 + 8] ^= 0x10;
    expect(decoded(f).layers.udp?.checksumOk).to.equal(false);
  });

  it("decodes a DHCP DISCOVER with its options", () => {
    const msg = dhcpMessage([
      { code: DhcpOption.MessageType, data: Uint8Array.of(1) },
      { code: DhcpOption.MaxMessageSize, data: Uint8Array.of(0x02, 0x40) },
      { code: DhcpOption.ParameterList, data: Uint8Array.of(1, 3, 6, 15) },
      { code: DhcpOption.HostName, data: new TextEncoder().encode("skiff-guest") },
      { code: DhcpOption.RequestedIp, data: u32Option(GUEST) },
      { code: DhcpOption.Router, data: ipListOption([GW, GUEST]) },
      { code: DhcpOption.LeaseTime, data: u32Option(7200) },
      { code: DhcpOption.DomainSearch, data: encodeDomainSearch(["internal", "a.internal"]) },
      { code: DhcpOption.ClientId, data: Uint8Array.of(1, 0x52, 0x54, 0, 0x12, 0x34, 0x56) },
      { code: 224, data: Uint8Array.of(0xde, 0xad) },
      { code: DhcpOption.SubnetMask, data: Uint8Array.of(255, 255) }, // wrong length: shown as hex
    ]);
    const d = decoded(udpFrame(68, 67, msg));
    expect(Object.keys(d.layers)).to.deep.equal(["eth", "ipv4", "udp", "dhcp"]);
    expect(d.layers.dhcp).to.deep.equal({
      op: 1,
      xid: 0x8480876f,
      ciaddr: "0.0.0.0",
      yiaddr: "0.0.0.0",
      siaddr: "0.0.0.0",
      giaddr: "0.0.0.0",
      chaddr: "52:54:00:12:34:56",
      messageType: "DISCOVER",
      options: [
        { code: 53, name: "messageType", value: "DISCOVER" },
        { code: 57, name: "maxMessageSize", value: 576 },
        { code: 55, name: "parameterList", value: [1, 3, 6, 15] },
        { code: 12, name: "hostName", value: "skiff-guest" },
        { code: 50, name: "requestedIp", value: "192.168.65.3" },
        { code: 3, name: "router", value: ["192.168.65.1", "192.168.65.3"] },
        { code: 51, name: "leaseTime", value: 7200 },
        { code: 119, name: "domainSearch", value: ["internal", "a.internal"] },
        { code: 61, name: "clientId", value: "01525400123456" },
        { code: 224, value: "dead" },
        { code: 1, name: "subnetMask", value: "ffff" },
      ],
    });
  });

  it("reports a DHCP message cut before its fixed header as a dhcp error", () => {
    const d = decoded(udpFrame(67, 68, new Uint8Array(100)));
    expect(d.layers.udp).to.not.equal(undefined);
    expect(d.error).to.deep.equal({ layer: "dhcp", reason: "truncated" });
  });

  it("decodes a TCP SYN with its options", () => {
    const seg = tcpSegment({
      seq: 2423950958,
      options: { mss: 1460, windowScale: 10, sackPermitted: true, timestamp: { tsVal: 2036042012, tsEcr: 0 } },
    });
    expect(decoded(ipFrame(6, seg)).layers.tcp).to.deep.equal({
      srcPort: 51736,
      dstPort: 80,
      seq: 2423950958,
      ack: 0,
      flags: "SYN",
      flagsValue: 2,
      window: 64240,
      dataOffset: 40,
      urgentPointer: 0,
      options: { mss: 1460, windowScale: 10, sackPermitted: true, timestamp: { tsVal: 2036042012, tsEcr: 0 } },
      checksumOk: true,
      payloadLength: 0,
    });
  });

  it("names TCP flags low bit first, reports SACK blocks and a bad checksum", () => {
    const seg = tcpSegment({
      flags: TcpFlag.ACK | TcpFlag.PSH | TcpFlag.FIN,
      ack: 77,
      options: { sack: [[100, 200]] },
      payload: new Uint8Array(5),
    });
    const tcp = decoded(ipFrame(6, seg)).layers.tcp;
    expect(tcp).to.deep.include({ flags: "FIN,PSH,ACK", flagsValue: 0x19, payloadLength: 5, checksumOk: true });
    expect(tcp?.options).to.deep.equal({ sack: [[100, 200]] });
    seg[seg.length - 1] ^= 1;
    expect(decoded(ipFrame(6, seg)).layers.tcp?.checksumOk).to.equal(false);
  });

  it("decodes DNS over TCP only when the whole length-prefixed message is in the segment", () => {
    const framed = new Uint8Array(2 + dnsQuery.length);
    setU16(framed, 0, dnsQuery.length);
    framed.set(dnsQuery, 2);
    const whole = decoded(ipFrame(6, tcpSegment({ dstPort: 53, flags: TcpFlag.PSH | TcpFlag.ACK, payload: framed })));
    expect(Object.keys(whole.layers)).to.deep.equal(["eth", "ipv4", "tcp", "dns"]);
    expect(whole.layers.dns?.questions).to.deep.equal([{ name: "host.internal", type: "A", class: "IN" }]);
    const part = decoded(ipFrame(6, tcpSegment({ dstPort: 53, flags: TcpFlag.ACK, payload: framed.subarray(0, 10) })));
    expect(Object.keys(part.layers)).to.deep.equal(["eth", "ipv4", "tcp"]);
    expect(part.error).to.equal(undefined);
  });

  it("reports a truncated TCP header as a tcp error after ipv4", () => {
    const seg = tcpSegment({ options: { mss: 1460 } }).subarray(0, 12);
    const d = decoded(ipFrame(6, seg));
    expect(Object.keys(d.layers)).to.deep.equal(["eth", "ipv4"]);
    expect(d.error).to.deep.equal({ layer: "tcp", reason: "truncated" });
    // Data offset pointing past the bytes present.
    const cut = tcpSegment({ options: { mss: 1460, timestamp: { tsVal: 1, tsEcr: 2 } } }).subarray(0, 24);
    expect(decoded(ipFrame(6, cut)).error).to.deep.equal({ layer: "tcp", reason: "truncated" });
  });

  it("reports a bad IPv4 header checksum as headerChecksumOk false and still decodes above it", () => {
    const f = udpFrame(5000, 53, dnsQuery);
    f[14 + 8] = 1; // TTL changed, checksum not
    const d = decoded(f);
    expect(d.layers.ipv4).to.deep.include({ ttl: 1, headerChecksumOk: false });
    expect(d.layers.udp?.checksumOk).to.equal(true);
    expect(d.layers.dns?.id).to.equal(0x37a4);
  });

  it("reports a corrupted DNS message as a dns error after udp", () => {
    const bad = Uint8Array.from(dnsQuery);
    bad[12] = 60; // first label runs past the end
    const d = decoded(udpFrame(5000, 53, bad));
    expect(Object.keys(d.layers)).to.deep.equal(["eth", "ipv4", "udp"]);
    expect(d.error?.layer).to.equal("dns");
    expect(d.error?.reason).to.be.a("string").and.not.equal("");
  });

  it("decodes a first fragment's transport header without judging it, and stops after ipv4 on a later one", () => {
    const udp = udpDatagram(5000, 53, dnsQuery);
    const first = decoded(ipFrame(17, udp.subarray(0, 16), { df: false, mf: true, id: 99 }));
    expect(first.layers.ipv4).to.deep.include({ mf: true, fragmentOffset: 0 });
    expect(first.layers.udp).to.deep.equal({ srcPort: 5000, dstPort: 53, length: udp.length, checksumOk: null });
    expect(first.layers.dns).to.equal(undefined);
    expect(first.error).to.equal(undefined);
    const later = decoded(ipFrame(17, udp.subarray(16), { df: false, fragmentOffset: 16, id: 99 }));
    expect(Object.keys(later.layers)).to.deep.equal(["eth", "ipv4"]);
    expect(later.layers.ipv4).to.deep.include({ mf: false, fragmentOffset: 16, headerChecksumOk: true });
    expect(later.error).to.equal(undefined);
  });

  it("decodes a VLAN-tagged frame", () => {
    const f = ethFrame(EtherType.IPv4, ipPacket(17, udpDatagram(5000, 53, dnsQuery)), { pcp: 5, dei: false, id: 100 });
    const d = decoded(f);
    expect(d.layers.eth).to.deep.equal({ src: "52:54:00:12:34:56", dst: "02:50:00:00:00:01", type: "0x0800", vlan: { id: 100, pcp: 5, dei: false } });
    expect(Object.keys(d.layers)).to.deep.equal(["eth", "ipv4", "udp", "dns"]);
  });

  it("stops cleanly at an unknown EtherType or IP protocol, the number in the last layer", () => {
    const other = decoded(ethFrame(0x88b5, new Uint8Array(40)));
    expect(other).to.deep.equal({ layers: { eth: { src: "52:54:00:12:34:56", dst: "02:50:00:00:00:01", type: "0x88b5" } } });
    // IPv6 is decoded (inspect-ipv6.ts): 40 zero bytes are not version 6.
    expect(decoded(ethFrame(EtherType.IPv6, new Uint8Array(40))).error).to.deep.equal({ layer: "ipv6", reason: "bad version" });
    const gre = decoded(ipFrame(47, new Uint8Array(10)));
    expect(Object.keys(gre.layers)).to.deep.equal(["eth", "ipv4"]);
    expect(gre.layers.ipv4?.protocol).to.equal(47);
    expect(gre.error).to.equal(undefined);
  });

  it("reports failures of the lower layers", () => {
    expect(decoded(new Uint8Array(10))).to.deep.equal({ layers: {}, error: { layer: "eth", reason: "truncated" } });
    expect(decoded(ethFrame(EtherType.ARP, new Uint8Array(28))).error).to.deep.equal({ layer: "arp", reason: "unsupported hardware/protocol" });
    const v5 = ipPacket(17, new Uint8Array(8));
    v5[0] = 0x55;
    expect(decoded(ethFrame(EtherType.IPv4, v5)).error).to.deep.equal({ layer: "ipv4", reason: "bad version" });
    const udp = udpDatagram(1, 2, new Uint8Array(4));
    setU16(udp, 4, 4);
    expect(decoded(ipFrame(17, udp)).error).to.deep.equal({ layer: "udp", reason: "bad length" });
  });

  it("ignores Ethernet padding after the IPv4 Total Length", () => {
    const f = udpFrame(5000, 9999, Uint8Array.of(1, 2));
    const padded = new Uint8Array(60);
    padded.set(f);
    padded.fill(0xee, f.length);
    expect(decoded(padded)).to.deep.equal(decoded(f));
  });
});

describe("pcap/inspect inspectPacket", () => {
  it("does not judge checksums of a datagram cut by the snapshot length, nor decode above it", () => {
    const full = ipFrame(6, tcpSegment({ dstPort: 53, flags: TcpFlag.ACK, options: { mss: 1460 }, payload: new Uint8Array(300) }));
    const f = inspectPacket({ tsSec: 1, tsFrac: 5000, capturedLength: 100, originalLength: full.length, data: full.subarray(0, 100) }, 7, false);
    expect(f).to.deep.include({ frame: 7, time: "1.000005", length: full.length, capturedLength: 100 });
    expect(f.layers.ipv4).to.deep.include({ totalLength: full.length - 14, truncated: true, headerChecksumOk: true });
    expect(f.layers.tcp).to.deep.include({ checksumOk: null, payloadLength: 300, dataOffset: 24 });
    expect(f.error).to.equal(undefined);
  });

  it("also treats a Total Length beyond a complete frame as incomplete", () => {
    const f = udpFrame(5000, 53, dnsQuery);
    setU16(f, 14 + 2, 400); // Total Length beyond the frame (header checksum now wrong)
    const d = decoded(f);
    expect(d.layers.ipv4).to.deep.include({ truncated: true, headerChecksumOk: false });
    expect(d.layers.udp?.checksumOk).to.equal(null);
    expect(d.layers.dns).to.equal(undefined);
  });

  it("bounds the TCP payload length by the bytes the frame had on the wire, not the Total Length claim", () => {
    const full = ipFrame(6, tcpSegment({ flags: TcpFlag.ACK, payload: new Uint8Array(100) }));
    setU16(full, 14 + 2, 1000); // claims 1000 bytes; the frame carries 20 + 20 + 100
    const whole = inspectPacket({ tsSec: 1, tsFrac: 0, capturedLength: full.length, originalLength: full.length, data: full }, 1, false);
    expect(whole.layers.tcp).to.deep.include({ payloadLength: 100, checksumOk: null });
    // Cut by the snapshot length: the frame on the wire was longer, the claim stands (tshark agrees).
    const cut = inspectPacket({ tsSec: 1, tsFrac: 0, capturedLength: 60, originalLength: 1014, data: full.subarray(0, 60) }, 2, false);
    expect(cut.layers.tcp).to.deep.include({ payloadLength: 960 });
  });

  it("formats times with 6 decimals for µs files and 9 for ns files", () => {
    const p = { tsSec: 1795426394, tsFrac: 750395498, capturedLength: 0, originalLength: 0, data: new Uint8Array(0) };
    expect(inspectPacket(p, 1, true).time).to.equal("1795426394.750395498");
    expect(inspectPacket({ ...p, tsFrac: 750395000 }, 1, false).time).to.equal("1795426394.750395");
    expect(inspectPacket({ ...p, tsFrac: 5000 }, 1, false).time).to.equal("1795426394.000005");
  });

  it("leaves a frame check sequence out of the decode", () => {
    const withFcs = new Uint8Array(arpRequest.length + 4);
    withFcs.set(arpRequest);
    const p = { tsSec: 0, tsFrac: 0, capturedLength: withFcs.length, originalLength: withFcs.length, data: withFcs };
    expect(inspectPacket(p, 1, false, 4).layers).to.deep.equal(decodeFrame(arpRequest).layers);
  });

  it("writes one text line naming every layer, with the error last", () => {
    const f = inspectPacket({ tsSec: 0, tsFrac: 0, capturedLength: arpRequest.length, originalLength: arpRequest.length, data: arpRequest }, 3, false);
    expect(formatFrameText(f, 123_000n, false)).to.equal(
      "3 0.000123 eth 52:54:00:12:34:56→02:50:00:00:00:01 0x0806 | arp request who-has 192.168.65.1 tell 192.168.65.3",
    );
    const bad = Uint8Array.from(dnsQuery);
    bad[12] = 60;
    const frame = udpFrame(5000, 53, bad);
    const g = inspectPacket({ tsSec: 0, tsFrac: 0, capturedLength: frame.length, originalLength: frame.length, data: frame }, 4, true);
    const line = formatFrameText(g, 0n, true);
    expect(line).to.match(/^4 0\.000000000 eth .* \| ipv4 192\.168\.65\.3→192\.168\.65\.1 .* \| udp 5000→53 len \d+ \| error dns: .+$/);
    expect(line).to.not.include("\n");
  });

  it("calls a checksum holding only the pseudo-header sum partial (offload), not bad", () => {
    const repr: TcpRepr = { srcPort: 40000, dstPort: 80, seq: 1, ack: 2, flags: TcpFlag.ACK, window: 500, urgentPointer: 0, options: {}, payload: new Uint8Array(30).fill(3) };
    const seg = new Uint8Array(tcpLen(repr));
    emitTcp(repr, seg, 0, GUEST, GW, true); // the offload form: pseudo-header sum only
    const udp = udpDatagram(5000, 9999, Uint8Array.of(1, 2, 3));
    setU16(udp, 6, pseudoHeaderSum(GUEST, GW, 17, udp.length));
    const line = (frame: Uint8Array) => {
      const f = inspectPacket({ tsSec: 0, tsFrac: 0, capturedLength: frame.length, originalLength: frame.length, data: frame }, 1, false);
      return { f, text: formatFrameText(f, 0n, false) };
    };
    const t = line(ipFrame(6, seg));
    expect(t.f.layers.tcp).to.deep.include({ checksumOk: false, checksumPartial: true });
    expect(t.text).to.match(/ len 30 partial-checksum\(offload\)$/);
    const u = line(ipFrame(17, udp));
    expect(u.f.layers.udp).to.deep.include({ checksumOk: false, checksumPartial: true });
    expect(u.text).to.match(/udp 5000→9999 len 11 partial-checksum\(offload\)$/);
    // Any other wrong value is bad, and not called partial.
    seg[16] ^= 1;
    const b = line(ipFrame(6, seg));
    expect(b.f.layers.tcp?.checksumPartial).to.equal(undefined);
    expect(b.text).to.match(/ bad-checksum$/);
  });

  it("escapes control characters from the wire in text lines", () => {
    const msg = dhcpMessage([{ code: DhcpOption.HostName, data: new TextEncoder().encode("evil\nname") }]);
    const frame = udpFrame(68, 67, msg);
    const f = inspectPacket({ tsSec: 0, tsFrac: 0, capturedLength: frame.length, originalLength: frame.length, data: frame }, 1, false);
    const line = formatFrameText(f, 0n, false);
    expect(line).to.not.include("\n");
    expect(line).to.include('hostName="evil\\nname"');
  });
});

// ---- robustness ----

/** Valid frames of every kind, to damage. */
const SAMPLES: Uint8Array[] = [
  arpRequest,
  ipFrame(1, icmpMessage({ kind: "echo-request", id: 1, seq: 1, data: new Uint8Array(16) })),
  udpFrame(5000, 53, dnsQuery),
  udpFrame(53, 5000, dnsResponse),
  udpFrame(68, 67, dhcpMessage([{ code: 53, data: Uint8Array.of(1) }, { code: 119, data: encodeDomainSearch(["a.b", "c.b"]) }])),
  ipFrame(6, tcpSegment({ options: { mss: 1460, windowScale: 7, sackPermitted: true, timestamp: { tsVal: 1, tsEcr: 2 } } })),
  ipFrame(6, tcpSegment({ dstPort: 53, flags: TcpFlag.ACK, payload: Uint8Array.of(0, dnsQuery.length, ...dnsQuery) })),
  ethFrame(EtherType.IPv4, ipPacket(17, udpDatagram(1, 53, dnsQuery)), { pcp: 1, dei: true, id: 7 }),
];

const LAYER_NAMES = ["eth", "arp", "ipv4", "icmp", "udp", "tcp", "dhcp", "dns"];

function checkDecode(frame: Uint8Array): void {
  const d = decodeFrame(frame);
  const text = JSON.stringify(d);
  expect(text).to.be.a("string");
  for (const k of Object.keys(d.layers)) expect(LAYER_NAMES).to.include(k);
  if (d.error) expect(LAYER_NAMES).to.include(d.error.layer);
}

describe("pcap/inspect robustness", () => {
  it("never throws on random bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => checkDecode(b)), { numRuns: 2000 });
  });

  it("never throws on damaged valid frames", () => {
    fc.assert(
      fc.property(fc.constantFrom(...SAMPLES), fc.nat(), (f, seed) => checkDecode(damaged(f, seed))),
      { numRuns: 3000 },
    );
  });

  it("never throws on random transport payloads behind valid headers", () => {
    const ports = fc.constantFrom(53, 67, 68, 80, 5000);
    fc.assert(
      fc.property(ports, ports, fc.uint8Array({ maxLength: 400 }), fc.boolean(), (sp, dp, payload, tcp) => {
        checkDecode(tcp ? ipFrame(6, tcpSegment({ srcPort: sp, dstPort: dp, payload })) : udpFrame(sp, dp, payload));
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on random DHCP options", () => {
    const option = fc.record({ code: fc.integer({ min: 1, max: 254 }), data: fc.uint8Array({ maxLength: 20 }) });
    fc.assert(
      fc.property(fc.array(option, { maxLength: 10 }), (options) => checkDecode(udpFrame(68, 67, dhcpMessage(options)))),
      { numRuns: 1000 },
    );
  });

  it("ends on a DHCP domain search list whose pointer points at itself", function () {
    // Run in a child process: a decoder stuck in a loop must fail this test, not hang mocha.
    this.timeout(30_000);
    const frame = udpFrame(68, 67, dhcpMessage([{ code: DhcpOption.DomainSearch, data: Uint8Array.of(1, 0x61, 0xc0, 0x02) }]));
    const code =
      `import { decodeFrame } from ${JSON.stringify(new URL("../../src/pcap/inspect.ts", import.meta.url).href)};` +
      `const d = decodeFrame(Uint8Array.from(${JSON.stringify(Array.from(frame))}));` +
      `process.stdout.write(JSON.stringify(d.layers.dhcp?.options ?? null));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8", timeout: 20_000 });
    expect(r.signal, "decodeFrame did not return").to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    const options = JSON.parse(r.stdout) as Array<{ code: number; value: unknown }>;
    expect(options).to.deep.equal([{ code: 119, name: "domainSearch", value: "0161c002" }]);
  });
});

// ---- the command ----

const FIXTURES = fileURLToPath(new URL("../../fixtures/pcaps/", import.meta.url));

interface Run {
  status: number;
  out: string;
  err: string;
  writes: number;
}

function run(file: string, json: boolean, stopAfterWrites = Infinity): Run {
  const r: Run = { status: -1, out: "", err: "", writes: 0 };
  const io: InspectIo = {
    out: (text) => {
      r.writes++;
      r.out += text;
      return r.writes < stopAfterWrites;
    },
    err: (text) => {
      r.err += text;
    },
  };
  r.status = inspectCommand(file, { json }, io);
  return r;
}

describe("skiff pcap inspect (inspectCommand)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-inspect-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it("prints one JSON object per frame of a fixture", () => {
    const r = run(join(FIXTURES, "dns-query.pcap"), true);
    expect(r.status).to.equal(0);
    expect(r.err).to.equal("");
    const frames = r.out.trimEnd().split("\n").map((l) => JSON.parse(l) as InspectedFrame);
    expect(frames.map((f) => f.frame)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(frames[0].time).to.match(/^\d+\.\d{6}$/);
    expect(Object.keys(frames[3].layers)).to.deep.equal(["eth", "ipv4", "udp", "dns"]);
    expect(frames[3].layers.dns?.answers[0]).to.deep.include({ name: "host.internal", type: "A", data: "192.168.65.2" });
  });

  it("prints nanosecond times for a nanosecond file", () => {
    const r = run(join(FIXTURES, "guest-session-ns.pcap"), true);
    expect(r.status).to.equal(0);
    const first = JSON.parse(r.out.split("\n")[0]) as InspectedFrame;
    expect(first.time).to.match(/^\d+\.\d{9}$/);
  });

  it("prints one text line per frame, times relative to the first", () => {
    const r = run(join(FIXTURES, "tcp-curl.pcap"), false);
    expect(r.status).to.equal(0);
    const lines = r.out.trimEnd().split("\n");
    expect(lines).to.have.length(14);
    expect(lines[0]).to.match(/^1 0\.000000 eth 52:54:00:12:34:56→ff:ff:ff:ff:ff:ff 0x0806 \| arp request who-has 192\.168\.65\.1 tell 192\.168\.65\.3$/);
    expect(lines[2]).to.match(/^3 0\.0000\d\d eth .* \| ipv4 .* \| tcp 51736→80 \[SYN\] seq \d+ ack 0 win 64240 len 0 mss=1460,ws=10,sackOK,ts=\d+\/0$/);
  });

  it("refuses a file that is not pcap, pcapng, a truncated header or a missing file", () => {
    const cases: Array<[string, string | Uint8Array, RegExp]> = [
      ["text.pcap", "hello, this is not a capture at all\n", /: not a pcap file \(magic 0x68656c6c\)$/],
      ["ng.pcapng", Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a), /: pcapng is not supported; convert with editcap -F pcap$/],
      ["short.pcap", pcapBytes([]).subarray(0, 10), /: truncated header$/],
      ["empty.pcap", new Uint8Array(0), /: truncated header$/],
    ];
    for (const [name, bytes, message] of cases) {
      const p = file(name, bytes);
      const r = run(p, false);
      expect(r.status, name).to.equal(1);
      expect(r.out, name).to.equal("");
      expect(r.err.startsWith(`skiff: ${p}: `), r.err).to.equal(true);
      expect(r.err.trimEnd(), name).to.match(message);
    }
    const missing = run(join(dir, "nope.pcap"), true);
    expect(missing.status).to.equal(1);
    expect(missing.err).to.equal(`skiff: ${join(dir, "nope.pcap")}: cannot open: ENOENT\n`);
    const directory = run(dir, true);
    expect(directory.status).to.equal(1);
    expect(directory.err).to.match(/: cannot read: EISDIR\n$/);
  });

  it("refuses a link type other than Ethernet", () => {
    const p = file("raw.pcap", pcapBytes([ipPacket(17, udpDatagram(1, 2, new Uint8Array(1)))], 101));
    const r = run(p, true);
    expect(r.status).to.equal(1);
    expect(r.out).to.equal("");
    expect(r.err).to.equal(`skiff: ${p}: link type 101 is not Ethernet (1); only Ethernet captures can be inspected\n`);
  });

  it("prints the frames before a truncated last record, then warns and exits 1", () => {
    const whole = pcapBytes([arpRequest, udpFrame(5000, 53, dnsQuery), arpRequest]);
    const p = file("cut.pcap", whole.subarray(0, whole.length - 5));
    const r = run(p, true);
    expect(r.status).to.equal(1);
    expect(r.out.trimEnd().split("\n").map((l) => (JSON.parse(l) as InspectedFrame).frame)).to.deep.equal([1, 2]);
    expect(r.err).to.equal(`skiff: ${p}: warning: truncated record after 2 packets\n`);
  });

  it("decodes any frame of a well-formed file, reporting captured and original lengths", () => {
    const frames = [new Uint8Array(0), Uint8Array.of(1, 2, 3), { data: arpRequest.subarray(0, 20), originalLength: 42 }];
    const r = run(file("odd.pcap", pcapBytes(frames)), true);
    expect(r.status).to.equal(0);
    const out = r.out.trimEnd().split("\n").map((l) => JSON.parse(l) as InspectedFrame);
    expect(out.map((f) => f.error)).to.deep.equal([
      { layer: "eth", reason: "truncated" },
      { layer: "eth", reason: "truncated" },
      { layer: "arp", reason: "truncated" },
    ]);
    expect(out[2]).to.deep.include({ length: 42, capturedLength: 20, time: "1700000002.000250" });
  });

  it("stops quietly when the reader goes away", () => {
    const frames = Array.from({ length: 3000 }, () => udpFrame(5000, 53, dnsQuery));
    const r = run(file("big.pcap", pcapBytes(frames)), true, 1);
    expect(r.status).to.equal(0);
    expect(r.writes).to.equal(1);
    expect(r.err).to.equal("");
  });

  it("ends without a stack trace when stdout is a pipe closed early (| head)", function () {
    this.timeout(60_000);
    const frames = Array.from({ length: 5000 }, () => udpFrame(5000, 53, dnsQuery));
    const p = file("pipe.pcap", pcapBytes(frames));
    const cli = new URL("../../src/cli/pcap-inspect.ts", import.meta.url).href;
    const code = `import { inspectCommand } from ${JSON.stringify(cli)}; process.exitCode = inspectCommand(process.env.PCAP, { json: true });`;
    const script = file("run.mjs", code);
    const r = spawnSync("bash", ["-c", `"${process.execPath}" --import tsx "${script}" | head -n 2; echo "status=\${PIPESTATUS[0]}"`], {
      encoding: "utf8",
      env: { ...process.env, PCAP: p },
      cwd: fileURLToPath(new URL("../../", import.meta.url)),
    });
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).to.have.length(3);
    expect((JSON.parse(lines[1]) as InspectedFrame).frame).to.equal(2);
    expect(lines[2]).to.equal("status=0");
    expect(r.stderr).to.not.match(/Error|at /);
    expect(readFileSync(p).length).to.be.greaterThan(100_000);
  });
});
