/**
 * common/memory-reducer.ts: a full collection is asked for only while the event loop is idle and
 * the heap has grown past both thresholds; the baseline follows what collections leave.
 */
import { expect } from "chai";
import { MemoryReducer, shouldCollect } from "../../src/common/memory-reducer.js";

const O = { intervalMs: 1000, idleElu: 0.05, minGrowthBytes: 32 << 20, growthFactor: 1.5 };
const MB = 1 << 20;

describe("common/memory-reducer", () => {
  it("collects only when idle and grown by both the bytes and the factor", () => {
    expect(shouldCollect(0.01, 200 * MB, 60 * MB, O)).to.equal(true);
    expect(shouldCollect(0.2, 200 * MB, 60 * MB, O), "busy").to.equal(false);
    expect(shouldCollect(0.01, 80 * MB, 60 * MB, O), "grown 20 MB only").to.equal(false);
    expect(shouldCollect(0.01, 340 * MB, 300 * MB, O), "grown 40 MB but 1.13×").to.equal(false);
    expect(shouldCollect(0.01, 92 * MB, 60 * MB, O), "exactly 32 MB and 1.53×").to.equal(true);
  });

  it("asks the collector when the heap grew while the loop idled, once, and not again until it grows again", async () => {
    let calls = 0;
    let garbage: Uint8Array[][] | undefined = [];
    const gc = () => {
      calls++;
      garbage = undefined; // what a collection would free; the baseline is re-read after
    };
    const r = new MemoryReducer({ intervalMs: 60_000, minGrowthBytes: 8 * MB, growthFactor: 1.01, idleElu: 0.5 }, gc);
    try {
      r.check(); // the interval so far: start-up work, maybe busy
      // Grow the heap by ~40 MB of small arrays (V8 heap, not external memory).
      for (let i = 0; i < 400_000; i++) garbage!.push(new Array(10).fill(i) as unknown as Uint8Array[]);
      r.check();
      expect(calls, "not while growing (the interval was busy)").to.equal(0);
      await new Promise((res) => setTimeout(res, 600)); // an idle interval
      r.check();
      expect(calls, "collected once").to.equal(1);
      expect(r.collections).to.equal(1);
      await new Promise((res) => setTimeout(res, 300));
      r.check();
      expect(calls, "no growth since: no second collection").to.equal(1);
    } finally {
      r.stop();
    }
  });

  it("does not collect while the loop is busy", () => {
    let calls = 0;
    const r = new MemoryReducer({ intervalMs: 60_000, minGrowthBytes: 1, growthFactor: 1 }, () => calls++);
    try {
      r.check();
      const keep: number[][] = [];
      const t0 = performance.now();
      while (performance.now() - t0 < 200) keep.push(new Array(100).fill(1)); // busy, and growing
      r.check();
      expect(calls).to.equal(0);
      expect(keep.length).to.be.greaterThan(0);
    } finally {
      r.stop();
    }
  });
});
