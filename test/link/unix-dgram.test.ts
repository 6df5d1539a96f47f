/**
 * Unix datagram channels over real sockets in a temp dir: QEMU `-netdev dgram` style (both
 * sides bound, back to back), vfkit style (peer learned from the first datagram, "VFKT"
 * consumed), a burst with the peer not reading (bounded queue, counted drops, never a throw),
 * a peer that starts late or restarts, and senders other than the peer. Peers that are not a
 * channel are plain sockets from the addon (`RawPeer`).
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { loadAddon } from "../../src/native/addon.js";
import { UnixDgramChannel } from "../../src/link/unix-dgram.js";
import { openQemuDgram, qemuDgramNetdev } from "../../src/link/qemu-dgram.js";
import { openVfkit } from "../../src/link/vfkit.js";
import { until, collectFrames } from "../support/wait.js";

const { EPERM } = constants.errno;

function frame(n: number, tag: number): Uint8Array {
  const f = new Uint8Array(n);
  f.fill(tag);
  f[0] = tag; // keep a unicast destination (bit 0 of byte 0 clear for even tags)
  return f;
}

/** A bound AF_UNIX datagram socket from the addon, reading everything it receives. */
class RawPeer {
  readonly addon = loadAddon("tests");
  readonly fd: number;
  readonly got: Uint8Array[] = [];
  private readonly ring = new ArrayBuffer(2048 * 8);
  private readonly lengths = new Uint32Array(8);

  constructor(readonly path: string) {
    this.fd = this.addon.unixDgramOpen(path, 0, 0);
    expect(this.fd, `bind ${path}`).to.be.greaterThan(0);
    this.addon.startRead(this.fd, this.ring, 2048, this.lengths, (n) => {
      for (let i = 0; i < n; i++) this.got.push(new Uint8Array(this.ring, i * 2048, this.lengths[i]).slice());
    });
  }

  connect(path: string): number {
    return this.addon.unixDgramConnect(this.fd, path);
  }

  /** Write one datagram to the connected path; bytes written or -errno. */
  write(bytes: Uint8Array): number {
    return this.addon.write(this.fd, bytes);
  }

  close(): void {
    this.addon.close(this.fd);
  }
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

  function rawPeer(name: string): RawPeer {
    const p = new RawPeer(join(dir, name));
    open.push(p);
    return p;
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
    expect(a.inFlight).to.equal(512);
    expect(a.stats.txDrops).to.be.greaterThan(0);
    expect(a.stats.txFrames + a.inFlight + a.stats.txDrops).to.equal(5000);
    expect(refused).to.be.greaterThan(0);
    const accepted = a.stats.txFrames + a.inFlight;
    let drained = false;
    a.once("drain", () => (drained = true));
    // Once the peer reads again, everything queued arrives and the channel drains.
    await until(() => gotB.length === accepted && a.inFlight === 0, 10000, "queued frames delivered");
    expect(drained).to.equal(true);
    expect(a.stats.txFrames).to.equal(accepted);
    expect(a.sendErrors).to.equal(0);
    expect(gotB.every((f) => f.length === 1514)).to.equal(true);
  });

  it("counts frames to a peer path that does not exist as drops", () => {
    const a = UnixDgramChannel.open("lonely", { localPath: join(dir, "a.sock"), peerPath: join(dir, "nobody.sock") });
    open.push(a);
    for (let i = 0; i < 3; i++) expect(a.send(frame(60, 2))).to.equal(true);
    expect(a.sendErrors).to.equal(3);
    expect(a.stats.txDrops).to.equal(3);
    expect(a.stats.txFrames).to.equal(0);
    expect(a.closed).to.equal(false);
  });

  it("a peer that binds after skiff, then restarts at the same path: counted drops meanwhile, then frames flow again", async () => {
    const qemuPath = join(dir, "qemu.sock");
    const a = openQemuDgram({ skiffPath: join(dir, "skiff.sock"), qemuPath });
    open.push(a);
    const got = collectFrames(a);
    a.send(frame(60, 2)); // nobody at qemuPath yet
    expect(a.sendErrors).to.equal(1);
    // QEMU starts and sends first: skiff connects to it and reads the frame.
    const q1 = new RawPeer(qemuPath);
    expect(q1.connect(a.localPath)).to.equal(0);
    expect(q1.write(frame(60, 4))).to.equal(60);
    await until(() => got.length === 1);
    expect(got[0]).to.deep.equal(frame(60, 4));
    a.send(frame(60, 6));
    await until(() => q1.got.length === 1);
    expect(q1.got[0]).to.deep.equal(frame(60, 6));
    // QEMU goes away: the next frame is refused and counted …
    q1.close();
    rmSync(qemuPath);
    a.send(frame(60, 8));
    expect(a.sendErrors).to.equal(2);
    // … and a new QEMU at the same path is reached by the frame after it.
    const q2 = rawPeer("qemu.sock");
    expect(a.send(frame(60, 10))).to.equal(true);
    await until(() => q2.got.length === 1);
    expect(q2.got[0]).to.deep.equal(frame(60, 10));
    expect(a.sendErrors).to.equal(2);
    expect(a.stats.txFrames).to.equal(2);
  });

  it("drops datagrams from other senders while waiting for the peer (the kernel refuses them after), and runts", async () => {
    const paths = { skiffPath: join(dir, "skiff.sock"), qemuPath: join(dir, "qemu.sock") };
    const a = openQemuDgram(paths);
    open.push(a);
    const got = collectFrames(a);
    const other = rawPeer("other.sock");
    expect(other.connect(a.localPath)).to.equal(0);
    expect(other.write(frame(60, 2))).to.equal(60);
    await until(() => a.foreignDrops === 1);
    const b = UnixDgramChannel.open("fake-qemu", { localPath: paths.qemuPath, peerPath: paths.skiffPath });
    open.push(b);
    b.send(new Uint8Array(10)); // shorter than an Ethernet header: teaches nothing new, dropped
    b.send(frame(60, 4));
    await until(() => got.length === 1);
    expect(got[0]).to.deep.equal(frame(60, 4));
    expect(a.stats.rxDrops).to.equal(2);
    // Connected now: another sender's datagram never reaches skiff.
    expect(other.write(frame(60, 6))).to.equal(-EPERM);
    expect(rawPeer("third.sock").connect(a.localPath)).to.equal(-EPERM);
    expect(a.foreignDrops).to.equal(1);
  });

  it("removes its socket file on close, and replaces a stale one on open", () => {
    const p = join(dir, "s.sock");
    const a = UnixDgramChannel.open("a", { localPath: p });
    expect(existsSync(p)).to.equal(true);
    a.close();
    expect(existsSync(p)).to.equal(false);
    new RawPeer(p).close(); // leaves the file behind
    expect(existsSync(p)).to.equal(true);
    const b = UnixDgramChannel.open("b", { localPath: p });
    open.push(b);
    expect(b.closed).to.equal(false);
  });

  it("closing counts the frames still waiting as drops", () => {
    const { a } = qemuPair();
    for (let i = 0; i < 2000; i++) a.send(frame(1514, 2));
    const waiting = a.inFlight;
    expect(waiting).to.be.greaterThan(0);
    const drops = a.stats.txDrops;
    a.close();
    expect(a.stats.txDrops).to.equal(drops + waiting);
    expect(a.inFlight).to.equal(0);
  });

  describe("vfkit", () => {
    /** vfkit's side: bound, connected to skiff. */
    function vfkitPeer(name: string, skiffPath: string): RawPeer {
      const p = rawPeer(name);
      expect(p.connect(skiffPath)).to.equal(0);
      return p;
    }

    it("consumes a first 'VFKT' datagram, learns the peer from it, then carries frames both ways", async () => {
      const ch = openVfkit(join(dir, "skiff.sock"));
      open.push(ch);
      const got = collectFrames(ch);
      expect(ch.send(frame(60, 2))).to.equal(true); // no peer yet: a counted drop
      expect(ch.noPeerDrops).to.equal(1);
      const vm = vfkitPeer("vm.sock", ch.localPath);
      vm.write(new TextEncoder().encode("VFKT"));
      await until(() => ch.peerPath !== undefined);
      expect(ch.peerPath).to.equal(vm.path);
      await until(() => ch.handshakes === 1);
      vm.write(frame(1514, 4));
      await until(() => got.length === 1);
      expect(got[0]).to.deep.equal(frame(1514, 4));
      ch.send(frame(1514, 6));
      await until(() => vm.got.length === 1);
      expect(vm.got[0]).to.deep.equal(frame(1514, 6));
      expect(ch.stats.rxDrops).to.equal(0);
    });

    it("without the handshake: the first frame is delivered and teaches the peer", async () => {
      const ch = openVfkit(join(dir, "skiff.sock"));
      open.push(ch);
      const got = collectFrames(ch);
      const vm = vfkitPeer("vm.sock", ch.localPath);
      vm.write(frame(60, 8));
      await until(() => got.length === 1);
      expect(ch.peerPath).to.equal(vm.path);
      expect(ch.handshakes).to.equal(0);
      ch.send(frame(60, 10));
      await until(() => vm.got.length === 1);
      // A later "VFKT" is just a runt datagram, not a handshake.
      vm.write(new TextEncoder().encode("VFKT"));
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
