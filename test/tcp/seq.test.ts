import { expect } from "chai";
import fc from "fast-check";
import {
  SEQ_MAX,
  seqAdd,
  seqGe,
  seqGt,
  seqInRange,
  seqLe,
  seqLen,
  seqLt,
  seqMax,
  seqMin,
  seqSub,
} from "../../src/tcp/seq.js";
import { u32 } from "../support/arbitraries.js";

const HALF = 0x8000_0000;

/** uint32 values biased toward the wrap: near 0, near 2^32 - 1, near 2^31, or anywhere. */
const seqArb = () =>
  fc.oneof(
    u32(),
    fc.integer({ min: 0, max: 64 }),
    fc.integer({ min: SEQ_MAX - 64, max: SEQ_MAX }),
    fc.integer({ min: HALF - 64, max: HALF + 64 }),
  );
/** Distances strictly inside the half space, where the order is defined (RFC 1982 §3.2). */
const distArb = () => fc.oneof(fc.integer({ min: -(HALF - 1), max: HALF - 1 }), fc.integer({ min: -70, max: 70 }));

/** RFC 1982 §3.2 comparison written out literally, on the integers (the reference). */
function rfc1982Lt(i1: number, i2: number): boolean {
  return (i1 < i2 && i2 - i1 < HALF) || (i1 > i2 && i1 - i2 > HALF);
}

describe("tcp/seq (RFC 9293 §3.4, RFC 1982)", () => {
  it("adds modulo 2^32 across the wrap, with negative increments", () => {
    expect(seqAdd(SEQ_MAX, 1)).to.equal(0);
    expect(seqAdd(SEQ_MAX, 2)).to.equal(1);
    expect(seqAdd(0, -1)).to.equal(SEQ_MAX);
    expect(seqAdd(5, -10)).to.equal(SEQ_MAX - 4);
    expect(seqAdd(0xffff_fff0, 0x20)).to.equal(0x10);
    expect(seqAdd(123, 0)).to.equal(123);
  });

  it("subtracts to a signed distance across the wrap", () => {
    expect(seqSub(0, SEQ_MAX)).to.equal(1);
    expect(seqSub(SEQ_MAX, 0)).to.equal(-1);
    expect(seqSub(0x10, 0xffff_fff0)).to.equal(0x20);
    expect(seqSub(7, 7)).to.equal(0);
    expect(seqSub(HALF - 1, 0)).to.equal(HALF - 1);
    // Exactly half the space apart: RFC 1982 leaves it undefined; -2^31 both ways here.
    expect(seqSub(HALF, 0)).to.equal(-HALF);
    expect(seqSub(0, HALF)).to.equal(-HALF);
  });

  it("compares near 2^32 - 1 and 0", () => {
    expect(seqLt(SEQ_MAX, 0)).to.equal(true);
    expect(seqGt(0, SEQ_MAX)).to.equal(true);
    expect(seqLe(SEQ_MAX, SEQ_MAX)).to.equal(true);
    expect(seqGe(0, 0)).to.equal(true);
    expect(seqLt(0, 0)).to.equal(false);
    expect(seqLt(0xffff_ff00, 0x100)).to.equal(true);
    expect(seqGt(0xffff_ff00, 0x100)).to.equal(false);
    expect(seqMax(SEQ_MAX, 3)).to.equal(3);
    expect(seqMin(SEQ_MAX, 3)).to.equal(SEQ_MAX);
    expect(seqMax(3, SEQ_MAX)).to.equal(3);
    expect(seqMin(3, SEQ_MAX)).to.equal(SEQ_MAX);
  });

  it("seqAdd and seqSub are inverse", () => {
    fc.assert(
      fc.property(seqArb(), distArb(), (a, n) => {
        const b = seqAdd(a, n);
        expect(b).to.be.within(0, SEQ_MAX);
        expect(Number.isInteger(b)).to.equal(true);
        expect(seqSub(b, a)).to.equal(n);
        expect(seqAdd(a, seqSub(b, a))).to.equal(b);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(seqArb(), seqArb(), (a, b) => {
        expect(seqAdd(b, seqSub(a, b))).to.equal(a);
      }),
      { numRuns: 2000 },
    );
  });

  it("agrees with the literal RFC 1982 §3.2 comparison wherever it is defined", () => {
    fc.assert(
      fc.property(seqArb(), seqArb(), (a, b) => {
        fc.pre(Math.abs(a - b) !== HALF);
        expect(seqLt(a, b)).to.equal(rfc1982Lt(a, b));
        expect(seqGt(a, b)).to.equal(rfc1982Lt(b, a));
        expect(seqLe(a, b)).to.equal(a === b || rfc1982Lt(a, b));
        expect(seqGe(a, b)).to.equal(a === b || rfc1982Lt(b, a));
      }),
      { numRuns: 3000 },
    );
  });

  it("is antisymmetric and total within half the space", () => {
    fc.assert(
      fc.property(seqArb(), distArb(), (a, n) => {
        const b = seqAdd(a, n);
        // Exactly one of <, =, > holds.
        const rel = [seqLt(a, b), a === b, seqGt(a, b)].filter(Boolean);
        expect(rel).to.have.length(1);
        expect(seqLt(a, b)).to.equal(seqGt(b, a));
        expect(seqLe(a, b)).to.equal(seqGe(b, a));
        expect(seqLt(a, b)).to.equal(n > 0);
        if (seqLe(a, b) && seqLe(b, a)) expect(a).to.equal(b);
      }),
      { numRuns: 2000 },
    );
  });

  it("is transitive for values within half the space of each other", () => {
    const quarter = HALF / 2 - 1;
    fc.assert(
      fc.property(
        seqArb(),
        fc.integer({ min: -quarter, max: quarter }),
        fc.integer({ min: -quarter, max: quarter }),
        (a, m, n) => {
          const b = seqAdd(a, m);
          const c = seqAdd(a, n);
          // All three lie within an arc shorter than 2^31, so the order must be the integer order of the offsets.
          const offs = new Map([
            [a, 0],
            [b, m],
            [c, n],
          ]);
          for (const [x, ox] of offs) for (const [y, oy] of offs) expect(seqLt(x, y)).to.equal(ox < oy);
          if (seqLt(a, b) && seqLt(b, c)) expect(seqLt(a, c)).to.equal(true);
          if (seqLe(a, b) && seqLe(b, c)) expect(seqLe(a, c)).to.equal(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("max and min pick one argument consistently with the order", () => {
    fc.assert(
      fc.property(seqArb(), distArb(), (a, n) => {
        const b = seqAdd(a, n);
        const hi = seqMax(a, b);
        const lo = seqMin(a, b);
        expect([a, b]).to.include(hi);
        expect([a, b]).to.include(lo);
        expect(seqGe(hi, lo)).to.equal(true);
        expect(hi).to.equal(n >= 0 ? b : a);
        expect(lo).to.equal(n >= 0 ? a : b);
      }),
      { numRuns: 1000 },
    );
  });

  it("seqInRange is start <= x < end in modular terms (the RFC 9293 §3.10.7.4 acceptance test)", () => {
    expect(seqInRange(SEQ_MAX, SEQ_MAX - 1, 3)).to.equal(true);
    expect(seqInRange(0, SEQ_MAX - 1, 3)).to.equal(true);
    expect(seqInRange(2, SEQ_MAX - 1, 3)).to.equal(true);
    expect(seqInRange(3, SEQ_MAX - 1, 3)).to.equal(false);
    expect(seqInRange(SEQ_MAX - 2, SEQ_MAX - 1, 3)).to.equal(false);
    expect(seqInRange(5, 5, 5)).to.equal(false); // empty range
    fc.assert(
      fc.property(seqArb(), fc.nat(SEQ_MAX), fc.integer({ min: -100, max: SEQ_MAX }), (start, len, k) => {
        const end = seqAdd(start, len);
        const x = seqAdd(start, k);
        const off = k < 0 ? k + 0x1_0000_0000 : k; // x's offset from start, modulo 2^32
        expect(seqInRange(x, start, end)).to.equal(off < len);
        expect(seqLen(start, end)).to.equal(len);
      }),
      { numRuns: 2000 },
    );
  });
});
