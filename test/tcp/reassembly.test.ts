import { expect } from "chai";
import fc from "fast-check";
import { ReassemblyQueue } from "../../src/tcp/reassembly.js";
import { SEQ_MAX, seqAdd, seqLen, seqSub } from "../../src/tcp/seq.js";
import { xorshiftBytes } from "../support/arbitraries.js";

/** Pseudo-random stream of `n` bytes (no short period, so misplaced bytes are seen). */
function streamOf(n: number, seed: number): Uint8Array {
  return xorshiftBytes(n, seed);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

function fill(n: number, v: number): Uint8Array {
  return new Uint8Array(n).fill(v);
}

/**
 * A receiver as the engine drives the queue: in-order data (at or before rcvNxt) is delivered
 * directly and then `take` pulls what the queue holds; anything above rcvNxt is inserted.
 */
class Receiver {
  rcvNxt: number;
  out: number[] = [];
  constructor(
    readonly q: ReassemblyQueue,
    readonly isn: number,
  ) {
    this.rcvNxt = isn;
  }

  segment(seq: number, data: Uint8Array): void {
    const off = seqSub(seq, this.rcvNxt);
    if (off > 0) {
      const before = this.q.bytes;
      const stored = this.q.insert(seq, data, this.rcvNxt);
      expect(this.q.bytes).to.equal(before + stored);
      expect(stored).to.be.within(0, data.length);
      return;
    }
    if (off + data.length <= 0) return; // entirely old
    for (const x of data.subarray(-off)) this.out.push(x);
    this.rcvNxt = seqAdd(this.rcvNxt, data.length + off);
    for (const c of this.q.take(this.rcvNxt)) {
      expect(c.length).to.be.above(0);
      for (const x of c) this.out.push(x);
      this.rcvNxt = seqAdd(this.rcvNxt, c.length);
    }
    expect(this.q.take(this.rcvNxt)).to.deep.equal([]);
  }
}

/** Invariants that hold after every operation. */
function checkInvariants(q: ReassemblyQueue, rcvNxt: number): void {
  expect(q.bytes).to.be.at.most(q.maxBytes);
  expect(q.segments).to.be.at.most(q.maxSegments);
  const blocks = q.sackBlocks(1000);
  expect(blocks.length).to.equal(q.segments);
  let sum = 0;
  const offs = blocks.map(([l, r]) => {
    const a = seqSub(l, rcvNxt);
    const len = seqLen(l, r);
    expect(a).to.be.above(0); // held data is above RCV.NXT once take() has run
    expect(len).to.be.above(0);
    sum += len;
    return [a, a + len] as const;
  });
  expect(sum).to.equal(q.bytes);
  // Disjoint and not even adjacent (adjacent data is merged).
  const sorted = [...offs].sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i][0]).to.be.above(sorted[i - 1][1]);
  // Asking for fewer blocks gives a prefix of the same order.
  expect(q.sackBlocks(2)).to.deep.equal(blocks.slice(0, 2));
}

const isnArb = () =>
  fc.oneof(fc.integer({ min: SEQ_MAX - 3000, max: SEQ_MAX }), fc.integer({ min: 0, max: SEQ_MAX }), fc.constant(SEQ_MAX));

/** A stream, cut into pieces, plus overlapping and duplicate slices, in a random order. */
const scenarioArb = fc
  .record({
    n: fc.oneof(fc.integer({ min: 1, max: 4000 }), fc.integer({ min: 4000, max: 30_000 })),
    seed: fc.nat(),
    isn: isnArb(),
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 }),
    extras: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 600 })), {
      maxLength: 20,
    }),
    keys: fc.array(fc.nat(), { minLength: 64, maxLength: 64 }),
  })
  .map(({ n, seed, isn, cuts, extras, keys }) => {
    const points = [...new Set([0, n, ...cuts.map((c) => Math.floor(c * n))])].sort((a, b) => a - b);
    const slices: Array<[number, number]> = [];
    for (let i = 1; i < points.length; i++) slices.push([points[i - 1], points[i]]);
    for (const [a, len] of extras) {
      const s = Math.floor(a * n);
      slices.push([s, Math.min(n, s + len)]);
    }
    const order = slices.map((s, i) => ({ s, k: keys[i % keys.length] * 64 + i })).sort((x, y) => x.k - y.k);
    return { stream: streamOf(n, seed), isn, slices: order.map((o) => o.s) };
  });

describe("tcp/reassembly (RFC 9293 §3.10.7.4, RFC 2018 §4)", () => {
  it("holds data above RCV.NXT and hands it over once the hole is filled", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const s = streamOf(30, 1);
    expect(q.insert(10, s.subarray(10, 20), 0)).to.equal(10);
    expect([q.bytes, q.segments]).to.deep.equal([10, 1]);
    expect(q.take(0)).to.deep.equal([]); // byte 0 is missing
    expect(q.insert(20, s.subarray(20, 30), 0)).to.equal(10); // adjacent: merged
    expect([q.bytes, q.segments]).to.deep.equal([20, 1]);
    expect(q.sackBlocks(4)).to.deep.equal([[10, 30]]);
    // The caller delivers [0, 10) itself, then takes the rest.
    expect(Array.from(concat(q.take(10)))).to.deep.equal(Array.from(s.subarray(10, 30)));
    expect([q.bytes, q.segments]).to.deep.equal([0, 0]);
    expect(q.sackBlocks(4)).to.deep.equal([]);
  });

  it("keeps the first copy of overlapping data and stores only new bytes", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    expect(q.insert(10, fill(10, 0xaa), 0)).to.equal(10);
    expect(q.insert(5, fill(20, 0xbb), 0)).to.equal(10); // [5,10) and [20,25) are new
    expect(q.insert(12, fill(3, 0xcc), 0)).to.equal(0); // pure duplicate
    const got = Array.from(concat(q.take(5)));
    expect(got).to.deep.equal([...fill(5, 0xbb), ...fill(10, 0xaa), ...fill(5, 0xbb)]);
  });

  it("fills several holes with one segment and merges the ranges", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const s = streamOf(100, 7);
    q.insert(10, s.subarray(10, 20), 1);
    q.insert(30, s.subarray(30, 40), 1);
    q.insert(50, s.subarray(50, 60), 1);
    expect(q.segments).to.equal(3);
    expect(q.insert(5, s.subarray(5, 70), 1)).to.equal(65 - 30);
    expect(q.segments).to.equal(1);
    expect(q.sackBlocks(4)).to.deep.equal([[5, 70]]);
    expect(Array.from(concat(q.take(5)))).to.deep.equal(Array.from(s.subarray(5, 70)));
  });

  it("ignores what lies at or before RCV.NXT and returns only bytes from RCV.NXT on", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const s = streamOf(50, 3);
    expect(q.insert(0, s.subarray(0, 10), 20)).to.equal(0); // wholly old
    expect(q.insert(10, s.subarray(10, 30), 20)).to.equal(10); // only [20,30) kept
    expect(q.sackBlocks(1)).to.deep.equal([[20, 30]]);
    q.insert(35, s.subarray(35, 40), 20);
    // Held [20,30) and [35,40); RCV.NXT moved to 25 by another path: the tail of the first range comes back.
    expect(Array.from(concat(q.take(25)))).to.deep.equal(Array.from(s.subarray(25, 30)));
    // RCV.NXT moved past a whole range: it is discarded, nothing to take.
    expect(q.take(45)).to.deep.equal([]);
    expect([q.bytes, q.segments]).to.deep.equal([0, 0]);
  });

  it("works across the 2^32 wrap", () => {
    const isn = SEQ_MAX - 9; // bytes 0..9 of the stream are below 2^32, the rest wrap to 0..
    const q = new ReassemblyQueue(1 << 20, 64);
    const s = streamOf(40, 9);
    expect(q.insert(seqAdd(isn, 20), s.subarray(20, 40), isn)).to.equal(20);
    expect(q.insert(seqAdd(isn, 5), s.subarray(5, 25), isn)).to.equal(15);
    expect(q.sackBlocks(4)).to.deep.equal([[seqAdd(isn, 5), seqAdd(isn, 40)]]);
    expect(q.sackBlocks(4)[0]).to.deep.equal([SEQ_MAX - 4, 30]);
    expect(Array.from(concat(q.take(seqAdd(isn, 5))))).to.deep.equal(Array.from(s.subarray(5, 40)));
  });

  it("bounds bytes: keeps the part nearest RCV.NXT and counts the rest", () => {
    const q = new ReassemblyQueue(100, 64);
    expect(q.insert(200, fill(80, 1), 0)).to.equal(80);
    expect(q.insert(10, fill(50, 2), 0)).to.equal(20); // only 20 bytes of room
    expect(q.bytes).to.equal(100);
    expect(q.droppedBytes).to.equal(30);
    expect(q.insert(500, fill(10, 3), 0)).to.equal(0);
    expect(q.droppedBytes).to.equal(40);
    expect(q.sackBlocks(4)).to.deep.equal([
      [10, 30],
      [200, 280],
    ]);
  });

  it("bounds ranges: a segment that would open one more is dropped, filling a hole still works", () => {
    const q = new ReassemblyQueue(1 << 20, 2);
    q.insert(10, fill(10, 1), 0);
    q.insert(30, fill(10, 2), 0);
    expect(q.insert(50, fill(10, 3), 0)).to.equal(0);
    expect(q.droppedBytes).to.equal(10);
    expect(q.insert(40, fill(5, 4), 0)).to.equal(5); // extends a range: no new one needed
    expect(q.insert(20, fill(10, 5), 0)).to.equal(10); // closes the hole: ranges merge
    expect(q.segments).to.equal(1);
    expect(q.insert(60, fill(10, 6), 0)).to.equal(10);
    expect(q.segments).to.equal(2);
    const none = new ReassemblyQueue(1000, 0);
    expect(none.insert(5, fill(5, 1), 0)).to.equal(0);
    expect(none.droppedBytes).to.equal(5);
  });

  it("orders SACK blocks by recency, the one with the latest segment first (RFC 2018 §4)", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    q.insert(100, fill(10, 1), 0);
    q.insert(200, fill(10, 1), 0);
    q.insert(300, fill(10, 1), 0);
    expect(q.sackBlocks(4)).to.deep.equal([
      [300, 310],
      [200, 210],
      [100, 110],
    ]);
    q.insert(105, fill(3, 1), 0); // a duplicate still triggers an ACK naming its block
    expect(q.sackBlocks(2)).to.deep.equal([
      [100, 110],
      [300, 310],
    ]);
    q.insert(190, fill(10, 1), 0); // extends [200,210) downward
    expect(q.sackBlocks(1)).to.deep.equal([[190, 210]]);
    expect(q.sackBlocks(0)).to.deep.equal([]);
  });

  it("keeps a bounded number of chunks for a flood of one-byte segments in reverse order", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const n = 20_000;
    const s = streamOf(n, 5);
    for (let i = n - 1; i >= 1; i--) q.insert(i, s.subarray(i, i + 1), 0);
    expect(q.segments).to.equal(1);
    const chunks = q.take(1);
    expect(chunks.length).to.be.at.most((2 * n) / 2048 + 1);
    expect(Array.from(concat(chunks))).to.deep.equal(Array.from(s.subarray(1)));
  });

  it("keeps a bounded number of chunks for one-byte segments in order behind a hole", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const n = 20_000;
    const s = streamOf(n, 6);
    for (let i = 1; i < n; i++) q.insert(i, s.subarray(i, i + 1), 0);
    const chunks = q.take(1);
    expect(chunks.length).to.be.at.most((2 * n) / 2048 + 1);
    expect(Array.from(concat(chunks))).to.deep.equal(Array.from(s.subarray(1)));
  });

  it("merges ranges made of many chunks when the hole between them is filled", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const s = streamOf(40_000, 8);
    for (let i = 1000; i < 20_000; i += 1500) q.insert(i, s.subarray(i, Math.min(i + 1500, 20_000)), 0);
    for (let i = 21_000; i < 40_000; i += 1500) q.insert(i, s.subarray(i, Math.min(i + 1500, 40_000)), 0);
    expect(q.segments).to.equal(2);
    q.insert(20_000, s.subarray(20_000, 21_000), 0);
    expect(q.sackBlocks(4)).to.deep.equal([[1000, 40_000]]);
    const chunks = q.take(1000);
    expect(chunks.length).to.be.above(10);
    expect(Buffer.from(concat(chunks)).equals(Buffer.from(s.subarray(1000)))).to.equal(true);
  });

  it("copies what it keeps (the inserted data is borrowed)", () => {
    const q = new ReassemblyQueue(1 << 20, 64);
    const src = fill(10, 7);
    q.insert(10, src, 0);
    src.fill(0);
    expect(Array.from(concat(q.take(10)))).to.deep.equal(Array.from(fill(10, 7)));
  });

  it("clear drops everything but keeps the drop counter", () => {
    const q = new ReassemblyQueue(5, 64);
    q.insert(10, fill(10, 1), 0);
    q.clear();
    expect([q.bytes, q.segments, q.droppedBytes]).to.deep.equal([0, 0, 5]);
    expect(q.sackBlocks(4)).to.deep.equal([]);
  });

  it("reassembles any order of pieces, duplicates and overlaps into exactly the stream", () => {
    fc.assert(
      fc.property(scenarioArb, ({ stream, isn, slices }) => {
        const q = new ReassemblyQueue(1 << 20, 1000);
        const rx = new Receiver(q, isn);
        for (const [a, b] of slices) {
          const seq = seqAdd(isn, a);
          rx.segment(seq, stream.subarray(a, b));
          checkInvariants(q, rx.rcvNxt);
          // The block holding the segment just inserted comes first (RFC 2018 §4).
          if (b > a && seqSub(seq, rx.rcvNxt) > 0) {
            const [l, r] = q.sackBlocks(1)[0];
            expect(seqSub(seq, l)).to.be.at.least(0);
            expect(seqSub(seqAdd(seq, b - a), r)).to.be.at.most(0);
          }
        }
        expect(rx.out.length).to.equal(stream.length);
        expect(Buffer.from(rx.out).equals(Buffer.from(stream))).to.equal(true);
        expect([q.bytes, q.segments, q.droppedBytes]).to.deep.equal([0, 0, 0]);
      }),
      { numRuns: 300 },
    );
  });

  it("respects its bounds and never corrupts data when it has to drop", () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 6 }), (sc, maxBytes, maxSegs) => {
        const { stream, isn, slices } = sc;
        const q = new ReassemblyQueue(maxBytes, maxSegs);
        const rx = new Receiver(q, isn);
        for (const [a, b] of slices) {
          rx.segment(seqAdd(isn, a), stream.subarray(a, b));
          checkInvariants(q, rx.rcvNxt);
          // Whatever was delivered so far is a prefix of the stream.
          const k = rx.out.length;
          expect(Buffer.from(rx.out).equals(Buffer.from(stream.subarray(0, k)))).to.equal(true);
        }
        // The sender eventually retransmits everything in order.
        rx.segment(isn, stream);
        expect(Buffer.from(rx.out).equals(Buffer.from(stream))).to.equal(true);
        expect(q.bytes).to.equal(0);
      }),
      { numRuns: 300 },
    );
  });
});
