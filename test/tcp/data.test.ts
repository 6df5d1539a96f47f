/**
 * The data path, exact segments: receiving (in order, duplicates, overlap, window trimming,
 * out-of-order with SACK, reassembly bounds, zero window, window updates), delayed ACK, and
 * sending (segmentation, PSH, the send buffer, the send window, silly window avoidance, Nagle,
 * the initial window and slow start).
 *
 * Read first: RFC 9293 §3.8.6 (window management, SWS avoidance, delayed ACK), §3.10.7.4
 * ("first, check sequence number", "seventh, process the segment text"), §3.7.4 (Nagle);
 * RFC 1122 §4.2.2.2 (PSH), §4.2.3.4; RFC 5681 §3.1, §4.2; RFC 6928 §2; RFC 2018 §4.
 */
import { expect } from "chai";
import fc from "fast-check";
import { TcpEvent } from "../../src/tcp/state.js";
import { seqAdd, seqGe } from "../../src/tcp/seq.js";
import {
  ACK,
  PSH,
  RECV,
  SEND,
  drain,
  established,
  openPassive,
  ourData,
  ourSeq,
  pattern,
  peerAck,
  peerSeq,
  recv,
  recvNothing,
  send,
  tsOpt,
  type Seg,
} from "./harness.js";

/** The peer's data segment: `data` at its byte offset `off`, acknowledging our byte `ourAck`. */
function peerData(off: number, data: Uint8Array, ourAck = 0, over: Partial<Seg> = {}): Seg {
  return { ...SEND, seq: peerSeq(off), ack: ourSeq(ourAck), payload: data, ...over };
}

/** Our pure ACK: we have sent `sent` bytes and received the peer's bytes up to `rcvd`. */
function ourAck(rcvd: number, window: number, sent = 0, over: Partial<Seg> = {}): Seg {
  return { ...RECV, seq: ourSeq(sent), ack: peerSeq(rcvd), window, ...over };
}

/** `n` full segments of 1460 bytes of `d` starting at byte `from`, none with PSH. */
function fullSegs(d: Uint8Array, from: number, n: number, mss = 1460): Seg[] {
  return Array.from({ length: n }, (_, i) => ourData(d, from + i * mss, from + (i + 1) * mss));
}

const SACK_CFG = { sack: true };
const SACK_SYN = { mss: 1460, sackPermitted: true };

describe("tcp/data: receiving in order (RFC 9293 §3.10.7.4)", () => {
  it("§3.10.7.4 seventh: in-order data is acknowledged, reported Readable, and read back exactly", () => {
    const c = established();
    const d = pattern(5, 65);
    send(c, 0, peerData(0, d));
    expect(c.takeEvents() & TcpEvent.Readable).to.equal(TcpEvent.Readable);
    // The right edge stays where the SYN-ACK put it (§3.8.6.2.2): 65535 - 5.
    recv(c, 0, [ourAck(5, 65530)]);
    expect(c.readable).to.equal(5);
    expect(c.read()).to.deep.equal(d);
    expect(c.read().length).to.equal(0);
  });

  it("read(max) returns at most max bytes, in order", () => {
    const c = established();
    const d = pattern(300);
    send(c, 0, peerData(0, d.subarray(0, 100)));
    send(c, 0, peerData(100, d.subarray(100)));
    expect(c.read(120)).to.deep.equal(d.subarray(0, 120));
    expect(c.read(1000)).to.deep.equal(d.subarray(120));
  });

  it("§3.10.7.4 first: data wholly before RCV.NXT is acknowledged, not delivered twice", () => {
    const c = established();
    const d = pattern(5);
    send(c, 0, peerData(0, d));
    recv(c, 0, [ourAck(5, 65530)]);
    c.read();
    c.takeEvents();
    send(c, 1, peerData(0, d));
    expect(c.takeEvents() & TcpEvent.Readable).to.equal(0);
    recv(c, 1, [ourAck(5, 65530)]);
    expect(c.readable).to.equal(0);
  });

  it("§3.10.7.4 first: a segment overlapping RCV.NXT delivers only its new bytes", () => {
    const c = established();
    const d = pattern(11);
    send(c, 0, peerData(0, d.subarray(0, 5)));
    recv(c, 0, [ourAck(5, 65530)]);
    send(c, 1, peerData(3, d.subarray(3)));
    recv(c, 1, [ourAck(11, 65524)]);
    expect(c.read()).to.deep.equal(d);
  });

  it("§3.10.7.4 first: data beyond the right window edge is trimmed off", () => {
    const c = established({ recvBufferSize: 3000 });
    const d = pattern(4380);
    send(c, 0, peerData(0, d.subarray(0, 1460)));
    recv(c, 0, [ourAck(1460, 1540)]);
    send(c, 0, peerData(1460, d.subarray(1460, 2920)));
    recv(c, 0, [ourAck(2920, 80)]);
    send(c, 0, peerData(2920, d.subarray(2920)));
    // Only the 80 bytes inside the window are kept; the window is now zero.
    recv(c, 0, [ourAck(3000, 0)]);
    expect(c.read()).to.deep.equal(d.subarray(0, 3000));
  });
});

describe("tcp/data: out-of-order data and SACK (RFC 5681 §4.2, RFC 2018 §4)", () => {
  it("RFC 5681 §4.2: out-of-order data is held, not readable, and answered by an immediate duplicate ACK with its SACK block", () => {
    const c = established(SACK_CFG, SACK_SYN);
    send(c, 0, peerData(1000, pattern(100)));
    expect(c.takeEvents() & TcpEvent.Readable).to.equal(0);
    expect(c.readable).to.equal(0);
    recv(c, 0, [ourAck(0, 65535, 0, { options: { sack: [[peerSeq(1000), peerSeq(1100)]] } })]);
  });

  it("RFC 2018 §4: blocks are reported most recent first, at most 4 without timestamps", () => {
    const c = established(SACK_CFG, SACK_SYN);
    const block = (k: number): [number, number] => [peerSeq(k * 1000), peerSeq(k * 1000 + 100)];
    const order = [1, 3, 2, 5, 4];
    const seen: number[] = [];
    for (const k of order) {
      send(c, 0, peerData(k * 1000, pattern(100)));
      seen.unshift(k);
      recv(c, 0, [ourAck(0, 65535, 0, { options: { sack: seen.slice(0, 4).map(block) } })]);
    }
  });

  it("RFC 2018 §4 / RFC 7323: with timestamps at most 3 blocks fit", () => {
    const c = openPassive({ sack: true, timestamps: true }, { ...SACK_SYN, ...tsOpt(1, 0) }, { third: { options: tsOpt(2, 0) } });
    for (const k of [1, 2, 3, 4]) {
      send(c, 0, peerData(k * 1000, pattern(100), 0, { options: tsOpt(3, 0) }));
      drain(c, 0);
    }
    send(c, 0, peerData(5000, pattern(100), 0, { options: tsOpt(3, 0) }));
    const blocks: Array<[number, number]> = [5, 4, 3].map((k) => [peerSeq(k * 1000), peerSeq(k * 1000 + 100)]);
    recv(c, 0, [ourAck(0, 65535, 0, { options: { ...tsOpt(0, 2), sack: blocks } })]);
  });

  it("RFC 2018 §4: the first block is the one holding the segment that triggered the ACK", () => {
    const c = established(SACK_CFG, SACK_SYN);
    send(c, 0, peerData(1000, pattern(100)));
    send(c, 0, peerData(3000, pattern(100)));
    drain(c, 0);
    // Extends the older block [1000, 1100) to [1000, 1200): it is reported first.
    send(c, 0, peerData(1100, pattern(100)));
    const sack: Array<[number, number]> = [
      [peerSeq(1000), peerSeq(1200)],
      [peerSeq(3000), peerSeq(3100)],
    ];
    recv(c, 0, [ourAck(0, 65535, 0, { options: { sack } })]);
  });

  it("RFC 5681 §4.2: the segment filling the hole delivers everything and is acknowledged at once (even with delayed ACK)", () => {
    const c = established({ delayedAckMs: 200 });
    const d = pattern(200);
    send(c, 10, peerData(100, d.subarray(100)));
    recv(c, 10, [ourAck(0, 65535)]);
    send(c, 20, peerData(0, d.subarray(0, 100)));
    expect(c.takeEvents() & TcpEvent.Readable).to.equal(TcpEvent.Readable);
    recv(c, 20, [ourAck(200, 65335)]);
    expect(c.read()).to.deep.equal(d);
  });

  it("maxReassemblySegments bounds the held ranges: a range beyond it is dropped", () => {
    const c = established({ maxReassemblySegments: 2 });
    const d = pattern(4000);
    for (const k of [1, 2, 3]) send(c, 0, peerData(k * 1000, d.subarray(k * 1000, k * 1000 + 100)));
    drain(c, 0);
    send(c, 1, peerData(0, d.subarray(0, 1000)));
    recv(c, 1, [ourAck(1100, 64435)]);
    send(c, 2, peerData(1100, d.subarray(1100, 2000)));
    // [2000, 2100) was held, [3000, 3100) was not.
    recv(c, 2, [ourAck(2100, 63435)]);
    expect(c.read()).to.deep.equal(d.subarray(0, 2100));
  });

  it("maxReassemblyBytes bounds the held bytes", () => {
    const c = established({ maxReassemblyBytes: 100 });
    const d = pattern(3000);
    send(c, 0, peerData(1000, d.subarray(1000, 1100)));
    send(c, 0, peerData(2000, d.subarray(2000, 2100)));
    drain(c, 0);
    expect(c.snapshot().reassemblyBytes).to.equal(100);
    send(c, 1, peerData(0, d.subarray(0, 1000)));
    recv(c, 1, [ourAck(1100, 64435)]);
  });
});

describe("tcp/data: zero window and window updates (RFC 9293 §3.8.6)", () => {
  it("§3.10.7.4 first: with a zero window, data at RCV.NXT is not accepted but its ACK is processed", () => {
    const c = established({ recvBufferSize: 2920 });
    const mine = pattern(100, 7);
    c.write(mine);
    recv(c, 0, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), flags: PSH | ACK, window: 2920, payload: mine }]);
    const d = pattern(2930);
    send(c, 1, peerData(0, d.subarray(0, 1460)));
    send(c, 1, peerData(1460, d.subarray(1460, 2920)));
    recv(c, 1, [ourAck(2920, 0, 100)]);
    send(c, 2, peerData(2920, d.subarray(2920), 100));
    expect(c.unacknowledged).to.equal(0);
    expect(c.snapshot().sndUna).to.equal(ourSeq(100));
    expect(c.readable).to.equal(2920);
    expect(c.snapshot().rcvNxt).to.equal(peerSeq(2920));
  });

  it("§3.10.7.4 first: data (a window probe) arriving at a zero window is answered by an ACK with the zero window", () => {
    const c = established({ recvBufferSize: 2920 });
    const d = pattern(2921);
    send(c, 1, peerData(0, d.subarray(0, 1460)));
    send(c, 1, peerData(1460, d.subarray(1460, 2920)));
    recv(c, 1, [ourAck(2920, 0)]);
    // "If an incoming segment is not acceptable, an acknowledgment should be sent in reply."
    send(c, 2, peerData(2920, d.subarray(2920)));
    recv(c, 2, [ourAck(2920, 0)]);
  });

  it("§3.8.6.2.2: no window update until min(RCV.BUFF/2, MSS) of buffer is freed", () => {
    const c = established({ recvBufferSize: 2920 });
    const d = pattern(2920);
    send(c, 1, peerData(0, d.subarray(0, 1460)));
    send(c, 1, peerData(1460, d.subarray(1460)));
    recv(c, 1, [ourAck(2920, 0)]);
    c.read(1459);
    recvNothing(c, 2);
    c.read(1); // 1460 = min(2920/2, 1460) freed
    recv(c, 3, [ourAck(2920, 1460)]);
    c.read(1459);
    recvNothing(c, 4);
    c.read(1);
    recv(c, 5, [ourAck(2920, 2920)]);
  });

  it("§3.8.6.2.2: small reads from a large buffer send no update; one MSS freed beyond the offered edge does", () => {
    const c = established();
    send(c, 1, peerData(0, pattern(1000)));
    recv(c, 1, [ourAck(1000, 64535)]);
    c.read();
    recvNothing(c, 2); // the edge could move only 1001 bytes (< 1460)
    send(c, 3, peerData(1000, pattern(1000)));
    recv(c, 3, [ourAck(2000, 63535)]);
    c.read();
    recv(c, 4, [ourAck(2000, 65535)]); // 2001 bytes: update (capped at 65535, no scaling)
  });

  it("after the SYN-ACK's unscaled 65535: reading a small request sends no update (the reply carries the window); reading past half of it does", () => {
    const cfg = { recvBufferSize: 1 << 20, windowScaling: true, delayedAckMs: 40 };
    const syn = { mss: 1460, windowScale: 7 };
    // A request of 100 bytes, read at once: 65435 of the SYN-ACK's 65535 are left; nothing is
    // sent until the reply, which offers the whole buffer (1 MiB >> 5).
    const c = established(cfg, syn);
    send(c, 1, peerData(0, pattern(100)));
    c.read();
    recvNothing(c, 1);
    c.write(pattern(50, 3));
    const reply = drain(c, 2);
    expect(reply.map((x) => [x.payload.length, x.ack, x.window])).to.deep.equal([[50, peerSeq(100), (1 << 20) >> 5]]);
    // 40000 bytes in one segment leave 25535 (< 65535 / 2): the peer may be waiting; update now.
    const d = established(cfg, syn);
    send(d, 1, peerData(0, pattern(40_000)));
    recvNothing(d, 1); // one segment: its ACK is delayed
    d.read();
    const update = drain(d, 1);
    expect(update.map((x) => [x.payload.length, x.ack, x.window])).to.deep.equal([[0, peerSeq(40_000), (1 << 20) >> 5]]);
  });

  it("§3.8.6.2.2: the right edge of the offered window never moves left", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 2000 })), { maxLength: 60 }), (steps) => {
        const c = established({ recvBufferSize: 4000 });
        let rcvd = 0;
        let edge = seqAdd(peerSeq(0), 4000);
        let t = 1;
        for (const [receive, n] of steps) {
          if (receive) {
            const room = c.snapshot().rcvWnd;
            if (room === 0) continue;
            const len = Math.min(n, room, 1460);
            send(c, t, peerData(rcvd, pattern(len)));
            rcvd += len;
          } else {
            c.read(n);
          }
          for (const seg of drain(c, t++)) {
            const e = seqAdd(seg.ack, seg.window);
            expect(seqGe(e, edge), `edge ${e} < ${edge}`).to.equal(true);
            edge = e;
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("tcp/data: delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2)", () => {
  it("one full-sized segment is acknowledged exactly delayedAckMs later, not before", () => {
    const c = established({ delayedAckMs: 40 });
    send(c, 100, peerData(0, pattern(1460)));
    recvNothing(c, 100);
    expect(c.pollAt()).to.equal(140);
    recvNothing(c, 139);
    recv(c, 140, [ourAck(1460, 64075)]);
    expect(c.pollAt()).to.equal(Infinity);
  });

  it("a small segment is delayed the same way", () => {
    const c = established({ delayedAckMs: 40 });
    send(c, 100, peerData(0, pattern(100)));
    recvNothing(c, 139.5);
    recv(c, 140, [ourAck(100, 65435)]);
  });

  it("RFC 5681 §4.2: a second full-sized segment is acknowledged at once", () => {
    const c = established({ delayedAckMs: 40 });
    send(c, 100, peerData(0, pattern(1460)));
    recvNothing(c, 100);
    send(c, 110, peerData(1460, pattern(1460)));
    recv(c, 110, [ourAck(2920, 62615)]);
    recvNothing(c, 140);
  });

  it("RFC 5681 §4.2: out-of-order data is acknowledged at once", () => {
    const c = established({ delayedAckMs: 40 });
    send(c, 100, peerData(1000, pattern(100)));
    recv(c, 100, [ourAck(0, 65535)]);
  });

  it("RFC 9293 §3.8.6.3: data we send carries the delayed ACK; no separate ACK follows", () => {
    const c = established({ delayedAckMs: 40 });
    send(c, 100, peerData(0, pattern(100)));
    recvNothing(c, 100);
    const mine = pattern(10, 3);
    c.write(mine);
    recv(c, 110, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(100), flags: PSH | ACK, window: 65435, payload: mine }]);
    recvNothing(c, 140);
  });
});

describe("tcp/data: sending (RFC 9293 §3.8.6.2.1, §3.7.4, RFC 1122 §4.2.2.2)", () => {
  it("a write is cut into MSS-sized segments; PSH on the last one (RFC 1122 §4.2.2.2)", () => {
    const c = established();
    const d = pattern(4000);
    expect(c.write(d)).to.equal(4000);
    recv(c, 0, [ourData(d, 0, 1460), ourData(d, 1460, 2920), ourData(d, 2920, 4000, PSH | ACK)]);
  });

  it("RFC 1122 §4.2.2.2: writes queued together go out as one segment with PSH on it", () => {
    const c = established();
    const d = pattern(200);
    c.write(d.subarray(0, 100));
    c.write(d.subarray(100));
    recv(c, 0, [ourData(d, 0, 200, PSH | ACK)]);
  });

  it("write returns the bytes accepted, 0 when the send buffer is full; Writable after an ACK frees space", () => {
    const c = established({ sendBufferSize: 3000 });
    const d = pattern(4000);
    expect(c.write(d)).to.equal(3000);
    expect(c.write(d.subarray(3000))).to.equal(0);
    recv(c, 0, [ourData(d, 0, 1460), ourData(d, 1460, 2920), ourData(d, 2920, 3000, PSH | ACK)]);
    expect(c.takeEvents() & TcpEvent.Writable).to.equal(0);
    send(c, 10, peerAck(1460));
    expect(c.takeEvents() & TcpEvent.Writable).to.equal(TcpEvent.Writable);
    expect(c.writable).to.equal(1460);
    expect(c.write(d.subarray(3000))).to.equal(1000);
    recv(c, 10, [ourData(d, 3000, 4000, PSH | ACK)]);
  });

  it("§3.8.6.2.1: nothing beyond SND.UNA + SND.WND is sent; an ACK that moves the edge lets more out", () => {
    const c = openPassive({}, { mss: 1460 }, { third: { window: 2920 } });
    const d = pattern(5000);
    c.write(d);
    recv(c, 0, fullSegs(d, 0, 2));
    recvNothing(c, 1);
    send(c, 10, peerAck(1460, 2920));
    recv(c, 10, [ourData(d, 2920, 4380)]);
  });

  it("§3.8.6.2.1: a sub-MSS segment is held while neither all queued data nor half the largest window fits", () => {
    const c = openPassive({}, { mss: 1460 }, { third: { window: 2000 } });
    const d = pattern(3000);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1460)]);
    recvNothing(c, 1); // 540 bytes usable: < MSS, < 3000 - 1460, < 65535 / 2
    send(c, 10, peerAck(1460, 2000));
    // A full segment, then the last 80 bytes: all the queued data fits (condition 2).
    recv(c, 10, [ourData(d, 1460, 2920), ourData(d, 2920, 3000, PSH | ACK)]);
  });

  it("§3.8.6.2.1 (3): a sub-MSS segment goes when it is at least half the peer's largest window", () => {
    const c = openPassive({}, { mss: 1460 }, { synWindow: 1000, third: { window: 1000 } });
    const d = pattern(3000);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1000)]);
    recvNothing(c, 1);
  });

  it("§3.8.6.2.1 (4) / RFC 1122 §4.2.3.4: a held sub-MSS segment goes after the override timeout (0.1-1 s)", () => {
    const c = openPassive({}, { mss: 1460 }, { third: { window: 1000 } });
    const d = pattern(3000);
    c.write(d);
    recvNothing(c, 0);
    recv(c, 1000, [ourData(d, 0, 1000)]);
  });

  it("§3.7.4 Nagle (on): a small segment waits while data is unacknowledged and goes when the ACK comes", () => {
    const c = established({ nagle: true });
    const d = pattern(200);
    c.write(d.subarray(0, 100));
    recv(c, 0, [ourData(d, 0, 100, PSH | ACK)]);
    c.write(d.subarray(100));
    recvNothing(c, 1);
    send(c, 10, peerAck(100));
    recv(c, 10, [ourData(d, 100, 200, PSH | ACK)]);
  });

  it("§3.7.4 Nagle (on): a full-sized segment is not held; the small remainder is", () => {
    const c = established({ nagle: true });
    const d = pattern(1600);
    c.write(d.subarray(0, 100));
    recv(c, 0, [ourData(d, 0, 100, PSH | ACK)]);
    c.write(d.subarray(100));
    recv(c, 1, [ourData(d, 100, 1560)]);
    send(c, 10, peerAck(1560));
    recv(c, 10, [ourData(d, 1560, 1600, PSH | ACK)]);
  });

  it("§3.7.4 Nagle off (the default): small writes go at once", () => {
    const c = established();
    const d = pattern(200);
    c.write(d.subarray(0, 100));
    recv(c, 0, [ourData(d, 0, 100, PSH | ACK)]);
    c.write(d.subarray(100));
    recv(c, 1, [ourData(d, 100, 200, PSH | ACK)]);
  });
});

describe("tcp/data: initial window and slow start (RFC 6928, RFC 5681 §3.1)", () => {
  it("RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)): ten 1460-byte segments", () => {
    const c = established();
    const d = pattern(20000);
    c.write(d);
    recv(c, 0, fullSegs(d, 0, 10));
    recvNothing(c, 1);
  });

  it("RFC 6928 §2: with MSS 2920, IW = 14600 bytes = five segments", () => {
    const c = established({ mss: 2920 }, { mss: 2920 });
    const d = pattern(20000);
    c.write(d);
    recv(c, 0, fullSegs(d, 0, 5, 2920));
    recvNothing(c, 1);
  });

  it("RFC 6928 §2: with MSS 536, IW = 10*536 = 5360 bytes", () => {
    const c = established({}, {});
    const d = pattern(6000);
    c.write(d);
    recv(c, 0, fullSegs(d, 0, 10, 536));
    recvNothing(c, 1);
  });

  it("RFC 5681 §3.1 (2): in slow start each ACK of one segment grows cwnd by one SMSS (two segments out)", () => {
    const c = established();
    const d = pattern(40000);
    c.write(d);
    recv(c, 0, fullSegs(d, 0, 10));
    send(c, 10, peerAck(1460));
    expect(c.snapshot().cwnd).to.equal(16060);
    recv(c, 10, fullSegs(d, 14600, 2));
    send(c, 11, peerAck(2920));
    expect(c.snapshot().cwnd).to.equal(17520);
    recv(c, 11, fullSegs(d, 17520, 2));
  });
});
