import { expect } from "chai";
import fc from "fast-check";
import {
  emitIpv4,
  IpProtocol,
  IPV4_MIN_HEADER_LEN,
  ipv4HeaderLen,
  Ipv4Packet,
  isFragment,
  NO_IPV4_OPTIONS,
  parseIpv4,
  type Ipv4Repr,
} from "../../src/ipv4/ipv4.js";
import { WireError } from "../../src/common/wire-error.js";
import { damaged, ipv4, u16, u8 } from "../support/arbitraries.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

const reprArb: fc.Arbitrary<Ipv4Repr> = fc
  .nat(10)
  .chain((words) =>
    fc.record({
      src: ipv4(),
      dst: ipv4(),
      protocol: u8(),
      ttl: u8(),
      id: u16(),
      tos: u8(),
      df: fc.boolean(),
      mf: fc.boolean(),
      fragmentOffset: fc.nat(0x1fff).map((units) => units * 8),
      payloadLength: fc.oneof(fc.nat(1500), fc.nat(0xffff - IPV4_MIN_HEADER_LEN - 4 * words)),
      options: fc.uint8Array({ minLength: 4 * words, maxLength: 4 * words }),
    }),
  );

/** Emit `r` into a buffer with room for its payload (left zero); returns the datagram. */
function datagram(r: Ipv4Repr, off = 0): Uint8Array {
  const buf = new Uint8Array(off + ipv4HeaderLen(r) + r.payloadLength);
  emitIpv4(r, buf, off);
  return buf.subarray(off);
}

function reason(x: unknown): string {
  expect(x).to.be.instanceOf(WireError);
  expect((x as WireError).layer).to.equal("ipv4");
  return (x as WireError).reason;
}

// The classic example header (checksum 0xb861): 192.168.0.1 -> 192.168.0.199, UDP, total 115.
const CLASSIC = hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7");
const CLASSIC_REPR: Ipv4Repr = {
  src: 0xc0a80001,
  dst: 0xc0a800c7,
  protocol: IpProtocol.UDP,
  ttl: 64,
  id: 0,
  tos: 0,
  df: true,
  mf: false,
  fragmentOffset: 0,
  payloadLength: 95,
  options: new Uint8Array(0),
};
// IGMPv2 report to 224.0.0.251 with a Router Alert option (RFC 2113), 24-byte header,
// header checksum 0x0171 (checked with tshark 4.0).
const WITH_OPTIONS = hex("46 c0 00 20 00 00 40 00 01 02 01 71 c0 a8 41 03 e0 00 00 fb 94 04 00 00 16 00 09 04 e0 00 00 fb");
// A later fragment: MF set, offset 1480 bytes (185 units), 16 bytes of data, checksum 0x1db8.
const FRAGMENT = hex("45 00 00 24 04 d2 20 b9 40 11 1d b8 c0 a8 41 03 5d b8 d8 22 000102030405060708090a0b0c0d0e0f");

/** The classic header followed by its 95-byte payload and `pad` bytes of Ethernet padding. */
function classicDatagram(pad = 0): Uint8Array {
  const b = new Uint8Array(115 + pad).fill(0xaa);
  b.set(CLASSIC);
  return b;
}

describe("ipv4/ipv4 codec (RFC 791, RFC 1122 §3.2.1)", () => {
  it("parse(emit(r)) equals r", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(5), (r, off) => {
        const d = datagram(r, off);
        expect(d.length).to.equal(ipv4HeaderLen(r) + r.payloadLength);
        expect(parseIpv4(d)).to.deep.equal(r);
      }),
      { numRuns: 200 },
    );
  });

  it("the view agrees with parse on every field of an emitted header", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const p = new Ipv4Packet(datagram(r));
        expect(p.check()).to.equal(true);
        expect(p.checksumOk()).to.equal(true);
        expect(p.version).to.equal(4);
        expect(p.reservedFlag).to.equal(false);
        const seen: Ipv4Repr = {
          src: p.src,
          dst: p.dst,
          protocol: p.protocol,
          ttl: p.ttl,
          id: p.id,
          tos: p.tos,
          df: p.df,
          mf: p.mf,
          fragmentOffset: p.fragmentOffset,
          payloadLength: p.totalLength - p.headerLen,
          options: p.options,
        };
        expect(seen).to.deep.equal(r);
        expect(p.payload.length).to.equal(r.payloadLength);
      }),
      { numRuns: 50 },
    );
  });

  it("decodes the classic header with a known checksum, field by field", () => {
    const d = classicDatagram();
    const p = new Ipv4Packet(d);
    expect(p.check()).to.equal(true);
    expect([p.version, p.headerLen, p.tos, p.totalLength, p.id]).to.deep.equal([4, 20, 0, 115, 0]);
    expect([p.df, p.mf, p.fragmentOffset, p.ttl, p.protocol]).to.deep.equal([true, false, 0, 64, 17]);
    expect(p.headerChecksum).to.equal(0xb861);
    expect([p.src, p.dst]).to.deep.equal([0xc0a80001, 0xc0a800c7]);
    expect(p.checksumOk()).to.equal(true);
    expect(p.options.length).to.equal(0);
    expect(p.payload.length).to.equal(95);
    expect(parseIpv4(d)).to.deep.equal(CLASSIC_REPR);
  });

  it("emits the classic header byte for byte, checksum included", () => {
    const buf = new Uint8Array(20);
    expect(emitIpv4(CLASSIC_REPR, buf)).to.equal(20);
    expect(toHex(buf)).to.equal(toHex(CLASSIC));
  });

  it("decodes and re-emits a header with options (Router Alert)", () => {
    const r = parseIpv4(WITH_OPTIONS);
    if (r instanceof WireError) throw new Error(r.toString());
    expect(r.options).to.deep.equal(hex("94040000"));
    expect([r.tos, r.ttl, r.protocol, r.payloadLength, r.dst]).to.deep.equal([0xc0, 1, 2, 8, 0xe00000fb]);
    const p = new Ipv4Packet(WITH_OPTIONS);
    expect([p.headerLen, p.headerChecksum]).to.deep.equal([24, 0x0171]);
    expect(toHex(p.payload)).to.equal("16000904e00000fb");
    // Borrowed: the options are a view into the input.
    expect(r.options.buffer).to.equal(WITH_OPTIONS.buffer);
    const buf = new Uint8Array(24);
    expect(emitIpv4({ ...r, options: Uint8Array.from(r.options) }, buf)).to.equal(24);
    expect(toHex(buf)).to.equal(toHex(WITH_OPTIONS.subarray(0, 24)));
  });

  it("shares the empty NO_IPV4_OPTIONS for a header without options", () => {
    const r = parseIpv4(classicDatagram());
    expect(r instanceof WireError ? r : r.options).to.equal(NO_IPV4_OPTIONS);
  });

  it("emits options that already sit in place in the buffer", () => {
    const buf = new Uint8Array(28);
    buf.set([0x94, 4, 0, 0, 1, 1, 1, 0], 20);
    const hl = emitIpv4({ ...CLASSIC_REPR, options: buf.subarray(20, 28) }, buf);
    expect(hl).to.equal(28);
    expect(toHex(buf.subarray(20))).to.equal("9404000001010100");
    expect(new Ipv4Packet(buf).checksumOk()).to.equal(true);
  });

  it("recognises fragments: a later fragment with MF and offset 1480", () => {
    const r = parseIpv4(FRAGMENT);
    if (r instanceof WireError) throw new Error(r.toString());
    expect([r.mf, r.df, r.fragmentOffset, r.id, r.payloadLength]).to.deep.equal([true, false, 1480, 0x04d2, 16]);
    expect(isFragment(r)).to.equal(true);
    expect(isFragment(CLASSIC_REPR)).to.equal(false); // DF alone is not a fragment
    expect(isFragment({ ...CLASSIC_REPR, df: false, mf: true })).to.equal(true); // first fragment
    expect(isFragment({ ...CLASSIC_REPR, fragmentOffset: 8 })).to.equal(true); // last fragment
    const buf = new Uint8Array(20);
    emitIpv4(r, buf);
    expect(toHex(buf)).to.equal(toHex(FRAGMENT.subarray(0, 20)));
  });

  it("ignores Ethernet padding after Total Length", () => {
    const padded = classicDatagram(18);
    expect(parseIpv4(padded)).to.deep.equal(CLASSIC_REPR);
    const p = new Ipv4Packet(padded);
    expect(p.check()).to.equal(true);
    expect(p.payload.length).to.equal(95);
    expect(p.payload.byteOffset + p.payload.length).to.equal(115);
  });

  it("names each malformation with its own reason", () => {
    const cases: Array<[string, (b: Uint8Array) => Uint8Array]> = [
      ["truncated", (b) => b.subarray(0, 19)],
      ["bad version", (b) => ((b[0] = 0x65), b)],
      ["bad header length", (b) => ((b[0] = 0x44), b)],
      ["truncated", (b) => ((b[0] = 0x4f), b.subarray(0, 40))], // 60-byte header in 40 bytes
      ["bad total length", (b) => ((b[2] = 0), (b[3] = 19), b)],
      ["truncated", (b) => b.subarray(0, 114)], // Total Length 115
      ["bad checksum", (b) => ((b[8] = 63), b)], // TTL changed, checksum not
      ["bad checksum", (b) => ((b[11] ^= 1), b)],
    ];
    for (const [want, damage] of cases) {
      expect(reason(parseIpv4(damage(classicDatagram()))), want).to.equal(want);
    }
    expect(new Ipv4Packet(classicDatagram().subarray(0, 114)).check()).to.equal(false);
  });

  it("rejects every single-bit flip in the header", () => {
    const hl = CLASSIC.length;
    for (let bit = 0; bit < hl * 8; bit++) {
      const d = classicDatagram(8);
      d[bit >>> 3] ^= 1 << (bit & 7);
      expect(parseIpv4(d), `bit ${bit}`).to.be.instanceOf(WireError);
    }
  });

  it("skips checksum verification on request", () => {
    const d = classicDatagram();
    d[10] = 0;
    d[11] = 0;
    expect(reason(parseIpv4(d))).to.equal("bad checksum");
    expect(new Ipv4Packet(d).checksumOk()).to.equal(false);
    expect(parseIpv4(d, { verifyChecksum: false })).to.deep.equal(CLASSIC_REPR);
  });

  it("reads a quoted datagram that ends before its Total Length with allowTruncated", () => {
    const quoted = classicDatagram().subarray(0, 28); // header + 8 bytes, as in an ICMP error
    expect(reason(parseIpv4(quoted))).to.equal("truncated");
    const r = parseIpv4(quoted, { allowTruncated: true });
    expect(r).to.deep.equal(CLASSIC_REPR);
    expect(new Ipv4Packet(quoted).payload.length).to.equal(8);
  });

  it("fillChecksum repairs the header after a field changes", () => {
    const d = classicDatagram();
    d[8] = 63; // decrement TTL
    const p = new Ipv4Packet(d);
    expect(p.checksumOk()).to.equal(false);
    p.fillChecksum();
    expect(p.checksumOk()).to.equal(true);
    const ref = new Uint8Array(20);
    emitIpv4({ ...CLASSIC_REPR, ttl: 63 }, ref);
    expect(toHex(d.subarray(0, 20))).to.equal(toHex(ref));
    expect(p.headerChecksum).to.equal(0xb961); // RFC 1624: TTL -1 adds 0x0100
  });

  it("throws RangeError for reprs it cannot encode", () => {
    const buf = new Uint8Array(80);
    expect(() => emitIpv4({ ...CLASSIC_REPR, options: new Uint8Array(3) }, buf)).to.throw(RangeError);
    expect(() => emitIpv4({ ...CLASSIC_REPR, options: new Uint8Array(44) }, buf)).to.throw(RangeError);
    expect(() => emitIpv4({ ...CLASSIC_REPR, fragmentOffset: 12 }, buf)).to.throw(RangeError);
    expect(() => emitIpv4({ ...CLASSIC_REPR, fragmentOffset: 0x2000 * 8 }, buf)).to.throw(RangeError);
    expect(() => emitIpv4({ ...CLASSIC_REPR, payloadLength: 0xffff - 19 }, buf)).to.throw(RangeError);
    expect(emitIpv4({ ...CLASSIC_REPR, payloadLength: 0xffff - 20 }, buf)).to.equal(20);
  });

  it("check() accepts exactly what parse accepts when checksums are not verified", () => {
    fc.assert(
      fc.property(reprArb.filter((r) => r.payloadLength < 200), fc.nat(), (r, seed) => {
        const input = damaged(datagram(r), seed);
        const parsed = parseIpv4(input, { verifyChecksum: false });
        expect(new Ipv4Packet(input).check()).to.equal(!(parsed instanceof WireError));
      }),
    );
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb.filter((r) => r.payloadLength < 200), fc.nat(), fc.uint8Array({ maxLength: 80 }), (r, seed, junk) => {
        for (const input of [damaged(datagram(r), seed), junk]) {
          for (const opts of [undefined, { verifyChecksum: false, allowTruncated: true }]) {
            const p = parseIpv4(input, opts);
            expect(p instanceof WireError || typeof p.src === "number").to.equal(true);
          }
        }
      }),
    );
  });
});
