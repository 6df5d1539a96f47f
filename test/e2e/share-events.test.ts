/**
 * End to end (issue 15, "file events, better than every peer"): `skiff vm run -v` in a QEMU TCG
 * guest (Debian's 6.1 kernel, 9p over skiff's TCP), its file-event agent started by the image's
 * init (native/guest-agent.c), and inotify watchers on both sides.
 *
 * Host → guest: create, modify, attribute change, delete and rename made on the host at depth 3
 * and more (and in a directory the host creates meanwhile) reach a recursive inotify watcher in
 * the guest (`skiff-agent watch`, inotifywait -m -r style); the latency from the host's change to
 * the watcher's line on the console (an upper bound: it includes the serial console) is printed.
 * Guest → host: the same five kinds made by the guest reach a watcher on the host (the same
 * program built for the host), and the guest's own watcher sees each of its own changes once (no
 * echo from the host watcher comes back as a second event).
 */
import { expect } from "chai";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, chmodSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { Lines, afterWatching, guestSuite, sleep } from "../support/guest-events.js";
import { vmRun } from "../../src/cli/vm.js";
import { agentSourcePath } from "../../src/vm/agent.js";

const log = pino({ level: "silent" });

describe("e2e: file events on shares — host changes reach guest watchers, guest changes reach host watchers", function () {
  this.timeout(600_000);
  const suite = guestSuite("skiff-events-e2e-");

  it("host → guest: create, modify, attrib, rename, delete at depth ≥ 3 (and in a directory the host creates) reach an inotify watcher in the guest", async () => {
    const share = join(suite.dir, "h2g");
    const deep = join(share, "a", "b", "c");
    mkdirSync(join(deep, "e", "f"), { recursive: true });
    writeFileSync(join(deep, "f.txt"), "one\n");
    // The guest watches, then waits for the host's "done" mark.
    const script = "skiff-agent watch /w & while [ ! -e /w/done ]; do sleep 0.2; done; sleep 0.5; kill %1";
    const lines = new Lines();
    const steps: [string, () => void, RegExp[]][] = [
      ["create", () => writeFileSync(join(deep, "new.txt"), ""), [/^EV CREATE \/w\/a\/b\/c\/new\.txt$/]],
      ["modify", () => appendFileSync(join(deep, "f.txt"), "two\n"), [/^EV MODIFY \/w\/a\/b\/c\/f\.txt$/]],
      ["attrib", () => chmodSync(join(deep, "f.txt"), 0o600), [/^EV ATTRIB \/w\/a\/b\/c\/f\.txt$/]],
      ["rename", () => renameSync(join(deep, "new.txt"), join(deep, "e", "f", "moved.txt")), [/^EV MOVED_FROM \/w\/a\/b\/c\/new\.txt$/, /^EV MOVED_TO \/w\/a\/b\/c\/e\/f\/moved\.txt$/]],
      ["delete", () => rmSync(join(deep, "e", "f", "moved.txt")), [/^EV DELETE \/w\/a\/b\/c\/e\/f\/moved\.txt$/]],
      ["mkdir", () => mkdirSync(join(deep, "d")), [/^EV CREATE,ISDIR \/w\/a\/b\/c\/d$/]],
      ["create in the new directory (depth 5)", () => writeFileSync(join(deep, "d", "g.txt"), "g"), [/^EV CREATE \/w\/a\/b\/c\/d\/g\.txt$/]],
      ["modify there", () => appendFileSync(join(deep, "d", "g.txt"), "h"), [/^EV MODIFY \/w\/a\/b\/c\/d\/g\.txt$/]],
      ["delete there", () => rmSync(join(deep, "d", "g.txt")), [/^EV DELETE \/w\/a\/b\/c\/d\/g\.txt$/]],
      ["rename a directory", () => renameSync(join(deep, "d"), join(deep, "e", "d2")), [/^EV MOVED_FROM,ISDIR \/w\/a\/b\/c\/d$/, /^EV MOVED_TO,ISDIR \/w\/a\/b\/c\/e\/d2$/]],
      ["create in the renamed directory", () => writeFileSync(join(deep, "e", "d2", "k"), ""), [/^EV CREATE \/w\/a\/b\/c\/e\/d2\/k$/]],
      ["rmdir", () => rmSync(join(deep, "e", "d2"), { recursive: true }), [/^EV DELETE,ISDIR \/w\/a\/b\/c\/e\/d2$/]],
    ];
    const latencies: string[] = [];
    const run = afterWatching(lines, join(share, "done"), async () => {
      for (const [name, act, expected] of steps) {
        const t0 = performance.now();
        act();
        let worst = 0;
        for (const re of expected) worst = Math.max(worst, (await lines.wait(re, t0, 20_000)) - t0);
        latencies.push(`${name} ${worst.toFixed(0)} ms`);
        await sleep(300);
      }
    });
    const status = await vmRun({
      cpus: 1, memoryMiB: 256, mtu: 65520, accel: "tcg", cacheDir: suite.cacheDir, command: ["sh", "-c", script],
      volumes: [`${share}:/w`], consoleLog: join(suite.dir, "h2g.console.log"), output: (l) => lines.push(l), log,
    });
    const failure = await run;
    if (failure) throw failure;
    expect(status, lines.seen.map((l) => l.line).join("\n")).to.equal(0);
    expect(lines.seen.some((l) => /skiff-agent: events of share .* on \/w/.test(l.line)), "the agent started before the command").to.equal(true);
    console.log(`      host change → guest inotify line (TCG, console included): ${latencies.join(", ")}`);
  });

  it("guest → host: the guest's create, modify, attrib, rename, delete at depth 3 reach an inotify watcher on the host; the guest's own watcher sees each once (no echo)", async () => {
    const share = join(suite.dir, "g2h");
    mkdirSync(join(share, "a", "b", "c"), { recursive: true });
    const src = agentSourcePath();
    expect(src, "native/guest-agent.c").to.be.a("string");
    const watcherBin = join(suite.dir, "host-watch");
    execFileSync("cc", ["-O2", "-o", watcherBin, src!]);
    const host = new Lines();
    const watcher: ChildProcess = spawn(watcherBin, ["watch", share], { stdio: ["ignore", "pipe", "inherit"] });
    let buf = "";
    watcher.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        host.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    try {
      await host.wait(/^WATCHING/, 0, 10_000);
      const P = "/w/a/b/c";
      const script = [
        // The watcher's lines go to a file (printed at the end), so that the script can wait
        // until the watcher has added its watch on a new directory before the host writes in it.
        "skiff-agent watch /w > /tmp/ev &",
        "until grep -q ^WATCHING /tmp/ev 2>/dev/null; do sleep 0.1; done",
        `touch ${P}/g1; sleep 0.3`,
        `echo x >> ${P}/g1; sleep 0.3`,
        `chmod 600 ${P}/g1; sleep 0.3`,
        `mv ${P}/g1 ${P}/g2; sleep 0.3`,
        `rm ${P}/g2; sleep 0.3`,
        `mkdir ${P}/gd; sleep 0.3; rmdir ${P}/gd`,
        // Directories the guest makes are watched at once by the guest's watcher; the host then
        // creates a file in each, which must reach that watch (the agent pinned the directory).
        ...[0, 1, 2].map((i) => `mkdir ${P}/made${i}; until grep -q "^WATCH ${P}/made${i}$" /tmp/ev; do sleep 0.1; done; touch /w/ready${i}; while [ ! -e ${P}/made${i}/hostfile ]; do sleep 0.1; done`),
        "sleep 3; kill %1; cat /tmp/ev",
      ].join("\n");
      const guest = new Lines();
      const made = setInterval(() => {
        for (const i of [0, 1, 2]) {
          const d = join(share, "a", "b", "c", `made${i}`);
          if (existsSync(join(share, `ready${i}`)) && !existsSync(join(d, "hostfile"))) writeFileSync(join(d, "hostfile"), "");
        }
      }, 20);
      const status = await vmRun({
        cpus: 1, memoryMiB: 256, mtu: 65520, accel: "tcg", cacheDir: suite.cacheDir, command: ["sh", "-c", script],
        volumes: [`${share}:/w`], consoleLog: join(suite.dir, "g2h.console.log"), output: (l) => guest.push(l), log,
      }).finally(() => clearInterval(made));
      expect(status, guest.seen.map((l) => l.line).join("\n")).to.equal(0);
      const H = `${share}/a/b/c`;
      for (const re of [
        new RegExp(`^EV CREATE ${H}/g1$`), new RegExp(`^EV MODIFY ${H}/g1$`), new RegExp(`^EV ATTRIB ${H}/g1$`),
        new RegExp(`^EV MOVED_FROM ${H}/g1$`), new RegExp(`^EV MOVED_TO ${H}/g2$`), new RegExp(`^EV DELETE ${H}/g2$`),
        new RegExp(`^EV CREATE,ISDIR ${H}/gd$`), new RegExp(`^EV DELETE,ISDIR ${H}/gd$`),
      ]) await host.wait(re, 0, 5_000);
      // The guest's watcher saw its own changes (pinned directories) exactly once each: the host
      // watcher's events for them were recognised as the server's own and not injected back.
      const G = "/w/a/b/c";
      for (const [re, what] of [
        [new RegExp(`^EV CREATE ${G}/g1$`), "create"], [new RegExp(`^EV MODIFY ${G}/g1$`), "modify"], [new RegExp(`^EV MOVED_FROM ${G}/g1$`), "rename (from)"],
        [new RegExp(`^EV MOVED_TO ${G}/g2$`), "rename (to)"], [new RegExp(`^EV DELETE ${G}/g2$`), "delete"], [new RegExp(`^EV CREATE,ISDIR ${G}/gd$`), "mkdir"],
        [new RegExp(`^EV DELETE,ISDIR ${G}/gd$`), "rmdir"],
      ] as const) expect(guest.count(re), `${what} seen once in the guest:\n${guest.seen.map((l) => l.line).join("\n")}`).to.equal(1);
      expect(existsSync(join(share, "a", "b", "c", "g2"))).to.equal(false);
      for (const i of [0, 1, 2]) {
        expect(guest.count(new RegExp(`^EV CREATE ${G}/made${i}/hostfile$`)), `a host file in the guest's new directory made${i} reached the guest's watch on it`).to.equal(1);
      }
    } finally {
      watcher.kill();
    }
  });

  it("a read-only volume gets host events too (the agent replays them on its own mount; the guest's view stays read-only)", async () => {
    const share = join(suite.dir, "ro");
    mkdirSync(join(share, "a", "b", "c"), { recursive: true });
    const script = "skiff-agent watch /r & while [ ! -e /r/done ]; do sleep 0.2; done; sleep 0.5; kill %1; if touch /r/a/x 2>/dev/null; then echo RO=no; else echo RO=yes; fi; grep ' /r ' /proc/mounts";
    const lines = new Lines();
    const run = afterWatching(lines, join(share, "done"), async () => {
      const t0 = performance.now();
      writeFileSync(join(share, "a", "b", "c", "host.txt"), "");
      await lines.wait(/^EV CREATE \/r\/a\/b\/c\/host\.txt$/, t0, 20_000);
      const t1 = performance.now();
      rmSync(join(share, "a", "b", "c", "host.txt"));
      await lines.wait(/^EV DELETE \/r\/a\/b\/c\/host\.txt$/, t1, 20_000);
    });
    const status = await vmRun({
      cpus: 1, memoryMiB: 256, mtu: 65520, accel: "tcg", cacheDir: suite.cacheDir, command: ["sh", "-c", script],
      volumes: [`${share}:/r:ro`], consoleLog: join(suite.dir, "ro.console.log"), output: (l) => lines.push(l), log,
    });
    await run;
    const out = lines.seen.map((l) => l.line).join("\n");
    expect(status, out).to.equal(0);
    expect(out).to.include("RO=yes");
    expect(out).to.match(/ \/r 9p ro,/);
    expect(existsSync(join(share, "a", "x"))).to.equal(false);
  });
});
