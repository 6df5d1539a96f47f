import { expect } from "chai";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import type { EventEmitter } from "node:events";
import { closeSync, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { WireError } from "../../src/common/wire-error.js";
import {
  emitPcapHeader,
  emitPcapRecordHeader,
  LINKTYPE_ETHERNET,
  parsePcapHeader,
  PCAP_HEADER_LEN,
  PCAP_MAX_SNAPLEN,
  PCAP_RECORD_HEADER_LEN,
  setU32le,
  type PcapFileHeader,
} from "../../src/pcap/format.js";
import {
  packetTimeNs,
  PcapDecoder,
  PcapReadError,
  readPcap,
  readPcapFile,
  streamPcapFile,
  type PcapPacket,
} from "../../src/pcap/reader.js";
import { PcapWriter, wallClockNs } from "../../src/pcap/writer.js";
import { damaged } from "../support/arbitraries.js";

/** pcap-parser 0.2.1 (CJS, no types): the oracle for classic µs files. */
interface OraclePacket {
  header: { timestampSeconds: number; timestampMicroseconds: number; capturedLength: number; originalLength: number };
  data: Buffer;
}
const pcapParser = createRequire(import.meta.url)("pcap-parser") as {
  parse(input: string | NodeJS.ReadableStream): EventEmitter;
};

function oracle(bytes: Uint8Array): Promise<OraclePacket[]> {
  return new Promise((resolve, reject) => {
    const packets: OraclePacket[] = [];
    const p = pcapParser.parse(Readable.from([Buffer.from(bytes)]));
    p.on("packet", (pkt: OraclePacket) => packets.push(pkt));
    p.on("error", reject);
    p.on("end", () => resolve(packets));
  });
}

const FIXTURES = fileURLToPath(new URL("../../fixtures/pcaps/", import.meta.url));
/** Recorded fixtures and their frame counts (see fixtures/pcaps/README.md). */
const FIXTURE_FRAMES: Record<string, number> = {
  "dhcp-udhcpc.pcap": 4,
  "arp-ping.pcap": 8,
  "dns-query.pcap": 6,
  "tcp-curl.pcap": 14,
  "guest-session-ns.pcap": 10,
};
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));

function hasTool(name: string): boolean {
  return !spawnSync(name, ["--version"], { stdio: "ignore" }).error;
}
const HAVE_TSHARK = hasTool("tshark") && hasTool("capinfos") && hasTool("editcap");

function skipWithoutTshark(ctx: Mocha.Context): void {
  if (HAVE_TSHARK) return;
  console.log("    (skipped: tshark/capinfos/editcap not installed; Debian package `tshark`)");
  ctx.skip();
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** `frame.len<TAB>frame.time_epoch` lines as tshark prints them. */
function tsharkFrames(path: string): string[] {
  return run("tshark", ["-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.time_epoch"])
    .split("\n")
    .filter((l) => l.length > 0);
}

/** The same line for one of our packets (tshark prints the epoch with 9 decimals). */
function frameLine(p: PcapPacket): string {
  return `${p.originalLength}\t${p.tsSec}.${String(p.tsFrac).padStart(9, "0")}`;
}

function mustRead(bytes: Uint8Array) {
  const r = readPcap(bytes);
  if (r instanceof WireError) throw new Error(`unexpected ${r}`);
  return r;
}

function decodeInChunks(bytes: Uint8Array, sizes: number[]): { packets: PcapPacket[]; err: PcapReadError | null } {
  const d = new PcapDecoder();
  const packets: PcapPacket[] = [];
  // Data is borrowed for the callback only: keep copies.
  const keep = (p: PcapPacket) => packets.push({ ...p, data: p.data.slice() });
  let off = 0;
  let i = 0;
  while (off < bytes.length) {
    const n = Math.max(1, sizes.length ? sizes[i++ % sizes.length] : bytes.length);
    // Copy each chunk and scribble over it afterwards, to catch a decoder keeping a view.
    const chunk = bytes.slice(off, off + n);
    d.push(chunk, keep);
    chunk.fill(0xee);
    off += n;
  }
  return { packets, err: d.finish() };
}

const packetArb = fc.record({
  data: fc.uint8Array({ maxLength: 1600 }),
  sec: fc.integer({ min: 0, max: 0xffff_ffff }),
  nsec: fc.integer({ min: 0, max: 999_999_999 }),
});

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), "skiff-pcap-"));
});
after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe("pcap/format headers", () => {
  it("parse(emit(h)) gives back link type, snaplen and precision in both byte orders", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.boolean(),
        fc.boolean(),
        (linkType, snaplen, nanosecond, littleEndian) => {
          const buf = new Uint8Array(PCAP_HEADER_LEN);
          expect(emitPcapHeader({ linkType, snaplen, nanosecond }, buf, 0, littleEndian)).to.equal(PCAP_HEADER_LEN);
          const h: PcapFileHeader = {
            linkType,
            snaplen,
            nanosecond,
            version: { major: 2, minor: 4 },
            littleEndian,
            fcsLen: 0,
          };
          expect(parsePcapHeader(buf)).to.deep.equal(h);
        },
      ),
    );
  });

  it("writes the exact libpcap header bytes", () => {
    const buf = new Uint8Array(PCAP_HEADER_LEN);
    emitPcapHeader({ linkType: 1, snaplen: 65535, nanosecond: false }, buf);
    expect(Buffer.from(buf).toString("hex")).to.equal("d4c3b2a1020004000000000000000000ffff000001000000");
    emitPcapHeader({ linkType: 1, snaplen: 65535, nanosecond: true }, buf, 0, false);
    expect(Buffer.from(buf).toString("hex")).to.equal("a1b23c4d0002000400000000000000000000ffff00000001");
  });

  it("reads the FCS length bits of the link type field", () => {
    const buf = new Uint8Array(PCAP_HEADER_LEN);
    emitPcapHeader({ linkType: 1, snaplen: 100, nanosecond: false }, buf);
    setU32le(buf, 20, (2 << 28) | 0x0400_0000 | 1); // P set, 2 words of FCS, Ethernet
    const h = parsePcapHeader(buf);
    expect(h).to.not.be.instanceOf(WireError);
    expect((h as PcapFileHeader).linkType).to.equal(1);
    expect((h as PcapFileHeader).fcsLen).to.equal(4);
  });

  it("refuses pcapng with a conversion hint, unknown magics, other versions, short headers", () => {
    const shb = Uint8Array.from([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]);
    expect(String(parsePcapHeader(shb))).to.equal("pcap: pcapng is not supported; convert with editcap -F pcap");
    const buf = new Uint8Array(PCAP_HEADER_LEN);
    emitPcapHeader({ linkType: 1, snaplen: 100, nanosecond: false }, buf);
    for (let n = 0; n < PCAP_HEADER_LEN; n++) {
      expect(String(parsePcapHeader(buf.subarray(0, n)))).to.equal("pcap: truncated header");
    }
    const bad = buf.slice();
    bad[0] = 0x7f;
    expect(String(parsePcapHeader(bad))).to.match(/^pcap: not a pcap file \(magic 0x7fc3b2a1\)$/);
    const v1 = buf.slice();
    v1[4] = 1;
    v1[6] = 0;
    expect(String(parsePcapHeader(v1))).to.equal("pcap: unsupported version 1.0");
  });
});

describe("pcap/reader on recorded fixtures", () => {
  for (const [name, frames] of Object.entries(FIXTURE_FRAMES)) {
    it(`${name}: ${frames} Ethernet frames, whole and streamed in chunks`, () => {
      const bytes = fixture(name);
      const cap = mustRead(bytes);
      expect(cap.header.linkType).to.equal(LINKTYPE_ETHERNET);
      expect(cap.header.nanosecond).to.equal(name.endsWith("-ns.pcap"));
      expect(cap.packets).to.have.length(frames);
      for (const p of cap.packets) {
        expect(p.capturedLength).to.equal(p.data.length);
        expect(p.originalLength).to.equal(p.capturedLength);
        expect(p.tsFrac).to.be.within(0, 999_999_999);
      }
      // Timestamps never go backwards in a live capture.
      for (let i = 1; i < cap.packets.length; i++) {
        expect(packetTimeNs(cap.packets[i]) >= packetTimeNs(cap.packets[i - 1])).to.equal(true);
      }
      const streamed = decodeInChunks(bytes, [1, 7, 16, 100, 3]);
      expect(streamed.err).to.equal(null);
      expect(streamed.packets).to.deep.equal(cap.packets.map((p) => ({ ...p, data: p.data.slice() })));
      let count = 0;
      const s = streamPcapFile(join(FIXTURES, name), () => count++, 13);
      expect(s).to.not.be.instanceOf(WireError);
      expect(count).to.equal(frames);
    });
  }

  it("decodes what the fixtures say they hold", () => {
    const arp = mustRead(fixture("arp-ping.pcap")).packets;
    // Frame 1: broadcast ARP request from the guest's MAC 52:54:00:12:34:56.
    expect(Buffer.from(arp[0].data.subarray(0, 14)).toString("hex")).to.equal("ffffffffffff5254001234560806");
    const http = Buffer.concat(mustRead(fixture("tcp-curl.pcap")).packets.map((p) => p.data)).toString("latin1");
    expect(http).to.contain("GET /hello.txt HTTP/1.1");
    expect(http).to.contain("hello from the skiff fixture server");
    const ns = mustRead(fixture("guest-session-ns.pcap")).packets;
    // A nanosecond capture has some timestamp that is not a whole microsecond.
    expect(ns.some((p) => p.tsFrac % 1000 !== 0)).to.equal(true);
  });

  it("agrees with pcap-parser on every microsecond fixture", async () => {
    for (const name of Object.keys(FIXTURE_FRAMES).filter((n) => !n.endsWith("-ns.pcap"))) {
      const bytes = fixture(name);
      const ours = mustRead(bytes).packets;
      const theirs = await oracle(bytes);
      expect(theirs.length, name).to.equal(ours.length);
      ours.forEach((p, i) => {
        const o = theirs[i];
        expect(p.tsSec).to.equal(o.header.timestampSeconds);
        expect(p.tsFrac).to.equal(o.header.timestampMicroseconds * 1000);
        expect(p.capturedLength).to.equal(o.header.capturedLength);
        expect(p.originalLength).to.equal(o.header.originalLength);
        expect(Buffer.from(p.data).equals(o.data)).to.equal(true);
      });
    }
  });

  it("agrees with tshark on lengths and timestamps of every fixture (µs and ns)", function () {
    skipWithoutTshark(this);
    for (const name of Object.keys(FIXTURE_FRAMES)) {
      const ours = mustRead(fixture(name)).packets.map(frameLine);
      expect(tsharkFrames(join(FIXTURES, name)), name).to.deep.equal(ours);
    }
  });
});

describe("pcap/reader faults", () => {
  const bytes = fixture("arp-ping.pcap");
  const cap = mustRead(bytes);
  // Offsets where each record starts.
  const starts: number[] = [];
  let off = PCAP_HEADER_LEN;
  for (const p of cap.packets) {
    starts.push(off);
    off += PCAP_RECORD_HEADER_LEN + p.capturedLength;
  }

  it("reports a file cut inside a record with the count of packets before it", () => {
    for (let k = 0; k < starts.length; k++) {
      for (const cut of [starts[k] + 1, starts[k] + PCAP_RECORD_HEADER_LEN, starts[k] + PCAP_RECORD_HEADER_LEN + 5]) {
        const r = readPcap(bytes.subarray(0, cut));
        expect(r).to.be.instanceOf(PcapReadError);
        expect((r as PcapReadError).packetsRead).to.equal(k);
        expect(String(r)).to.equal(`pcap: truncated record after ${k} packets`);
      }
      // Cut exactly at a record boundary: a shorter but valid file.
      expect(mustRead(bytes.subarray(0, starts[k])).packets).to.have.length(k);
    }
  });

  it("reads records longer than the file's snaplen whole, as tshark does", function () {
    // The fixture's frames (42 and 98 bytes) under a header that claims a 64-byte snaplen.
    const f = bytes.slice();
    setU32le(f, 16, 64);
    const r = mustRead(f);
    expect(r.header.snaplen).to.equal(64);
    expect(r.packets.map((p) => p.capturedLength)).to.deep.equal(cap.packets.map((p) => p.capturedLength));
    expect(r.packets.some((p) => p.capturedLength > 64)).to.equal(true);
    const streamed = decodeInChunks(f, [5, 64]);
    expect(streamed.err).to.equal(null);
    expect(streamed.packets).to.have.length(cap.packets.length);
    if (!HAVE_TSHARK) return;
    const path = join(tmp, "over-snaplen.pcap");
    writeFileSync(path, f);
    expect(tsharkFrames(path)).to.deep.equal(r.packets.map(frameLine));
  });

  it("rejects a record above the hard cap (256 KiB, or the one given), naming the packets before it", () => {
    const big = bytes.slice();
    setU32le(big, starts[2] + 8, PCAP_MAX_SNAPLEN + 1);
    const r = readPcap(big);
    expect(String(r)).to.equal(`pcap: captured length ${PCAP_MAX_SNAPLEN + 1} exceeds the 262144-byte record limit after 2 packets`);
    expect((r as PcapReadError).packetsRead).to.equal(2);
    // A smaller cap, given by the caller: the 98-byte echo frames are over it.
    const capped = readPcap(bytes, { maxRecordLen: 64 });
    expect(String(capped)).to.match(/^pcap: captured length 98 exceeds the 64-byte record limit after \d+ packets$/);
    expect(() => readPcap(bytes, { maxRecordLen: 0 })).to.throw(RangeError);
  });

  it("rejects empty input, short headers and pcapng files", () => {
    expect(String(readPcap(new Uint8Array(0)))).to.equal("pcap: truncated header");
    expect(String(readPcap(bytes.subarray(0, 10)))).to.equal("pcap: truncated header");
    expect(String(readPcapFile(join(tmp, "missing.pcap")))).to.match(/^pcap: cannot read .*missing\.pcap: ENOENT$/);
  });

  it("rejects a real pcapng file (made by editcap) with the conversion hint", function () {
    skipWithoutTshark(this);
    const out = join(tmp, "arp.pcapng");
    run("editcap", ["-F", "pcapng", join(FIXTURES, "arp-ping.pcap"), out]);
    expect(String(readPcapFile(out))).to.equal("pcap: pcapng is not supported; convert with editcap -F pcap");
  });

  it("never throws on random or damaged bytes", () => {
    const samples = Object.keys(FIXTURE_FRAMES).map(fixture);
    fc.assert(
      fc.property(
        fc.nat(samples.length - 1),
        fc.nat(),
        fc.uint8Array({ maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 5 }),
        (which, seed, junk, sizes) => {
          for (const input of [damaged(samples[which], seed), junk]) {
            const r = readPcap(input);
            expect(r instanceof WireError || Array.isArray(r.packets)).to.equal(true);
            const s = decodeInChunks(input, sizes);
            if (r instanceof WireError) expect(String(s.err)).to.equal(String(r));
            else expect(s.packets.length).to.equal(r.packets.length);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("pcap/writer", () => {
  it("round-trips random packets and timestamps through the reader (µs and ns, any snaplen)", () => {
    fc.assert(
      fc.property(
        fc.array(packetArb, { maxLength: 20 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 2000 }),
        (pkts, nanosecond, snaplen) => {
          const w = PcapWriter.toMemory({ nanosecond, snaplen });
          for (const p of pkts) expect(w.writePacket(p.data, { sec: p.sec, nsec: p.nsec })).to.equal(true);
          w.close();
          expect(w.packetsWritten).to.equal(pkts.length);
          const cap = mustRead(w.bytes());
          expect(cap.header).to.include({ linkType: 1, snaplen, nanosecond, littleEndian: true });
          expect(cap.packets).to.have.length(pkts.length);
          cap.packets.forEach((got, i) => {
            const want = pkts[i];
            expect(got.tsSec).to.equal(want.sec);
            expect(got.tsFrac).to.equal(nanosecond ? want.nsec : Math.floor(want.nsec / 1000) * 1000);
            expect(got.originalLength).to.equal(want.data.length);
            expect(got.capturedLength).to.equal(Math.min(want.data.length, snaplen));
            expect(Buffer.from(got.data).equals(Buffer.from(want.data.subarray(0, snaplen)))).to.equal(true);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("takes bigint nanoseconds and {sec, nsec} alike, carrying and clamping out-of-range values", () => {
    const w = PcapWriter.toMemory({ nanosecond: true });
    const d = new Uint8Array(1);
    w.writePacket(d, 1_700_000_000_123_456_789n);
    w.writePacket(d, { sec: 1_700_000_000, nsec: 123_456_789 });
    w.writePacket(d, { sec: 10, nsec: 2_500_000_000 }); // carries into seconds
    w.writePacket(d, -5n); // before the epoch: clamped to 0
    w.writePacket(d, { sec: 2 ** 33, nsec: 0 }); // past 2106: clamped to the last second
    w.writePacket(d, { sec: NaN, nsec: 1 });
    const times = mustRead(w.bytes()).packets.map(packetTimeNs);
    expect(times).to.deep.equal([
      1_700_000_000_123_456_789n,
      1_700_000_000_123_456_789n,
      12_500_000_000n,
      0n,
      0xffff_ffffn * 1_000_000_000n + 999_999_999n,
      0n,
    ]);
    const now = wallClockNs();
    expect(now > 1_600_000_000_000_000_000n && now < 5_000_000_000_000_000_000n).to.equal(true);
  });

  it("writes files that tshark and capinfos read the same way (µs and ns)", function () {
    skipWithoutTshark(this);
    for (const nanosecond of [false, true]) {
      const path = join(tmp, nanosecond ? "w-ns.pcap" : "w-us.pcap");
      const w = PcapWriter.toFile(path, { nanosecond });
      // Real frames from a fixture, with new timestamps that exercise the fraction digits.
      const frames = mustRead(fixture("tcp-curl.pcap")).packets;
      frames.forEach((p, i) => w.writePacket(p.data, 1_700_000_000_000_000_000n + BigInt(i) * 1_234_567_891n));
      w.close();
      const ours = mustRead(readFileSync(path)).packets;
      expect(ours).to.have.length(frames.length);
      expect(tsharkFrames(path)).to.deep.equal(ours.map(frameLine));
      const info = run("capinfos", ["-t", "-c", "-E", "-i", path]);
      expect(info).to.match(nanosecond ? /nanosecond pcap/ : /- pcap\n/);
      expect(info).to.match(new RegExp(`Number of packets:\\s+${frames.length}\\n`));
      expect(info).to.match(/File encapsulation:\s+Ethernet/);
      const decoded = run("tshark", ["-r", path]);
      expect(decoded).to.contain("GET /hello.txt HTTP/1.1");
    }
  });

  it("keeps the file readable by tshark while it is still being written", async function () {
    skipWithoutTshark(this);
    const path = join(tmp, "live.pcap");
    const w = PcapWriter.toFile(path);
    const frames = mustRead(fixture("arp-ping.pcap")).packets;
    // Header only: an empty but valid capture. Writes are asynchronous: `flushed` waits for them.
    await w.flushed();
    expect(tsharkFrames(path)).to.deep.equal([]);
    for (let i = 0; i < 3; i++) w.writePacket(frames[i].data, BigInt(i + 1) * 1_000_000_000n);
    await w.flushed();
    expect(tsharkFrames(path)).to.have.length(3);
    for (let i = 3; i < 8; i++) w.writePacket(frames[i].data, BigInt(i + 1) * 1_000_000_000n);
    await w.flushed();
    expect(tsharkFrames(path)).to.have.length(8);
    expect(run("tshark", ["-r", path])).to.contain("Echo (ping) reply");
    w.close();
    expect(tsharkFrames(path)).to.have.length(8);
  });

  it("writes what pcap-parser reads back (µs)", async () => {
    const w = PcapWriter.toMemory();
    const frames = mustRead(fixture("dns-query.pcap")).packets;
    for (const p of frames) w.writePacket(p.data, { sec: p.tsSec, nsec: p.tsFrac });
    const theirs = await oracle(w.bytes());
    expect(theirs.map((o) => [o.header.timestampSeconds, o.header.timestampMicroseconds * 1000])).to.deep.equal(
      frames.map((p) => [p.tsSec, p.tsFrac]),
    );
    expect(theirs.map((o) => o.data.toString("hex"))).to.deep.equal(frames.map((p) => Buffer.from(p.data).toString("hex")));
  });

  it("reports an I/O error once, never throws, and counts later packets as dropped", () => {
    const errors: Error[] = [];
    // A descriptor of /dev/full refuses every write with ENOSPC, starting with the header.
    // (toFile refuses /dev/full itself: capture-file.test.ts.)
    const fd = openSync("/dev/full", "w");
    try {
      const w = PcapWriter.toFd(fd, { onError: (e) => errors.push(e) });
      expect(w.error).to.be.instanceOf(Error);
      for (let i = 0; i < 5; i++) expect(w.writePacket(new Uint8Array(60), BigInt(i))).to.equal(false);
      w.close();
      expect(errors).to.have.length(1);
      expect((errors[0] as NodeJS.ErrnoException).code).to.equal("ENOSPC");
      expect(w.packetsWritten).to.equal(0);
      expect(w.packetsDropped).to.equal(5);
      const quiet = PcapWriter.toFd(fd, {
        onError: () => {
          throw new Error("handler failure");
        },
      });
      expect(quiet.writePacket(new Uint8Array(1), 0n)).to.equal(false);
      quiet.close();
    } finally {
      closeSync(fd);
    }
  });

  it("drops after close and on non-byte input; validates options", () => {
    const w = PcapWriter.toMemory();
    expect(w.writePacket(new Uint8Array(10), 0n)).to.equal(true);
    expect(w.writePacket("x" as unknown as Uint8Array, 0n)).to.equal(false);
    w.close();
    w.close();
    expect(w.writePacket(new Uint8Array(10), 0n)).to.equal(false);
    expect([w.packetsWritten, w.packetsDropped]).to.deep.equal([1, 2]);
    expect(w.chunks).to.have.length(2);
    expect(() => PcapWriter.toMemory({ snaplen: 0 })).to.throw(RangeError);
    expect(() => PcapWriter.toMemory({ snaplen: PCAP_MAX_SNAPLEN + 1 })).to.throw(RangeError);
    expect(() => PcapWriter.toMemory({ linkType: 0x10000 })).to.throw(RangeError);
  });

  it("writes to a caller's descriptor without closing it", () => {
    const path = join(tmp, "fd.pcap");
    const fd = openSync(path, "w");
    const w = PcapWriter.toFd(fd, { nanosecond: true });
    w.writePacket(new Uint8Array([1, 2, 3]), 5n);
    w.close();
    expect(fstatSync(fd).size).to.equal(PCAP_HEADER_LEN + PCAP_RECORD_HEADER_LEN + 3);
    closeSync(fd);
    const cap = mustRead(readFileSync(path));
    expect(cap.packets.map((p) => [p.tsFrac, Array.from(p.data)])).to.deep.equal([[5, [1, 2, 3]]]);
  });

  it("writes to a stream, dropping records while it is over its buffer limit", async () => {
    const got: Buffer[] = [];
    let release: (() => void) | null = null;
    const slow = new Writable({
      highWaterMark: 16,
      write(chunk: Buffer, _enc, cb) {
        got.push(chunk);
        release = cb; // hold every write until released
      },
    });
    const w = PcapWriter.toStream(slow, { maxBuffered: 200 });
    for (let i = 0; i < 10; i++) w.writePacket(new Uint8Array(100), BigInt(i));
    expect(w.packetsWritten).to.be.greaterThan(0);
    expect(w.packetsDropped).to.be.greaterThan(0);
    expect(w.packetsWritten + w.packetsDropped).to.equal(10);
    // Let the stream drain, then close it and read what it received.
    const finished = new Promise((resolve) => slow.on("finish", resolve));
    const pump = setInterval(() => {
      const r = release;
      release = null;
      r?.();
    }, 1);
    w.close();
    await finished;
    clearInterval(pump);
    const cap = mustRead(Buffer.concat(got));
    expect(cap.packets).to.have.length(w.packetsWritten);

    const errors: Error[] = [];
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error("disk on fire"));
      },
    });
    const b = PcapWriter.toStream(broken, { onError: (e) => errors.push(e) });
    await new Promise((resolve) => setImmediate(resolve));
    expect(b.writePacket(new Uint8Array(1), 0n)).to.equal(false);
    expect(errors.map((e) => e.message)).to.deep.equal(["disk on fire"]);
  });

  it("writes big-endian records that the reader, pcap-parser and tshark all read", async function () {
    const rec = { tsSec: 1_700_000_000, tsFrac: 250_000, capturedLength: 42, originalLength: 60 };
    const frame = mustRead(fixture("arp-ping.pcap")).packets[0].data;
    const f = new Uint8Array(PCAP_HEADER_LEN + PCAP_RECORD_HEADER_LEN + 42);
    emitPcapHeader({ linkType: 1, snaplen: 65535, nanosecond: false }, f, 0, false);
    emitPcapRecordHeader(rec, f, PCAP_HEADER_LEN, false);
    f.set(frame, PCAP_HEADER_LEN + PCAP_RECORD_HEADER_LEN);
    const cap = mustRead(f);
    expect(cap.header.littleEndian).to.equal(false);
    expect(cap.packets[0]).to.deep.include({ tsSec: rec.tsSec, tsFrac: 250_000_000, capturedLength: 42, originalLength: 60 });
    const theirs = await oracle(f);
    expect(theirs[0].header).to.deep.equal({
      timestampSeconds: rec.tsSec,
      timestampMicroseconds: rec.tsFrac,
      capturedLength: 42,
      originalLength: 60,
    });
    if (!HAVE_TSHARK) return skipWithoutTshark(this);
    const path = join(tmp, "be.pcap");
    writeFileSync(path, f);
    expect(tsharkFrames(path)).to.deep.equal(["60\t1700000000.250000000"]);
  });
});
