import { expect } from "chai";
import { BusyPoller } from "../../src/stack/busy-poll.js";
import { until } from "../support/wait.js";

describe("stack/busy-poll: keep the event loop polling briefly after traffic", () => {
  it("spins while activity keeps changing and stops one window after the last change", async () => {
    let activity = 0;
    const p = new BusyPoller(5_000, () => activity);
    p.kick();
    expect(p.active).to.equal(true);
    // Keep the activity changing for ~20 ms: the window (5 ms) keeps restarting.
    const t0 = performance.now();
    while (performance.now() - t0 < 20) {
      activity++;
      await new Promise((r) => setImmediate(r));
      expect(p.active).to.equal(true);
    }
    const quiet = performance.now();
    await until(() => !p.active, 1_000);
    const spun = performance.now() - quiet;
    expect(spun).to.be.at.least(4).and.below(200);
  });

  it("does nothing with a zero window, and stop() ends a spin", async () => {
    const off = new BusyPoller(0, () => 0);
    off.kick();
    expect(off.active).to.equal(false);
    const p = new BusyPoller(10_000_000, () => 0);
    p.kick();
    expect(p.active).to.equal(true);
    p.stop();
    await until(() => !p.active, 1_000);
    p.kick();
    expect(p.active).to.equal(false);
  });
});
