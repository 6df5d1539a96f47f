/**
 * TCP engine throughput: two `TcpConnection`s back to back in memory (no loss, no I/O, no
 * codec), one writing 64 KiB chunks as fast as the window allows, the other reading. Measures
 * the engine alone — segmentation, ACK processing, queues, congestion control — so it can be
 * compared with the rest of the data path. Not a test.
 *
 * Run: `npx tsx bench/tcp-engine.ts` (part of `npm run bench:micro`). Prints a markdown table.
 */
import { TcpConnection } from "../src/tcp/connection.js";
import { TcpFlag, type TcpRepr } from "../src/tcp/wire.js";

function copy(seg: TcpRepr): TcpRepr {
  // The engine reuses its output repr and payload buffer: keep what crosses to the peer.
  return { ...seg, options: { ...seg.options }, payload: seg.payload.length ? Uint8Array.from(seg.payload) : seg.payload };
}

function run(mss: number, totalBytes: number): { mbps: number; segmentsPerSec: number; segments: number } {
  const cfg = { mss, recvBufferSize: 4 << 20, sendBufferSize: 4 << 20, delayedAckMs: 0 };
  const a = TcpConnection.connect(cfg, { localPort: 1, remotePort: 2 }, 1000, 0);
  const synSeg = copy(a.output(0)!);
  const b = TcpConnection.fromSyn(cfg, synSeg, 5000, 0);
  b.accept(0);
  const chunk = new Uint8Array(64 * 1024).fill(7);
  let now = 0;
  let written = 0;
  let read = 0;
  let segments = 0;
  const toB: TcpRepr[] = [];
  const toA: TcpRepr[] = [];
  const t0 = process.hrtime.bigint();
  while (read < totalBytes) {
    now += 0.01;
    while (written < totalBytes) {
      const n = a.write(chunk.subarray(0, Math.min(chunk.length, totalBytes - written)));
      if (n === 0) break;
      written += n;
    }
    for (let seg = a.output(now); seg; seg = a.output(now)) toB.push(copy(seg));
    for (const seg of toB) b.onSegment(seg, now);
    segments += toB.length;
    toB.length = 0;
    for (let d = b.read(); d.length > 0; d = b.read()) read += d.length;
    for (let seg = b.output(now); seg; seg = b.output(now)) toA.push(copy(seg));
    for (const seg of toA) a.onSegment(seg, now);
    segments += toA.length;
    toA.length = 0;
    if (a.state === 0 || b.state === 0) throw new Error("connection closed unexpectedly");
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  void TcpFlag;
  return { mbps: totalBytes / secs / 1e6, segmentsPerSec: segments / secs, segments };
}

console.log(`\nTCP engine, two connections back to back in memory — node ${process.version}\n`);
console.log("| MSS | bytes | MB/s | segments/s (data + ACK) |\n|---|---|---|---|");
for (const [mss, total] of [
  [65495, 1 << 30],
  [1460, 256 << 20],
] as const) {
  run(mss, 16 << 20); // warm-up
  const r = run(mss, total);
  console.log(`| ${mss} | ${total >> 20} MiB | ${r.mbps.toFixed(0)} | ${(r.segmentsPerSec / 1e3).toFixed(0)}k |`);
}
