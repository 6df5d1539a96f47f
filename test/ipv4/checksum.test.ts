import { expect } from "chai";
import fc from "fast-check";
import { checksum, onesSum, pseudoHeaderSum, foldSum } from "../../src/ipv4/checksum.js";

/** RFC 1071 reference: the obvious byte loop. */
function reference(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i] << 8) | (i + 1 < len ? b[off + i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

describe("ipv4/checksum (RFC 1071)", () => {
  it("matches the RFC 1071 §3 worked example", () => {
    // 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2, checksum 220d
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(onesSum(b, 0, 8)).to.equal(0xddf2);
    expect(checksum(b, 0, 8)).to.equal(0x220d);
  });

  it("agrees with the byte-loop reference at every offset, alignment and length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(7), fc.nat(), (data, pad, cut) => {
        // Place data at an arbitrary byteOffset to exercise the alignment paths.
        const backing = new Uint8Array(data.length + 16);
        backing.set(data, pad);
        const len = data.length === 0 ? 0 : cut % (data.length + 1);
        const view = backing.subarray(1);
        const off = Math.max(0, pad - 1);
        expect(checksum(view, off, len)).to.equal(reference(view, off, len));
      }),
      { numRuns: 500 },
    );
  });

  it("verifies to zero when the checksum is included", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 2, maxLength: 400 }), (data) => {
        const b = Uint8Array.from(data.length % 2 ? [...data, 0] : data);
        b[0] = 0;
        b[1] = 0;
        const c = checksum(b, 0, b.length);
        b[0] = c >>> 8;
        b[1] = c & 0xff;
        expect(checksum(b, 0, b.length)).to.equal(0);
      }),
    );
  });

  it("chains partial sums over even-length chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), (data, k) => {
        const split = (k % (Math.floor(data.length / 2) + 1)) * 2;
        const chained = onesSum(data, split, data.length - split, onesSum(data, 0, split));
        expect(chained).to.equal(onesSum(data, 0, data.length));
      }),
    );
  });

  it("computes a pseudo-header sum equal to summing its 12 bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(255), fc.nat(0xffff), (s, d, p, l) => {
        const b = new Uint8Array(12);
        const dv = new DataView(b.buffer);
        dv.setUint32(0, s);
        dv.setUint32(4, d);
        b[9] = p;
        dv.setUint16(10, l);
        expect(pseudoHeaderSum(s, d, p, l)).to.equal(onesSum(b, 0, 12));
      }),
    );
  });

  it("folds large accumulators with end-around carry", () => {
    expect(foldSum(0x1ffff)).to.equal(0x0001);
    expect(foldSum(0xffff)).to.equal(0xffff);
  });
});
