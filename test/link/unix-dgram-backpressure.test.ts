/**
 * Backpressure toward a slow Unix datagram peer (issue 5): skiff → QEMU bulk traffic used to
 * stall after ~66 KB because, with the kernel's default `net.unix.max_dgram_qlen` (10), a send
 * to a full peer queue answers EAGAIN and an unconnected sender is never told when the peer
 * has read. The peer here behaves like QEMU: a socket bound to its own path, not connected back
 * to skiff, and slow: either it reads continuously but spends 0.2 ms on each datagram (the
 * pattern that stalled the earlier node-unix-socket channel for good), or it reads at most 4
 * datagrams every 2 ms. The sysctl is read, never changed.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getU32, setU32 } from "../../src/common/bytes.js";
import { loadAddon } from "../../src/native/addon.js";
import { openQemuDgram } from "../../src/link/qemu-dgram.js";
import type { UnixDgramChannel, UnixDgramOptions } from "../../src/link/unix-dgram.js";
import { until } from "../support/wait.js";

const FRAMES = 2000;
const LEN = 1500;
const SLOTS = 4;
const TICK_MS = 2;
const FRAME_MS = 0.2;

/** How the reader is slow: FRAME_MS of work per datagram, or SLOTS datagrams per TICK_MS. */
type Pace = "per-frame" | "per-tick";

/** A QEMU-like reader: bound, unconnected, slow; keeps the sequence numbers it reads. */
class SlowReader {
  private readonly addon = loadAddon("tests");
  readonly fd: number;
  readonly seqs: number[] = [];
  bad = 0;
  private readonly ring = new ArrayBuffer(2048 * SLOTS);
  private readonly lengths = new Uint32Array(SLOTS);
  private timer: NodeJS.Timeout | undefined;

  constructor(
    path: string,
    private readonly pace: Pace,
  ) {
    this.fd = this.addon.unixDgramOpen(path, 0, 0);
    expect(this.fd).to.be.greaterThan(0);
  }

  /** Start reading (slowly). */
  start(): void {
    this.addon.startRead(this.fd, this.ring, 2048, this.lengths, (n) => {
      for (let i = 0; i < n; i++) {
        const f = new Uint8Array(this.ring, i * 2048, this.lengths[i]);
        if (f.length !== LEN || f[LEN - 1] !== (getU32(f, 14) & 0xff)) this.bad++;
        this.seqs.push(getU32(f, 14));
      }
      if (this.pace === "per-frame") {
        const t0 = performance.now();
        while (performance.now() - t0 < FRAME_MS * n) {
          /* busy: the event loop is held, as a loaded peer would be */
        }
      } else {
        // One batch per tick: stop until the next one.
        this.addon.stopRead(this.fd);
        this.timer = setTimeout(() => this.start(), TICK_MS);
      }
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.addon.close(this.fd);
  }
}

function frame(seq: number): Uint8Array {
  const f = new Uint8Array(LEN);
  setU32(f, 0, 0x5254_0000); // unicast destination
  setU32(f, 14, seq);
  f[LEN - 1] = seq & 0xff;
  return f;
}

describe("link/unix-dgram: a slow peer with the kernel's default datagram queue", function () {
  this.timeout(30_000);
  let dir: string;
  let reader: SlowReader;
  let ch: UnixDgramChannel;
  let maxWaiting = 0;

  before(() => {
    const qlen = readFileSync("/proc/sys/net/unix/max_dgram_qlen", "utf8").trim();
    console.log(`      net.unix.max_dgram_qlen = ${qlen} (${FRAMES} frames of ${LEN} bytes)`);
  });

  function setup(pace: Pace, opts: UnixDgramOptions = {}): void {
    dir = mkdtempSync(join(tmpdir(), "skiff-dgram-bp-"));
    const paths = { skiffPath: join(dir, "skiff.sock"), qemuPath: join(dir, "qemu.sock") };
    reader = new SlowReader(paths.qemuPath, pace);
    ch = openQemuDgram(paths, opts);
    maxWaiting = 0;
  }

  afterEach(() => {
    ch.close();
    reader.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Send seq 0..FRAMES-1 in one turn of the event loop. */
  function sendAllAtOnce(): void {
    for (let seq = 0; seq < FRAMES; seq++) {
      ch.send(frame(seq));
      maxWaiting = Math.max(maxWaiting, ch.inFlight);
    }
  }

  const inOrder = (n: number) => Array.from({ length: n }, (_, i) => i);

  for (const pace of ["per-frame", "per-tick"] as const) {
    it(`a sender that waits for drain, a reader slow ${pace}: all arrive in order, none dropped, ≤ highWater waiting`, async () => {
      setup(pace);
      reader.start();
      let seq = 0;
      await new Promise<void>((done) => {
        const pump = (): void => {
          while (seq < FRAMES) {
            const more = ch.send(frame(seq++));
            maxWaiting = Math.max(maxWaiting, ch.inFlight);
            if (!more) {
              ch.once("drain", pump);
              return;
            }
          }
          done();
        };
        pump();
      });
      await until(() => reader.seqs.length === FRAMES, 20_000, `all ${FRAMES} frames read`);
      expect(reader.seqs).to.deep.equal(inOrder(FRAMES));
      expect(reader.bad).to.equal(0);
      expect([ch.stats.txFrames, ch.stats.txDrops, ch.sendErrors, ch.inFlight]).to.deep.equal([FRAMES, 0, 0, 0]);
      expect(maxWaiting).to.be.at.most(64);
      expect(maxWaiting, "the peer's queue did fill").to.be.greaterThan(0);
    });
  }

  it("all at once, within the limit, before the reader starts: every frame arrives once it reads", async () => {
    setup("per-frame", { limit: 4096 });
    sendAllAtOnce();
    expect(ch.stats.txDrops).to.equal(0);
    expect(ch.stats.txFrames + ch.inFlight).to.equal(FRAMES);
    reader.start();
    await until(() => reader.seqs.length === FRAMES, 20_000, `all ${FRAMES} frames read`);
    expect(reader.seqs).to.deep.equal(inOrder(FRAMES));
    expect([ch.stats.txFrames, ch.stats.txDrops, ch.sendErrors, ch.inFlight]).to.deep.equal([FRAMES, 0, 0, 0]);
  });

  it("all at once, beyond the default limit (512): the excess is dropped and counted, the rest arrives in order", async () => {
    setup("per-frame");
    reader.start();
    sendAllAtOnce();
    expect(maxWaiting).to.equal(512);
    const accepted = ch.stats.txFrames + ch.inFlight;
    expect(ch.stats.txDrops).to.equal(FRAMES - accepted);
    expect(ch.stats.txDrops).to.be.greaterThan(0);
    await until(() => reader.seqs.length === accepted && ch.inFlight === 0, 20_000, `${accepted} frames read`);
    expect(reader.seqs).to.deep.equal(inOrder(accepted));
    expect([ch.stats.txFrames, ch.sendErrors]).to.deep.equal([accepted, 0]);
  });
});
