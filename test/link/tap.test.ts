import { expect } from "chai";
import { spawn } from "node:child_process";
import { readlinkSync } from "node:fs";
import { constants, tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { TapChannel } from "../../src/link/tap.js";
import { RX_CSUM_VERIFIED, TX_CSUM_PARTIAL, txGsoMeta } from "../../src/common/frame-channel.js";
import { VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4 } from "../../src/link/vnet.js";
import { findAddon, type TapAddon } from "../../src/native/addon.js";
import { getMac, getU16, getU32, setMac, setU16, setU32 } from "../../src/common/bytes.js";
import { formatMac, parseIpv4Address, parseMac } from "../../src/common/addr.js";
import { createNetns, requireNetns, type Netns } from "../support/netns.js";

const EAGAIN = constants.errno.EAGAIN;
const ip = (s: string): number => parseIpv4Address(s)!;

async function until(cond: () => boolean | Promise<boolean>, ms = 4000, what = "condition"): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const threadNetns = (): string => readlinkSync("/proc/thread-self/ns/net");

// Hand decoding of the frames the kernel sends (Ethernet II, ARP for IPv4, IPv4 + ICMP).
const ethDst = (f: Uint8Array) => getMac(f, 0);
const ethSrc = (f: Uint8Array) => getMac(f, 6);
const ethType = (f: Uint8Array) => getU16(f, 12);
const isArp = (f: Uint8Array) => f.length >= 42 && ethType(f) === 0x0806;
const arpOp = (f: Uint8Array) => getU16(f, 20);
const arpSha = (f: Uint8Array) => getMac(f, 22);
const arpSpa = (f: Uint8Array) => getU32(f, 28);
const arpTpa = (f: Uint8Array) => getU32(f, 38);
/** ICMP echo request (IPv4 without options): [dst ip, sequence] or undefined. */
function echoRequest(f: Uint8Array): { dst: number; seq: number } | undefined {
  if (f.length < 42 || ethType(f) !== 0x0800 || f[14] !== 0x45 || f[23] !== 1 || f[34] !== 8) return undefined;
  return { dst: getU32(f, 30), seq: getU16(f, 40) };
}

/** ARP reply (RFC 826) "spa is at sha" to tha/tpa, built by hand. */
function arpReply(sha: number, spa: number, tha: number, tpa: number): Uint8Array {
  const f = new Uint8Array(42);
  setMac(f, 0, tha);
  setMac(f, 6, sha);
  setU16(f, 12, 0x0806);
  setU16(f, 14, 1); // htype Ethernet
  setU16(f, 16, 0x0800); // ptype IPv4
  f[18] = 6;
  f[19] = 4;
  setU16(f, 20, 2); // op reply
  setMac(f, 22, sha);
  setU32(f, 28, spa);
  setMac(f, 32, tha);
  setU32(f, 38, tpa);
  return f;
}

describe("link/tap (Linux TAP in a network namespace; the kernel is the peer)", function () {
  requireNetns(["/dev/net/tun"]);

  let ns: Netns;
  let ch: TapChannel;
  let got: Uint8Array[];
  let mac: number;

  async function sh(cmd: string): Promise<string> {
    const r = await ns.exec(["sh", "-c", cmd]);
    if (r.code !== 0) throw new Error(`${cmd}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }
  const stat = async (name: string) => Number(await sh(`cat /sys/class/net/sk0/statistics/${name}`));

  beforeEach(async () => {
    ns = await createNetns("skiff-tap");
    ch = TapChannel.open({ name: "sk0", netns: ns.path });
    got = [];
    ch.setReceiver((f) => got.push(Uint8Array.from(f)));
    await sh("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; ip link set sk0 up && ip addr add 192.168.65.3/24 dev sk0");
    mac = parseMac((await sh("cat /sys/class/net/sk0/address")).trim())!;
  });

  afterEach(async () => {
    ch?.close();
    await ns?.destroy();
  });

  it("creates the device inside the namespace and leaves the calling thread where it was", async () => {
    const before = threadNetns();
    const other = TapChannel.open({ name: "sk1", netns: ns.path });
    try {
      expect(threadNetns()).to.equal(before);
      expect(other.name).to.equal("tap:sk1");
      expect(other.ifname).to.equal("sk1");
      expect(await sh("ip -d link show sk1")).to.match(/tun type tap pi off/);
      const here = await new Promise<number>((r) => spawn("ip", ["link", "show", "sk1"], { stdio: "ignore" }).on("exit", r));
      expect(here, "sk1 must not exist in our own namespace").to.not.equal(0);
    } finally {
      other.close();
    }
  });

  it("receives the kernel's ARP request for 192.168.65.1 from the interface's MAC", async () => {
    const ping = ns.exec(["ping", "-c1", "-W1", "192.168.65.1"]);
    await until(() => got.some((f) => isArp(f) && arpTpa(f) === ip("192.168.65.1")), 3000, "ARP request");
    const f = got.find((g) => isArp(g) && arpTpa(g) === ip("192.168.65.1"))!;
    expect(formatMac(ethDst(f))).to.equal("ff:ff:ff:ff:ff:ff");
    expect(ethSrc(f)).to.equal(mac);
    expect(getU16(f, 14), "htype").to.equal(1);
    expect(getU16(f, 16), "ptype").to.equal(0x0800);
    expect([f[18], f[19]]).to.deep.equal([6, 4]);
    expect(arpOp(f), "op request").to.equal(1);
    expect(arpSha(f)).to.equal(mac);
    expect(arpSpa(f)).to.equal(ip("192.168.65.3"));
    expect(ch.stats.rxFrames).to.be.at.least(1);
    await ping;
  });

  it("writes a frame the kernel takes: an ARP reply fills its neighbour table and the ping follows", async () => {
    const gw = parseMac("02:00:00:00:00:01")!;
    const rxBefore = await stat("rx_packets");
    const ping = ns.exec(["ping", "-c1", "-W1", "192.168.65.1"]);
    await until(() => got.some((f) => isArp(f) && arpOp(f) === 1), 3000, "ARP request");
    expect(ch.send(arpReply(gw, ip("192.168.65.1"), mac, ip("192.168.65.3")))).to.equal(true);
    expect(ch.stats.txFrames).to.equal(1);
    expect(ch.stats.txBytes).to.equal(42);
    // The kernel now sends the echo request to the MAC we announced.
    await until(() => got.some((f) => echoRequest(f)?.dst === ip("192.168.65.1") && ethDst(f) === gw), 3000, "echo");
    expect(await sh("ip neigh show 192.168.65.1 dev sk0")).to.contain("lladdr 02:00:00:00:00:01");
    expect(await stat("rx_packets")).to.equal(rxBefore + 1);
    await ping;
  });

  it("delivers a burst of 2000 kernel frames, each one intact, counting the kernel's own drops", async () => {
    await sh("ip neigh add 192.168.65.9 lladdr 02:00:00:00:00:09 dev sk0 nud permanent");
    const peer = parseMac("02:00:00:00:00:09")!;
    const seqs = new Set<number>();
    ch.setReceiver((f) => {
      const e = echoRequest(f);
      if (e !== undefined && ethDst(f) === peer && e.dst === ip("192.168.65.9")) seqs.add(e.seq);
    });
    const dropped0 = await stat("tx_dropped");
    const r = await ns.exec(["ping", "-q", "-l", "2000", "-i", "0", "-W", "0.2", "-c", "2000", "192.168.65.9"]);
    expect(r.stdout).to.match(/2000 packets transmitted/);
    let dropped = 0;
    await until(async () => {
      dropped = (await stat("tx_dropped")) - dropped0;
      return seqs.size + dropped >= 2000;
    }, 4000, "2000 frames");
    expect(seqs.size + dropped).to.equal(2000);
    expect(seqs.size).to.be.greaterThan(1000);
    expect(ch.stats.rxDrops).to.equal(0);
    expect(ch.stats.rxFrames).to.be.at.least(seqs.size);
  });

  it("rejects a missing or non-namespace path with the failing step, and stays in our namespace", () => {
    const before = threadNetns();
    const missing = `/run/netns/skiff-none-${process.pid}`;
    expect(() => TapChannel.open({ name: "sk2", netns: missing })).to.throw(
      Error,
      `openTap: open(${missing}) failed: No such file or directory`,
    );
    expect(() => TapChannel.open({ name: "sk2", netns: "/etc/hostname" })).to.throw(
      Error,
      "openTap: setns(/etc/hostname, CLONE_NEWNET) failed: Invalid argument",
    );
    expect(() => TapChannel.open({ name: "a-name-longer-than-15", netns: ns.path })).to.throw(TypeError, /15 bytes/);
    expect(threadNetns()).to.equal(before);
  });

  it("closes once: a second close is a no-op, the device goes away, later sends are counted drops", async () => {
    let events = 0;
    ch.on("closed", () => events++);
    ch.close();
    ch.close();
    expect(ch.closed).to.equal(true);
    expect(events).to.equal(1);
    expect(ch.send(new Uint8Array(60))).to.equal(false);
    expect(ch.stats.txDrops).to.equal(1);
    await until(async () => (await ns.exec(["ip", "link", "show", "sk0"])).code !== 0, 3000, "sk0 removed");
  });

  it("keeps a process alive while open and lets it exit once closed", async () => {
    const tapModule = fileURLToPath(new URL("../../src/link/tap.ts", import.meta.url));
    const code = [
      `import { TapChannel } from ${JSON.stringify(tapModule)};`,
      `const ch = TapChannel.open({ name: "sk5", netns: ${JSON.stringify(ns.path)} });`,
      `ch.setReceiver(() => { ch.close(); console.log("closed"); });`,
      `console.log("open");`,
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    try {
      await until(() => out.includes("open") || child.exitCode !== null, 8000, "child open");
      expect(child.exitCode, err).to.equal(null);
      await new Promise((r) => setTimeout(r, 300));
      expect(child.exitCode, "an open channel keeps its process alive").to.equal(null);
      await sh("ip link set sk5 up && ip addr add 192.168.66.3/24 dev sk5");
      const ping = ns.exec(["ping", "-c1", "-W1", "192.168.66.1"]);
      const timeout = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 5000).unref());
      expect(await Promise.race([exited, timeout]), err).to.equal(0);
      expect(out).to.contain("closed");
      await ping;
    } finally {
      if (child.exitCode === null) child.kill();
    }
  });

  it("loads in a worker too, and a terminated worker's polled devices go away with it", async () => {
    // The worker uses the addon directly (it runs plain JS): open, poll, never close.
    const addonPath = findAddon(fileURLToPath(new URL("../../src/native/", import.meta.url)))!;
    const code = `
      const { parentPort } = require("node:worker_threads");
      const addon = require(${JSON.stringify(addonPath)});
      const { fd, name } = addon.openTap("a15bytesname-ok", ${JSON.stringify(ns.path)});
      addon.startRead(fd, new ArrayBuffer(2048 * 4), 2048, new Uint32Array(4), () => {});
      parentPort.postMessage(name);`;
    const worker = new Worker(code, { eval: true });
    const name = await new Promise((resolve, reject) => worker.once("message", resolve).once("error", reject));
    expect(name).to.equal("a15bytesname-ok");
    expect((await ns.exec(["ip", "link", "show", "a15bytesname-ok"])).code).to.equal(0);
    await worker.terminate();
    await until(async () => (await ns.exec(["ip", "link", "show", "a15bytesname-ok"])).code !== 0, 3000, "device removed");
  });
});

/** A stand-in for the addon: records writes; `nextWrite` decides each write's result. */
class FakeAddon implements TapAddon {
  written: Uint8Array[] = [];
  nextWrite: (frame: Uint8Array) => number = (f) => f.length;
  ring!: ArrayBuffer;
  slot = 0;
  lengths!: Uint32Array;
  callback!: (count: number) => void;
  closedFds: number[] = [];
  openTap(): { fd: number; name: string } {
    throw new Error("not used");
  }
  startRead(fd: number, ring: ArrayBuffer, slotSize: number, lengths: Uint32Array, cb: (n: number) => void): void {
    this.ring = ring;
    this.slot = slotSize;
    this.lengths = lengths;
    this.callback = cb;
  }
  stopRead(): void {}
  write(fd: number, frame: Uint8Array): number {
    const n = this.nextWrite(frame);
    if (n > 0) this.written.push(Uint8Array.from(frame));
    return n;
  }
  write2(fd: number, head: Uint8Array, body: Uint8Array): number {
    const joined = new Uint8Array(head.length + body.length);
    joined.set(head);
    joined.set(body, head.length);
    return this.write(fd, joined);
  }
  close(fd: number): number {
    this.closedFds.push(fd);
    return 0;
  }
}

describe("link/tap channel logic (fake addon)", () => {
  const frame = (n: number, fill: number) => new Uint8Array(n).fill(fill);

  it("finds the built addon from src/native by walking up, and nothing outside the package", () => {
    const found = findAddon(fileURLToPath(new URL("../../src/native/", import.meta.url)));
    expect(found, "run `npm run build:native`").to.match(/native\/build\/Release\/skiff\.node$/);
    expect(findAddon(tmpdir())).to.equal(undefined);
  });

  it("delivers each slot of a batch as a view, drops oversize frames, closes on a read error", () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 7, "fake0", { mtu: 1500 });
    expect(ch.name).to.equal("tap:fake0");
    expect(fake.slot).to.be.greaterThan(1518);
    const ring = new Uint8Array(fake.ring);
    ring.fill(0xaa, 0, 60);
    ring.fill(0xbb, fake.slot, fake.slot + 1518);
    fake.lengths[0] = 60;
    fake.lengths[1] = 1518;
    fake.lengths[2] = 1519; // longer than mtu + 18: truncated by the kernel, must be dropped
    const got: Uint8Array[] = [];
    ch.setReceiver((f) => got.push(Uint8Array.from(f)));
    fake.callback(3);
    expect(got).to.deep.equal([frame(60, 0xaa), frame(1518, 0xbb)]);
    expect(ch.stats.rxFrames).to.equal(2);
    expect(ch.stats.rxDrops).to.equal(1);
    let error: Error | undefined;
    ch.on("closed", (e) => (error = e));
    fake.callback(-constants.errno.EIO);
    expect(ch.closed).to.equal(true);
    expect(error?.message).to.equal("tap:fake0: read failed: EIO");
    expect(fake.closedFds).to.deep.equal([7]);
  });

  it("queues copies on EAGAIN, signals backpressure, drops over the limit, drains in order", async () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 3, "fake1", { highWaterFrames: 2, limitFrames: 3 });
    fake.nextWrite = () => -EAGAIN;
    const f1 = frame(60, 1);
    expect(ch.send(f1)).to.equal(true);
    f1.fill(9); // the channel kept a copy, not the caller's buffer
    expect(ch.send(frame(60, 2))).to.equal(false); // high-water mark reached
    expect(ch.send(frame(60, 3))).to.equal(false);
    expect(ch.send(frame(60, 4))).to.equal(false); // over the limit: dropped
    expect(ch.queuedFrames).to.equal(3);
    expect(ch.stats.txDrops).to.equal(1);
    await new Promise((r) => setTimeout(r, 10)); // retries still see EAGAIN
    expect(fake.written).to.have.length(0);
    const drained = new Promise<void>((r) => ch.once("drain", r));
    fake.nextWrite = (f) => f.length;
    await drained;
    expect(fake.written).to.deep.equal([frame(60, 1), frame(60, 2), frame(60, 3)]);
    expect(ch.stats.txFrames).to.equal(3);
    expect(ch.stats.txBytes).to.equal(180);
    expect(ch.send(frame(60, 5))).to.equal(true); // queue empty again: written directly
    expect(fake.written).to.have.length(4);
    ch.close();
  });

  it("counts a write error other than EAGAIN as a drop and keeps going; close drops the queue", () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 4, "fake2");
    fake.nextWrite = () => -constants.errno.EINVAL;
    expect(ch.send(frame(10, 1))).to.equal(true);
    expect(ch.stats.txDrops).to.equal(1);
    expect(ch.stats.txFrames).to.equal(0);
    fake.nextWrite = () => -EAGAIN;
    ch.send(frame(60, 1));
    ch.send(frame(60, 2));
    ch.close();
    expect(ch.stats.txDrops).to.equal(3);
    expect(ch.queuedFrames).to.equal(0);
    expect(fake.closedFds).to.deep.equal([4]);
  });
});

describe("link/tap offload mode (virtio-net header; fake addon)", () => {
  /** An Ethernet + IPv4 + TCP frame of `len` bytes. */
  const tcpFrame = (len: number) => {
    const f = new Uint8Array(len);
    f[12] = 0x08;
    f[14] = 0x45;
    f[14 + 9] = 6;
    f[34 + 12] = 5 << 4;
    return f;
  };

  it("strips the header; a super-segment beyond the MTU and partial checksums pass with RX_CSUM_VERIFIED; bad headers are dropped", () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 5, "fake2", { mtu: 1500, vnetOffload: true });
    expect(ch.offloads).to.deep.equal({ txChecksum: true, tcpSegmentation: true });
    const ring = new Uint8Array(fake.ring);
    const put = (i: number, hdr: number[], len: number, fill: number) => {
      ring.set(hdr, i * fake.slot);
      ring.fill(fill, i * fake.slot + 10, i * fake.slot + 10 + len);
      fake.lengths[i] = 10 + len;
    };
    put(0, [VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 54, 0, 0xb4, 0x05, 34, 0, 16, 0], 30_000, 1); // GSO, 30 kB
    put(1, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 100, 2); // plain
    put(2, [VNET_F_DATA_VALID, 0, 0, 0, 0, 0, 0, 0, 0, 0], 100, 3); // verified by the kernel
    put(3, [VNET_F_NEEDS_CSUM, 3 /* UDP GSO: never asked for */, 0, 0, 0, 0, 0, 0, 0, 0], 3000, 4);
    put(4, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 3000, 5); // not GSO and beyond the MTU
    const got: Array<[number, number, number]> = [];
    ch.setReceiver((f, flags) => got.push([f.length, f[0], flags]));
    fake.callback(5);
    expect(got).to.deep.equal([
      [30_000, 1, RX_CSUM_VERIFIED],
      [100, 2, 0],
      [100, 3, RX_CSUM_VERIFIED],
    ]);
    expect(ch.stats.rxDrops).to.equal(2);
    expect(ch.offloadStats.rxSuperSegments).to.equal(1);
    expect(ch.offloadStats.rxBadHeader).to.equal(1);
  });

  it("writes header + frame in one write: GSO for a super-segment, NEEDS_CSUM for a partial checksum, zeros otherwise", () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 5, "fake3", { mtu: 1500, vnetOffload: true });
    expect(ch.send(tcpFrame(20_054), txGsoMeta(1448))).to.equal(true);
    expect(ch.send(tcpFrame(600), TX_CSUM_PARTIAL)).to.equal(true);
    expect(ch.send(tcpFrame(600))).to.equal(true);
    // A super-segment without a GSO size is too big for the MTU: dropped before the link.
    expect(ch.send(tcpFrame(20_054), TX_CSUM_PARTIAL)).to.equal(true);
    expect(fake.written.map((w) => w.length)).to.deep.equal([20_064, 610, 610]);
    expect(Array.from(fake.written[0].subarray(0, 10))).to.deep.equal([VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 54, 0, 0xa8, 0x05, 34, 0, 16, 0]);
    expect(Array.from(fake.written[1].subarray(0, 10))).to.deep.equal([VNET_F_NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0]);
    expect(Array.from(fake.written[2].subarray(0, 10))).to.deep.equal(new Array(10).fill(0));
    expect(ch.stats.txDrops).to.equal(1);
    expect(ch.stats.txBytes).to.equal(20_054 + 600 + 600);
    expect(ch.offloadStats).to.include({ txSuperSegments: 1, txPartialChecksum: 1 });
  });

  it("keeps the header with a frame queued after EAGAIN", async () => {
    const fake = new FakeAddon();
    const ch = new TapChannel(fake, 5, "fake4", { mtu: 1500, vnetOffload: true });
    let fail = true;
    fake.nextWrite = (f) => (fail ? -EAGAIN : f.length);
    expect(ch.send(tcpFrame(600), TX_CSUM_PARTIAL)).to.equal(true);
    fail = false;
    await until(() => fake.written.length === 1, 1000, "queued frame written");
    expect(fake.written[0][0]).to.equal(VNET_F_NEEDS_CSUM);
    expect(fake.written[0].length).to.equal(610);
    expect(ch.stats.txBytes).to.equal(600);
  });
});
