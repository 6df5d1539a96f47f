/**
 * common/counters.ts: the one base of every component's counters (`snapshot()` a plain copy,
 * drops by reason copied too) and the stats tree (`Network.stats()`, GET /stats) that walks
 * registered groups: counters with gauges beside them, subtrees, values, a tree extended by
 * its owner.
 */
import { expect } from "chai";
import { Counters, DropCounters, StatsTree } from "../../src/common/counters.js";

class Flows extends Counters {
  opened = 0;
  closed = 0;
}

class Refusals extends DropCounters<"bad" | "late"> {
  seen = 0;
}

describe("common/counters", () => {
  it("snapshot() is a plain copy of the fields: later increments do not show in it", () => {
    const c = new Flows();
    c.opened++;
    const s = c.snapshot();
    c.opened++;
    expect(s).to.deep.equal({ opened: 1, closed: 0 });
    expect(Object.getPrototypeOf(s)).to.equal(Object.prototype);
  });

  it("drops by reason are counted and copied by snapshot()", () => {
    const c = new Refusals();
    c.seen++;
    expect(c.drop("bad")).to.equal(undefined);
    c.drop("bad");
    const s = c.snapshot();
    c.drop("late");
    expect(s).to.deep.equal({ drops: { bad: 2 }, seen: 1 });
    expect([c.dropped("bad"), c.dropped("late")]).to.deep.equal([2, 1]);
  });

  it("a stats tree walks its groups in order: counters with gauges, subtrees, values (undefined left out)", () => {
    const flows = new Flows();
    const refusals = new Refusals();
    let open = 3;
    const tree = new StatsTree()
      .counters("flows", flows, () => ({ open }))
      .tree("inner", new StatsTree().counters("refusals", refusals))
      .value("list", () => [1, 2])
      .value("absent", () => undefined);
    flows.opened = 5;
    open = 4;
    refusals.drop("late");
    expect(tree.snapshot()).to.deep.equal({ flows: { opened: 5, closed: 0, open: 4 }, inner: { refusals: { drops: { late: 1 }, seen: 0 } }, list: [1, 2] });
    expect(Object.keys(tree.snapshot())).to.deep.equal(["flows", "inner", "list"]);
  });

  it("an extended tree shows its parent's groups (added later too) before its own", () => {
    const parent = new StatsTree().counters("a", new Flows());
    const child = parent.extend().value("mine", () => 1);
    parent.value("later", () => 2);
    expect(child.snapshot()).to.deep.equal({ a: { opened: 0, closed: 0 }, later: 2, mine: 1 });
    expect(parent.snapshot()).to.not.have.property("mine");
  });

  it("a second group of the same name is an error, not a silent replacement", () => {
    const tree = new StatsTree().counters("a", new Flows());
    expect(() => tree.value("a", () => 1)).to.throw(/second group named "a"/);
  });
});
