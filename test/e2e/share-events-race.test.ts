/**
 * End to end (issue 15's file events, a race found by CI): a host change is replayed in the guest
 * by the agent (native/guest-agent.c) while another guest process is looking the same name up.
 *
 * With the 9p client's cache=none a looked-up name's dentry lives only while the lookup holds
 * it; a guest process that stats a name the host has just created holds a positive dentry for the
 * length of its stat, and the agent's mknod of that name meets it and fails with EEXIST (its
 * unlink of a deleted name likewise meets a negative one: ENOENT). The guest's watchers then
 * never got the event. The guest here polls each name without pause (`[ -e ]` is a shell
 * builtin: back-to-back stat calls) while the host creates and deletes it; every create and
 * delete must still reach the guest's watcher, once.
 */
import { expect } from "chai";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { Lines, afterWatching, guestSuite, sleep } from "../support/guest-events.js";
import { vmRun } from "../../src/cli/vm.js";

const log = pino({ level: "silent" });
const ROUNDS = 12;

describe("e2e: file events while a guest process looks the same name up", function () {
  this.timeout(600_000);
  const suite = guestSuite("skiff-events-race-");

  it(`host creates and deletes ${ROUNDS} files a guest shell is polling without pause: each create and delete reaches the guest's watcher once`, async () => {
    const share = join(suite.dir, "race");
    const deep = join(share, "a", "b", "c");
    mkdirSync(deep, { recursive: true });
    const P = "/w/a/b/c";
    // The poller: for each name, spin until it exists, then until it is gone.
    const poll = `i=0; while [ $i -lt ${ROUNDS} ]; do while [ ! -e ${P}/x$i ]; do :; done; while [ -e ${P}/x$i ]; do :; done; i=$((i+1)); done; echo POLLED`;
    const script = `skiff-agent watch /w & (${poll}) & while [ ! -e /w/done ]; do sleep 0.2; done; sleep 0.5; kill %1; wait %2; echo END`;
    const lines = new Lines();
    const lost: string[] = [];
    const run = afterWatching(lines, join(share, "done"), async () => {
      for (let i = 0; i < ROUNDS; i++) {
        const name = `x${i}`;
        for (const [what, act, re] of [
          ["create", () => writeFileSync(join(deep, name), ""), new RegExp(`^EV CREATE ${P}/${name}$`)],
          ["delete", () => rmSync(join(deep, name)), new RegExp(`^EV DELETE ${P}/${name}$`)],
        ] as const) {
          const t0 = performance.now();
          act();
          // A replay takes milliseconds; 5 s is far beyond it (a lost one never comes).
          await lines.wait(re, t0, 5_000).catch(() => lost.push(`${what} ${name}`));
          await sleep(50);
        }
      }
    });
    const status = await vmRun({
      cpus: 1, memoryMiB: 256, mtu: 65520, accel: "tcg", cacheDir: suite.cacheDir, command: ["sh", "-c", script],
      volumes: [`${share}:/w`], consoleLog: join(suite.dir, "race.console.log"), output: (l) => lines.push(l), log,
    });
    const failure = await run;
    if (failure) throw failure;
    const out = lines.seen.map((l) => l.line).join("\n");
    expect(status, out).to.equal(0);
    expect(out, "the poller saw every name come and go").to.include("POLLED");
    expect(lost, `events the guest's watcher never got:\n${out}`).to.deep.equal([]);
    for (let i = 0; i < ROUNDS; i++) {
      expect(lines.count(new RegExp(`^EV CREATE ${P}/x${i}$`)), `create x${i} seen once`).to.equal(1);
      expect(lines.count(new RegExp(`^EV DELETE ${P}/x${i}$`)), `delete x${i} seen once`).to.equal(1);
    }
    expect(existsSync(join(deep, "x0"))).to.equal(false);
  });
});
