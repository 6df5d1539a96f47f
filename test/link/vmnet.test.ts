/**
 * vmnet (reference/vpnkit.md §2.1): the codecs against bytes written from the spec, the server
 * handshake against a fake client that writes and checks raw bytes offset by offset, UUID →
 * MAC/IP stability (second concurrent connection, restart), refusals, and a client that never
 * reads not stalling another client's traffic through a real NetworkStack.
 */
import { expect } from "chai";
import fc from "fast-check";
import { createConnection, type Socket } from "node:net";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WireError } from "../../src/common/wire-error.js";
import { parseIpv4Address } from "../../src/common/addr.js";
import {
  VmnetIdentities,
  VmnetListener,
  parseVmnetInit,
  parseVmnetCommand,
  parseVmnetResponse,
  emitVmnetInit,
  emitVmnetCommand,
  emitVmnetResponse,
  VMNET_SERVER_INIT,
  type VmnetVifInfo,
} from "../../src/link/vmnet.js";
import type { StreamFrameChannel } from "../../src/link/stream-channel.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { until } from "../support/wait.js";

const UUID_A = "c2a8f7e0-1b2c-4d5e-8f90-0123456789ab";
const UUID_B = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
const ip = (s: string) => parseIpv4Address(s)!;

function pool(): VmnetIdentities {
  return new VmnetIdentities({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.254"), reserved: [ip("192.168.65.2")] });
}

/** The 49-byte Init a client sends, written byte by byte from §2.1. */
function clientInit(magic = "VMN3T", version = 22): Uint8Array {
  const b = new Uint8Array(49);
  for (let i = 0; i < 5; i++) b[i] = magic.charCodeAt(i);
  b[5] = version & 0xff;
  b[6] = (version >> 8) & 0xff;
  b[7] = (version >> 16) & 0xff;
  b[8] = (version >>> 24) & 0xff;
  const commit = "0123456789012345678901234567890123456789";
  for (let i = 0; i < 40; i++) b[9 + i] = commit.charCodeAt(i);
  return b;
}

/** The 41-byte command: type, 36 ASCII UUID, 4 bytes of IPv4 (LE, so octets reversed). */
function clientCommand(type: number, uuid: string, ipOctets?: [number, number, number, number]): Uint8Array {
  const b = new Uint8Array(41);
  b[0] = type;
  for (let i = 0; i < uuid.length && i < 36; i++) b[1 + i] = uuid.charCodeAt(i);
  if (ipOctets) for (let i = 0; i < 4; i++) b[37 + i] = ipOctets[3 - i];
  return b;
}

/** A raw vmnet client: writes bytes, reads exact byte counts. */
class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;
  constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on("close", () => {
      this.ended = true;
      this.wake();
    });
    sock.on("error", () => {});
  }
  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path);
      s.once("error", reject);
      s.once("connect", () => resolve(new RawClient(s)));
    });
  }
  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
  async read(n: number, ms = 3000): Promise<Buffer> {
    const t0 = Date.now();
    while (this.buf.length < n) {
      if (this.ended) throw new Error(`connection closed after ${this.buf.length} of ${n} bytes`);
      if (Date.now() - t0 > ms) throw new Error(`timeout reading ${n} bytes`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }
  async closed(ms = 3000): Promise<void> {
    await until(() => this.ended, ms, "server closes the connection");
  }
  write(b: Uint8Array): void {
    this.sock.write(b);
  }
  /** One frame with its 2-byte LE length. */
  sendFrame(f: Uint8Array): void {
    const b = Buffer.alloc(2 + f.length);
    b[0] = f.length & 0xff;
    b[1] = f.length >> 8;
    b.set(f, 2);
    this.sock.write(b);
  }
  async readFrame(ms = 3000): Promise<Buffer> {
    const h = await this.read(2, ms);
    return this.read(h[0] | (h[1] << 8), ms);
  }
  /** Handshake as hyperkit/the Go client does; returns the 258-byte response. */
  async handshake(cmd: Uint8Array): Promise<Buffer> {
    this.write(clientInit());
    await this.read(49);
    this.write(cmd);
    return this.read(258);
  }
}

function macOf(resp: Uint8Array): number[] {
  return [...resp.subarray(5, 11)];
}

/** ARP request (RFC 826) from `mac`/`senderIp` for `targetIp`, broadcast. */
function arpRequest(mac: number[], senderIp: number, targetIp: number): Uint8Array {
  const f = new Uint8Array(42);
  f.fill(0xff, 0, 6);
  f.set(mac, 6);
  f[12] = 0x08;
  f[13] = 0x06;
  f.set([0, 1, 8, 0, 6, 4, 0, 1], 14);
  f.set(mac, 22);
  f.set([senderIp >>> 24, (senderIp >> 16) & 0xff, (senderIp >> 8) & 0xff, senderIp & 0xff], 28);
  f.set([targetIp >>> 24, (targetIp >> 16) & 0xff, (targetIp >> 8) & 0xff, targetIp & 0xff], 38);
  return f;
}

describe("link/vmnet codecs (§2.1)", () => {
  it("parses the client Init and emits the server's byte for byte", () => {
    const r = parseVmnetInit(clientInit("VMN3T", 22));
    expect(r).to.deep.equal({ magic: "VMN3T", version: 22, commit: "0123456789012345678901234567890123456789" });
    const out = new Uint8Array(49);
    expect(emitVmnetInit(VMNET_SERVER_INIT, out)).to.equal(49);
    expect([...out.subarray(0, 9)]).to.deep.equal([0x56, 0x4d, 0x4e, 0x33, 0x54, 22, 0, 0, 0]);
    expect(Buffer.from(out.subarray(9)).toString("latin1")).to.equal("0123456789012345678901234567890123456789");
    expect(parseVmnetInit(new Uint8Array(48))).to.be.instanceOf(WireError);
  });

  it("parses Ethernet, Preferred_ipv4 (octets reversed), Bind_ipv4, the all-NUL UUID, and refuses bad ones", () => {
    expect(parseVmnetCommand(clientCommand(1, UUID_A))).to.deep.equal({ kind: "ethernet", uuid: UUID_A });
    const pref = clientCommand(8, UUID_A, [192, 168, 65, 3]);
    expect([...pref.subarray(37)]).to.deep.equal([0x03, 0x41, 0xa8, 0xc0]);
    expect(parseVmnetCommand(pref)).to.deep.equal({ kind: "preferred-ipv4", uuid: UUID_A, ip: ip("192.168.65.3") });
    expect(parseVmnetCommand(new Uint8Array([1, ...new Array(40).fill(0)]))).to.deep.equal({ kind: "ethernet", uuid: null });
    expect(parseVmnetCommand(Uint8Array.from([6, 3, 0x41, 0xa8, 0xc0, 0x50, 0x00, 1]))).to.deep.equal({ kind: "bind-ipv4", ip: ip("192.168.65.3"), port: 80, udp: true });
    expect(parseVmnetCommand(clientCommand(1, "not-a-uuid-at-all-xxxxxxxxxxxxxxxxxx"))).to.be.instanceOf(WireError);
    expect(parseVmnetCommand(clientCommand(9, UUID_A))).to.be.instanceOf(WireError);
    expect(parseVmnetCommand(clientCommand(1, UUID_A).subarray(0, 40))).to.be.instanceOf(WireError);
    // emit → same bytes as the hand-written command
    const out = new Uint8Array(41);
    emitVmnetCommand({ kind: "preferred-ipv4", uuid: UUID_A, ip: ip("192.168.65.3") }, out);
    expect([...out]).to.deep.equal([...pref]);
  });

  it("emits the 258-byte VIF and Disconnect responses at the spec's offsets", () => {
    const b = new Uint8Array(258).fill(0xee);
    expect(emitVmnetResponse({ kind: "vif", mtu: 1500, maxPacketSize: 1550, mac: 0x02_50_00_00_00_07 }, b)).to.equal(258);
    expect([...b.subarray(0, 11)]).to.deep.equal([1, 0xdc, 0x05, 0x0e, 0x06, 0x02, 0x50, 0, 0, 0, 7]);
    expect(b.subarray(11).every((x) => x === 0)).to.equal(true);
    emitVmnetResponse({ kind: "disconnect", reason: "nope" }, b);
    expect([...b.subarray(0, 6)]).to.deep.equal([2, 4, 0x6e, 0x6f, 0x70, 0x65]);
    expect(b.subarray(6).every((x) => x === 0)).to.equal(true);
    expect(parseVmnetResponse(b)).to.deep.equal({ kind: "disconnect", reason: "nope" });
  });

  it("parsers never throw on any input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        parseVmnetInit(bytes);
        parseVmnetCommand(bytes);
        parseVmnetResponse(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("link/vmnet identities (§1.2)", () => {
  it("same UUID → same MAC and IP; stable across a new table (restart); locally administered unicast MACs", () => {
    const t1 = pool();
    const a = t1.assign(UUID_A);
    const b = t1.assign(UUID_B);
    if (typeof a === "string" || typeof b === "string") throw new Error("refused");
    expect(t1.assign(UUID_A.toUpperCase())).to.deep.equal(a);
    expect(a.mac).to.not.equal(b.mac);
    expect(a.ip).to.not.equal(b.ip);
    expect(Math.floor(a.mac / 2 ** 40)).to.equal(0x02);
    const t2 = pool();
    expect(t2.assign(UUID_A)).to.deep.equal(a);
  });

  it("honours a free preferred address and refuses used, out-of-range or conflicting ones", () => {
    const t = pool();
    const a = t.assign(UUID_A, ip("192.168.65.3"));
    expect(a).to.include({ ip: ip("192.168.65.3") });
    expect(t.assign(UUID_B, ip("192.168.65.3"))).to.match(/already used/);
    expect(t.assign(UUID_B, ip("192.168.65.2"))).to.match(/out of range/);
    expect(t.assign(UUID_B, ip("10.0.0.1"))).to.match(/out of range/);
    expect(t.assign(UUID_A, ip("192.168.65.9"))).to.match(/different IP/);
  });

  it("fills a small pool and then refuses", () => {
    const t = new VmnetIdentities({ poolFirst: ip("10.0.0.3"), poolLast: ip("10.0.0.4") });
    expect(t.assign(UUID_A)).to.be.an("object");
    expect(t.assign(UUID_B)).to.be.an("object");
    expect(t.assign("11111111-2222-3333-4444-555555555555")).to.equal("No IP addresses available.");
  });
});

describe("link/vmnet server handshake over a Unix socket", function () {
  let dir: string;
  let path: string;
  let listener: VmnetListener;
  let identities: VmnetIdentities;
  const got: Array<{ ch: StreamFrameChannel; vif: VmnetVifInfo }> = [];
  const clients: RawClient[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), "skiff-vmnet-"));
    path = join(dir, "vpnkit-ethernet.sock");
    identities = pool();
    got.length = 0;
    listener = await VmnetListener.listen(path, { identities, mtu: 1500 });
    listener.on("channel", (ch, vif) => got.push({ ch, vif }));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.sock.destroy();
    for (const g of got) g.ch.close();
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
  });
  async function client(): Promise<RawClient> {
    const c = await RawClient.connect(path);
    clients.push(c);
    return c;
  }

  it("replies Init then a 258-byte VIF response, offset by offset", async () => {
    const c = await client();
    c.write(clientInit());
    const init = await c.read(49);
    expect(init.subarray(0, 5).toString("latin1")).to.equal("VMN3T");
    expect([...init.subarray(5, 9)]).to.deep.equal([22, 0, 0, 0]);
    expect(init.subarray(9, 49).toString("latin1")).to.equal("0123456789012345678901234567890123456789");
    c.write(clientCommand(1, UUID_A));
    const resp = await c.read(258);
    expect(resp[0]).to.equal(1);
    expect(resp[1] | (resp[2] << 8)).to.equal(1500);
    expect(resp[3] | (resp[4] << 8)).to.equal(1550);
    const id = identities.get(UUID_A)!;
    expect(macOf(resp)).to.deep.equal([0, 1, 2, 3, 4, 5].map((i) => Math.floor(id.mac / 2 ** (8 * (5 - i))) & 0xff));
    expect(resp[5]).to.equal(0x02);
    expect(resp.subarray(11).every((x) => x === 0)).to.equal(true);
    await until(() => got.length === 1, 2000, "channel event");
    expect(got[0].vif).to.include({ uuid: UUID_A, mac: id.mac, ip: id.ip, command: "ethernet" });
    expect(listener.counters.handshakes).to.equal(1);
  });

  it("a second concurrent connection with the same UUID gets the same MAC (and IP), and so does a restarted listener", async () => {
    const c1 = await client();
    const r1 = await c1.handshake(clientCommand(1, UUID_A));
    const c2 = await client();
    const r2 = await c2.handshake(clientCommand(1, UUID_A));
    expect(macOf(r2)).to.deep.equal(macOf(r1));
    await until(() => got.length === 2, 2000, "two channels");
    expect(got[1].vif.ip).to.equal(got[0].vif.ip);
    expect(got[0].ch.closed).to.equal(false);
    // Restart: a new listener and a new table on the same path (the stale socket is replaced).
    await listener.close();
    listener = await VmnetListener.listen(path, { identities: pool(), mtu: 1500 });
    listener.on("channel", (ch, vif) => got.push({ ch, vif }));
    const c3 = await client();
    const r3 = await c3.handshake(clientCommand(1, UUID_A));
    expect(macOf(r3)).to.deep.equal(macOf(r1));
    await until(() => got.length === 3, 2000, "third channel");
    expect(got[2].vif.ip).to.equal(got[0].vif.ip);
  });

  it("gives a Preferred_ipv4 client its address, and disconnects a conflicting one with the reason", async () => {
    const c1 = await client();
    const r1 = await c1.handshake(clientCommand(8, UUID_A, [192, 168, 65, 77]));
    expect(r1[0]).to.equal(1);
    await until(() => got.length === 1, 2000, "channel");
    expect(got[0].vif.ip).to.equal(ip("192.168.65.77"));
    const c2 = await client();
    const r2 = await c2.handshake(clientCommand(8, UUID_B, [192, 168, 65, 77]));
    expect(r2[0]).to.equal(2);
    expect(r2.subarray(2, 2 + r2[1]).toString("latin1")).to.match(/already used/);
    await c2.closed();
    expect(listener.counters.dropped("refused")).to.equal(1);
  });

  it("closes the connection (counted) on a bad magic or version, after sending its own Init", async () => {
    const c1 = await client();
    c1.write(clientInit("VMNET", 22));
    expect((await c1.read(49)).subarray(0, 5).toString("latin1")).to.equal("VMN3T");
    await c1.closed();
    const c2 = await client();
    c2.write(clientInit("VMN3T", 21));
    await c2.read(49);
    await c2.closed();
    expect(listener.counters.dropped("bad-magic")).to.equal(1);
    expect(listener.counters.dropped("bad-version")).to.equal(1);
    expect(got).to.have.length(0);
  });

  it("answers an unknown command, a bad UUID and Bind_ipv4 with Disconnect and closes (counted)", async () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [clientCommand(9, UUID_A), /unknown command 9/],
      [clientCommand(1, "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"), /UUID/],
      [Uint8Array.from([6, 3, 0x41, 0xa8, 0xc0, 0x50, 0x00, 0]), /Unsupported command Bind_ipv4/],
    ];
    for (const [cmd, re] of cases) {
      const c = await client();
      const r = await c.handshake(cmd);
      expect(r[0]).to.equal(2);
      expect(r.subarray(2, 2 + r[1]).toString("latin1")).to.match(re);
      await c.closed();
    }
    expect(listener.counters.dropped("bad-command")).to.equal(2);
    expect(listener.counters.dropped("unsupported-command")).to.equal(1);
  });

  it("delivers a frame written in the same write as the command, then frames both ways", async () => {
    const recv: Uint8Array[] = [];
    // The receiver is set when the channel is handed out, as the stack's attach does.
    listener.on("channel", (ch) => ch.setReceiver((f) => recv.push(Uint8Array.from(f))));
    const c = await client();
    c.write(clientInit());
    await c.read(49);
    const f1 = new Uint8Array(60).fill(0x11);
    c.write(Buffer.concat([clientCommand(1, UUID_A), Buffer.from([60, 0]), f1]));
    await c.read(258);
    await until(() => got.length === 1, 2000, "channel");
    c.sendFrame(new Uint8Array(1514).fill(0x22));
    await until(() => recv.length === 2, 2000, "two frames");
    expect([...recv[0]]).to.deep.equal([...f1]);
    expect(recv[1].length).to.equal(1514);
    got[0].ch.send(new Uint8Array(100).fill(0x33));
    const back = await c.readFrame();
    expect(back.length).to.equal(100);
    expect(back.every((x) => x === 0x33)).to.equal(true);
  });

  it("removes the socket file on close", async () => {
    expect(existsSync(path)).to.equal(true);
    await listener.close();
    expect(existsSync(path)).to.equal(false);
    listener = await VmnetListener.listen(path, { identities, mtu: 1500 });
  });
});

describe("link/vmnet: a client that never reads does not stall another", function () {
  this.timeout(30_000);
  it("the reading client's ARP keeps being answered while the idle one's queue hits its bound (drops counted)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-vmnet-"));
    const path = join(dir, "s.sock");
    const stack = new NetworkStack({ mtu: 1500 });
    const identities = pool();
    const channels = new Map<string, StreamFrameChannel>();
    const listener = await VmnetListener.listen(path, { identities, mtu: 1500, highWaterBytes: 4096, limitBytes: 16384 });
    listener.on("channel", (ch, vif) => {
      stack.attach(ch);
      channels.set(vif.uuid, ch);
    });
    const idle = await RawClient.connect(path);
    const active = await RawClient.connect(path);
    try {
      const rIdle = await idle.handshake(clientCommand(1, UUID_A));
      const rActive = await active.handshake(clientCommand(1, UUID_B));
      await until(() => channels.size === 2, 2000, "two channels");
      // The idle client stops reading from here on, and floods ARP requests for the gateway.
      idle.sock.pause();
      const gw = ip("192.168.65.1");
      const idleReq = arpRequest(macOf(rIdle), identities.get(UUID_A)!.ip, gw);
      const activeReq = arpRequest(macOf(rActive), identities.get(UUID_B)!.ip, gw);
      const idleCh = channels.get(UUID_A)!;
      let answered = 0;
      for (let round = 0; round < 40; round++) {
        const burst = Buffer.alloc(500 * 44);
        for (let i = 0; i < 500; i++) {
          burst[i * 44] = 42;
          burst.set(idleReq, i * 44 + 2);
        }
        idle.write(burst);
        active.sendFrame(activeReq);
        const reply = await active.readFrame(2000);
        expect(reply[12]).to.equal(0x08);
        expect(reply[13]).to.equal(0x06);
        expect(reply[21]).to.equal(2); // ARP reply
        answered++;
        if (idleCh.stats.txDrops > 0 && round >= 5) break;
      }
      expect(idleCh.stats.txDrops, "idle channel drops").to.be.greaterThan(0);
      expect(answered).to.be.greaterThan(0);
      // And after the drops the active client is still answered.
      active.sendFrame(activeReq);
      expect((await active.readFrame(2000))[21]).to.equal(2);
    } finally {
      idle.sock.destroy();
      active.sock.destroy();
      for (const ch of channels.values()) ch.close();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
