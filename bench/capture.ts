/**
 * Capture cost per frame (not a test; numbers vary by machine and disk), side by side:
 *  - skiff's file capture (`PcapWriter.toFile`: asynchronous batched writes through a capped
 *    queue), plain frames and frames whose partial (offload) TCP checksum is completed;
 *  - one synchronous write() per record, the way captures were written before, for reference.
 * Frames are 1514-byte TCP/IPv4 frames and 64 KiB GSO super-segments, written in bursts of
 * 1000 with an event-loop turn between bursts (as a link delivers them: this offers far more
 * than a disk takes, so the capped queue drops the excess), and paced (bursts of 100 frames
 * with a 1 ms timer between them). The table gives the time spent in the event loop per
 * frame, the longest burst, the records dropped by the queue cap (8 MiB by default) and the
 * rate at which frames reached the file.
 *
 * Run: `npx tsx bench/capture.ts [DIR]` (DIR defaults to the OS temporary directory).
 */

import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emitEthernet } from "../src/ethernet/ethernet.js";
import { emitIpv4, NO_IPV4_OPTIONS } from "../src/ipv4/ipv4.js";
import { emitTcp, tcpLen, TcpFlag, type TcpRepr } from "../src/tcp/wire.js";
import { PcapWriter } from "../src/pcap/writer.js";

const A = 0xc0a84103;
const B = 0xc0a84102;

function tcpFrame(payload: number): Uint8Array {
  const r: TcpRepr = { srcPort: 40000, dstPort: 80, seq: 1, ack: 2, flags: TcpFlag.ACK, window: 500, urgentPointer: 0, options: {}, payload: new Uint8Array(payload).fill(0x5a) };
  const b = new Uint8Array(14 + 20 + tcpLen(r));
  emitEthernet({ dst: 0x025000000001, src: 0x525400123456, ethertype: 0x0800 }, b);
  emitIpv4({ src: A, dst: B, ttl: 64, id: 1, tos: 0, df: true, mf: false, fragmentOffset: 0, payloadLength: tcpLen(r), protocol: 6, options: NO_IPV4_OPTIONS }, b, 14);
  emitTcp(r, b, 34, A, B, true);
  return b;
}

interface Row {
  name: string;
  nsPerFrame: number;
  worstBurstMs: number;
  dropped: number;
  mbPerSec: number;
}

const turn = () => new Promise<void>((r) => setImmediate(r));
const pause = () => new Promise<void>((r) => setTimeout(r, 1));

async function run(name: string, frame: Uint8Array, frames: number, paced: boolean, write: (f: Uint8Array, i: number) => void, finish: () => Promise<number>): Promise<Row> {
  let busy = 0n;
  let worst = 0n;
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < frames; ) {
    const b0 = process.hrtime.bigint();
    for (let k = 0; k < (paced ? 100 : 1000) && done < frames; k++, done++) write(frame, done);
    const dt = process.hrtime.bigint() - b0;
    busy += dt;
    if (dt > worst) worst = dt;
    await (paced ? pause() : turn());
  }
  const dropped = await finish();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, nsPerFrame: Number(busy) / frames, worstBurstMs: Number(worst) / 1e6, dropped, mbPerSec: ((frames - dropped) * frame.length) / wall / 1e6 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(process.argv[2] ?? tmpdir(), "skiff-bench-capture-"));
  const rows: Row[] = [];
  try {
    for (const [label, frame, frames, paced] of [
      ["1514-byte frames", tcpFrame(1460), 200_000, false],
      ["64 KiB GSO frames", tcpFrame(65_000), 5_000, false],
      ["1514-byte frames, paced", tcpFrame(1460), 20_000, true],
    ] as const) {
      for (const complete of [false, true]) {
        const w = PcapWriter.toFile(join(dir, `skiff-${complete}.pcap`));
        rows.push(
          await run(`${label}, skiff async${complete ? " + checksum completed" : ""}`, frame, frames, paced, (f, i) => w.writePacket(f, BigInt(i), complete), async () => {
            await w.flushed();
            w.close();
            return w.packetsDropped;
          }),
        );
      }
      const fd = openSync(join(dir, "sync.pcap"), "w");
      const rec = new Uint8Array(16 + frame.length);
      rows.push(
        await run(`${label}, one sync write per record (before)`, frame, frames, paced, (f) => {
          rec.set(f, 16);
          writeSync(fd, rec);
        }, async () => {
          closeSync(fd);
          return 0;
        }),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log("| capture | event-loop time per frame | longest burst | dropped | MB/s to the file |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.name} | ${r.nsPerFrame.toFixed(0)} ns | ${r.worstBurstMs.toFixed(1)} ms | ${r.dropped} | ${r.mbPerSec.toFixed(0)} |`);
}

await main();
