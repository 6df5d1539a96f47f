/**
 * Soak: a seeded fuzz-and-flood against one skiff network for a bounded time (issue 19).
 *
 * skiff runs in a child process (test/soak/skiff-child.ts) inside a namespace that has only a
 * loopback interface, so nothing the attack provokes can leave the machine. Two guests share
 * its switch: a Linux kernel guest in a namespace behind a TAP device (configured by udhcpc),
 * and a hostile guest on a QEMU stream socket (test/soak/attacker.ts) that floods malformed
 * frames, SYNs, UDP, fragments, ARP/DHCP from random MACs, and holds slow readers open; at
 * the same time this process abuses the control API (many idle half-sent requests, large
 * bodies, malformed paths).
 *
 * Asserted: every round of the kernel guest's checks passes during and after the attack (ping
 * the gateway, a DNS answer, a 1 MiB download through the host alias with an equal SHA-256,
 * the control API answering); skiff's RSS stays under a bound the whole time; the process
 * never dies; and the attack really happened (frames sent, slow readers opened, drops counted).
 *
 * SKIFF_SOAK_SEED and SKIFF_SOAK_SECONDS (default 20) repeat or lengthen a run.
 */
import { expect } from "chai";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";
import { dhcpConfigure } from "../support/udhcpc.js";
import { connectQemuStream } from "../../src/link/qemu-stream.js";
import type { StreamFrameChannel } from "../../src/link/stream-channel.js";
import { Attacker } from "./attacker.js";
import { Rng } from "./frames.js";
import { blobSha256 } from "./blob.js";

const SEED = Number(process.env.SKIFF_SOAK_SEED ?? 20261207) >>> 0;
const SECONDS = Number(process.env.SKIFF_SOAK_SECONDS ?? 20);
/** skiff's resident memory may never exceed this during the soak. */
const RSS_LIMIT_MB = 450;
/**
 * skiff's live heap (after a full GC) may grow from the middle to the end of the attack by at
 * most this much, plus HEAP_GROWTH_PER_100K per 100,000 hostile frames sent meanwhile.
 */
const HEAP_GROWTH_MB = 7;
const HEAP_GROWTH_PER_100K = 2;
const SLOW_READERS = 32;
const SLOWLORIS = 200;
/** Between two rounds of liveness checks: the checks are a guest's normal use, not a second flood. */
const LIVENESS_PAUSE_MS = 1500;
const ATTACKER_MAC = 0x5254_00ad_0001;

interface Ready {
  httpPort: number;
  udpPort: number;
}

describe(`soak: seeded fuzz-and-flood against one skiff network (seed ${SEED}, ${SECONDS} s)`, function () {
  this.timeout(SECONDS * 1000 + 180_000);
  requireNetns(["/dev/net/tun"]);

  let dir: string;
  let hostNs: Netns;
  let guestNs: Netns;
  let child: ChildProcess;
  let ready: Ready;
  let lines: AsyncIterableIterator<string>;
  let attackerCh: StreamFrameChannel | undefined;
  const rss: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  const expectedSha = blobSha256();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-soak-"));
    hostNs = await createNetns("skiff-soak-h");
    guestNs = await createNetns("skiff-soak-g");
    await guestNs.exec(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    const script = fileURLToPath(new URL("./skiff-child.ts", import.meta.url));
    child = spawn("ip", ["netns", "exec", hostNs.name, process.execPath, "--expose-gc", "--import", "tsx", script, guestNs.path, join(dir, "s.sock"), join(dir, "api.sock")], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    expect(first.done, "skiff child exited before it was ready").to.equal(false);
    ready = JSON.parse(first.value) as Ready;
    sampler = setInterval(() => {
      const m = /VmRSS:\s+(\d+) kB/.exec(safeRead(`/proc/${child.pid}/status`));
      if (m) rss.push(Number(m[1]) / 1024);
    }, 250);
    expect((await guestNs.exec(["ip", "link", "set", "sk0", "address", "52:54:00:50:0a:01", "up"])).code).to.equal(0);
    await dhcpConfigure(guestNs, "sk0", dir);
  });

  after(async () => {
    if (sampler) clearInterval(sampler);
    attackerCh?.close();
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    await guestNs?.destroy();
    await hostNs?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** One round of a well-behaved guest's and API user's checks; returns the failures. */
  async function liveness(): Promise<string[]> {
    const fails: string[] = [];
    const [ping, dns, curl, api] = await Promise.all([
      guestNs.exec(["ping", "-c", "1", "-W", "5", "192.168.65.1"], 10_000),
      guestNs.exec(["dig", "+short", "+time=3", "+tries=3", "@192.168.65.1", "host.internal"], 15_000),
      guestNs.exec(["sh", "-c", `curl -sS --max-time 30 http://192.168.65.2:${ready.httpPort}/blob | sha256sum`], 35_000),
      apiGet(join(dir, "api.sock"), "/leases", 10_000),
    ]);
    if (ping.code !== 0) fails.push(`ping gateway: ${ping.stdout}${ping.stderr}`);
    if (dns.stdout.trim() !== "192.168.65.2") fails.push(`dig host.internal: "${dns.stdout.trim()}" ${dns.stderr}`);
    if (!curl.stdout.startsWith(expectedSha)) fails.push(`download: ${curl.stdout}${curl.stderr}`);
    if (api.status !== 200) fails.push(`API GET /leases: ${api.status} ${api.body.slice(0, 200)}`);
    return fails;
  }

  it("keeps the kernel guest and the API served, RSS bounded, and counts what it dropped", async () => {
    const before = await liveness();
    expect(before, "checks before the attack").to.deep.equal([]);

    attackerCh = await connectQemuStream(`unix:${join(dir, "s.sock")}`, { mtu: 1500 });
    const attacker = new Attacker(attackerCh, new Rng(SEED), ATTACKER_MAC, ready);
    await attacker.lease();
    attacker.openSlowReaders(SLOW_READERS);
    const until = Date.now() + SECONDS * 1000;
    const attack = attacker.run(until);
    const abuse = abuseApi(join(dir, "api.sock"), until, new Rng(SEED ^ 0xa5a5a5a5));

    const during: string[][] = [];
    let heapMid = -1;
    let sentMid = 0;
    while (Date.now() < until) {
      during.push(await liveness());
      if (heapMid < 0 && Date.now() > until - (SECONDS * 1000) / 2) {
        heapMid = (await childStats()).heapAfterGc;
        sentMid = attacker.counts.sent;
      }
      await new Promise((r) => setTimeout(r, LIVENESS_PAUSE_MS));
    }
    const heapEnd = (await childStats()).heapAfterGc;
    const sentLate = attacker.counts.sent - sentMid;
    await attack;
    const abused = await abuse;
    const after = await liveness();

    const stats = await childStats();
    const maxRss = Math.max(...rss);
    console.log(
      `      attack: ${JSON.stringify(attacker.counts)}; API abuse: ${JSON.stringify(abused)}; ` +
        `RSS max ${maxRss.toFixed(0)} MB (every 2.5 s: ${rss.filter((_, i) => i % 10 === 0).map((m) => m.toFixed(0)).join(" ")}); ` +
        `${during.length} liveness rounds; live heap ${(heapMid / 1e6).toFixed(0)} → ${(heapEnd / 1e6).toFixed(0)} MB over ${sentLate} frames; skiff dropped ${stats.dropped} frames (${JSON.stringify(stats.drops)})`,
    );

    expect(child.exitCode, "skiff exited during the soak").to.equal(null);
    expect(during.length, "liveness rounds during the attack").to.be.greaterThan(0);
    during.forEach((f, i) => expect(f, `liveness round ${i + 1} during the attack`).to.deep.equal([]));
    expect(after, "checks after the attack").to.deep.equal([]);
    expect(maxRss, "skiff's RSS (MB)").to.be.lessThan(RSS_LIMIT_MB);
    // Bounded, not merely below the limit in a short run: the live heap (after a full GC) does
    // not grow between the middle and the end of the attack, once the tables are full. A
    // per-flood leak (the timer heap held every flow evicted in the last idle period) grew it
    // by ~3 MB/s here; RSS alone moves too much with the machine's load to tell.
    // The allowance scales with the frames sent meanwhile (a loaded machine sends fewer, and
    // a leak then grows less): that leak was 9-16 MB per 100k frames; room for 4 MiB of TCP
    // chunk free lists filling up and GC noise.
    const grown = (heapEnd - heapMid) / 1e6;
    const allowed = HEAP_GROWTH_MB + (HEAP_GROWTH_PER_100K * sentLate) / 100_000;
    expect(heapMid, "heap measured in the middle of the attack").to.be.greaterThan(0);
    expect(grown, `live heap growth over the second half of the attack, ${sentLate} frames (MB; ${(heapMid / 1e6).toFixed(0)} → ${(heapEnd / 1e6).toFixed(0)})`).to.be.lessThan(allowed);
    expect(attacker.counts.sent).to.be.greaterThan(10_000);
    expect(attacker.counts.slowReadersOpen, "slow readers that got their SYN-ACK").to.be.greaterThan(0);
    expect(attacker.counts.slowReaderBytes, "bytes the slow readers took before closing their window").to.be.greaterThan(0);
    expect(stats.dropped, "frames skiff counted as dropped").to.be.greaterThan(attacker.counts.malformed / 10);
    expect(abused.slowlorisOpened).to.equal(SLOWLORIS);
  });

  /** The child's counters, and its live heap after a full GC. */
  async function childStats(): Promise<{ dropped: number; drops: Record<string, number>; heapAfterGc: number }> {
    child.stdin!.write("gc\n");
    for (;;) {
      const l = await lines.next();
      if (l.done) throw new Error("skiff child exited");
      type Drops = { drops?: Record<string, number> };
      const s = JSON.parse(l.value) as { stats?: boolean; stack: Drops; switch: Drops; memory: { heapUsed: number } };
      if (!s.stats) continue;
      const drops: Record<string, number> = { ...s.stack.drops };
      for (const [k, v] of Object.entries(s.switch.drops ?? {})) drops[`switch:${k}`] = v;
      return { dropped: Object.values(drops).reduce((a, b) => a + b, 0), drops, heapAfterGc: s.memory.heapUsed };
    }
  }
});

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function apiGet(socketPath: string, path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ status: 0, body: String(e) }));
    req.end();
  });
}

/**
 * Abuse the control API until `until`: SLOWLORIS connections that send a request line and
 * then one header byte now and then, never finishing; requests with 1 MiB bodies; paths with
 * malformed percent-encoding. Returns what was done.
 */
async function abuseApi(socketPath: string, until: number, rng: Rng): Promise<{ slowlorisOpened: number; bigBodies: number; badPaths: number }> {
  const held: Socket[] = [];
  let slowlorisOpened = 0;
  for (let i = 0; i < SLOWLORIS; i++) {
    const s = createConnection(socketPath);
    s.on("error", () => {});
    s.on("connect", () => {
      slowlorisOpened++;
      s.write("GET /leases HTTP/1.1\r\nHost: x\r\n");
    });
    held.push(s);
  }
  const drip = setInterval(() => {
    for (const s of held) if (!s.destroyed) s.write("X");
  }, 1000);
  let bigBodies = 0;
  let badPaths = 0;
  const big = Buffer.alloc(1 << 20, 0x7b);
  while (Date.now() < until) {
    await new Promise<void>((resolve) => {
      const req = request({ socketPath, path: "/forwards", method: "POST", timeout: 5000, headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", () => resolve());
      req.on("timeout", () => req.destroy());
      req.end(big);
    });
    bigBodies++;
    const bad = ["/forwards/%zz", "/%", "/leases%", `/forwards/${"%".repeat(1 + rng.int(8))}`][rng.int(4)];
    await apiGet(socketPath, bad, 5000);
    badPaths++;
    await new Promise((r) => setTimeout(r, 100));
  }
  clearInterval(drip);
  for (const s of held) s.destroy();
  return { slowlorisOpened, bigBodies, badPaths };
}
