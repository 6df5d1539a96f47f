/**
 * TCP option negotiation, exact segments: MSS (RFC 9293 §3.7.1, RFC 6691), window scale
 * (RFC 7323 §2), timestamps (RFC 7323 §3-§4) and SACK-permitted (RFC 2018 §2).
 *
 * Read first: RFC 9293 §3.7.1 "Maximum Segment Size Option", RFC 6691 §2, RFC 7323 §1.3, §2.2,
 * §2.3, §3.2, §4.3, RFC 2018 §2 and §4.
 */
import { expect } from "chai";
import { TcpConnection } from "../../src/tcp/connection.js";
import type { TcpOptions } from "../../src/tcp/wire.js";
import {
  ACK,
  LOCAL_PORT,
  LOCAL_SEQ,
  PSH,
  RECV,
  REMOTE_PORT,
  REMOTE_SEQ,
  SEND,
  SYN,
  drain,
  established,
  heldSyn,
  openPassive,
  ourData,
  ourSeq,
  pattern,
  peerAck,
  peerSeq,
  recv,
  recvNothing,
  s,
  send,
  testConfig,
  tsOpt,
  type Seg,
} from "./harness.js";

const MIB = 1 << 20;

/** Our SYN-ACK for the fixtures' SYN. */
function synAck(options: TcpOptions, window = 65535): Seg {
  return { ...RECV, seq: LOCAL_SEQ, ack: s(REMOTE_SEQ, 1), flags: SYN | ACK, window, options };
}

/** Accept a held SYN and assert the exact SYN-ACK. */
function expectSynAck(c: TcpConnection, options: TcpOptions, window = 65535): void {
  c.accept(0);
  recv(c, 0, [synAck(options, window)]);
}

describe("tcp/options: MSS (RFC 9293 §3.7.1, RFC 6691)", () => {
  it("RFC 6691 §2: the SYN-ACK advertises our MSS, not reduced for the timestamp option", () => {
    const c = heldSyn({ timestamps: true }, { mss: 1460, timestamp: { tsVal: 500, tsEcr: 0 } });
    expectSynAck(c, { mss: 1460, timestamp: { tsVal: 0, tsEcr: 500 } });
  });

  it("RFC 9293 §3.7.1: without an MSS option the peer's MSS is taken as 536", () => {
    const c = established({}, {});
    const d = pattern(1200);
    expect(c.write(d)).to.equal(1200);
    recv(c, 0, [ourData(d, 0, 536), ourData(d, 536, 1072), ourData(d, 1072, 1200, PSH | ACK)]);
  });

  it("RFC 9293 §3.7.1 (MUST-16): a peer MSS larger than ours is capped at ours", () => {
    const c = established({ mss: 1000 }, { mss: 9000 });
    const d = pattern(2500);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1000), ourData(d, 1000, 2000), ourData(d, 2000, 2500, PSH | ACK)]);
  });

  it("RFC 9293 §3.7.1: a peer MSS smaller than ours limits our segments", () => {
    const c = established({}, { mss: 700 });
    const d = pattern(1500);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 700), ourData(d, 700, 1400), ourData(d, 1400, 1500, PSH | ACK)]);
  });

  it("RFC 6691 §2 / RFC 7323 §3.2: with timestamps each payload is MSS - 12", () => {
    const c = openPassive({ timestamps: true }, { mss: 1460, ...tsOpt(500, 0) }, { third: { options: tsOpt(501, 0) } });
    const d = pattern(3000);
    c.write(d);
    const o = tsOpt(10, 501);
    recv(c, 10, [
      ourData(d, 0, 1448, ACK, { options: o }),
      ourData(d, 1448, 2896, ACK, { options: o }),
      ourData(d, 2896, 3000, PSH | ACK, { options: o }),
    ]);
  });
});

describe("tcp/options: timestamps (RFC 7323 §3, §4.3)", () => {
  it("RFC 7323 §3.2/§5.4: tsVal is our clock plus the per-connection offset (across 2^32); tsEcr echoes TS.Recent", () => {
    const offset = 0xffff_ff00;
    const syn: Seg = { ...SEND, seq: REMOTE_SEQ, flags: SYN, options: { mss: 1460, timestamp: { tsVal: 777, tsEcr: 0 } } };
    const c = TcpConnection.fromSyn(testConfig({ timestamps: true }), syn, LOCAL_SEQ, 0, offset);
    expectSynAck(c, { mss: 1460, timestamp: { tsVal: offset, tsEcr: 777 } });
    send(c, 5, peerAck(0, 65535, { options: { timestamp: { tsVal: 778, tsEcr: offset } } }));
    recvNothing(c, 5);
    const d = pattern(10);
    c.write(d);
    // (300 + 0xffffff00) mod 2^32 = 44
    recv(c, 300, [ourData(d, 0, 10, PSH | ACK, { options: { timestamp: { tsVal: 44, tsEcr: 778 } } })]);
  });

  it("RFC 7323 §4.3 (2): TS.Recent follows in-order segments, not a segment beyond Last.ACK.sent", () => {
    const c = openPassive({ timestamps: true }, { mss: 1460, ...tsOpt(500, 0) }, { third: { options: tsOpt(501, 0) } });
    send(c, 20, { ...SEND, seq: peerSeq(0), ack: ourSeq(0), options: tsOpt(900, 0), payload: pattern(10) });
    recv(c, 20, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(10), window: 65525, options: tsOpt(20, 900) }]);
    // Out of order (SEG.SEQ > Last.ACK.sent): TS.Recent keeps 900.
    send(c, 21, { ...SEND, seq: peerSeq(100), ack: ourSeq(0), options: tsOpt(950, 20), payload: pattern(10) });
    recv(c, 21, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(10), window: 65525, options: tsOpt(21, 900) }]);
  });

  it("RFC 7323 §3.2: no timestamps when the peer's SYN has none", () => {
    const c = heldSyn({ timestamps: true }, { mss: 1460 });
    expectSynAck(c, { mss: 1460 });
    send(c, 0, peerAck(0));
    const d = pattern(1460);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1460, PSH | ACK)]);
  });

  it("RFC 7323 §3.2: no timestamps when we do not enable them, even if the peer offers", () => {
    const c = heldSyn({ timestamps: false }, { mss: 1460, timestamp: { tsVal: 5, tsEcr: 0 } });
    expectSynAck(c, { mss: 1460 });
    send(c, 0, peerAck(0, 65535, { options: { timestamp: { tsVal: 6, tsEcr: 0 } } }));
    const d = pattern(1460);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1460, PSH | ACK)]);
  });
});

describe("tcp/options: SACK-permitted (RFC 2018 §2)", () => {
  it("RFC 2018 §2: the SYN-ACK carries SACK-permitted when the SYN did and we enable SACK", () => {
    expectSynAck(heldSyn({ sack: true }, { mss: 1460, sackPermitted: true }), { mss: 1460, sackPermitted: true });
  });

  it("RFC 2018 §2: no SACK-permitted unless both sides offer it", () => {
    expectSynAck(heldSyn({ sack: true }, { mss: 1460 }), { mss: 1460 });
    expectSynAck(heldSyn({ sack: false }, { mss: 1460, sackPermitted: true }), { mss: 1460 });
  });

  it("RFC 2018 §2: no SACK blocks on our ACKs when SACK was not negotiated (either side)", () => {
    for (const [cfgSack, peerSack] of [
      [true, false],
      [false, true],
    ]) {
      const c = established({ sack: cfgSack }, { mss: 1460, sackPermitted: peerSack || undefined });
      send(c, 0, { ...SEND, seq: peerSeq(1000), ack: ourSeq(0), payload: pattern(100) });
      recv(c, 0, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), window: 65535 }]);
    }
  });

  it("RFC 2018 §3: with SACK negotiated, the duplicate ACK for out-of-order data carries the block", () => {
    const c = established({ sack: true }, { mss: 1460, sackPermitted: true });
    send(c, 0, { ...SEND, seq: peerSeq(1000), ack: ourSeq(0), payload: pattern(100) });
    recv(c, 0, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), window: 65535, options: { sack: [[peerSeq(1000), peerSeq(1100)]] } }]);
  });
});

describe("tcp/options: window scale (RFC 7323 §2)", () => {
  it("RFC 7323 §2.2/§2.3: the SYN-ACK answers a Window Scale with our shift (5 for 1 MiB); its window is not scaled", () => {
    // 65535 << 4 = 1048560 < 1 MiB <= 65535 << 5: shift 5 is the smallest that covers the buffer.
    const c = heldSyn({ windowScaling: true, recvBufferSize: MIB }, { mss: 1460, windowScale: 2 });
    expectSynAck(c, { mss: 1460, windowScale: 5 }, 65535);
  });

  it("RFC 7323 §2.2: no Window Scale in the SYN-ACK when the SYN had none (shift 5)", () => {
    expectSynAck(heldSyn({ windowScaling: true, recvBufferSize: MIB }, { mss: 1460 }), { mss: 1460 });
  });

  it("RFC 7323 §2.2: no Window Scale in the SYN-ACK when the SYN had none (our shift 0)", () => {
    // "It MAY also be sent in a <SYN,ACK> segment, but only if a Window Scale option was
    // received in the initial <SYN> segment."
    expectSynAck(heldSyn({ windowScaling: true, recvBufferSize: 65535 }, { mss: 1460 }), { mss: 1460 });
  });

  it("RFC 7323 §2.2: the SYN's window is not scaled; later windows are shifted by the peer's shift", () => {
    // A 65535-byte buffer: our own shift is 0, so our windows stay plain 65535.
    const c = heldSyn({ windowScaling: true, recvBufferSize: 65535 }, { mss: 1460, windowScale: 2 });
    expect(c.snapshot().sndWnd).to.equal(65535);
    c.accept(0);
    drain(c, 0);
    send(c, 0, peerAck(0, 730)); // 730 << 2 = 2920
    expect(c.snapshot().sndWnd).to.equal(2920);
    const d = pattern(5000);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1460), ourData(d, 1460, 2920)]);
    recvNothing(c, 0);
  });

  it("RFC 7323 §2.3: a shift above 14 is used as 14", () => {
    const c = heldSyn({ windowScaling: true }, { mss: 1460, windowScale: 15 });
    c.accept(0);
    drain(c, 0);
    send(c, 0, peerAck(0, 1));
    expect(c.snapshot().sndWnd).to.equal(1 << 14);
  });

  it("RFC 7323 §2.2: no scaling either way when we do not enable it, even if the peer offers", () => {
    const c = heldSyn({ windowScaling: false, recvBufferSize: MIB }, { mss: 1460, windowScale: 7 });
    expectSynAck(c, { mss: 1460 });
    send(c, 0, peerAck(0, 1000));
    expect(c.snapshot().sndWnd).to.equal(1000);
    send(c, 1, { ...SEND, seq: peerSeq(0), ack: ourSeq(0), payload: pattern(100), window: 1000 });
    // Unscaled: the largest window field, 65535, for a 1 MiB buffer.
    recv(c, 1, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(100), window: 65535 }]);
  });

  it("RFC 7323 §2.3: our advertised window field is RCV.WND >> our shift", () => {
    const c = openPassive({ windowScaling: true, recvBufferSize: MIB }, { mss: 1460, windowScale: 2 });
    send(c, 1, { ...SEND, seq: peerSeq(0), ack: ourSeq(0), payload: pattern(100) });
    // RCV.WND = 1 MiB - 100 = 1048476; >> 5 = 32764.
    recv(c, 1, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(100), window: 32764 }]);
  });

  it("RFC 7323 §2.2 / RFC 2018 §2 / §3.2: an active open offers MSS, Window Scale, SACK-permitted and timestamps (tsEcr 0)", () => {
    const cfg = testConfig({ windowScaling: true, sack: true, timestamps: true, recvBufferSize: MIB });
    const c = TcpConnection.connect(cfg, { localPort: LOCAL_PORT, remotePort: REMOTE_PORT }, LOCAL_SEQ, 0, 1000);
    recv(c, 0, [
      {
        ...RECV,
        seq: LOCAL_SEQ,
        ack: 0,
        flags: SYN,
        window: 65535,
        options: { mss: 1460, windowScale: 5, sackPermitted: true, timestamp: { tsVal: 1000, tsEcr: 0 } },
      },
    ]);
  });

  it("RFC 7323 §2.2: a SYN-ACK without Window Scale turns scaling off both ways", () => {
    const cfg = testConfig({ windowScaling: true, recvBufferSize: MIB });
    const c = TcpConnection.connect(cfg, { localPort: LOCAL_PORT, remotePort: REMOTE_PORT }, LOCAL_SEQ, 0);
    drain(c, 0);
    send(c, 10, { ...SEND, seq: REMOTE_SEQ, ack: ourSeq(0), flags: SYN | ACK, window: 5000, options: { mss: 1460 } });
    recv(c, 10, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), window: 65535 }]);
    send(c, 11, { ...SEND, seq: peerSeq(0), ack: ourSeq(0), window: 1000 });
    expect(c.snapshot().sndWnd).to.equal(1000);
  });

  it("RFC 7323 §2.2/§2.3: a SYN-ACK with Window Scale: its own window unscaled, later ones shifted; our ACK scaled", () => {
    const cfg = testConfig({ windowScaling: true, sack: true, timestamps: true, recvBufferSize: MIB });
    const c = TcpConnection.connect(cfg, { localPort: LOCAL_PORT, remotePort: REMOTE_PORT }, LOCAL_SEQ, 0, 1000);
    drain(c, 0);
    send(c, 10, {
      ...SEND,
      seq: REMOTE_SEQ,
      ack: ourSeq(0),
      flags: SYN | ACK,
      window: 1000,
      options: { mss: 1460, windowScale: 3, sackPermitted: true, timestamp: { tsVal: 4242, tsEcr: 1000 } },
    });
    expect(c.snapshot().sndWnd).to.equal(1000);
    // 1 MiB >> 5 = 32768.
    recv(c, 10, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), window: 32768, options: { timestamp: { tsVal: 1010, tsEcr: 4242 } } }]);
    send(c, 11, { ...SEND, seq: peerSeq(0), ack: ourSeq(0), window: 1000, options: { timestamp: { tsVal: 4243, tsEcr: 1010 } } });
    expect(c.snapshot().sndWnd).to.equal(8000);
  });
});
