import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { memoryPair } from "../../src/link/memory.js";
import { CaptureChannel } from "../../src/link/capture.js";
import { FaultChannel, seededRandom } from "../../src/link/fault.js";
import { PcapWriter } from "../../src/pcap/writer.js";
import { readPcap, readPcapFile } from "../../src/pcap/reader.js";
import { until, collectFrames } from "../support/wait.js";

function frame(n: number, tag: number): Uint8Array {
  const f = new Uint8Array(n);
  f.fill(tag);
  return f;
}

describe("link/capture wrapper", () => {
  it("records both directions in order and passes frames through unchanged", async () => {
    const [a, b] = memoryPair();
    const w = PcapWriter.toMemory();
    const cap = new CaptureChannel(a, w);
    const gotCap = collectFrames(cap);
    const gotB = collectFrames(b);
    cap.send(frame(60, 1)); // out through the wrapper
    await until(() => gotB.length === 1);
    b.send(frame(70, 2)); // in through the wrapper
    await until(() => gotCap.length === 1);
    expect(gotB[0]).to.deep.equal(frame(60, 1));
    expect(gotCap[0]).to.deep.equal(frame(70, 2));
    cap.stopCapture();
    const cap2 = readPcap(w.bytes());
    if (cap2 instanceof Error || !("packets" in cap2)) throw new Error(String(cap2));
    expect(cap2.packets.map((p) => [p.data.length, p.data[0]])).to.deep.equal([
      [60, 1],
      [70, 2],
    ]);
    cap.close();
  });

  it("starts and stops capturing while traffic flows", async () => {
    const [a, b] = memoryPair();
    const cap = new CaptureChannel(a);
    const gotB = collectFrames(b);
    collectFrames(cap);
    cap.send(frame(60, 1)); // not captured
    const w = PcapWriter.toMemory();
    cap.startCapture(w);
    cap.send(frame(61, 2)); // captured
    cap.stopCapture();
    cap.send(frame(62, 3)); // not captured
    await until(() => gotB.length === 3);
    const r = readPcap(w.bytes());
    if (!("packets" in r)) throw new Error(String(r));
    expect(r.packets.map((p) => p.data.length)).to.deep.equal([61]);
    cap.close();
  });

  it("toFile on a refused path throws the reason and closes the link it was given", () => {
    const [a] = memoryPair();
    let msg = "";
    try {
      CaptureChannel.toFile(a, "/dev/full");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).to.equal("/dev/full: is a character device; only a new or regular file can hold a capture");
    expect(a.closed).to.equal(true);
  });

  it("writes a file tshark can read while the capture is still open", async function () {
    const dir = mkdtempSync(join(tmpdir(), "skiff-cap-"));
    try {
      const [a, b] = memoryPair();
      const path = join(dir, "live.pcap");
      const cap = CaptureChannel.toFile(a, path);
      collectFrames(b);
      collectFrames(cap);
      for (let i = 0; i < 5; i++) cap.send(frame(60 + i, i));
      await cap.capturing!.flushed();
      const out = execFileSync("tshark", ["-r", path, "-T", "fields", "-e", "frame.len"], { encoding: "utf8" });
      expect(out.trim().split("\n")).to.deep.equal(["60", "61", "62", "63", "64"]);
      cap.close();
      const r = readPcapFile(path);
      if (!("packets" in r)) throw new Error(String(r));
      expect(r.packets.length).to.equal(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("link/fault-injection wrapper", () => {
  it("is deterministic for a seed", () => {
    const r1 = seededRandom(42);
    const r2 = seededRandom(42);
    const s1 = Array.from({ length: 5 }, r1);
    expect(Array.from({ length: 5 }, r2)).to.deep.equal(s1);
    expect(Array.from({ length: 5 }, seededRandom(43))).to.not.deep.equal(s1);
  });

  it("drops about the configured share of frames and counts them", async () => {
    const [a, b] = memoryPair({ limit: 10_000, highWater: 10_000 });
    const f = new FaultChannel(a, { seed: 7, tx: { drop: 0.3 } });
    const got = collectFrames(b);
    for (let i = 0; i < 1000; i++) f.send(frame(60, i & 0xff));
    await until(() => got.length === 1000 - f.faults.tx.dropped);
    expect(f.faults.tx.dropped).to.be.within(240, 360);
    f.close();
  });

  it("duplicates, reorders and corrupts without losing frames or touching the caller's bytes", async () => {
    const [a, b] = memoryPair({ limit: 10_000, highWater: 10_000 });
    const f = new FaultChannel(b, { seed: 3, rx: { duplicate: 0.1, reorder: 0.1, corrupt: 0.1 }, reorderHoldMs: 2 });
    const got = collectFrames(f);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) {
      const fr = new Uint8Array(64);
      new DataView(fr.buffer).setUint32(0, i);
      sent.push(fr);
      a.send(fr);
    }
    const c = f.faults.rx;
    await until(() => got.length === 500 + c.duplicated, 3000, "all frames delivered");
    expect(c.duplicated).to.be.greaterThan(20);
    expect(c.reordered).to.be.greaterThan(20);
    expect(c.corrupted).to.be.greaterThan(20);
    // Every frame arrives at least once (corrupted ones differ in one bit).
    const differsByOneBit = (x: Uint8Array, y: Uint8Array) => {
      let bits = 0;
      for (let i = 0; i < x.length; i++) for (let v = x[i] ^ y[i]; v; v &= v - 1) bits++;
      return bits <= 1;
    };
    for (const s of sent) expect(got.some((g) => differsByOneBit(g, s))).to.equal(true);
    // Out of order somewhere.
    const order = got.map((g) => new DataView(g.buffer).getUint32(0));
    expect(order.some((v, i) => i > 0 && v < order[i - 1])).to.equal(true);
    f.close();
  });
});
