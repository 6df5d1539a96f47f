/**
 * End to end (issue 16, "file events reach watchers inside containers" for shares larger than
 * the agent's pin budget): `skiff vm run -v` in a QEMU TCG guest (Debian's 6.1 kernel, 9p over
 * skiff's TCP, cache=none) with `--watch-dirs 16` and a share of 361 directories, so the agent's
 * initial pass pins the root and 15 others and no directory at depth 3.
 *
 * Pinning on demand (src/share/inject.ts, native/guest-agent.c): a guest user's walk to a
 * directory makes the agent pin it while the walker's lookup is still in progress, so the
 * watcher's inotify_add_watch — the very first lookup of that directory in the guest — lands on
 * the inode later host events are replayed on. Asserted: host create, modify and delete in three
 * such directories reach the watcher (before on-demand pinning, none did), after a `find` over
 * every directory has recycled the pins; the agent holds exactly the budget; a directory held by
 * root (a working directory, as a bind mount's source is) lets a non-root user create a file in
 * it without anyone rereading its attributes.
 */
import { expect } from "chai";
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { Lines, afterWatching, guestSuite, sleep } from "../support/guest-events.js";
import { vmRun } from "../../src/cli/vm.js";

const log = pino({ level: "silent" });

const BUDGET = 16;
const TOP = 120;

describe("e2e: file events below directories beyond the agent's pin budget (pinning on demand)", function () {
  this.timeout(600_000);
  const suite = guestSuite("skiff-pin-demand-e2e-");

  it(`--watch-dirs ${BUDGET}, ${TOP * 3 + 1} directories: a watcher added on directories at depth 3 gets host create, modify and delete there; a non-root user creates in a directory root holds`, async () => {
    const share = join(suite.dir, "big");
    for (let i = 0; i < TOP; i++) mkdirSync(join(share, `d${String(i).padStart(3, "0")}`, "a", "b"), { recursive: true });
    const targets = ["d100/a/b", "d050/a/b", "d007/a/b"];
    for (const t of targets) writeFileSync(join(share, t, "old.txt"), "old\n");
    // The agent's pins: its descriptors on the share.
    const pins = "for f in /proc/$(pidof skiff-agent)/fd/*; do readlink $f; done | grep -c '^/w'";
    const script = [
      // Walk every directory (more than the budget: the pins are recycled, least recently used first).
      "cs() { cut -d' ' -f1 /proc/uptime | tr -d .; }; s=$(cs); n=$(find /w -type d | wc -l); echo FIND dirs=$n ms=$(( ($(cs) - s) * 10 ))",
      `echo PINS=$(${pins})`,
      // Root holds d030/a as its working directory (as a bind mount holds its source), looked up as root.
      "(cd /w/d030/a && touch /tmp/held && exec sleep 600) & until [ -e /tmp/held ]; do sleep 0.1; done",
      "echo 'u:x:1234:1234::/:/bin/sh' >> /etc/passwd; echo 'u:x:1234:' >> /etc/group",
      "if su u -c 'echo hi > /w/d030/a/by-user'; then echo USER-CREATE=ok; else echo USER-CREATE=fail; fi",
      `skiff-agent watch ${targets.map((t) => `/w/${t}`).join(" ")} &`,
      "while [ ! -e /w/done ]; do sleep 0.2; done; sleep 0.5; kill %2 %1; wait",
      `echo PINS=$(${pins})`,
    ].join("\n");
    const lines = new Lines();
    const latencies: string[] = [];
    const run = afterWatching(lines, join(share, "done"), async () => {
      for (const t of targets) {
        const p = join(share, t);
        const g = `/w/${t}`.replace(/\//g, "\\/");
        for (const [name, act, re] of [
          ["create", () => writeFileSync(join(p, "new.txt"), ""), new RegExp(`^EV CREATE ${g}\\/new\\.txt$`)],
          ["modify", () => appendFileSync(join(p, "old.txt"), "more\n"), new RegExp(`^EV MODIFY ${g}\\/old\\.txt$`)],
          ["delete", () => rmSync(join(p, "new.txt")), new RegExp(`^EV DELETE ${g}\\/new\\.txt$`)],
        ] as const) {
          const t0 = performance.now();
          act();
          latencies.push(`${t} ${name} ${((await lines.wait(re, t0, 20_000)) - t0).toFixed(0)} ms`);
          await sleep(200);
        }
      }
    });
    const status = await vmRun({
      cpus: 1, memoryMiB: 256, mtu: 65520, accel: "tcg", cacheDir: suite.cacheDir, command: ["sh", "-c", script], watchDirs: BUDGET,
      volumes: [`${share}:/w`], consoleLog: join(suite.dir, "console.log"), output: (l) => lines.push(l), log,
    });
    const failure = await run;
    const out = lines.seen.map((l) => l.line).join("\n");
    if (failure) throw failure;
    expect(status, out).to.equal(0);
    expect(out).to.match(/skiff-agent: events of share .* on \/w/);
    const find = /^FIND dirs=(\d+) ms=(\d+)$/m.exec(out);
    expect(find?.[1], "find walked every directory").to.equal(String(TOP * 3 + 1));
    expect([...out.matchAll(/^PINS=(\d+)$/gm)].map((m) => Number(m[1])), "the agent holds --watch-dirs directories, no more").to.deep.equal([BUDGET, BUDGET]);
    expect(out, "a non-root user created a file in a directory root holds").to.include("USER-CREATE=ok");
    console.log(`      host change → guest inotify line (TCG, console included): ${latencies.join(", ")}`);
    console.log(`      find over ${find![1]} directories (each walk waits for the agent's pin): ${find![2]} ms`);
  });
});
