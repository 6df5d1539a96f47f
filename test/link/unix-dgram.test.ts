/**
 * Unix datagram channels over real sockets in a temp dir: QEMU `-netdev dgram` style (both
 * sides bound, back to back), vfkit style (peer learned from the first datagram, "VFKT"
 * consumed), a burst with the peer not reading (bounded queue, counted drops, never a throw).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import unixSocket from "node-unix-socket";
import { UnixDgramChannel } from "../../src/link/unix-dgram.js";
import { openQemuDgram, qemuDgramNetdev } from "../../src/link/qemu-dgram.js";
import { openVfkit } from "../../src/link/vfkit.js";
import { until, collectFrames } from "../support/wait.js";

const { DgramSocket } = unixSocket;

function frame(n: number, tag: number): Uint8Array {
  const f = new Uint8Array(n);
  f.fill(tag);
  f[0] = tag; // keep a unicast destination (bit 0 of byte 0 clear for even tags)
  return f;
}

describe("link/unix-dgram", () => {
  let dir: string;
  const open: Array<{ close(): void }> = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "skiff-dgram-"));
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function qemuPair() {
    const paths = { skiffPath: join(dir, "skiff.sock"), qemuPath: join(dir, "qemu.sock") };
    const a = openQemuDgram(paths);
    const b = UnixDgramChannel.open("fake-qemu", { localPath: paths.qemuPath, peerPath: paths.skiffPath });
    open.push(a, b);
    return { a, b, paths };
  }

  it("carries 1514-byte frames both ways, one per datagram, and copies what it sends", async () => {
    const { a, b } = qemuPair();
    const gotA = collectFrames(a);
    const gotB = collectFrames(b);
    const f = frame(1514, 2);
    expect(a.send(f)).to.equal(true);
    f.fill(9); // the channel must not have kept the caller's bytes
    b.send(frame(60, 4));
    b.send(frame(1514, 6));
    await until(() => gotB.length === 1 && gotA.length === 2);
    expect(gotB[0]).to.deep.equal(frame(1514, 2));
    expect(gotA).to.deep.equal([frame(60, 4), frame(1514, 6)]);
    expect([a.stats.txFrames, a.stats.rxFrames, b.stats.txFrames, b.stats.rxFrames]).to.deep.equal([1, 2, 2, 1]);
  });

  it("writes the matching QEMU -netdev option", () => {
    expect(qemuDgramNetdev("n0", { skiffPath: "/r/s.sock", qemuPath: "/r/q.sock" })).to.equal(
      "dgram,id=n0,local.type=unix,local.path=/r/q.sock,remote.type=unix,remote.path=/r/s.sock",
    );
  });

  it("a burst of 5,000 frames to a peer that is not reading: bounded queue, counted drops, no throw", async () => {
    const { a, b } = qemuPair();
    const gotB = collectFrames(b);
    let refused = 0;
    // All 5,000 in one turn of the event loop: the peer cannot read meanwhile.
    for (let i = 0; i < 5000; i++) if (!a.send(frame(1514, (i % 100) * 2))) refused++;
    expect(a.inFlight).to.be.at.most(512);
    expect(a.stats.txDrops).to.be.greaterThan(0);
    expect(a.stats.txFrames + a.stats.txDrops).to.equal(5000);
    expect(refused).to.be.greaterThan(0);
    let drained = false;
    a.once("drain", () => (drained = true));
    // Once the peer reads again, everything queued arrives and the channel drains.
    await until(() => gotB.length === a.stats.txFrames && a.inFlight === 0, 10000, "queued frames delivered");
    expect(drained).to.equal(true);
    expect(a.sendErrors).to.equal(0);
    expect(gotB.every((f) => f.length === 1514)).to.equal(true);
  });

  it("counts frames to a peer path that does not exist as drops", async () => {
    const a = UnixDgramChannel.open("lonely", { localPath: join(dir, "a.sock"), peerPath: join(dir, "nobody.sock") });
    open.push(a);
    for (let i = 0; i < 3; i++) a.send(frame(60, 2));
    await until(() => a.sendErrors === 3);
    expect(a.stats.txDrops).to.equal(3);
    expect(a.closed).to.equal(false);
  });

  it("drops datagrams from senders other than the peer, and runts", async () => {
    const { a, b } = qemuPair();
    const got = collectFrames(a);
    const other = new DgramSocket();
    open.push(other);
    other.bind(join(dir, "other.sock"));
    other.sendTo(Buffer.from(frame(60, 2)), 0, 60, a.localPath);
    await until(() => a.foreignDrops === 1);
    b.send(new Uint8Array(10)); // shorter than an Ethernet header
    b.send(frame(60, 4));
    await until(() => got.length === 1);
    expect(got[0]).to.deep.equal(frame(60, 4));
    expect(a.stats.rxDrops).to.equal(2);
  });

  it("removes its socket file on close, and replaces a stale one on open", () => {
    const p = join(dir, "s.sock");
    const a = UnixDgramChannel.open("a", { localPath: p });
    expect(existsSync(p)).to.equal(true);
    a.close();
    expect(existsSync(p)).to.equal(false);
    const stale = new DgramSocket();
    stale.bind(p);
    stale.close(); // leaves the file behind
    expect(existsSync(p)).to.equal(true);
    const b = UnixDgramChannel.open("b", { localPath: p });
    open.push(b);
    expect(b.closed).to.equal(false);
  });

  describe("vfkit", () => {
    function vfkitPeer(name: string) {
      const s = new DgramSocket();
      open.push(s);
      const path = join(dir, name);
      s.bind(path);
      const got: Uint8Array[] = [];
      s.on("data", (buf: Buffer) => got.push(Uint8Array.from(buf)));
      return { s, path, got };
    }

    it("consumes a first 'VFKT' datagram, learns the peer from it, then carries frames both ways", async () => {
      const ch = openVfkit(join(dir, "skiff.sock"));
      open.push(ch);
      const got = collectFrames(ch);
      expect(ch.send(frame(60, 2))).to.equal(true); // no peer yet: a counted drop
      expect(ch.noPeerDrops).to.equal(1);
      const vm = vfkitPeer("vm.sock");
      vm.s.sendTo(Buffer.from("VFKT"), 0, 4, ch.localPath);
      await until(() => ch.peerPath !== undefined);
      expect(ch.peerPath).to.equal(vm.path);
      expect(ch.handshakes).to.equal(1);
      vm.s.sendTo(Buffer.from(frame(1514, 4)), 0, 1514, ch.localPath);
      await until(() => got.length === 1);
      expect(got[0]).to.deep.equal(frame(1514, 4));
      ch.send(frame(1514, 6));
      await until(() => vm.got.length === 1);
      expect(vm.got[0]).to.deep.equal(frame(1514, 6));
    });

    it("without the handshake: the first frame is delivered and teaches the peer", async () => {
      const ch = openVfkit(join(dir, "skiff.sock"));
      open.push(ch);
      const got = collectFrames(ch);
      const vm = vfkitPeer("vm.sock");
      vm.s.sendTo(Buffer.from(frame(60, 8)), 0, 60, ch.localPath);
      await until(() => got.length === 1);
      expect(ch.peerPath).to.equal(vm.path);
      expect(ch.handshakes).to.equal(0);
      ch.send(frame(60, 10));
      await until(() => vm.got.length === 1);
      // A later "VFKT" is just a runt datagram, not a handshake.
      vm.s.sendTo(Buffer.from("VFKT"), 0, 4, ch.localPath);
      await until(() => ch.stats.rxDrops === 1);
      expect(ch.handshakes).to.equal(0);
    });

    it("QEMU mode does not treat 'VFKT' as a handshake", async () => {
      const { a, b } = qemuPair();
      b.send(Uint8Array.from([0x56, 0x46, 0x4b, 0x54]));
      await until(() => a.stats.rxDrops === 1);
      expect(a.handshakes).to.equal(0);
    });
  });
});
