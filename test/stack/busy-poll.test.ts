import { expect } from "chai";
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { BUSY_BACKOFF_MS, BUSY_FRAMES, BusyPoller, CpuHeadroom } from "../../src/stack/busy-poll.js";
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

  it("a loop busy anyway (more than BUSY_FRAMES frames in one spin iteration) stops spinning for BUSY_BACKOFF_MS", async () => {
    let activity = 0;
    const p = new BusyPoller(50_000, () => activity);
    p.kick();
    await new Promise((r) => setImmediate(r));
    expect(p.active).to.equal(true);
    activity += BUSY_FRAMES; // as many as a ping-pong may move: keeps spinning
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(p.active).to.equal(true);
    activity += BUSY_FRAMES + 1;
    const before = performance.now();
    for (let i = 0; p.active && i < 1000; i++) await new Promise((r) => setImmediate(r));
    expect(p.active).to.equal(false);
    const stoppedAt = before;
    p.kick();
    // Ignored during the back-off (unless this check itself came late).
    if (performance.now() - stoppedAt < BUSY_BACKOFF_MS) expect(p.active).to.equal(false);
    await new Promise((r) => setTimeout(r, BUSY_BACKOFF_MS + 5));
    p.kick();
    expect(p.active).to.equal(true);
    p.stop();
  });

  it("does not spin while headroom() says no core is spare", () => {
    let spare = false;
    const p = new BusyPoller(10_000, () => 0, undefined, () => spare);
    p.kick();
    expect(p.active).to.equal(false);
    spare = true;
    p.kick();
    expect(p.active).to.equal(true);
    p.stop();
  });

  it("CpuHeadroom answers false while other processes keep every core busy", async function () {
    this.timeout(10_000);
    const h = new CpuHeadroom(100);
    h.check();
    // One CPU burner per core: nothing is spare for us.
    const burners = Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ["-e", "for(;;){}"], { stdio: "ignore" }));
    try {
      // Each check() past a period judges that period. The burners take a moment to start (more
      // on a loaded machine): the answer is false within a few periods, not after a fixed wait.
      let spare = true;
      for (const t0 = Date.now(); spare && Date.now() - t0 < 5000; ) {
        await new Promise((r) => setTimeout(r, 150));
        spare = h.check();
      }
      expect(spare).to.equal(false);
    } finally {
      for (const b of burners) b.kill("SIGKILL");
    }
  });
});
