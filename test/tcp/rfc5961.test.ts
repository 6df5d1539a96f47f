/**
 * Exact-segment tests of the TCP engine's defences against blind in-window attacks (RFC 5961:
 * §3 RST, §4 SYN, §5 data injection, §7 challenge ACK throttling) and of PAWS (RFC 7323 §5,
 * with the TS.Recent rules of §4.3).
 *
 * Fixture numbers: `l(n)` is our ISS + n, `r(n)` the peer's ISS + n (just below 2^32, so the
 * windows straddle the wrap). After `established()`: RCV.NXT = r(1), RCV.WND = 65535,
 * SND.UNA = SND.NXT = l(1), MAX.SND.WND = 65535.
 */
import { expect } from "chai";
import { TcpConnection } from "../../src/tcp/connection.js";
import { TcpEvent, TcpState } from "../../src/tcp/state.js";
import {
  ACK,
  FIN,
  LOCAL_SEQ,
  PSH,
  RECV,
  REMOTE_SEQ,
  RST,
  SEND,
  SYN,
  bytes,
  closeWait,
  drain,
  established,
  finWait2,
  recv,
  recvNothing,
  s,
  send,
  synReceived,
  testConfig,
  type Seg,
} from "./harness.js";

const l = (n: number): number => s(LOCAL_SEQ, n);
const r = (n: number): number => s(REMOTE_SEQ, n);
const W = 65535;
const { Reset, Closed } = TcpEvent;

/** The ACK we send while nothing changed: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>. */
const CHALLENGE: Seg = { ...RECV, seq: l(1), ack: r(1), window: W };

// =========================================================================================

describe("tcp/rfc5961 §3: blind RST", () => {
  it("§3.2: a RST exactly at RCV.NXT resets the connection (Reset|Closed, error reset)", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: 0, flags: RST });
    recvNothing(c, 10);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("reset");
    expect(c.takeEvents() & (Reset | Closed)).to.equal(Reset | Closed);
  });

  it("§3.2: RST,ACK exactly at RCV.NXT resets too (the ACK field is not checked)", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(12345), flags: RST | ACK });
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("reset");
  });

  it("§3.2: a RST inside the window but not at RCV.NXT gets a challenge ACK; the connection stays", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(2), flags: RST });
    recv(c, 10, [CHALLENGE]);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.takeEvents()).to.equal(0);
    expect(c.counters.challengeAcks).to.equal(1);
  });

  it("§3.2: a RST at the last sequence number of the window gets a challenge ACK", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(W), flags: RST | ACK, ack: l(1) });
    recv(c, 10, [CHALLENGE]);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("§3.2: a RST just below RCV.NXT is dropped silently", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(0), flags: RST });
    recvNothing(c, 10);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("§3.2: a RST at or beyond the right edge of the window is dropped silently", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1 + W), flags: RST });
    recvNothing(c, 10);
    send(c, 11, { ...SEND, seq: r(1_000_000), flags: RST });
    recvNothing(c, 11);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.counters.challengeAcks).to.equal(0);
  });

  it("§3.2: the same rule in FIN-WAIT-2 and CLOSE-WAIT", () => {
    const fw2 = finWait2();
    send(fw2, 10, { ...SEND, seq: r(5), flags: RST });
    recv(fw2, 10, [{ ...CHALLENGE, seq: l(2) }]);
    send(fw2, 11, { ...SEND, seq: r(1), flags: RST });
    expect(fw2.state).to.equal(TcpState.Closed);
    const cw = closeWait();
    send(cw, 10, { ...SEND, seq: r(5), flags: RST });
    recv(cw, 10, [{ ...CHALLENGE, ack: r(2), window: W - 1 }]);
    send(cw, 11, { ...SEND, seq: r(2), flags: RST });
    expect(cw.state).to.equal(TcpState.Closed);
  });

  it("§3.2 in SYN-RECEIVED: an exact RST closes; an in-window one gets <SEQ=ISS+1><ACK=RCV.NXT>", () => {
    const a = synReceived();
    send(a, 10, { ...SEND, seq: r(9), flags: RST });
    recv(a, 10, [CHALLENGE]);
    expect(a.state).to.equal(TcpState.SynReceived);
    const b = synReceived();
    send(b, 10, { ...SEND, seq: r(1), flags: RST });
    recvNothing(b, 10);
    expect(b.state).to.equal(TcpState.Closed);
    expect(b.takeEvents() & (Reset | Closed)).to.equal(Reset | Closed);
  });
});

// =========================================================================================

describe("tcp/rfc5961 §4: blind SYN", () => {
  // "If the SYN bit is set, irrespective of the sequence number, TCP MUST send an ACK".
  const where: Array<[string, number]> = [
    ["inside the window", r(100)],
    ["exactly at RCV.NXT", r(1)],
    ["below the window (the old ISS)", r(0)],
    ["beyond the window", r(5_000_000)],
  ];
  for (const [name, seq] of where) {
    it(`§4.2: a SYN ${name} gets a challenge ACK; no reset`, () => {
      const c = established();
      send(c, 10, { ...SEND, seq, ack: 0, flags: SYN, options: { mss: 1460 } });
      recv(c, 10, [CHALLENGE]);
      expect(c.state).to.equal(TcpState.Established);
      expect(c.takeEvents()).to.equal(0);
    });
  }

  it("§4.2: a SYN,ACK in ESTABLISHED gets a challenge ACK and its data is not delivered", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1), flags: SYN | ACK | PSH, payload: bytes("evil") });
    recv(c, 10, [CHALLENGE]);
    expect(c.readable).to.equal(0);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("§4.2: the same in FIN-WAIT-2", () => {
    const c = finWait2();
    send(c, 10, { ...SEND, seq: r(3), ack: 0, flags: SYN });
    recv(c, 10, [{ ...CHALLENGE, seq: l(2) }]);
    expect(c.state).to.equal(TcpState.FinWait2);
  });
});

// =========================================================================================

describe("tcp/rfc5961 §5: blind data injection (ACK validation)", () => {
  it("§5.2: SEG.ACK below SND.UNA - MAX.SND.WND gets a challenge ACK; its data is not accepted", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1 - W - 1), flags: ACK | PSH, payload: bytes("evil") });
    recv(c, 10, [CHALLENGE]);
    expect(c.readable).to.equal(0);
    expect(c.takeEvents()).to.equal(0);
    expect(c.counters.challengeAcks).to.equal(1);
  });

  it("§5.2: SEG.ACK exactly SND.UNA - MAX.SND.WND is acceptable (old duplicate, data accepted)", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1 - W), flags: ACK | PSH, payload: bytes("good") });
    recv(c, 10, [{ ...CHALLENGE, ack: r(5), window: W - 4 }]);
    expect(c.read()).to.deep.equal(bytes("good"));
    expect(c.snapshot().sndUna).to.equal(l(1));
  });

  it("§5.2 / RFC 9293 §3.10.7.4: SEG.ACK above SND.NXT: ACK sent, segment dropped", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(2), flags: ACK | PSH, payload: bytes("evil") });
    recv(c, 10, [CHALLENGE]);
    expect(c.readable).to.equal(0);
    expect(c.snapshot().sndUna).to.equal(l(1));
  });

  it("§5.2: SEG.ACK above SND.NXT with data in flight does not acknowledge anything", () => {
    const c = established();
    c.write(bytes("abc"));
    drain(c, 0);
    send(c, 10, { ...SEND, seq: r(1), ack: l(5), payload: bytes("evil") });
    recv(c, 10, [{ ...CHALLENGE, seq: l(4) }]);
    expect(c.unacknowledged).to.equal(3);
    expect(c.readable).to.equal(0);
    send(c, 20, { ...SEND, seq: r(1), ack: l(4), payload: bytes("ok") });
    recv(c, 20, [{ ...CHALLENGE, seq: l(4), ack: r(3), window: W - 2 }]);
    expect(c.unacknowledged).to.equal(0);
  });

  it("RFC 9293 §3.10.7.4 'fifth': data without the ACK bit is dropped", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: 0, flags: PSH, payload: bytes("evil") });
    recvNothing(c, 10);
    expect(c.readable).to.equal(0);
  });

  it("§5.2: a FIN with an unacceptable ACK does not close the connection", () => {
    const c = established();
    send(c, 10, { ...SEND, seq: r(1), ack: l(1 - W - 100), flags: FIN | ACK });
    recv(c, 10, [CHALLENGE]);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.peerFinished).to.equal(false);
  });
});

// =========================================================================================

describe("tcp/rfc5961 §7: challenge ACK throttling", () => {
  it("at most challengeAckLimit challenge ACKs per second, then none, then again a second later", () => {
    const c = established({ challengeAckLimit: 3 });
    const rst: Seg = { ...SEND, seq: r(50), flags: RST };
    recv(c, 100, []); // nothing pending
    for (const t of [100, 200, 300]) {
      send(c, t, rst);
      recv(c, t, [CHALLENGE]);
    }
    send(c, 400, rst);
    recvNothing(c, 400);
    send(c, 1099, rst);
    recvNothing(c, 1099);
    send(c, 1100, rst);
    recv(c, 1100, [CHALLENGE]);
    expect(c.counters.challengeAcks).to.equal(4);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("RST, SYN and bad-ACK challenges share one budget", () => {
    const c = established({ challengeAckLimit: 2 });
    send(c, 10, { ...SEND, seq: r(50), flags: RST });
    recv(c, 10, [CHALLENGE]);
    send(c, 20, { ...SEND, seq: r(60), flags: SYN });
    recv(c, 20, [CHALLENGE]);
    send(c, 30, { ...SEND, seq: r(1), ack: l(-W - 5), payload: bytes("x") });
    recvNothing(c, 30);
    expect(c.readable).to.equal(0);
  });

  it("an exact RST still resets when the challenge budget is spent", () => {
    const c = established({ challengeAckLimit: 1 });
    send(c, 10, { ...SEND, seq: r(50), flags: RST });
    recv(c, 10, [CHALLENGE]);
    send(c, 20, { ...SEND, seq: r(1), flags: RST });
    expect(c.state).to.equal(TcpState.Closed);
  });
});

// =========================================================================================

/**
 * ESTABLISHED with timestamps, built at t0 > 0: the peer's SYN had TSval tsBase, its
 * completing ACK (at t0 + 10) TSval tsBase + 1, so TS.Recent = tsBase + 1. Our TSval is the
 * time in ms (tsOffset 0).
 */
function establishedTs(tsBase = 5000, t0 = 10): TcpConnection {
  const syn: Seg = { ...SEND, seq: r(0), ack: 0, flags: SYN, options: { mss: 1460, timestamp: { tsVal: tsBase, tsEcr: 0 } } };
  const c = TcpConnection.fromSyn(testConfig({ timestamps: true }), syn, LOCAL_SEQ, t0);
  c.accept(t0);
  drain(c, t0);
  send(c, t0 + 10, { ...SEND, seq: r(1), ack: l(1), options: { timestamp: { tsVal: (tsBase + 1) >>> 0, tsEcr: t0 } } });
  drain(c, t0 + 10);
  c.takeEvents();
  expect(c.state).to.equal(TcpState.Established);
  return c;
}

function ts(tsVal: number, tsEcr = 10): Seg["options"] {
  return { timestamp: { tsVal: tsVal >>> 0, tsEcr } };
}

/** Our ACK with timestamps at time `t` echoing `ecr`. */
function ackTs(t: number, ecr: number, over: Partial<Seg> = {}): Seg {
  return { ...CHALLENGE, options: { timestamp: { tsVal: t, tsEcr: ecr >>> 0 } }, ...over };
}

describe("tcp/rfc7323 §5: PAWS", () => {
  it("§5.3 R1: a segment with TSval older than TS.Recent is dropped with an ACK; data not delivered", () => {
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), payload: bytes("old"), options: ts(5000) });
    recv(c, 30, [ackTs(30, 5001)]);
    expect(c.readable).to.equal(0);
    expect(c.counters.pawsDrops).to.equal(1);
  });

  it("§5.3 R1: a TSval equal to TS.Recent is accepted", () => {
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc"), options: ts(5001) });
    recv(c, 30, [ackTs(30, 5001, { ack: r(4), window: W - 3 })]);
    expect(c.read()).to.deep.equal(bytes("abc"));
  });

  it("§4.3: a newer TSval on an in-order segment becomes TS.Recent and is echoed", () => {
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc"), options: ts(5090) });
    recv(c, 30, [ackTs(30, 5090, { ack: r(4), window: W - 3 })]);
    // Now 5089 is old.
    send(c, 40, { ...SEND, seq: r(4), ack: l(1), payload: bytes("def"), options: ts(5089) });
    recv(c, 40, [ackTs(40, 5090, { ack: r(4), window: W - 3 })]);
    expect(c.readable).to.equal(3);
  });

  it("§4.3 (2): TS.Recent is updated only by a segment with SEG.SEQ =< Last.ACK.sent", () => {
    const c = establishedTs();
    // Out of order (a hole at r(1)): its TSval must not become TS.Recent.
    send(c, 30, { ...SEND, seq: r(4), ack: l(1), payload: bytes("def"), options: ts(6000) });
    recv(c, 30, [ackTs(30, 5001)]);
    // The segment filling the hole is echoed (§4.2 case C), and is not PAWS-dropped.
    send(c, 40, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc"), options: ts(5002) });
    recv(c, 40, [ackTs(40, 5002, { ack: r(7), window: W - 6 })]);
    expect(c.read()).to.deep.equal(bytes("abcdef"));
  });

  it("§5.3 R1: RST is exempt from PAWS (an old TSval at RCV.NXT still resets)", () => {
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), flags: RST, options: ts(1) });
    recvNothing(c, 30);
    expect(c.state).to.equal(TcpState.Closed);
    expect(c.error).to.equal("reset");
  });

  it("§5.3 R1: a PAWS-dropped segment's ACK acknowledges nothing", () => {
    const c = establishedTs();
    c.write(bytes("xyz"));
    drain(c, 25);
    send(c, 30, { ...SEND, seq: r(1), ack: l(4), options: ts(4000) });
    recv(c, 30, [ackTs(30, 5001, { seq: l(4) })]);
    expect(c.unacknowledged).to.equal(3);
    expect(c.snapshot().sndUna).to.equal(l(1));
  });

  it("§5.3 R1: a PAWS-dropped FIN does not close", () => {
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), flags: FIN | ACK, options: ts(4999) });
    recv(c, 30, [ackTs(30, 5001)]);
    expect(c.state).to.equal(TcpState.Established);
  });

  it("§5.2: TSval comparison is modular: 5 is newer than 0xfffffff1", () => {
    const c = establishedTs(0xfffffff0);
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), payload: bytes("new"), options: ts(5) });
    recv(c, 30, [ackTs(30, 5, { ack: r(4), window: W - 3 })]);
    send(c, 40, { ...SEND, seq: r(4), ack: l(1), payload: bytes("old"), options: ts(0xfffffff8) });
    recv(c, 40, [ackTs(40, 5, { ack: r(4), window: W - 3 })]);
    expect(c.readable).to.equal(3);
  });

  it("§5.3 R1: PAWS holds when TS.Recent was recorded at time 0", () => {
    // The engine's clock is "milliseconds from any fixed origin": 0 is a valid time.
    const c = TcpConnection.fromSyn(
      testConfig({ timestamps: true }),
      { ...SEND, seq: r(0), ack: 0, flags: SYN, options: { mss: 1460, timestamp: { tsVal: 5000, tsEcr: 0 } } },
      LOCAL_SEQ,
      0,
    );
    c.accept(0);
    drain(c, 0);
    send(c, 0, { ...SEND, seq: r(1), ack: l(1), options: ts(5001, 0) });
    drain(c, 0);
    send(c, 5, { ...SEND, seq: r(1), ack: l(1), payload: bytes("old"), options: ts(5000) });
    recv(c, 5, [ackTs(5, 5001)]);
    expect(c.readable).to.equal(0);
  });

  it("§5.5: after 24 days idle TS.Recent is invalid and an old TSval is accepted", () => {
    const c = establishedTs();
    const later = 20 + 24 * 24 * 3600 * 1000 + 1;
    send(c, later, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc"), options: ts(4000) });
    const out = drain(c, later);
    expect(out.map((o) => [o.seq, o.ack, o.flags])).to.deep.equal([[l(1), r(4), ACK]]);
    expect(c.read()).to.deep.equal(bytes("abc"));
  });

  it("§3.2: a segment without TSopt is accepted (skiff's choice; the RFC SHOULD drop) and never aborts", () => {
    // RFC 7323 §3.2: "If a non-<RST> segment is received without a TSopt, a TCP SHOULD silently
    // drop the segment. A TCP MUST NOT abort a TCP connection because any segment lacks an
    // expected TSopt." skiff accepts such segments (PAWS is skipped for them); our reply still
    // carries TSopt with the unchanged TS.Recent.
    const c = establishedTs();
    send(c, 30, { ...SEND, seq: r(1), ack: l(1), payload: bytes("abc") });
    recv(c, 30, [ackTs(30, 5001, { ack: r(4), window: W - 3 })]);
    expect(c.state).to.equal(TcpState.Established);
    expect(c.read()).to.deep.equal(bytes("abc"));
  });

  it("§3.2: with timestamps negotiated every segment we send carries TSopt (data and FIN)", () => {
    const c = establishedTs();
    c.write(bytes("hi"));
    c.shutdownWrite();
    recv(c, 50, [{ ...CHALLENGE, flags: ACK | PSH | FIN, payload: bytes("hi"), options: { timestamp: { tsVal: 50, tsEcr: 5001 } } }]);
  });
});
