import { expect } from "chai";
import fc from "fast-check";
import { SackScoreboard } from "../../src/tcp/sack-scoreboard.js";
import { SEQ_MAX, seqAdd, seqSub } from "../../src/tcp/seq.js";
import { u32 } from "../support/arbitraries.js";

/** Reference model: one boolean per byte offset from an origin sequence number. */
class Model {
  una = 0;
  nxt = 0;
  bits: boolean[] = [];
  constructor(readonly origin: number) {}

  update(una: number, nxt: number, blocks: Array<[number, number]>): number {
    this.advance(una);
    this.nxt = nxt;
    let added = 0;
    for (const [l, r] of blocks) {
      if (!(l < r && r > una && r <= nxt)) continue;
      for (let i = Math.max(l, una); i < r; i++) {
        if (!this.bits[i]) added++;
        this.bits[i] = true;
      }
    }
    return added;
  }
  advance(una: number): void {
    if (una <= this.una) return;
    for (let i = this.una; i < una; i++) this.bits[i] = false;
    this.una = una;
  }
  sacked(o: number): boolean {
    return o >= this.una && this.bits[o] === true;
  }
  runs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = this.una; i < this.bits.length; i++) {
      if (!this.sacked(i)) continue;
      const s = i;
      while (this.sacked(i)) i++;
      out.push([s, i]);
    }
    return out;
  }
  isLost(o: number, mss: number, dupThresh: number): boolean {
    if (this.sacked(o)) return false;
    const above = this.runs().filter(([s]) => s > o);
    const bytes = above.reduce((n, [s, e]) => n + e - s, 0);
    return above.length >= dupThresh || bytes > (dupThresh - 1) * mss;
  }
  seq(o: number): number {
    return seqAdd(this.origin, o);
  }
}

describe("tcp/sack-scoreboard (RFC 2018, RFC 6675)", () => {
  it("merges blocks and answers isSacked, highSacked and sackedIn", () => {
    const sb = new SackScoreboard();
    expect(sb.highSacked).to.equal(undefined);
    expect(
      sb.update(1000, 10_000, [
        [4000, 5000],
        [2000, 3000],
      ]),
    ).to.equal(2000);
    expect(sb.ranges).to.deep.equal([
      [2000, 3000],
      [4000, 5000],
    ]);
    expect(sb.sackedBytes).to.equal(2000);
    expect(sb.highSacked).to.equal(5000);
    expect([sb.isSacked(1999), sb.isSacked(2000), sb.isSacked(2999), sb.isSacked(3000)]).to.deep.equal([false, true, true, false]);
    expect(sb.update(1000, 10_000, [[2500, 4000]])).to.equal(1000); // fills the gap exactly: one range
    expect(sb.ranges).to.deep.equal([[2000, 5000]]);
    expect(sb.update(1000, 10_000, [[2000, 5000]])).to.equal(0); // repeated block: nothing new
    expect(sb.sackedIn(0, 100_000)).to.equal(3000);
    expect(sb.sackedIn(2500, 2600)).to.equal(100);
    expect(sb.sackedIn(1500, 2100)).to.equal(100);
    expect(sb.sackedIn(4900, 6000)).to.equal(100);
    expect(sb.sackedIn(3000, 3000)).to.equal(0);
    expect(sb.sackedIn(3000, 2000)).to.equal(0);
  });

  it("merges adjacent blocks into one range", () => {
    const sb = new SackScoreboard();
    sb.update(0, 1000, [
      [100, 200],
      [200, 300],
    ]);
    expect(sb.ranges).to.deep.equal([[100, 300]]);
  });

  it("does not trust bogus blocks: beyond SND.NXT, empty or inverted, at or below SND.UNA (D-SACK)", () => {
    const sb = new SackScoreboard();
    expect(sb.update(1000, 5000, [[4000, 5001]])).to.equal(0); // beyond what was sent
    expect(sb.update(1000, 5000, [[3000, 3000]])).to.equal(0); // empty
    expect(sb.update(1000, 5000, [[3000, 2000]])).to.equal(0); // inverted
    expect(sb.update(1000, 5000, [[500, 1000]])).to.equal(0); // D-SACK below the cumulative ACK
    expect(sb.update(1000, 5000, [[0x9000_0000, 0xa000_0000]])).to.equal(0); // garbage
    expect(sb.ranges).to.deep.equal([]);
    expect(sb.update(1000, 5000, [[900, 1100]])).to.equal(100); // straddles SND.UNA: counted from it
    expect(sb.update(1000, 5000, [[4000, 5000]])).to.equal(1000); // up to SND.NXT is fine
    expect(sb.ranges).to.deep.equal([
      [1000, 1100],
      [4000, 5000],
    ]);
  });

  it("forgets what the cumulative ACK passes (advance, and update with a new SND.UNA)", () => {
    const sb = new SackScoreboard();
    sb.update(0, 10_000, [
      [100, 200],
      [300, 400],
      [500, 600],
    ]);
    sb.advance(350);
    expect(sb.ranges).to.deep.equal([
      [350, 400],
      [500, 600],
    ]);
    expect(sb.sackedBytes).to.equal(150);
    sb.advance(300); // backwards: ignored
    expect(sb.sackedBytes).to.equal(150);
    expect(sb.update(600, 10_000, [[700, 800]])).to.equal(100);
    expect(sb.ranges).to.deep.equal([[700, 800]]);
    expect(sb.sackedBytes).to.equal(100);
    sb.clear();
    expect([sb.sackedBytes, sb.highSacked, sb.ranges.length]).to.deep.equal([0, undefined, 0]);
  });

  it("IsLost: DupThresh ranges above, or more than (DupThresh-1)*SMSS bytes above (RFC 6675 §4)", () => {
    const sb = new SackScoreboard();
    const mss = 100;
    sb.update(0, 10_000, [
      [1000, 1001],
      [2000, 2001],
    ]);
    expect(sb.isLost(0, mss)).to.equal(false); // two ranges, 2 bytes
    sb.update(0, 10_000, [[3000, 3001]]);
    expect(sb.isLost(0, mss)).to.equal(true); // three discontiguous ranges above
    expect(sb.isLost(1500, mss)).to.equal(false); // two above
    expect(sb.isLost(1500, mss, 2)).to.equal(true);
    expect(sb.isLost(1000, mss)).to.equal(false); // SACKed itself
    expect(sb.isLost(5000, mss)).to.equal(false); // nothing above
    const bytes = new SackScoreboard();
    bytes.update(0, 10_000, [[500, 700]]);
    expect(bytes.isLost(0, mss)).to.equal(false); // exactly 2*SMSS: not more
    bytes.update(0, 10_000, [[700, 701]]);
    expect(bytes.isLost(0, mss)).to.equal(true);
    expect(bytes.isLost(499, mss)).to.equal(true);
  });

  it("nextHole walks the unSACKed ranges below HighSACK", () => {
    const sb = new SackScoreboard();
    sb.update(1000, 10_000, [
      [2000, 3000],
      [4000, 5000],
    ]);
    expect(sb.nextHole(1000)).to.deep.equal([1000, 2000]);
    expect(sb.nextHole(500)).to.deep.equal([1000, 2000]); // nothing below SND.UNA is a hole
    expect(sb.nextHole(1500)).to.deep.equal([1500, 2000]);
    expect(sb.nextHole(2000)).to.deep.equal([3000, 4000]);
    expect(sb.nextHole(2500)).to.deep.equal([3000, 4000]);
    expect(sb.nextHole(3999)).to.deep.equal([3999, 4000]);
    expect(sb.nextHole(4000)).to.equal(undefined);
    expect(sb.nextHole(5000)).to.equal(undefined);
    expect(new SackScoreboard().nextHole(0)).to.equal(undefined);
  });

  it("works across the 2^32 wrap", () => {
    const una = SEQ_MAX - 999; // 2^32 - 1000
    const sb = new SackScoreboard();
    const b1: [number, number] = [seqAdd(una, 500), seqAdd(una, 1500)]; // crosses 0
    const b2: [number, number] = [seqAdd(una, 2000), seqAdd(una, 2100)];
    expect(sb.update(una, seqAdd(una, 5000), [b2, b1])).to.equal(1100);
    expect(sb.ranges).to.deep.equal([b1, b2]);
    expect(b1[0] > b1[1]).to.equal(true); // really wraps
    expect(sb.isSacked(SEQ_MAX)).to.equal(true);
    expect(sb.isSacked(0)).to.equal(true);
    expect(sb.isSacked(499)).to.equal(true);
    expect(sb.isSacked(500)).to.equal(false);
    expect(sb.highSacked).to.equal(seqAdd(una, 2100));
    expect(sb.nextHole(una)).to.deep.equal([una, b1[0]]);
    expect(sb.nextHole(0)).to.deep.equal([500, seqAdd(una, 2000)]);
    expect(sb.sackedIn(SEQ_MAX - 10, 10)).to.equal(21); // 2^32-11 .. 2^32-1, then 0 .. 9
    sb.advance(5);
    expect(sb.ranges[0]).to.deep.equal([5, 500]);
    expect(sb.sackedBytes).to.equal(595);
  });

  it("is bounded: beyond maxRanges the highest ranges are forgotten", () => {
    const sb = new SackScoreboard(3);
    const blocks: Array<[number, number]> = [];
    for (let i = 0; i < 5; i++) blocks.push([100 + 20 * i, 110 + 20 * i]);
    expect(sb.update(0, 1000, blocks.slice(0, 4))).to.equal(30);
    expect(sb.ranges.length).to.equal(3);
    expect(sb.highSacked).to.equal(150);
    expect(sb.update(0, 1000, [[50, 60]])).to.equal(0); // lower range kept, highest dropped
    expect(sb.ranges).to.deep.equal([
      [50, 60],
      [100, 110],
      [120, 130],
    ]);
    expect(sb.sackedBytes).to.equal(30);
    expect(() => new SackScoreboard(0)).to.throw(RangeError);
  });

  it("agrees with a per-byte model under random ACKs, SACK blocks and bogus blocks", () => {
    const W = 600;
    const blockArb = fc.tuple(fc.integer({ min: -50, max: W + 50 }), fc.integer({ min: -50, max: W + 50 }));
    const stepArb = fc.record({
      ackBy: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 60 })),
      sendMore: fc.integer({ min: 0, max: 80 }),
      blocks: fc.array(blockArb, { maxLength: 4 }),
      garbage: fc.array(fc.tuple(u32(), u32()), { maxLength: 1 }),
    });
    fc.assert(
      fc.property(
        fc.oneof(u32(), fc.integer({ min: SEQ_MAX - W, max: SEQ_MAX })),
        fc.array(stepArb, { minLength: 1, maxLength: 25 }),
        fc.nat(W),
        (origin, steps, probe) => {
          const sb = new SackScoreboard();
          const m = new Model(origin);
          let una = 0;
          let nxt = 100;
          for (const st of steps) {
            nxt = Math.min(W, nxt + st.sendMore);
            una = Math.min(nxt, una + st.ackBy);
            const blocks = st.blocks.map(([a, b]) => [una + a, una + b] as [number, number]);
            const want = m.update(una, nxt, blocks);
            const wire = blocks.map(([l, r]) => [m.seq(l), m.seq(r)] as [number, number]);
            // A garbage block, out of any range, is never trusted... unless it happens to be valid.
            for (const [l, r] of st.garbage) {
              const lo = seqSub(l, origin);
              const ro = seqSub(r, origin);
              if (lo < ro && ro > una && ro <= nxt) continue; // valid by chance: skip it for the model
              wire.push([l, r]);
            }
            expect(sb.update(m.seq(una), m.seq(nxt), wire)).to.equal(want);
            // Everything agrees with the model.
            const runs = m.runs();
            expect(sb.ranges).to.deep.equal(runs.map(([s, e]) => [m.seq(s), m.seq(e)]));
            expect(sb.sackedBytes).to.equal(runs.reduce((n, [s, e]) => n + e - s, 0));
            expect(sb.highSacked).to.equal(runs.length ? m.seq(runs[runs.length - 1][1]) : undefined);
            for (let o = una; o < nxt; o += 7) {
              expect(sb.isSacked(m.seq(o))).to.equal(m.sacked(o));
              expect(sb.isLost(m.seq(o), 10)).to.equal(m.isLost(o, 10, 3));
            }
            const from = una + (probe % (nxt - una + 1));
            const hole = runs.length && from < runs[runs.length - 1][1] ? holeFrom(m, from) : undefined;
            expect(sb.nextHole(m.seq(from))).to.deep.equal(hole && [m.seq(hole[0]), m.seq(hole[1])]);
            const to = Math.min(nxt, from + probe);
            let inRange = 0;
            for (let o = from; o < to; o++) if (m.sacked(o)) inRange++;
            expect(sb.sackedIn(m.seq(from), m.seq(to))).to.equal(inRange);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** First unSACKed range at or after `from` in the model (the caller checks it is below HighSACK). */
function holeFrom(m: Model, from: number): [number, number] | undefined {
  let o = from;
  while (m.sacked(o)) o++;
  let e = o;
  while (!m.sacked(e) && e < m.bits.length) e++;
  return e < m.bits.length ? [o, e] : undefined;
}
