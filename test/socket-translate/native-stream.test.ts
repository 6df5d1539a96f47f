/**
 * Host TCP sockets of the addon's epoll set (`src/socket-translate/native-stream.ts` driving
 * `native/streams.c`) against real loopback servers from `node:net`: connect and its errors,
 * bytes both ways (20 MB with write backpressure), half-close in either order, end after queued
 * bytes, reset and destroy, pause/resume (also with the peer gone while paused: no busy loop),
 * peer resets, a stream closed mid-batch whose fd a new connect reuses, and 200 streams at once.
 *
 * Uses the process-wide group (`streamsInit` runs once per process). Skipped, with the reason
 * printed, when the addon is not built.
 */
import { expect } from "chai";
import { createHash, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import type { HostStreamHandlers } from "../../src/socket-translate/host-stream.js";
import {
  nativeStreams,
  nativeStreamsUnavailable,
  type NativeStream,
  type NativeStreamGroup,
} from "../../src/socket-translate/native-stream.js";
import { until } from "../support/wait.js";

const LOOPBACK = 0x7f000001;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const sha256 = (chunks: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
};

/** What a stream reported, in order ("data", "end", "drain", "error:CODE", "close:BOOL"). */
class Recorder implements HostStreamHandlers {
  events: string[] = [];
  /** Copies of the data chunks (a chunk is valid only during the call). */
  chunks: Buffer[] = [];
  received = 0;
  /** Called inside `data`, with the borrowed chunk. */
  onData: ((chunk: Uint8Array) => void) | undefined;

  data(chunk: Uint8Array, owned: boolean): void {
    expect(owned).to.equal(false);
    this.events.push("data");
    this.chunks.push(Buffer.from(chunk));
    this.received += chunk.length;
    this.onData?.(chunk);
  }
  end(): void {
    this.events.push("end");
  }
  drain(): void {
    this.events.push("drain");
  }
  error(code: string): void {
    this.events.push(`error:${code}`);
  }
  close(hadError: boolean): void {
    this.events.push(`close:${hadError}`);
  }

  count(e: string): number {
    return this.events.filter((x) => x === e).length;
  }
  /** The events other than "data" and "drain". */
  get state(): string[] {
    return this.events.filter((x) => x !== "data" && x !== "drain");
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** The server side of one accepted connection. */
class Peer {
  chunks: Buffer[] = [];
  received = 0;
  ended = false;
  closed = false;
  error: string | undefined;
  /** Bytes received when 'end' came. */
  receivedAtEnd = -1;

  constructor(readonly sock: Socket) {
    sock.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.received += d.length;
    });
    sock.on("end", () => {
      this.ended = true;
      this.receivedAtEnd = this.received;
    });
    sock.on("error", (e: NodeJS.ErrnoException) => (this.error = e.code));
    sock.on("close", () => (this.closed = true));
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** A loopback server (allowHalfOpen) keeping its accepted connections in order. */
class TestServer {
  readonly peers: Peer[] = [];
  port = 0;

  private constructor(readonly server: Server) {}

  static async open(onPeer?: (p: Peer) => void): Promise<TestServer> {
    const t: TestServer = new TestServer(
      createServer({ allowHalfOpen: true }, (sock) => {
        const p = new Peer(sock);
        t.peers.push(p);
        onPeer?.(p);
      }),
    );
    await new Promise<void>((r) => t.server.listen(0, "127.0.0.1", r));
    t.port = (t.server.address() as { port: number }).port;
    servers.push(t);
    return t;
  }

  async peer(i = 0): Promise<Peer> {
    await until(() => this.peers.length > i, 5000, `accepted connection ${i}`);
    return this.peers[i];
  }

  close(): void {
    for (const p of this.peers) p.sock.destroy();
    this.server.close();
  }
}

let group: NativeStreamGroup;
const servers: TestServer[] = [];
const streams: NativeStream[] = [];

/**
 * Wait until the stream has reported `want` (its events other than data and drain), give
 * extra reports time to show, then check them and that the stream is closed once it says so.
 */
async function reported(d: { s: NativeStream; rec: Recorder }, want: string[], ms = 5000): Promise<void> {
  await until(() => d.rec.state.length >= want.length, ms, want.join(", "));
  await sleep(20);
  expect(d.rec.state).to.deep.equal(want);
  expect(d.s.destroyed, "destroyed").to.equal(want.some((e) => e.startsWith("close:")));
}

/** Connect to the loopback `port` with a fresh recorder attached. */
function dial(port: number, ip = LOOPBACK) {
  const rec = new Recorder();
  let returned = false;
  let calledSync = false;
  let settle!: (err: string | undefined) => void;
  const done = new Promise<string | undefined>((r) => (settle = r));
  const s = group.connect(ip, port, (err) => {
    calledSync = !returned;
    settle(err);
  });
  returned = true;
  s.attach(rec);
  streams.push(s);
  return { s, rec, done, calledSync: () => calledSync };
}

/** Connect and wait until connected, and for the server's side of it. */
async function connected(srv: TestServer, i = 0) {
  const d = dial(srv.port);
  expect(await d.done).to.equal(undefined);
  return { ...d, peer: await srv.peer(i) };
}

/**
 * The loop idles: this process uses little CPU over 1 s of waiting (a socket reported to the
 * poll handle again and again would take a whole core). A second, not 300 ms: a garbage
 * collection of the whole suite's heap in the window is not mistaken for a busy loop.
 */
async function expectIdleLoop(): Promise<void> {
  await sleep(20);
  const t0 = process.cpuUsage();
  await sleep(1000);
  const d = process.cpuUsage(t0);
  expect((d.user + d.system) / 1000, "CPU ms used over 1 s of waiting").to.be.lessThan(250);
}

/** Write `chunkSize` random chunks until `write` returns false; returns what was written (originals). */
function fillUntilBlocked(s: NativeStream, chunkSize: number, limit = 256 * 1024 * 1024): Buffer[] {
  const sent: Buffer[] = [];
  let total = 0;
  for (;;) {
    const b = randomBytes(chunkSize);
    sent.push(Buffer.from(b));
    total += b.length;
    const ok = s.write(b);
    b.fill(0xee); // write is done with b when it returns
    if (!ok) return sent;
    if (total > limit) throw new Error(`write never returned false in ${limit} bytes`);
  }
}

describe("socket-translate/native-stream: host TCP sockets of the addon's epoll set", function () {
  let sizeBefore = 0;

  before(function () {
    const g = nativeStreams();
    if (g === undefined) {
      console.log(`    skipped: the addon's host sockets are unavailable: ${nativeStreamsUnavailable()}`);
      this.skip();
    }
    group = g;
    sizeBefore = g.size;
  });

  afterEach(() => {
    for (const s of streams.splice(0)) if (!s.destroyed) s.destroy();
    for (const t of servers.splice(0)) t.close();
  });

  after(function () {
    if (group !== undefined) expect(group.size, "streams left open").to.equal(sizeBefore);
  });

  describe("connect", () => {
    it("reports done(undefined) after the call returns; the group counts the open socket", async () => {
      const srv = await TestServer.open();
      const before = group.size;
      const d = dial(srv.port);
      expect(d.s.fd).to.be.greaterThan(-1);
      expect(d.s.destroyed).to.equal(false);
      expect(group.size).to.equal(before + 1);
      expect(await d.done).to.equal(undefined);
      expect(d.calledSync(), "done called synchronously").to.equal(false);
      await srv.peer();
      expect(d.rec.events).to.deep.equal([]);
      d.s.destroy();
      expect(group.size).to.equal(before);
    });

    it("to a closed port: done('ECONNREFUSED'), not synchronously, and the stream is destroyed", async () => {
      const srv = await TestServer.open();
      const port = srv.port;
      await new Promise<void>((r) => srv.server.close(() => r()));
      const before = group.size;
      const d = dial(port);
      expect(await d.done).to.equal("ECONNREFUSED");
      expect(d.calledSync(), "done called synchronously").to.equal(false);
      expect(d.s.destroyed).to.equal(true);
      expect(group.size).to.equal(before);
      await sleep(20);
      expect(d.rec.events, "no handler after a failed connect").to.deep.equal([]);
      expect(d.s.write(Uint8Array.of(1)), "write after the failure").to.equal(false);
    });

    it("an error connect() gives at once (ENETUNREACH for 255.255.255.255) is still reported later", async () => {
      const before = group.size;
      const d = dial(80, 0xffffffff);
      expect(d.s.destroyed).to.equal(true);
      expect(group.size).to.equal(before);
      expect(await d.done).to.equal("ENETUNREACH");
      expect(d.calledSync(), "done called synchronously").to.equal(false);
      expect(d.rec.events).to.deep.equal([]);
    });
  });

  describe("data", () => {
    it("writes reach the server exactly; the server's bytes arrive through data(), copied by the test", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      const out = Buffer.concat([Buffer.from("hello, host\n"), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
      expect(s.write(out)).to.equal(true);
      expect(s.queuedBytes).to.equal(0);
      await until(() => peer.received >= out.length, 5000, "bytes at the server");
      await sleep(20);
      expect(peer.bytes.equals(out)).to.equal(true);

      const back = [Buffer.from("first "), Buffer.from([0, 255, 13, 10]), randomBytes(100_000)];
      for (const b of back) peer.sock.write(b);
      const want = Buffer.concat(back);
      await until(() => rec.received >= want.length, 5000, "bytes from the server");
      await sleep(20);
      expect(rec.bytes.equals(want)).to.equal(true);
      expect(rec.state).to.deep.equal([]);
    });

    it("moves 20 MB each way intact (SHA-256); write returns false, queues a copy, and drain follows", async function () {
      this.timeout(60_000);
      const TOTAL = 20 * 1024 * 1024;
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.pause(); // the server reads nothing until the client's writes back up

      // Server → client, with Node's backpressure.
      const down: Buffer[] = [];
      const serverSends = (async () => {
        for (let sent = 0; sent < TOTAL; ) {
          const b = randomBytes(Math.min(TOTAL - sent, 1 << 20));
          down.push(b);
          sent += b.length;
          if (!peer.sock.write(b)) await new Promise((r) => peer.sock.once("drain", r));
        }
        peer.sock.end();
      })();

      // Client → server: sizes that do not line up with anything, each buffer overwritten as
      // soon as write returns (write copies what the kernel did not take).
      const up: Buffer[] = [];
      const sizes = [1, 65_536, 300_001, 4096, 1_000_003, 17];
      let blocked = 0;
      let maxQueued = 0;
      let sent = 0;
      const writeOne = (n: number): boolean => {
        const b = randomBytes(n);
        up.push(Buffer.from(b));
        sent += n;
        const ok = s.write(b);
        b.fill(0xee);
        return ok;
      };
      for (let i = 0; sent < TOTAL; i++) {
        if (writeOne(Math.min(TOTAL - sent, sizes[i % sizes.length]))) continue;
        blocked++;
        maxQueued = Math.max(maxQueued, s.queuedBytes);
        const drains = rec.count("drain");
        if (blocked === 1) {
          expect(s.queuedBytes, "queued after the first false").to.be.greaterThan(0);
          // More writes while blocked are queued behind (and copied) too.
          const q = s.queuedBytes;
          expect(writeOne(Math.min(TOTAL - sent, 123_457))).to.equal(false);
          expect(s.queuedBytes).to.be.greaterThan(q);
          await sleep(50);
          expect(rec.count("drain"), "drain before the server read anything").to.equal(drains);
          peer.sock.resume();
        }
        await until(() => rec.count("drain") > drains, 20_000, "drain");
        expect(s.queuedBytes, "queued at drain").to.equal(0);
      }
      s.end();
      await serverSends;
      await reported({ s, rec }, ["end", "close:false"], 30_000);
      // The client's close does not wait for the server to have read everything its kernel holds.
      await until(() => peer.receivedAtEnd >= 0, 30_000, "the server's end of stream");

      expect(blocked, "write returned false").to.be.greaterThan(0);
      expect(maxQueued).to.be.greaterThan(0);
      expect(peer.received).to.equal(TOTAL);
      expect(peer.receivedAtEnd).to.equal(TOTAL);
      expect(sha256(peer.chunks), "client → server").to.equal(sha256(up));
      expect(rec.received).to.equal(TOTAL);
      expect(sha256(rec.chunks), "server → client").to.equal(sha256(down));
    });
  });

  describe("half-close", () => {
    it("our end() gives the server 'end' while it can still send; its end gives end(), then close(false) once", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.write(Buffer.from("request"));
      s.end();
      await until(() => peer.ended, 5000, "server 'end'");
      expect(peer.bytes.toString()).to.equal("request");
      expect(s.write(Buffer.from("late")), "write after end()").to.equal(false);

      peer.sock.write("response after your FIN");
      await until(() => rec.received === 23, 5000, "response");
      await sleep(50);
      expect(rec.state).to.deep.equal([]);
      expect(s.destroyed).to.equal(false);

      peer.sock.end();
      await reported({ s, rec }, ["end", "close:false"]);
      expect(rec.bytes.toString()).to.equal("response after your FIN");
      expect(peer.bytes.toString(), "nothing written after end()").to.equal("request");
    });

    it("the server's end first: end(), we can still write, then our end() closes with close(false) once", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.end("bye");
      await reported({ s, rec }, ["end"]);
      expect(rec.bytes.toString()).to.equal("bye");

      expect(s.write(Buffer.from("still talking"))).to.equal(true);
      await until(() => peer.received === 13, 5000, "bytes after the server's FIN");
      s.end();
      await reported({ s, rec }, ["end", "close:false"]);
      await until(() => peer.ended, 5000, "server 'end'");
      expect(peer.bytes.toString()).to.equal("still talking");
      expect(peer.error).to.equal(undefined);
    });

    it("end() before the connection is up: the connect goes on and the FIN follows it", async () => {
      const srv = await TestServer.open();
      const d = dial(srv.port);
      d.s.end(); // shutdown() now would abandon a connect in progress
      expect(await d.done).to.equal(undefined);
      const peer = await srv.peer();
      await until(() => peer.ended, 5000, "server 'end'");
      peer.sock.end("answer");
      await reported(d, ["end", "close:false"]);
      expect(d.rec.bytes.toString()).to.equal("answer");
    });

    it("end() while bytes are queued sends the FIN only after all of them", async function () {
      this.timeout(30_000);
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.pause();
      const sent = fillUntilBlocked(s, 256 * 1024);
      const tail = randomBytes(333_333);
      sent.push(Buffer.from(tail));
      expect(s.write(tail)).to.equal(false);
      tail.fill(0);
      const queued = s.queuedBytes;
      expect(queued).to.be.greaterThan(tail.length - 1);
      s.end();
      expect(s.queuedBytes, "end() drops nothing").to.equal(queued);
      await sleep(100);
      expect(peer.ended).to.equal(false);
      peer.sock.resume();
      await until(() => peer.ended, 20_000, "server 'end'");
      const total = sent.reduce((n, b) => n + b.length, 0);
      expect(peer.receivedAtEnd, "bytes before the FIN").to.equal(total);
      expect(sha256(peer.chunks)).to.equal(sha256(sent));
      expect(s.queuedBytes).to.equal(0);
      peer.sock.end();
      await reported({ s, rec }, ["end", "close:false"]);
    });
  });

  describe("reset and destroy", () => {
    it("reset() gives the server ECONNRESET and no handler is called afterwards", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.write(Buffer.from("x"));
      await until(() => peer.received === 1, 5000, "byte at the server");
      const before = group.size;
      s.reset();
      expect(s.destroyed).to.equal(true);
      expect(group.size).to.equal(before - 1);
      await until(() => peer.closed, 5000, "server close");
      expect(peer.error).to.equal("ECONNRESET");
      await sleep(50);
      expect(rec.events).to.deep.equal([]);
      expect(s.write(Buffer.from("y"))).to.equal(false);
      s.end();
      s.pause();
      s.resume();
      s.reset();
      s.destroy();
    });

    it("destroy() closes quietly: the server sees a FIN, no error, and no handler is called", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.destroy();
      expect(s.destroyed).to.equal(true);
      await until(() => peer.ended, 5000, "server 'end'");
      peer.sock.end();
      await until(() => peer.closed, 5000, "server close");
      await sleep(20);
      expect(peer.error).to.equal(undefined);
      expect(rec.events).to.deep.equal([]);
    });

    it("after destroy() or reset() in the middle of a stream of data, no handler is called", async () => {
      const srv = await TestServer.open();
      for (const how of ["destroy", "reset"] as const) {
        const { s, rec, peer } = await connected(srv, how === "destroy" ? 0 : 1);
        const timer = setInterval(() => {
          if (!peer.sock.destroyed) peer.sock.write(randomBytes(8192));
        }, 1);
        let calls = 0;
        rec.onData = () => {
          if (++calls === 3) s[how]();
        };
        await until(() => calls >= 3, 5000, "three data calls");
        const seen = rec.events.length;
        await sleep(150);
        clearInterval(timer);
        peer.sock.end();
        await sleep(50);
        expect(rec.events.length, `events after ${how}()`).to.equal(seen);
        expect(rec.state).to.deep.equal([]);
        expect(s.destroyed).to.equal(true);
      }
    });

    it("a stream closed during a batch gets none of that batch's later records, even when a new connect reuses its fd", async () => {
      const srv = await TestServer.open();
      const a = await connected(srv, 0);
      const b = await connected(srv, 1);
      // Watch the batches: fds with records in each.
      const g = group as unknown as { dispatch(n: number): void; records: Int32Array };
      const dispatch = g.dispatch;
      const batches: number[][] = [];
      g.dispatch = function (this: typeof g, n: number) {
        const fds: number[] = [];
        for (let i = 0; i < n; i++) fds.push(this.records[6 * i]); // 6 int32 per record
        batches.push(fds);
        dispatch.call(this, n);
      };
      try {
        let replacement: ReturnType<typeof dial> | undefined;
        let victim: NativeStream | undefined;
        const onFirst = (other: NativeStream) => () => {
          if (replacement !== undefined) return;
          victim = other;
          other.destroy();
          replacement = dial(srv.port);
        };
        a.rec.onData = onFirst(b.s);
        b.rec.onData = onFirst(a.s);
        // Both sockets become readable in the same tick: one batch.
        a.peer.sock.write("to a");
        b.peer.sock.write("to b");
        await until(() => replacement !== undefined, 5000, "first data");
        const victimFd = victim!.fd;
        const inOneBatch = batches.some((fds) => fds.includes(a.s.fd) && fds.includes(b.s.fd));
        expect(inOneBatch, "precondition: both sockets in one batch").to.equal(true);
        expect(replacement!.s.fd, "precondition: the new socket reuses the closed fd").to.equal(victimFd);
        expect(await replacement!.done).to.equal(undefined);
        expect(replacement!.rec.events, "stale records given to the new stream").to.deep.equal([]);
        const victimRec = victim === a.s ? a.rec : b.rec;
        expect(victimRec.events).to.deep.equal([]);
        // The new stream works.
        const p = await srv.peer(2);
        p.sock.write("fresh");
        await until(() => replacement!.rec.received === 5, 5000, "data on the new stream");
        expect(replacement!.rec.bytes.toString()).to.equal("fresh");
      } finally {
        g.dispatch = dispatch;
      }
    });
  });

  describe("pause and resume", () => {
    it("while paused nothing is delivered though the server keeps sending; resume() delivers it all in order", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.pause();
      expect(s.paused).to.equal(true);
      const sent: Buffer[] = [];
      let i = 0;
      const timer = setInterval(() => {
        const b = Buffer.from(`message ${i++};`.repeat(20));
        sent.push(b);
        peer.sock.write(b);
      }, 5);
      // Some 40 messages (a count, not a time: a loaded machine runs fewer timers in 200 ms).
      await until(() => i >= 40, 10_000, "40 messages sent");
      clearInterval(timer);
      const big = randomBytes(300_000);
      sent.push(big);
      peer.sock.write(big);
      await sleep(30);
      expect(rec.events, "delivered while paused").to.deep.equal([]);
      expect(s.paused).to.equal(true);

      s.resume();
      expect(s.paused).to.equal(false);
      const want = Buffer.concat(sent);
      await until(() => rec.received >= want.length, 5000, "everything after resume");
      expect(rec.bytes.equals(want)).to.equal(true);
      expect(rec.state).to.deep.equal([]);
    });

    it("pause() inside data() stops delivery after that chunk", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      rec.onData = () => s.pause();
      const want = randomBytes(2 * 1024 * 1024);
      peer.sock.write(want);
      await until(() => rec.received > 0, 5000, "first chunk");
      await sleep(200);
      expect(rec.count("data")).to.equal(1);
      rec.onData = undefined;
      s.resume();
      await until(() => rec.received === want.length, 5000, "the rest");
      expect(rec.bytes.equals(want)).to.equal(true);
    });

    it("pause() and resume() before the connection is up: paused from the start", async () => {
      const srv = await TestServer.open();
      const d = dial(srv.port);
      d.s.pause();
      expect(await d.done).to.equal(undefined);
      const peer = await srv.peer();
      peer.sock.write("held");
      await sleep(100);
      expect(d.rec.events).to.deep.equal([]);
      d.s.resume();
      await until(() => d.rec.received === 4, 5000, "data after resume");
      expect(d.rec.bytes.toString()).to.equal("held");
    });
  });

  describe("the server goes away", () => {
    it("server reset: error('ECONNRESET') then close(true), once each", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.resetAndDestroy();
      await reported({ s, rec }, ["error:ECONNRESET", "close:true"]);
    });

    it("paused while the server sends and ends: no busy loop; after resume the data, end(), and close on our end()", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.pause();
      peer.sock.end("last words");
      await until(() => peer.sock.writableFinished, 5000, "server FIN sent");
      await expectIdleLoop();
      expect(rec.events).to.deep.equal([]);
      s.resume();
      await reported({ s, rec }, ["end"]);
      expect(rec.bytes.toString()).to.equal("last words");
      s.end();
      await reported({ s, rec }, ["end", "close:false"]);
    });

    it("paused after our end() while the server ends (both FINs: a hang-up): no busy loop; resume reports it", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.pause();
      s.end();
      await until(() => peer.ended, 5000, "server 'end'");
      peer.sock.end("closing too");
      await until(() => peer.closed, 5000, "server close");
      await expectIdleLoop();
      expect(rec.events).to.deep.equal([]);
      expect(s.destroyed).to.equal(false);
      s.resume();
      await reported({ s, rec }, ["end", "close:false"]);
      expect(rec.bytes.toString()).to.equal("closing too");
    });

    it("paused while the server resets: no busy loop; resume reports error and close(true)", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      s.pause();
      peer.sock.resetAndDestroy();
      await until(() => peer.closed, 5000, "server close");
      await expectIdleLoop();
      expect(rec.events).to.deep.equal([]);
      s.resume();
      await reported({ s, rec }, ["error:ECONNRESET", "close:true"]);
    });

    it("after the server's end, its reset does not spin the loop; our next write reports it", async () => {
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.end();
      await reported({ s, rec }, ["end"]);
      peer.sock.resetAndDestroy();
      await until(() => peer.closed, 5000, "server close");
      await expectIdleLoop();
      expect(rec.state).to.deep.equal(["end"]);
      expect(s.write(Buffer.from("anyone there?"))).to.equal(false);
      // A reset in CLOSE_WAIT is EPIPE to the socket (Linux tcp_reset).
      await reported({ s, rec }, ["end", "error:EPIPE", "close:true"]);
    });

    it("paused with writes queued while the server resets: no busy loop, and the stream reports the reset", async function () {
      this.timeout(30_000);
      const srv = await TestServer.open();
      const { s, rec, peer } = await connected(srv);
      peer.sock.pause();
      fillUntilBlocked(s, 256 * 1024);
      expect(s.queuedBytes).to.be.greaterThan(0);
      s.pause();
      peer.sock.resetAndDestroy();
      await until(() => peer.closed, 5000, "server close");
      await expectIdleLoop();
      s.resume();
      await reported({ s, rec }, ["error:ECONNRESET", "close:true"]);
    });
  });

  it("200 streams at once through an echo server, each with its own bytes, all intact; size back after", async function () {
    this.timeout(60_000);
    const N = 200;
    const srv = await TestServer.open((p) => {
      p.sock.on("data", (d: Buffer) => p.sock.write(d));
      p.sock.on("end", () => p.sock.end());
    });
    const before = group.size;
    const dials = Array.from({ length: N }, () => dial(srv.port));
    expect(group.size).to.equal(before + N);
    const errs = await Promise.all(dials.map((d) => d.done));
    expect(errs.filter((e) => e !== undefined)).to.deep.equal([]);
    const sent = dials.map((d, i) => {
      // Distinct per stream: its index up front, then random bytes of a size of its own.
      const b = Buffer.concat([Buffer.from(`stream ${i}:`), randomBytes(1000 + ((i * 7919) % 60_000))]);
      const cut = Math.floor(b.length / 3);
      d.s.write(b.subarray(0, cut));
      d.s.write(b.subarray(cut));
      d.s.end();
      return b;
    });
    await until(() => dials.every((d) => d.rec.state.length >= 2), 30_000, "all streams closed");
    dials.forEach((d, i) => {
      expect(d.rec.state, `stream ${i}`).to.deep.equal(["end", "close:false"]);
      expect(d.rec.bytes.equals(sent[i]), `stream ${i} echo`).to.equal(true);
      expect(d.s.destroyed).to.equal(true);
    });
    expect(group.size).to.equal(before);
    expect(srv.peers).to.have.length(N);
  });

  describe("UDP sockets of the set", () => {
    it("send to a loopback echo server; replies arrive with their source, a 60000-byte datagram whole; close frees the fd", async () => {
      const echo = createSocket("udp4");
      echo.on("message", (m, r) => echo.send(m, r.port, r.address));
      await new Promise<void>((r) => echo.bind(0, "127.0.0.1", () => r()));
      const port = echo.address().port;
      const got: Array<{ bytes: Buffer; ip: number; port: number }> = [];
      const before = group.size;
      const u = group.openUdp((bytes, ip, p) => got.push({ bytes: Buffer.from(bytes), ip, port: p }));
      expect(typeof u).to.not.equal("string");
      const sock = u as Exclude<typeof u, string>;
      expect(group.size).to.equal(before + 1);
      // In small groups: the echo server is in this process and cannot read while we send, so a
      // burst larger than its receive buffer would be dropped by the kernel.
      const sent = [Buffer.from("hello"), randomBytes(60_000), ...Array.from({ length: 100 }, (_, i) => Buffer.from(`datagram ${i}`))];
      for (let i = 0; i < sent.length; i += 10) {
        for (const b of sent.slice(i, i + 10)) expect(sock.send(b, LOOPBACK, port)).to.equal(b.length);
        await until(() => got.length >= Math.min(i + 10, sent.length), 5000, `echoes of datagrams ${i}..${i + 9} (got ${got.length})`);
      }
      got.forEach((g, i) => {
        expect(g.bytes.equals(sent[i]), `datagram ${i}`).to.equal(true);
        expect(g.ip).to.equal(LOOPBACK);
        expect(g.port).to.equal(port);
      });
      sock.close();
      expect(group.size).to.equal(before);
      expect(sock.send(Buffer.from("late"), LOOPBACK, port)).to.be.lessThan(0);
      echo.close();
    });

    it("a send to port 0 reports -errno instead of throwing", () => {
      const u = group.openUdp(() => {});
      const sock = u as Exclude<typeof u, string>;
      const n = sock.send(Buffer.from("x"), LOOPBACK, 0);
      sock.close();
      expect(n).to.be.lessThan(0);
    });
  });
});
