import { expect } from "chai";
import { IdleTable, type IdleEntry, type IdleEnd } from "../../src/stack/idle-table.js";
import type { TimerHost } from "../../src/stack/timers.js";

/** Time that moves only when the test says so; pending timers fire on `advance`. */
class ManualHost implements TimerHost {
  t = 0;
  private pending: Array<{ at: number; fn: () => void }> = [];
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const h = { at: this.t + ms, fn };
    this.pending.push(h);
    return h;
  };
  clearTimeout = (h: unknown) => {
    this.pending = this.pending.filter((p) => p !== h);
  };
  advance(ms: number): void {
    this.t += ms;
    const due = this.pending.filter((p) => p.at <= this.t);
    this.pending = this.pending.filter((p) => p.at > this.t);
    for (const p of due) p.fn();
  }
}

class Entry implements IdleEntry {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  lastActive = 0;
  constructor(readonly key: number) {}
}

describe("stack/idle-table", () => {
  function setup(max = 3) {
    const host = new ManualHost();
    const ended: Array<[number, IdleEnd]> = [];
    const t = new IdleTable<Entry>(host, 1000, max, (e, why) => ended.push([e.key, why]));
    return { host, t, ended };
  }

  it("expires an entry idle for idleMs, and not one used in the meantime", () => {
    const { host, t, ended } = setup();
    const a = new Entry(1);
    const b = new Entry(2);
    t.add(a, 0);
    t.add(b, 0);
    host.advance(600);
    t.touch(b, host.t);
    host.advance(400);
    expect(ended).to.deep.equal([[1, "expired"]]);
    expect(t.has(a)).to.equal(false);
    host.advance(600);
    expect(ended).to.deep.equal([[1, "expired"], [2, "expired"]]);
    expect(t.size).to.equal(0);
  });

  it("evicts the least recently used entry at the cap", () => {
    const { t, ended } = setup(2);
    const [a, b, c] = [new Entry(1), new Entry(2), new Entry(3)];
    t.add(a, 0);
    t.add(b, 0);
    t.touch(a, 1);
    t.makeRoom();
    t.add(c, 2);
    expect(ended).to.deep.equal([[2, "evicted"]]);
    expect([...t.values()].map((e) => e.key)).to.deep.equal([1, 3]);
  });

  it("a deleted entry neither expires nor reports", () => {
    const { host, t, ended } = setup();
    const a = new Entry(1);
    t.add(a, 0);
    expect(t.delete(a)).to.equal(true);
    expect(t.delete(a)).to.equal(false);
    host.advance(5000);
    expect(ended).to.deep.equal([]);
  });
});
