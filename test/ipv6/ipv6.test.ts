/** Tests of src/ipv6/ipv6.ts: the fixed header (RFC 8200 §3) by hand and from a capture, round trips, damaged input, the §8.1 pseudo-header sum. */
import { expect } from "chai";
import fc from "fast-check";
import { onesSum } from "../../src/ipv4/checksum.js";
import { WireError } from "../../src/common/wire-error.js";
import { formatIpv6, writeIpv6Addr } from "../../src/ipv6/addr.js";
import {
  emitIpv6,
  IPV6_HEADER_LEN,
  ipv6BufferLen,
  Ipv6Packet,
  NextHeader,
  parseIpv6,
  pseudoHeaderSum6,
  upperLayerChecksum6,
  type Ipv6Repr,
} from "../../src/ipv6/ipv6.js";
import { damaged, u8 } from "../support/arbitraries.js";
import { a6, hex, ipv6Addr, reasonOf, toHex } from "./helpers.js";

const reprArb: fc.Arbitrary<Ipv6Repr> = fc.record({
  src: ipv6Addr(),
  dst: ipv6Addr(),
  nextHeader: u8(),
  hopLimit: u8(),
  trafficClass: u8(),
  flowLabel: fc.integer({ min: 0, max: 0xfffff }),
  payloadLength: fc.oneof(fc.nat(1500), fc.nat(0xffff)),
});

function packet(r: Ipv6Repr, off = 0, pad = 0): Uint8Array {
  const buf = new Uint8Array(off + ipv6BufferLen(r) + pad);
  expect(emitIpv6(r, buf, off)).to.equal(IPV6_HEADER_LEN);
  return buf.subarray(off);
}

// RFC 8200 §3 by hand: version 6, traffic class 0x12, flow label 0x34567, payload 8,
// Next Header 17 (UDP), Hop Limit 64, 2001:db8::1 -> 2001:db8::2.
const HAND = hex(`
  6 12 34567  0008 11 40
  20010db8000000000000000000000001
  20010db8000000000000000000000002`);
const HAND_REPR: Ipv6Repr = {
  src: a6("2001:db8::1"),
  dst: a6("2001:db8::2"),
  nextHeader: NextHeader.UDP,
  hopLimit: 64,
  trafficClass: 0x12,
  flowLabel: 0x34567,
  payloadLength: 8,
};

// fixtures/pcaps/ipv6/ndp-slaac.pcap frame 3 (dnsmasq's Router Advertisement), from the IPv6
// header on: traffic class 0xc0, flow label 0x882d7, ICMPv6 checksum 0x1e03 ("correct" per tshark).
const RA_PACKET = hex(`
  6c0882d7 0070 3a ff fe800000000000000050 00fffe000001 ff020000000000000000000000000001
  8600 1e03 40 40 0708 00000000 00000000
  0304 40c0 00000e10 00000e10 00000000 fd536b69666600000000000000000000
  0501 0000 000005dc
  0101 025000000001
  1f03 0000 00000e10 08696e7465726e616c 00000000000000
  1903 0000 00000e10 fd536b69666600000000000000000001`);

describe("ipv6/ipv6 codec (RFC 8200 §3, §8.1)", () => {
  it("decodes and emits the hand-written header byte for byte", () => {
    const d = new Uint8Array(48);
    d.set(HAND);
    expect(parseIpv6(d)).to.deep.equal(HAND_REPR);
    const buf = new Uint8Array(40);
    emitIpv6(HAND_REPR, buf);
    expect(toHex(buf)).to.equal(toHex(HAND));
    const p = new Ipv6Packet(d);
    expect(p.check()).to.equal(true);
    expect([p.version, p.trafficClass, p.flowLabel, p.payloadLength, p.nextHeader, p.hopLimit]).to.deep.equal([6, 0x12, 0x34567, 8, 17, 64]);
    expect([formatIpv6(p.src), formatIpv6(p.dst)]).to.deep.equal(["2001:db8::1", "2001:db8::2"]);
    expect([p.srcIs(HAND_REPR.src), p.dstIs(HAND_REPR.dst), p.dstIs(HAND_REPR.src), p.dstIsMulticast]).to.deep.equal([true, true, false, false]);
  });

  it("decodes a real Router Advertisement's header and verifies its ICMPv6 checksum with the pseudo-header", () => {
    const r = parseIpv6(RA_PACKET);
    if (r instanceof WireError) throw new Error(r.toString());
    expect([r.trafficClass, r.flowLabel, r.payloadLength, r.nextHeader, r.hopLimit]).to.deep.equal([0xc0, 0x882d7, 112, 58, 255]);
    expect([formatIpv6(r.src), formatIpv6(r.dst)]).to.deep.equal(["fe80::50:ff:fe00:1", "ff02::1"]);
    expect(new Ipv6Packet(RA_PACKET).dstIsMulticast).to.equal(true);
    const icmp = RA_PACKET.slice(40);
    expect(upperLayerChecksum6(icmp, 0, icmp.length, r.src, r.dst, 58)).to.equal(0);
    icmp[2] = icmp[3] = 0;
    expect(upperLayerChecksum6(icmp, 0, icmp.length, r.src, r.dst, 58)).to.equal(0x1e03);
    // Any other source, destination or protocol breaks it.
    expect(upperLayerChecksum6(RA_PACKET, 40, 112, r.dst, r.src, 58)).to.equal(0); // symmetric sum
    expect(upperLayerChecksum6(RA_PACKET, 40, 112, r.src, a6("ff02::2"), 58)).to.not.equal(0);
    expect(upperLayerChecksum6(RA_PACKET, 40, 112, r.src, r.dst, 17)).to.not.equal(0);
  });

  it("pseudoHeaderSum6 equals the sum over the RFC 8200 §8.1 pseudo-header laid out in bytes", () => {
    fc.assert(
      fc.property(ipv6Addr(), ipv6Addr(), u8(), fc.integer({ min: 0, max: 0xffff_ffff }), (src, dst, nh, len) => {
        const ph = new Uint8Array(40);
        writeIpv6Addr(ph, 0, src);
        writeIpv6Addr(ph, 16, dst);
        new DataView(ph.buffer).setUint32(32, len);
        ph[39] = nh;
        expect(pseudoHeaderSum6(src, dst, nh, len)).to.equal(onesSum(ph, 0, 40));
      }),
      { numRuns: 300 },
    );
  });

  it("parse(emit(r)) equals r, at any offset and with padding after the payload", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(5), fc.nat(20), (r, off, pad) => {
        expect(parseIpv6(packet(r, off, pad))).to.deep.equal(r);
      }),
      { numRuns: 200 },
    );
  });

  it("the view agrees with parse on every field", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const p = new Ipv6Packet(packet(r));
        expect(p.check()).to.equal(true);
        expect({
          src: p.src, dst: p.dst, nextHeader: p.nextHeader, hopLimit: p.hopLimit, trafficClass: p.trafficClass,
          flowLabel: p.flowLabel, payloadLength: p.payloadLength,
        }).to.deep.equal(r);
        expect(p.payload.length).to.equal(r.payloadLength);
      }),
      { numRuns: 50 },
    );
  });

  it("names each malformation with its own reason", () => {
    const d = new Uint8Array(48);
    d.set(HAND);
    expect(reasonOf(parseIpv6(d.subarray(0, 39)), "ipv6")).to.equal("truncated");
    expect(reasonOf(parseIpv6(d.subarray(0, 47)), "ipv6")).to.equal("truncated"); // Payload Length 8
    const v4 = Uint8Array.from(d);
    v4[0] = 0x45;
    expect(reasonOf(parseIpv6(v4), "ipv6")).to.equal("bad version");
    expect(new Ipv6Packet(v4).check()).to.equal(false);
    expect(new Ipv6Packet(d.subarray(0, 47)).check()).to.equal(false);
    // A quoted packet cut short is readable on request (RFC 4443 §2.4(c)).
    expect(parseIpv6(d.subarray(0, 40), { allowTruncated: true })).to.deep.equal(HAND_REPR);
  });

  it("hopLimit can be rewritten in place", () => {
    const d = Uint8Array.from(HAND);
    const p = new Ipv6Packet(d);
    p.hopLimit = p.hopLimit - 1;
    expect(d[7]).to.equal(63);
  });

  it("throws RangeError for reprs it cannot encode", () => {
    const buf = new Uint8Array(40);
    expect(() => emitIpv6({ ...HAND_REPR, payloadLength: 0x10000 }, buf)).to.throw(RangeError);
    expect(() => emitIpv6({ ...HAND_REPR, trafficClass: 256 }, buf)).to.throw(RangeError);
    expect(() => emitIpv6({ ...HAND_REPR, flowLabel: 0x100000 }, buf)).to.throw(RangeError);
    expect(() => emitIpv6({ ...HAND_REPR, flowLabel: -1 }, buf)).to.throw(RangeError);
    expect(emitIpv6({ ...HAND_REPR, payloadLength: 0xffff }, buf)).to.equal(40);
  });

  it("check() accepts exactly what parse accepts, and parse never throws on damaged or random bytes", () => {
    fc.assert(
      fc.property(reprArb.filter((r) => r.payloadLength < 100), fc.nat(), fc.uint8Array({ maxLength: 80 }), (r, seed, junk) => {
        for (const input of [damaged(packet(r), seed), junk]) {
          const parsed = parseIpv6(input);
          expect(new Ipv6Packet(input).check()).to.equal(!(parsed instanceof WireError));
          const loose = parseIpv6(input, { allowTruncated: true });
          expect(loose instanceof WireError || loose.payloadLength >= 0).to.equal(true);
        }
      }),
    );
  });
});
