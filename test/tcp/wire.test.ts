import { expect } from "chai";
import fc from "fast-check";
import {
  NO_TCP_OPTIONS,
  TCP_MIN_HEADER_LEN,
  TcpFlag,
  TcpSegment,
  describeTcpOptions,
  emitTcp,
  parseTcp,
  parseTcpOptions,
  tcpHeaderLen,
  tcpLen,
  tcpOptionsLen,
  type TcpOptions,
  type TcpRepr,
} from "../../src/tcp/wire.js";
import { WireError } from "../../src/common/wire-error.js";
import { damaged, ipv4, u16, u32, u8 } from "../support/arbitraries.js";

const SRC = 0x0a00020f; // 10.0.2.15
const DST = 0x5db8d822; // 93.184.216.34

/** RFC 1071 by the book: pseudo-header words, then the segment, padded, folded, complemented. */
function naiveTcpChecksum(src: number, dst: number, seg: Uint8Array): number {
  const words = [src >>> 16, src & 0xffff, dst >>> 16, dst & 0xffff, 6, seg.length];
  for (let i = 0; i < seg.length; i += 2) words.push((seg[i] << 8) | (i + 1 < seg.length ? seg[i + 1] : 0));
  let s = 0;
  for (const w of words) {
    s += w;
    if (s > 0xffff) s = (s & 0xffff) + 1;
  }
  return ~s & 0xffff;
}

/** Put the naive checksum into bytes 16-17 of a hand-written segment. */
function withChecksum(seg: number[], src = SRC, dst = DST): Uint8Array {
  const b = Uint8Array.from(seg);
  b[16] = 0;
  b[17] = 0;
  const c = naiveTcpChecksum(src, dst, b);
  b[16] = c >>> 8;
  b[17] = c & 0xff;
  return b;
}

const optionsArb: fc.Arbitrary<TcpOptions> = fc
  .record(
    {
      mss: u16(),
      windowScale: fc.nat(14),
      sackPermitted: fc.constant(true),
      sack: fc.array(fc.tuple(u32(), u32()), { minLength: 1, maxLength: 4 }),
      timestamp: fc.record({ tsVal: u32(), tsEcr: u32() }),
    },
    { requiredKeys: [] },
  )
  .filter((o) => tcpOptionsLen(o) <= 40);

const reprArb: fc.Arbitrary<TcpRepr> = fc.record({
  srcPort: u16(),
  dstPort: u16(),
  seq: u32(),
  ack: u32(),
  flags: u8(),
  window: u16(),
  urgentPointer: u16(),
  options: optionsArb,
  payload: fc.uint8Array({ maxLength: 64 }),
});

function emitted(r: TcpRepr, src = SRC, dst = DST): Uint8Array {
  const buf = new Uint8Array(tcpLen(r));
  expect(emitTcp(r, buf, 0, src, dst)).to.equal(buf.length);
  return buf;
}

// A Linux SYN from 10.0.2.15:45678 to 93.184.216.34:80, written out field by field.
const SYN_BYTES = [
  0xb2, 0x6e, 0x00, 0x50, // ports 45678 -> 80
  0x9a, 0x3b, 0x51, 0x07, // seq 0x9a3b5107
  0x00, 0x00, 0x00, 0x00, // ack 0
  0xa0, 0x02, 0xfa, 0xf0, // data offset 10 words, SYN, window 64240
  0x00, 0x00, 0x00, 0x00, // checksum (filled in), urgent pointer 0
  0x02, 0x04, 0x05, 0xb4, // MSS 1460
  0x04, 0x02, // SACK-permitted
  0x08, 0x0a, 0x00, 0x01, 0xe2, 0x40, 0x00, 0x00, 0x00, 0x00, // TS val 123456 ecr 0
  0x01, // NOP
  0x03, 0x03, 0x07, // window scale 7
];

describe("tcp/wire codec (RFC 9293 §3.1, RFC 7323, RFC 2018)", () => {
  it("parse(emit(r)) equals r, payload by content, for up to 40 bytes of options", () => {
    fc.assert(
      fc.property(reprArb, ipv4(), ipv4(), (r, src, dst) => {
        const buf = emitted(r, src, dst);
        expect(tcpHeaderLen(r)).to.equal(TCP_MIN_HEADER_LEN + tcpOptionsLen(r.options));
        expect(tcpOptionsLen(r.options) % 4).to.equal(0);
        expect(parseTcp(buf, src, dst)).to.deep.equal(r);
      }),
      { numRuns: 300 },
    );
  });

  it("emits a checksum equal to the naive RFC 1071 sum, and writes every header byte", () => {
    fc.assert(
      fc.property(reprArb, ipv4(), ipv4(), fc.nat(7), (r, src, dst, pad) => {
        const clean = emitted(r, src, dst);
        const dirty = new Uint8Array(clean.length + pad).fill(0xa5);
        expect(emitTcp(r, dirty, pad, src, dst)).to.equal(clean.length);
        expect(dirty.subarray(pad)).to.deep.equal(clean);
        expect(new TcpSegment(clean).checksum).to.equal(naiveTcpChecksum(src, dst, withZeroChecksum(clean)));
      }),
      { numRuns: 200 },
    );
  });

  it("encodes the Linux SYN layout byte for byte: mss 1460, sackOK, TS, nop, wscale 7", () => {
    const expected = withChecksum(SYN_BYTES);
    const repr: TcpRepr = {
      srcPort: 45678,
      dstPort: 80,
      seq: 0x9a3b5107,
      ack: 0,
      flags: TcpFlag.SYN,
      window: 64240,
      urgentPointer: 0,
      options: { mss: 1460, sackPermitted: true, timestamp: { tsVal: 123456, tsEcr: 0 }, windowScale: 7 },
      payload: new Uint8Array(0),
    };
    expect(emitted(repr)).to.deep.equal(expected);
    expect(parseTcp(expected, SRC, DST)).to.deep.equal(repr);
    const view = new TcpSegment(expected);
    expect(view.check()).to.equal(true);
    expect(view.dataOffset).to.equal(40);
    expect(view.optionBytes.length).to.equal(20);
    expect(view.checksumOk(SRC, DST)).to.equal(true);
    expect(view.checksumOk(SRC, DST + 1)).to.equal(false);
    expect(describeTcpOptions(repr.options)).to.equal("mss=1460,ws=7,sackOK,ts=123456/0");
  });

  it("decodes SACK blocks next to timestamps", () => {
    const seg = withChecksum([
      0x00, 0x50, 0xb2, 0x6e, 0x00, 0x00, 0x10, 0x00, 0x9a, 0x3b, 0x51, 0x08,
      0xd0, 0x10, 0x01, 0xf5, 0x00, 0x00, 0x00, 0x00, // data offset 13 words, ACK, window 501
      0x01, 0x01, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x05, 0x00, 0x01, 0xe2, 0x40, // NOP NOP TS 5/123456
      0x01, 0x01, 0x05, 0x12, // NOP NOP SACK, length 18: two blocks
      0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x30, 0x00, // 0x2000-0x3000
      0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, // 0xffffff00-0x100 (wraps)
      0x68, 0x69, // payload "hi"
    ]);
    const r = parseTcp(seg, SRC, DST);
    if (r instanceof WireError) expect.fail(r.toString());
    expect(r.flags).to.equal(TcpFlag.ACK);
    expect(r.ack).to.equal(0x9a3b5108);
    expect(r.options).to.deep.equal({
      timestamp: { tsVal: 5, tsEcr: 123456 },
      sack: [
        [0x2000, 0x3000],
        [0xffffff00, 0x100],
      ],
    });
    expect(Array.from(r.payload)).to.deep.equal([0x68, 0x69]);
    expect(emitted(r)).to.deep.equal(seg);
    expect(describeTcpOptions(r.options)).to.equal("ts=5/123456,sack=8192-12288;4294967040-256");
  });

  it("skips unknown option kinds by their length and stops at End of Option List", () => {
    // kind 34 (TFO cookie, length 10), kind 30 (length 4), MSS 536, EOL, then junk that is padding.
    const opts = Uint8Array.from([34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 30, 4, 0, 0, 2, 4, 0x02, 0x18, 0, 0xff]);
    expect(parseTcpOptions(opts)).to.deep.equal({ mss: 536 });
    // A known kind with a wrong length is ignored like an unknown one.
    expect(parseTcpOptions(Uint8Array.from([2, 3, 5, 3, 3, 7]))).to.deep.equal({ windowScale: 7 });
    expect(parseTcpOptions(Uint8Array.from([5, 6, 0, 0, 0, 1]))).to.deep.equal({});
    // Nothing but padding: the shared empty value.
    expect(parseTcpOptions(Uint8Array.from([1, 1, 1, 0]))).to.equal(NO_TCP_OPTIONS);
  });

  it("rejects malformed option lengths (0, 1, past the end, missing)", () => {
    for (const bad of [
      [2, 0, 5, 0xb4],
      [1, 8, 1, 0, 0, 0],
      [8, 10, 0, 0, 0, 0, 0, 0],
      [1, 1, 1, 2],
      [254, 5, 1, 2],
    ]) {
      const r = parseTcpOptions(Uint8Array.from(bad));
      expect(r, JSON.stringify(bad)).to.be.instanceOf(WireError);
      expect((r as WireError).reason).to.equal("bad option");
    }
    // The same inside a whole segment: header length 24 with option [2, 0, ...].
    const seg = withChecksum([0, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 1, 0, 0, 0, 0, 0, 2, 0, 5, 0xb4]);
    expect(parseTcp(seg, SRC, DST)).to.deep.equal(new WireError("tcp", "bad option"));
  });

  it("rejects a bad checksum unless verification is off", () => {
    const seg = withChecksum(SYN_BYTES);
    seg[4] ^= 0x01;
    expect(parseTcp(seg, SRC, DST)).to.deep.equal(new WireError("tcp", "bad checksum"));
    const r = parseTcp(seg, SRC, DST, { verifyChecksum: false });
    if (r instanceof WireError) expect.fail(r.toString());
    expect(r.seq).to.equal(0x9b3b5107);
    // The right bytes but the wrong addresses also fail.
    expect(parseTcp(withChecksum(SYN_BYTES), SRC, DST ^ 1)).to.be.instanceOf(WireError);
  });

  it("rejects truncated segments and bad data offsets", () => {
    const syn = withChecksum(SYN_BYTES);
    expect(parseTcp(syn.subarray(0, 19), SRC, DST)).to.deep.equal(new WireError("tcp", "truncated"));
    expect(parseTcp(syn.subarray(0, 39), SRC, DST, { verifyChecksum: false })).to.deep.equal(new WireError("tcp", "truncated"));
    const short = Uint8Array.from(syn);
    short[12] = 0x40; // 16 bytes
    expect(parseTcp(short, SRC, DST, { verifyChecksum: false })).to.deep.equal(new WireError("tcp", "bad header length"));
    expect(new TcpSegment(short).check()).to.equal(false);
  });

  it("refuses to emit more than 40 bytes of options (a programmer error)", () => {
    const r: TcpRepr = {
      srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: TcpFlag.ACK, window: 0, urgentPointer: 0,
      options: { timestamp: { tsVal: 1, tsEcr: 2 }, sack: [[1, 2], [3, 4], [5, 6], [7, 8]] },
      payload: new Uint8Array(0),
    };
    expect(tcpOptionsLen(r.options)).to.equal(48);
    expect(() => emitTcp(r, new Uint8Array(100), 0, SRC, DST)).to.throw(RangeError);
  });

  it("shares the frozen empty options object and leaves an in-place payload where it is", () => {
    const buf = new Uint8Array(TCP_MIN_HEADER_LEN + 5);
    buf.set([1, 2, 3, 4, 5], TCP_MIN_HEADER_LEN);
    const r: TcpRepr = {
      srcPort: 7, dstPort: 9, seq: 0xffffffff, ack: 1, flags: TcpFlag.PSH | TcpFlag.ACK, window: 1, urgentPointer: 0,
      options: NO_TCP_OPTIONS, payload: buf.subarray(TCP_MIN_HEADER_LEN),
    };
    expect(emitTcp(r, buf, 0, SRC, DST)).to.equal(25);
    const p = parseTcp(buf, SRC, DST);
    if (p instanceof WireError) expect.fail(p.toString());
    expect(p.options).to.equal(NO_TCP_OPTIONS);
    expect(Object.isFrozen(p.options)).to.equal(true);
    expect(p.seq).to.equal(0xffffffff);
    expect(Array.from(p.payload)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(p.payload.buffer).to.equal(buf.buffer); // borrowed, not copied
    expect(describeTcpOptions(p.options)).to.equal("");
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.uint8Array({ maxLength: 80 }), fc.boolean(), (r, seed, junk, verify) => {
        const buf = emitted(r);
        for (const input of [damaged(buf, seed), junk]) {
          const p = parseTcp(input, SRC, DST, { verifyChecksum: verify });
          expect(p instanceof WireError || typeof p.seq === "number").to.equal(true);
          const o = parseTcpOptions(input);
          expect(o instanceof WireError || typeof o === "object").to.equal(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

function withZeroChecksum(seg: Uint8Array): Uint8Array {
  const b = Uint8Array.from(seg);
  b[16] = 0;
  b[17] = 0;
  return b;
}
