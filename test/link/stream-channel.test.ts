import { expect } from "chai";
import { createServer, createConnection, type Socket, type Server } from "node:net";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StreamFrameChannel, QEMU_PREFIX, VMNET_PREFIX } from "../../src/link/stream-channel.js";
import { QemuStreamListener, connectQemuStream, parseStreamAddress } from "../../src/link/qemu-stream.js";
import { memoryPair } from "../../src/link/memory.js";

/** A connected TCP socket pair on loopback. */
async function socketPair(): Promise<{ a: Socket; b: Socket; server: Server }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const a = createConnection(port, "127.0.0.1");
  await new Promise((r) => a.once("connect", r));
  return { a, b: await accepted, server };
}

/** Lengths of the chunks written to `sock`, in order (the socket's write, wrapped). */
function spyWrites(sock: Socket): number[] {
  const writes: number[] = [];
  const write = sock.write.bind(sock) as (chunk: Uint8Array) => boolean;
  (sock as unknown as { write: (chunk: Uint8Array) => boolean }).write = (chunk) => {
    writes.push(chunk.length);
    return write(chunk);
  };
  return writes;
}

function frame(n: number, fill: number): Uint8Array {
  const f = new Uint8Array(n);
  for (let i = 0; i < n; i++) f[i] = (fill + i) & 0xff;
  return f;
}

function collect(ch: { setReceiver(r: (f: Uint8Array) => void): void }): Uint8Array[] {
  const got: Uint8Array[] = [];
  ch.setReceiver((f) => got.push(Uint8Array.from(f)));
  return got;
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("link/stream-channel (length-prefixed frames)", () => {
  it("carries frames both ways with QEMU's 4-byte big-endian prefix", async () => {
    const { a, b, server } = await socketPair();
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX);
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX);
    const gotB = collect(cb);
    const gotA = collect(ca);
    const sent = [frame(60, 1), frame(1514, 7), frame(42, 9)];
    for (const f of sent) ca.send(f);
    cb.send(frame(100, 3));
    await until(() => gotB.length === 3 && gotA.length === 1);
    expect(gotB).to.deep.equal(sent);
    expect(gotA[0]).to.deep.equal(frame(100, 3));
    expect(ca.stats.txFrames).to.equal(3);
    expect(cb.stats.rxFrames).to.equal(3);
    expect(cb.stats.rxBytes).to.equal(60 + 1514 + 42);
    ca.close();
    await until(() => cb.closed);
    server.close();
  });

  it("reassembles frames split at every byte boundary (one byte per write)", async () => {
    const { a, b, server } = await socketPair();
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX);
    const got = collect(cb);
    const f1 = frame(70, 5);
    const f2 = frame(64, 200);
    const wire = new Uint8Array(8 + 70 + 64);
    new DataView(wire.buffer).setUint32(0, 70);
    wire.set(f1, 4);
    new DataView(wire.buffer).setUint32(74, 64);
    wire.set(f2, 78);
    for (const byte of wire) {
      a.write(Uint8Array.of(byte));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => got.length === 2);
    expect(got).to.deep.equal([f1, f2]);
    a.destroy();
    server.close();
  });

  it("uses a 2-byte little-endian prefix for vmnet", async () => {
    const { a, b, server } = await socketPair();
    const cb = new StreamFrameChannel("b", b, VMNET_PREFIX);
    const got = collect(cb);
    a.write(Uint8Array.of(0x3c, 0x00, ...frame(0x3c, 0)));
    await until(() => got.length === 1);
    expect(got[0].length).to.equal(60);
    a.destroy();
    server.close();
  });

  it("closes with an error when the framing is lost (zero or oversize length)", async () => {
    const { a, b, server } = await socketPair();
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX, { mtu: 1500 });
    let error: Error | undefined;
    cb.on("closed", (e) => (error = e));
    collect(cb);
    a.write(Uint8Array.of(0, 1, 0, 0)); // 65536 > 1518
    await until(() => cb.closed);
    expect(error?.message).to.match(/framing lost/);
    expect(cb.stats.rxDrops).to.equal(1);
    a.destroy();
    server.close();
  });

  it("drops and counts frames larger than the MTU allows, without sending them", async () => {
    const { a, b, server } = await socketPair();
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX, { mtu: 1500 });
    ca.send(new Uint8Array(1519));
    expect(ca.stats.txDrops).to.equal(1);
    expect(ca.stats.txFrames).to.equal(0);
    ca.close();
    b.destroy();
    server.close();
  });

  it("writes the frames sent in one turn with one socket write, by the end of that turn", async () => {
    const { a, b, server } = await socketPair();
    const writes = spyWrites(a);
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX);
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX);
    const got = collect(cb);
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 50; i++) sent.push(frame(i % 2 ? 1514 : 66, i));
    for (const f of sent) ca.send(f);
    expect(writes).to.deep.equal([]);
    // A later turn must not be needed: the batch goes out from a microtask of this one.
    await Promise.resolve();
    expect(writes).to.deep.equal([25 * (4 + 1514) + 25 * (4 + 66)]);
    // Frames are copied: changing the caller's buffers afterwards changes nothing on the wire.
    for (const f of sent) f.fill(0xee);
    await until(() => got.length === 50);
    for (let i = 0; i < 50; i++) expect(got[i]).to.deep.equal(frame(i % 2 ? 1514 : 66, i));
    // A lone frame in a later turn is its own write (a small batch).
    ca.send(frame(60, 1));
    await Promise.resolve();
    expect(writes.length).to.equal(2);
    expect(writes[1]).to.equal(64);
    await until(() => got.length === 51);
    ca.close();
    await until(() => cb.closed);
    server.close();
  });

  it("starts a new write when a batch reaches batchBytes, in order", async () => {
    const { a, b, server } = await socketPair();
    const writes = spyWrites(a);
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX, { batchBytes: 10 * 1518 });
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX);
    const got = collect(cb);
    for (let i = 0; i < 25; i++) ca.send(frame(1514, i));
    await Promise.resolve();
    expect(writes).to.deep.equal([10 * 1518, 10 * 1518, 5 * 1518]);
    await until(() => got.length === 25);
    for (let i = 0; i < 25; i++) expect(got[i]).to.deep.equal(frame(1514, i));
    ca.close();
    await until(() => cb.closed);
    server.close();
  });

  it("reuses its staging buffers once the socket has written them (no allocation per batch)", async () => {
    // Issue 20: a new staging buffer per large batch (~64 KB of frames in a 256 KiB buffer) made
    // V8 run a mark-compact every few MB of a download (external memory growth).
    const { a, b, server } = await socketPair();
    const backing = new Set<ArrayBufferLike>();
    const write = a.write.bind(a) as (chunk: Uint8Array, cb?: (err?: Error | null) => void) => boolean;
    (a as unknown as { write: typeof write }).write = (chunk, cb) => {
      backing.add(chunk.buffer);
      return write(chunk, cb);
    };
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX);
    const cb = new StreamFrameChannel("b", b, QEMU_PREFIX);
    let got = 0;
    cb.setReceiver(() => got++);
    for (let turn = 0; turn < 100; turn++) {
      for (let i = 0; i < 40; i++) ca.send(frame(1514, turn + i));
      // Let the batch go out and the peer read it, as a guest's ring would.
      await until(() => got === (turn + 1) * 40);
    }
    expect(backing.size).to.be.at.most(3);
    ca.close();
    await until(() => cb.closed);
    server.close();
  });

  it("signals backpressure and drains when the peer does not read", async () => {
    const { a, b, server } = await socketPair();
    b.pause();
    const ca = new StreamFrameChannel("a", a, QEMU_PREFIX, { highWaterBytes: 64 * 1024, limitBytes: 256 * 1024 });
    let accepted = 0;
    let refused = false;
    for (let i = 0; i < 50000 && !refused; i++) {
      if (ca.send(frame(1514, i))) accepted++;
      else refused = true;
    }
    expect(refused).to.equal(true);
    // Keep pushing past the hard limit: those frames are dropped and counted.
    for (let i = 0; i < 500; i++) ca.send(frame(1514, i));
    expect(ca.stats.txDrops).to.be.greaterThan(0);
    const drained = new Promise<void>((r) => ca.once("drain", () => r()));
    b.resume();
    await drained;
    ca.close();
    server.close();
  });
});

describe("link/qemu-stream (listen and connect)", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "skiff-qs-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("parses unix: and tcp: addresses", () => {
    expect(parseStreamAddress("unix:/run/x.sock")).to.deep.equal({ kind: "unix", path: "/run/x.sock" });
    expect(parseStreamAddress("/run/y.sock")).to.deep.equal({ kind: "unix", path: "/run/y.sock" });
    expect(parseStreamAddress("tcp:127.0.0.1:5555")).to.deep.equal({ kind: "tcp", host: "127.0.0.1", port: 5555 });
    expect(() => parseStreamAddress("tcp:127.0.0.1:99999")).to.throw(/bad TCP address/);
  });

  it("listens on a Unix socket, accepts two guests, and removes the socket on close", async () => {
    const path = join(dir, "q.sock");
    const l = await QemuStreamListener.listen(`unix:${path}`);
    const channels: StreamFrameChannel[] = [];
    l.on("channel", (c) => channels.push(c));
    const g1 = await connectQemuStream(`unix:${path}`);
    const g2 = await connectQemuStream(`unix:${path}`);
    await until(() => channels.length === 2);
    const got0 = collect(channels[0]);
    const got1 = collect(channels[1]);
    g1.send(frame(60, 1));
    g2.send(frame(61, 2));
    await until(() => got0.length + got1.length === 2);
    expect([...got0, ...got1].map((f) => f.length).sort()).to.deep.equal([60, 61]);
    g1.close();
    g2.close();
    await l.close();
    expect(existsSync(path)).to.equal(false);
  });

  it("listens on TCP with an ephemeral port", async () => {
    const l = await QemuStreamListener.listen("tcp:127.0.0.1:0");
    expect(l.address.kind).to.equal("tcp");
    const port = (l.address as { port: number }).port;
    expect(port).to.be.greaterThan(0);
    const accepted = new Promise<StreamFrameChannel>((r) => l.once("channel", r));
    const g = await connectQemuStream(`tcp:127.0.0.1:${port}`);
    const host = await accepted;
    const got = collect(g);
    host.send(frame(90, 4));
    await until(() => got.length === 1);
    g.close();
    host.close();
    await l.close();
  });

  it("rejects connecting to a missing socket with the OS error", async () => {
    let err: Error | undefined;
    try {
      await connectQemuStream(`unix:${join(dir, "missing.sock")}`);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.message).to.match(/ENOENT/);
  });
});

describe("link/memory pair", () => {
  it("delivers copies in order, asynchronously, and closes both ends", async () => {
    const [a, b] = memoryPair();
    const got = collect(b);
    const f = frame(60, 0);
    a.send(f);
    f[0] = 99; // the sender's buffer may be reused at once
    expect(got.length).to.equal(0);
    await until(() => got.length === 1);
    expect(got[0][0]).to.equal(0);
    a.close();
    await until(() => b.closed);
  });

  it("bounds its queue: backpressure, then counted drops, then drain", async () => {
    const [a, b] = memoryPair({ highWater: 4, limit: 8 });
    collect(b);
    const results = Array.from({ length: 10 }, () => a.send(frame(60, 0)));
    expect(results.slice(0, 3)).to.deep.equal([true, true, true]);
    expect(results[3]).to.equal(false);
    expect(a.stats.txFrames).to.equal(8);
    expect(a.stats.txDrops).to.equal(2);
    await new Promise<void>((r) => a.once("drain", () => r()));
    expect(b.stats.rxFrames).to.equal(8);
  });
});
