// The stack's timer driver (src/stack/timers.ts): deadlines moved later cost no heap entry, and
// whatever the sequence of schedule/cancel/run, each item fires exactly when a simple model
// says: at the first run() at or after its latest deadline, never early, never once cancelled.

import { expect } from "chai";
import fc from "fast-check";
import { TimerDriver, type TimerHost, type TimerTarget } from "../../src/stack/timers.js";

class Item implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  constructor(readonly id: number) {}
}

function manual(): TimerHost & { t: number; armed: number | undefined } {
  const h = {
    t: 0,
    armed: undefined as number | undefined,
    now: () => h.t,
    setTimeout: (_fn: () => void, ms: number) => {
      h.armed = h.t + ms;
      return 1;
    },
    clearTimeout: () => {
      h.armed = undefined;
    },
  };
  return h;
}

describe("stack/timers: TimerDriver", () => {
  it("moving a deadline later adds no heap entry; the item fires at the later time", () => {
    const host = manual();
    const fired: Array<[number, number]> = [];
    const d = new TimerDriver<Item>(host, (item, now) => fired.push([item.id, now]));
    const a = new Item(1);
    d.schedule(a, 100);
    for (let at = 101; at <= 1100; at++) d.schedule(a, at);
    expect(d.size).to.equal(1);
    host.t = 100;
    d.run();
    expect(fired).to.deep.equal([]);
    expect(d.size, "queued again for the later deadline").to.equal(1);
    host.t = 1099;
    d.run();
    host.t = 1100;
    d.run();
    expect(fired).to.deep.equal([[1, 1100]]);
    expect(d.size).to.equal(0);
  });

  it("an earlier deadline fires early and the old entry is skipped", () => {
    const host = manual();
    const fired: number[] = [];
    const d = new TimerDriver<Item>(host, (_item, now) => fired.push(now));
    const a = new Item(1);
    d.schedule(a, 500);
    d.schedule(a, 40);
    expect(host.armed).to.equal(40);
    host.t = 40;
    d.run();
    host.t = 600;
    d.run();
    expect(fired).to.deep.equal([40]);
  });

  it("cancel, and schedule(item, Infinity), stop a queued item; it can be scheduled again", () => {
    const host = manual();
    const fired: number[] = [];
    const d = new TimerDriver<Item>(host, (item) => fired.push(item.id));
    const a = new Item(1);
    const b = new Item(2);
    d.schedule(a, 10);
    d.schedule(b, 10);
    d.cancel(a);
    d.schedule(b, Infinity);
    host.t = 20;
    d.run();
    expect(fired).to.deep.equal([]);
    d.schedule(a, 30);
    d.schedule(b, 30);
    host.t = 30;
    d.run();
    expect(fired.sort()).to.deep.equal([1, 2]);
  });

  it("stale entries do not pile up: under churn the heap holds at most twice the live items (+64)", () => {
    // Found by the soak: a flood evicting UDP flows from a full table left every evicted flow
    // on the heap (and so in memory) until its idle deadline.
    const host = manual();
    const d = new TimerDriver<Item>(host, () => {});
    const live: Item[] = [];
    for (let i = 0; i < 100_000; i++) {
      const it = new Item(i);
      d.schedule(it, 60_000 + i);
      live.push(it);
      if (live.length > 100) d.cancel(live.shift()!);
      // Half the time an earlier deadline: the old entry goes stale too.
      if (i % 2 === 0) d.schedule(it, 30_000 + i);
      expect(d.size).to.be.at.most(2 * d.pending + 64);
    }
    expect(d.pending).to.equal(100);
    for (const it of live) d.cancel(it);
    expect(d.size).to.be.at.most(64);
  });

  for (const nItems of [5, 150]) {
    it(`matches a model under random schedule/cancel/run sequences (${nItems} items)`, () => {
      const op = fc.oneof(
        fc.record({ k: fc.constant("schedule" as const), id: fc.nat(nItems - 1), dt: fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constant(Infinity)) }),
        fc.record({ k: fc.constant("cancel" as const), id: fc.nat(nItems - 1) }),
        fc.record({ k: fc.constant("run" as const), dt: fc.integer({ min: 0, max: 30 }) }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: nItems > 5 ? 1000 : 200 }), (ops) => {
          const host = manual();
          const fired: Array<[number, number]> = [];
          const d = new TimerDriver<Item>(host, (item, now) => fired.push([item.id, now]));
          const items = Array.from({ length: nItems }, (_, i) => new Item(i));
          const want = new Map<number, number>(); // the model: id -> deadline
          const expected: Array<[number, number]> = [];
          for (const o of ops) {
            if (o.k === "schedule") {
              const at = host.t + o.dt;
              d.schedule(items[o.id], at);
              if (at === Infinity) want.delete(o.id);
              else want.set(o.id, at);
            } else if (o.k === "cancel") {
              d.cancel(items[o.id]);
              want.delete(o.id);
            } else {
              host.t += o.dt;
              d.run();
              for (const [id, at] of [...want].sort((x, y) => x[1] - y[1] || x[0] - y[0])) {
                if (at <= host.t) {
                  expected.push([id, host.t]);
                  want.delete(id);
                }
              }
            }
          }
          const key = (x: [number, number]) => `${x[1]}:${x[0]}`;
          expect(fired.map(key).sort()).to.deep.equal(expected.map(key).sort());
          // The armed timer is never later than the earliest deadline still wanted.
          const earliest = Math.min(...want.values());
          if (earliest !== Infinity) expect(host.armed).to.be.at.most(earliest);
        }),
        { numRuns: 500 },
      );
    });
  }
});
