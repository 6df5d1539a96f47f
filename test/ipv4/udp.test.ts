import { expect } from "chai";
import fc from "fast-check";
import { emitUdp, parseUdp, UDP_HEADER_LEN, udpLen, UdpPacket, type UdpRepr } from "../../src/ipv4/udp.js";
import { WireError } from "../../src/common/wire-error.js";
import { bytes, damaged, ipv4, u16 } from "../support/arbitraries.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const reprArb: fc.Arbitrary<UdpRepr> = fc.record({
  srcPort: u16(),
  dstPort: u16(),
  payload: fc.oneof(bytes(64), bytes(1500)),
});

function reason(x: unknown): string {
  expect(x).to.be.instanceOf(WireError);
  expect((x as WireError).layer).to.equal("udp");
  return (x as WireError).reason;
}

const GUEST = 0xc0a84103; // 192.168.65.3
const GATEWAY = 0xc0a84101; // 192.168.65.1

// fixtures/pcaps/dns-query.pcap frame 3 (UDP part): dig's A query for host.internal,
// 192.168.65.3:33391 -> 192.168.65.1:53, Length 62, checksum 0xd769.
const DNS_PAYLOAD = hex(
  "37 a4 01 20 00 01 00 00 00 00 00 01 04 68 6f 73 74 08 69 6e 74 65 72 6e 61 6c 00 00 01 00 01" +
    "00 00 29 04 d0 00 00 00 00 00 0c 00 0a 00 08 29 4a 1f 10 55 d8 2a 6c",
);
const DNS_QUERY = hex("82 6f 00 35 00 3e d7 69" + toHex(DNS_PAYLOAD));
// 192.168.65.3:4660 -> 192.168.65.1:53 with two payload bytes chosen so that the computed
// checksum is 0: it goes on the wire as 0xffff (RFC 768; checked with tshark 4.0).
const ZERO_SUM = hex("12 34 00 35 00 0a ff ff ea 1b");

describe("ipv4/udp codec (RFC 768)", () => {
  it("parse(emit(r)) equals r, with and without a checksum", () => {
    fc.assert(
      fc.property(reprArb, ipv4(), ipv4(), fc.boolean(), fc.nat(5), (r, src, dst, sum, off) => {
        const buf = new Uint8Array(off + udpLen(r));
        expect(emitUdp(r, buf, off, src, dst, { checksum: sum })).to.equal(udpLen(r));
        const d = buf.subarray(off);
        expect(parseUdp(d, src, dst)).to.deep.equal(r);
        const p = new UdpPacket(d);
        expect(p.check()).to.equal(true);
        expect(p.length).to.equal(d.length);
        expect(p.checksumOk(src, dst)).to.equal(sum ? true : null);
        if (sum) expect(p.checksum).to.not.equal(0);
      }),
      { numRuns: 200 },
    );
  });

  it("decodes a real DNS query datagram field by field", () => {
    const p = new UdpPacket(DNS_QUERY);
    expect(p.check()).to.equal(true);
    expect([p.srcPort, p.dstPort, p.length, p.checksum]).to.deep.equal([33391, 53, 62, 0xd769]);
    expect(p.checksumOk(GUEST, GATEWAY)).to.equal(true);
    expect(toHex(p.payload)).to.equal(toHex(DNS_PAYLOAD));
    expect(parseUdp(DNS_QUERY, GUEST, GATEWAY)).to.deep.equal({ srcPort: 33391, dstPort: 53, payload: DNS_PAYLOAD });
  });

  it("emits the real DNS query byte for byte, checksum included", () => {
    const buf = new Uint8Array(DNS_QUERY.length);
    expect(emitUdp({ srcPort: 33391, dstPort: 53, payload: DNS_PAYLOAD }, buf, 0, GUEST, GATEWAY)).to.equal(62);
    expect(toHex(buf)).to.equal(toHex(DNS_QUERY));
  });

  it("emits a computed-zero checksum as 0xffff, and accepts it", () => {
    const buf = new Uint8Array(10);
    emitUdp({ srcPort: 0x1234, dstPort: 53, payload: hex("ea1b") }, buf, 0, GUEST, GATEWAY);
    expect(toHex(buf)).to.equal(toHex(ZERO_SUM));
    expect(new UdpPacket(buf).checksumOk(GUEST, GATEWAY)).to.equal(true);
    expect(parseUdp(buf, GUEST, GATEWAY)).to.deep.equal({ srcPort: 0x1234, dstPort: 53, payload: hex("ea1b") });
  });

  it("accepts a zero checksum as none", () => {
    const none = Uint8Array.from(DNS_QUERY);
    none[6] = 0;
    none[7] = 0;
    expect(new UdpPacket(none).checksumOk(GUEST, GATEWAY)).to.equal(null);
    expect(parseUdp(none, GUEST, GATEWAY)).to.deep.equal({ srcPort: 33391, dstPort: 53, payload: DNS_PAYLOAD });
    const buf = new Uint8Array(DNS_QUERY.length);
    emitUdp({ srcPort: 33391, dstPort: 53, payload: DNS_PAYLOAD }, buf, 0, GUEST, GATEWAY, { checksum: false });
    expect(toHex(buf)).to.equal(toHex(none));
  });

  it("rejects a corrupted checksum, or the wrong pseudo-header, unless told not to verify", () => {
    for (const i of [0, 7, 20, DNS_QUERY.length - 1]) {
      const bad = Uint8Array.from(DNS_QUERY);
      bad[i] ^= 0x04;
      expect(reason(parseUdp(bad, GUEST, GATEWAY)), `byte ${i}`).to.equal("bad checksum");
      expect(new UdpPacket(bad).checksumOk(GUEST, GATEWAY)).to.equal(false);
      expect(parseUdp(bad, GUEST, GATEWAY, { verifyChecksum: false })).to.not.be.instanceOf(WireError);
    }
    expect(reason(parseUdp(DNS_QUERY, GUEST, GATEWAY + 1))).to.equal("bad checksum");
    expect(reason(parseUdp(DNS_QUERY, GATEWAY, GUEST + 0x100))).to.equal("bad checksum");
  });

  it("ignores bytes after Length (Ethernet padding, a longer IP payload)", () => {
    const padded = new Uint8Array(DNS_QUERY.length + 6).fill(0x5a);
    padded.set(DNS_QUERY);
    expect(parseUdp(padded, GUEST, GATEWAY)).to.deep.equal({ srcPort: 33391, dstPort: 53, payload: DNS_PAYLOAD });
    const p = new UdpPacket(padded);
    expect(p.check()).to.equal(true);
    expect(p.payload.length).to.equal(54);
    expect(p.checksumOk(GUEST, GATEWAY)).to.equal(true);
  });

  it("names truncation and a bad Length", () => {
    expect(reason(parseUdp(DNS_QUERY.subarray(0, 7), GUEST, GATEWAY))).to.equal("truncated");
    expect(reason(parseUdp(DNS_QUERY.subarray(0, 61), GUEST, GATEWAY))).to.equal("truncated");
    expect(new UdpPacket(DNS_QUERY.subarray(0, 61)).check()).to.equal(false);
    const short = Uint8Array.from(DNS_QUERY);
    short[4] = 0;
    short[5] = 7;
    expect(reason(parseUdp(short, GUEST, GATEWAY, { verifyChecksum: false }))).to.equal("bad length");
    expect(new UdpPacket(short).check()).to.equal(false);
  });

  it("emits an empty datagram and refuses one longer than 65535 bytes", () => {
    const buf = new Uint8Array(UDP_HEADER_LEN);
    expect(emitUdp({ srcPort: 1, dstPort: 2, payload: new Uint8Array(0) }, buf, 0, GUEST, GATEWAY)).to.equal(8);
    expect(parseUdp(buf, GUEST, GATEWAY)).to.deep.equal({ srcPort: 1, dstPort: 2, payload: new Uint8Array(0) });
    const big = new Uint8Array(0xffff - 7);
    expect(() => emitUdp({ srcPort: 1, dstPort: 2, payload: big }, new Uint8Array(0x10000), 0, GUEST, GATEWAY)).to.throw(
      RangeError,
    );
  });

  it("emits a payload that already sits in place", () => {
    const buf = new Uint8Array(DNS_QUERY.length);
    buf.set(DNS_PAYLOAD, UDP_HEADER_LEN);
    emitUdp({ srcPort: 33391, dstPort: 53, payload: buf.subarray(UDP_HEADER_LEN) }, buf, 0, GUEST, GATEWAY);
    expect(toHex(buf)).to.equal(toHex(DNS_QUERY));
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, ipv4(), ipv4(), fc.nat(), fc.uint8Array({ maxLength: 40 }), (r, src, dst, seed, junk) => {
        const buf = new Uint8Array(udpLen(r));
        emitUdp(r, buf, 0, src, dst);
        for (const input of [damaged(buf, seed), junk]) {
          for (const opts of [undefined, { verifyChecksum: false }]) {
            const p = parseUdp(input, src, dst, opts);
            expect(p instanceof WireError || typeof p.srcPort === "number").to.equal(true);
          }
        }
      }),
    );
  });
});
