/**
 * UDP GSO batches of guests' datagrams (`src/socket-translate/udp-send-batch.ts`): which
 * datagrams share a sendmsg() (one socket, one destination, one size, the last shorter), when a
 * run is sent (end of task, segment limit, another socket or destination, before a direct send
 * or a close), the fallbacks (no UDP GSO, other errors) and the failures reported; then through
 * the addon against a real loopback receiver, which must get every datagram whole and in order.
 * The addon part is skipped, with the reason printed, when the addon is not built.
 */
import { expect } from "chai";
import { constants } from "node:os";
import { createSocket } from "node:dgram";
import { randomBytes } from "node:crypto";
import { UdpSendBatch, type BatchSocket } from "../../src/socket-translate/udp-send-batch.js";
import { nativeStreams, nativeStreamsUnavailable } from "../../src/socket-translate/native-stream.js";
import { errnoName } from "../../src/native/addon.js";
import { until } from "../support/wait.js";

const LOOPBACK = 0x7f000001;
const tick = () => new Promise<void>((r) => setImmediate(r));

interface Call {
  fd: number;
  bytes: Buffer;
  ip: number;
  port: number;
  size?: number;
}

function fakeAddon(segmentsResult: (c: Call) => number = (c) => c.bytes.length) {
  const calls: Call[] = [];
  return {
    calls,
    udpSendTo(fd: number, bytes: Uint8Array, ip: number, port: number): number {
      calls.push({ fd, bytes: Buffer.from(bytes), ip, port });
      return bytes.length;
    },
    udpSendSegments(fd: number, bytes: Uint8Array, ip: number, port: number, size: number): number {
      const c = { fd, bytes: Buffer.from(bytes), ip, port, size };
      calls.push(c);
      return segmentsResult(c);
    },
  };
}

function sock(fd: number): BatchSocket & { failures: Array<[string, number]> } {
  const failures: Array<[string, number]> = [];
  return { fd, failures, sendFailed: (code, n) => failures.push([code, n]) };
}

const dgram = (n: number, fill: number) => Buffer.alloc(n, fill);

describe("socket-translate/udp-send-batch: UDP GSO batches", () => {
  it("a run of one socket to one destination, equal sizes and a shorter last, is one sendmsg() at the end of the task", async () => {
    const a = fakeAddon();
    const b = new UdpSendBatch(a);
    const s = sock(7);
    const sent = [dgram(1400, 1), dgram(1400, 2), dgram(1400, 3), dgram(500, 4)];
    for (const d of sent) b.add(s, d, LOOPBACK, 5000);
    expect(a.calls, "the shorter datagram ends the run").to.have.length(1);
    expect(a.calls[0]).to.deep.include({ fd: 7, ip: LOOPBACK, port: 5000, size: 1400 });
    expect(a.calls[0].bytes.equals(Buffer.concat(sent))).to.equal(true);
    b.add(s, dgram(1400, 5), LOOPBACK, 5000);
    b.add(s, dgram(1400, 6), LOOPBACK, 5000);
    expect(a.calls, "staged until the task ends").to.have.length(1);
    await tick();
    expect(a.calls).to.have.length(2);
    expect(a.calls[1].size).to.equal(1400);
    expect(a.calls[1].bytes.equals(Buffer.concat([dgram(1400, 5), dgram(1400, 6)]))).to.equal(true);
    expect(b.counters).to.deep.include({ batches: 2, batchedDatagrams: 6 });
    expect(s.failures).to.deep.equal([]);
  });

  it("another socket, destination or a larger datagram starts a new run; a lone datagram is a plain sendto()", async () => {
    const a = fakeAddon();
    const b = new UdpSendBatch(a);
    const s1 = sock(7);
    const s2 = sock(8);
    b.add(s1, dgram(100, 1), LOOPBACK, 5000);
    b.add(s1, dgram(100, 2), LOOPBACK, 5000);
    b.add(s2, dgram(100, 3), LOOPBACK, 5000); // other socket
    b.add(s2, dgram(100, 4), LOOPBACK, 5001); // other port
    b.add(s2, dgram(100, 5), LOOPBACK + 1, 5001); // other address
    b.add(s2, dgram(200, 6), LOOPBACK + 1, 5001); // larger
    await tick();
    expect(a.calls.map((c) => [c.fd, c.ip - LOOPBACK, c.port, c.size, c.bytes.length])).to.deep.equal([
      [7, 0, 5000, 100, 200],
      [8, 0, 5000, undefined, 100],
      [8, 0, 5001, undefined, 100],
      [8, 1, 5001, undefined, 100],
      [8, 1, 5001, undefined, 200],
    ]);
  });

  it("at most maxSegments datagrams and 65507 bytes per sendmsg(); an empty or a large datagram goes alone, in order", async () => {
    const a = fakeAddon();
    const b = new UdpSendBatch(a, 3);
    const s = sock(7);
    for (let i = 0; i < 7; i++) b.add(s, dgram(10, i), LOOPBACK, 5000);
    await tick();
    expect(a.calls.map((c) => c.bytes.length)).to.deep.equal([30, 30, 10]);
    a.calls.length = 0;
    const big = new UdpSendBatch(a);
    for (let i = 0; i < 3; i++) big.add(s, dgram(30_000, i), LOOPBACK, 5000);
    await tick();
    expect(a.calls.map((c) => [c.bytes.length, c.size]), "two of 30000 fit, not three").to.deep.equal([
      [60_000, 30_000],
      [30_000, undefined],
    ]);
    a.calls.length = 0;
    big.add(s, dgram(10, 1), LOOPBACK, 5000);
    big.add(s, dgram(0, 0), LOOPBACK, 5000);
    big.add(s, dgram(40_000, 2), LOOPBACK, 5000);
    expect(a.calls.map((c) => [c.bytes.length, c.size])).to.deep.equal([
      [10, undefined],
      [0, undefined],
      [40_000, undefined],
    ]);
    expect(() => new UdpSendBatch(a, 0)).to.throw(RangeError);
  });

  it("flushSocket sends that socket's run only", () => {
    const a = fakeAddon();
    const b = new UdpSendBatch(a);
    const s1 = sock(7);
    b.add(s1, dgram(10, 1), LOOPBACK, 5000);
    b.flushSocket(sock(8));
    expect(a.calls).to.have.length(0);
    b.flushSocket(s1);
    expect(a.calls).to.have.length(1);
  });

  it("without UDP GSO (ENOPROTOOPT) the run goes one sendto() each and batching stops; EIO resends that run singly; EAGAIN drops it, reported once", async () => {
    const a = fakeAddon(() => -constants.errno.ENOPROTOOPT);
    const b = new UdpSendBatch(a);
    const s = sock(7);
    for (let i = 0; i < 3; i++) b.add(s, dgram(100, i), LOOPBACK, 5000);
    await tick();
    expect(a.calls.map((c) => c.size ?? "sendto")).to.deep.equal([100, "sendto", "sendto", "sendto"]);
    expect(a.calls.slice(1).map((c) => c.bytes[0])).to.deep.equal([0, 1, 2]);
    expect(b.enabled).to.equal(false);
    a.calls.length = 0;
    for (let i = 0; i < 2; i++) b.add(s, dgram(100, i), LOOPBACK, 5000);
    expect(a.calls.map((c) => c.size ?? "sendto"), "sent at once, unbatched").to.deep.equal(["sendto", "sendto"]);

    const eio = fakeAddon(() => -constants.errno.EIO);
    const b2 = new UdpSendBatch(eio);
    for (let i = 0; i < 2; i++) b2.add(s, dgram(100, i), LOOPBACK, 5000);
    await tick();
    expect(eio.calls.map((c) => c.size ?? "sendto")).to.deep.equal([100, "sendto", "sendto"]);
    expect(b2.enabled).to.equal(true);

    const full = fakeAddon(() => -constants.errno.EAGAIN);
    const b3 = new UdpSendBatch(full);
    for (let i = 0; i < 5; i++) b3.add(s, dgram(100, i), LOOPBACK, 5000);
    await tick();
    expect(full.calls).to.have.length(1);
    expect(s.failures).to.deep.equal([[errnoName(constants.errno.EAGAIN), 5]]);
  });

  describe("through the addon (UDP_SEGMENT) to a loopback receiver", function () {
    before(function () {
      if (nativeStreams() === undefined) {
        console.log(`    skipped: ${nativeStreamsUnavailable()}`);
        this.skip();
      }
    });

    it("every datagram arrives whole, in order, with batches counted; a send after close is a reported EBADF", async () => {
      const group = nativeStreams()!;
      const rx = createSocket({ type: "udp4", recvBufferSize: 4 << 20 });
      const got: Buffer[] = [];
      rx.on("message", (m) => got.push(m));
      await new Promise<void>((r) => rx.bind(0, "127.0.0.1", () => r()));
      const port = rx.address().port;
      const failures: Array<[string, number]> = [];
      const u = group.openUdp(() => {}, (code, n) => failures.push([code, n]));
      expect(typeof u).to.not.equal("string");
      const s = u as Exclude<typeof u, string>;
      const before = { ...group.udpBatch.counters };
      // 100 of 1400 bytes (three runs: 46 of them fill a batch's 65507 bytes), one of 700 ending the third, one of 1400 after it alone.
      const sent = [...Array.from({ length: 100 }, () => randomBytes(1400)), randomBytes(700), randomBytes(1400)];
      for (const d of sent) s.sendBatched(d, LOOPBACK, port);
      await until(() => got.length >= sent.length, 5000, `${sent.length} datagrams (got ${got.length})`);
      expect(got.map((g) => g.length)).to.deep.equal(sent.map((d) => d.length));
      got.forEach((g, i) => expect(g.equals(sent[i]), `datagram ${i}`).to.equal(true));
      if (group.udpBatch.enabled) {
        expect(group.udpBatch.counters.batches - before.batches).to.equal(3);
        expect(group.udpBatch.counters.batchedDatagrams - before.batchedDatagrams).to.equal(101);
      } else {
        console.log("    note: this kernel has no UDP GSO; the datagrams went one sendto() each");
      }
      s.close();
      s.sendBatched(Buffer.from("late"), LOOPBACK, port);
      expect(failures).to.deep.equal([["EBADF", 1]]);
      rx.close();
    });
  });
});
