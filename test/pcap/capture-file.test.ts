/**
 * Capture files written on the user's behalf (`--pcap`, `POST /capture`): never through a
 * planted link, never into a FIFO, device or another user's file, created 0600; writes that
 * never block the event loop (a stalled disk costs counted drops), and write errors that stop
 * the capture and are reported. Runs as root (as skiff does) to plant other users' files.
 */
import { expect } from "chai";
import { until } from "../support/wait.js";
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  closeSync,
  constants,
  linkSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  chownSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaptureChannel } from "../../src/link/capture.js";
import { memoryPair } from "../../src/link/memory.js";
import type { FileSinkIo } from "../../src/pcap/file-sink.js";
import { readPcap, readPcapFile } from "../../src/pcap/reader.js";
import { PcapWriter } from "../../src/pcap/writer.js";

const NOBODY = 65534;
const isRoot = process.geteuid?.() === 0;

/** `fn` must throw an error whose message matches `why`; returns the message. */
function refused(fn: () => unknown, why: RegExp): string {
  let msg = "";
  try {
    fn();
  } catch (e) {
    msg = (e as Error).message;
  }
  expect(msg, "refused").to.match(why);
  return msg;
}

const frame = (n: number, fill = 0) => new Uint8Array(n).fill(fill);

describe("pcap capture files: safe open", function () {
  let dir: string;
  let sticky: string;

  before(function () {
    if (!isRoot) {
      console.log("    (skipped: needs root to plant files owned by another user)");
      this.skip();
    }
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-capfile-"));
    // A /tmp-like directory: world-writable and sticky.
    sticky = join(dir, "tmp");
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates a new file with mode 0600 whatever the umask", () => {
    const old = process.umask(0o022);
    try {
      const p = join(sticky, "new.pcap");
      const w = PcapWriter.toFile(p);
      w.writePacket(frame(60), 1n);
      w.close();
      expect(statSync(p).mode & 0o7777).to.equal(0o600);
      expect(statSync(p).size).to.equal(24 + 16 + 60);
    } finally {
      process.umask(old);
    }
  });

  it("never follows a link planted at the path (the victim keeps its bytes)", () => {
    const victim = join(dir, "victim");
    writeFileSync(victim, "secret", { mode: 0o600 });
    const link = join(sticky, "x.pcap");
    symlinkSync(victim, link);
    lchownSync(link, NOBODY, NOBODY);
    refused(() => PcapWriter.toFile(link), /x\.pcap: is a symbolic link/);
    // Even a link of our own: the last component is never followed.
    const own = join(dir, "own.pcap");
    symlinkSync(victim, own);
    refused(() => PcapWriter.toFile(own), /symbolic link/);
    expect(readFileSync(victim, "utf8")).to.equal("secret");
  });

  it("refuses a link planted by another user in the directory part", () => {
    const target = join(dir, "private");
    mkdirSync(target, { mode: 0o700 });
    writeFileSync(join(target, "x.pcap"), "secret", { mode: 0o600 });
    const link = join(sticky, "d");
    symlinkSync(target, link);
    lchownSync(link, NOBODY, NOBODY);
    refused(() => PcapWriter.toFile(join(link, "x.pcap")), /symbolic link .*\/tmp\/d belongs to another user/);
    expect(readFileSync(join(target, "x.pcap"), "utf8")).to.equal("secret");
    // A directory another user owns, or one anybody may write without the sticky bit.
    const theirs = join(dir, "theirs");
    mkdirSync(theirs);
    chownSync(theirs, NOBODY, NOBODY);
    refused(() => PcapWriter.toFile(join(theirs, "x.pcap")), /belongs to another user/);
    const open = join(dir, "open");
    mkdirSync(open);
    chmodSync(open, 0o777);
    refused(() => PcapWriter.toFile(join(open, "x.pcap")), /writable by other users and not sticky/);
  });

  it("refuses a FIFO with a reader (it would block or feed another process) and a device", () => {
    const fifo = join(sticky, "fifo.pcap");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    // A reader is there, so an open for writing would not block: it must be refused anyway.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      refused(() => PcapWriter.toFile(fifo), /fifo\.pcap: is a FIFO/);
    } finally {
      closeSync(reader);
    }
    refused(() => PcapWriter.toFile("/dev/full"), /\/dev\/full: is a character device/);
    refused(() => PcapWriter.toFile("/dev/null"), /character device/);
    refused(() => PcapWriter.toFile(sticky), /directory/);
    refused(() => PcapWriter.toFile(`${sticky}/..`), /does not name a file/);
    refused(() => PcapWriter.toFile(sticky + "/"), /does not name a file/);
  });

  it("refuses a FIFO or device without ever opening it (opening a device can act: a watchdog, a tape rewind)", function () {
    this.timeout(30_000);
    const fifo = join(sticky, "watched.pcap");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    // A reader in another process; a writer that opens and closes the FIFO leaves POLLHUP
    // (0x10) on it, which shows whether the refusal came before or after an open for writing.
    const code = `import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
print("ready", flush=True)
sys.stdin.readline()
p = select.poll(); p.register(fd, select.POLLIN)
print("events", sum(e for _, e in p.poll(0)), flush=True)`;
    const child = spawn("python3", ["-c", code, fifo], { stdio: ["pipe", "pipe", "inherit"] });
    // Everything the reader prints is kept (one listener for the whole run: output may arrive
    // in any chunks), and the test waits for whole lines.
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    return until(() => out.includes("ready\n"), 20_000, "the reader is ready")
      .then(() => {
        refused(() => PcapWriter.toFile(fifo), /watched\.pcap: is a FIFO/);
        child.stdin!.write("go\n");
        return until(() => /events \d+\n/.test(out), 20_000, "the reader's poll result");
      })
      .then(() => {
        const events = Number(/events (\d+)\n/.exec(out)![1]);
        expect(events & 0x10, "POLLHUP: the FIFO was opened for writing before being refused").to.equal(0);
      });
  });

  it("refuses a FIFO without a reader at once instead of blocking", function () {
    this.timeout(30_000);
    const fifo = join(sticky, "lonely.pcap");
    expect(spawnSync("mkfifo", [fifo]).status).to.equal(0);
    // In a child process: the old open() blocked forever here, which a timeout turns into a failure.
    const code = `import { PcapWriter } from ${JSON.stringify(new URL("../../src/pcap/writer.ts", import.meta.url).pathname)};
      try { PcapWriter.toFile(${JSON.stringify(fifo)}); console.log("opened"); } catch (e) { console.log("refused: " + e.message); }`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8", timeout: 20_000 });
    expect(r.signal, "the open blocked").to.equal(null);
    expect(r.stdout).to.match(/refused: .*lonely\.pcap: is a FIFO/);
  });

  it("refuses another user's file and a planted hard link; replaces a regular file of ours, made 0600", () => {
    const theirs = join(sticky, "theirs.pcap");
    writeFileSync(theirs, "their data");
    chownSync(theirs, NOBODY, NOBODY);
    refused(() => PcapWriter.toFile(theirs), /belongs to another user \(uid 65534\)/);
    expect(readFileSync(theirs, "utf8")).to.equal("their data");

    // A hard link planted next to a file of ours (say /etc/shadow): two links, refused.
    const precious = join(dir, "precious");
    writeFileSync(precious, "keep me", { mode: 0o600 });
    const hard = join(sticky, "hard.pcap");
    linkSync(precious, hard);
    refused(() => PcapWriter.toFile(hard), /2 hard links/);
    expect(readFileSync(precious, "utf8")).to.equal("keep me");

    const mine = join(sticky, "mine.pcap");
    writeFileSync(mine, "old content that is longer than a header", { mode: 0o644 });
    const w = PcapWriter.toFile(mine);
    w.close();
    expect(statSync(mine).size).to.equal(24);
    expect(statSync(mine).mode & 0o777).to.equal(0o600);
  });
});

/** File operations whose asynchronous writes are held until `release`, or fail with `code`. */
function heldIo(): FileSinkIo & { pending: Array<() => void>; failWith: string | null; writes: number } {
  const real = { writeSync: (fd: number, b: Uint8Array, o: number, l: number, p: number) => l, close: (_fd: number) => closeSync(_fd) };
  const io = {
    pending: [] as Array<() => void>,
    failWith: null as string | null,
    writes: 0,
    writev(_fd: number, buffers: Uint8Array[], _pos: number, cb: (err: NodeJS.ErrnoException | null, n: number) => void) {
      io.writes++;
      const n = buffers.reduce((a, b) => a + b.length, 0);
      io.pending.push(() => {
        if (io.failWith) {
          const e = new Error(`${io.failWith}: no space left on device, write`) as NodeJS.ErrnoException;
          e.code = io.failWith;
          cb(e, 0);
        } else cb(null, n);
      });
    },
    writeSync: real.writeSync,
    close: real.close,
  };
  return io;
}

describe("pcap capture files: writes never block, errors are reported", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), "skiff-capwrite-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("drops and counts records beyond the queue cap while the disk does not answer", () => {
    const io = heldIo();
    const w = PcapWriter.toFile(join(dir, "slow.pcap"), { io, maxQueued: 1000 });
    // The header went out in one write that never completes; 60-byte frames make 76-byte records.
    let ok = 0;
    for (let i = 0; i < 100; i++) if (w.writePacket(frame(60), BigInt(i))) ok++;
    expect(ok).to.equal(Math.floor((1000 - 24) / 76));
    expect(w.packetsWritten).to.equal(ok);
    expect(w.packetsDropped).to.equal(100 - ok);
    expect(io.writes).to.equal(1);
    // The disk answers: the queue drains in one batch and records are taken again.
    io.pending.shift()!();
    expect(io.writes).to.equal(2);
    io.pending.shift()!();
    expect(w.writePacket(frame(60), 200n)).to.equal(true);
    w.close();
  });

  it("stops the capture on a write error, reports it once, and keeps it in the status", async () => {
    const io = heldIo();
    const [a, b] = memoryPair();
    b.setReceiver(() => {});
    const cap = new CaptureChannel(a);
    cap.setReceiver(() => {});
    const errors: string[] = [];
    cap.setErrorHandler((e, path) => errors.push(`${path}: ${e.message}`));
    const path = join(dir, "full.pcap");
    cap.startFile(path, { io });
    cap.send(frame(60));
    io.failWith = "ENOSPC";
    io.pending.shift()!();
    expect(cap.capturing).to.equal(undefined);
    for (let i = 0; i < 3; i++) cap.send(frame(60));
    expect(errors).to.deep.equal([`${path}: ENOSPC: no space left on device, write`]);
    const st = cap.status();
    expect(st.running).to.equal(false);
    expect(st.path).to.equal(path);
    expect(st.error).to.match(/ENOSPC/);
    cap.close();
  });

  it("reports a real ENOSPC from a full tmpfs (private mount namespace)", function () {
    this.timeout(30_000);
    if (!isRoot || spawnSync("unshare", ["--version"]).error) {
      console.log("    (skipped: needs root and unshare to mount a small tmpfs)");
      return this.skip();
    }
    const mnt = join(dir, "mnt");
    mkdirSync(mnt);
    const writer = new URL("../../src/pcap/writer.ts", import.meta.url).pathname;
    const code = `import { PcapWriter } from ${JSON.stringify(writer)};
      const errors = [];
      const w = PcapWriter.toFile(${JSON.stringify(join(mnt, "c.pcap"))}, { onError: (e) => errors.push(e.code) });
      for (let i = 0; i < 64; i++) w.writePacket(new Uint8Array(1500), BigInt(i));
      await w.flushed();
      for (let i = 0; i < 5; i++) w.writePacket(new Uint8Array(60), 0n);
      w.close();
      console.log(JSON.stringify({ errors, dropped: w.packetsDropped, error: w.error?.code }));`;
    const script = join(dir, "run.mjs");
    writeFileSync(script, code);
    const r = spawnSync(
      "unshare",
      ["-m", "--propagation", "private", "sh", "-c", `mount -t tmpfs -o size=16k tmpfs ${mnt} && exec "${process.execPath}" --import tsx ${script}`],
      { encoding: "utf8", timeout: 20_000 },
    );
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.errors).to.deep.equal(["ENOSPC"]);
    expect(out.error).to.equal("ENOSPC");
    expect(out.dropped).to.be.at.least(5);
  });

  it("is readable while it runs (after flushed) and complete after close", async () => {
    const path = join(dir, "live.pcap");
    const w = PcapWriter.toFile(path);
    for (let i = 0; i < 3; i++) w.writePacket(frame(60 + i, i), BigInt(i));
    await w.flushed();
    const r = readPcapFile(path);
    if (!("packets" in r)) throw r;
    expect(r.packets.map((p) => p.data.length)).to.deep.equal([60, 61, 62]);
    // Written and closed at once, without waiting: close() writes what is queued.
    for (let i = 3; i < 50; i++) w.writePacket(frame(60 + i, i), BigInt(i));
    w.close();
    const all = readPcap(readFileSync(path));
    if (!("packets" in all)) throw all;
    expect(all.packets.map((p) => p.data.length)).to.deep.equal(Array.from({ length: 50 }, (_, i) => 60 + i));
    expect(all.packets[49].data[0]).to.equal(49);
  });
});
