/**
 * Timers, exact segments at exact times: retransmission timeout and backoff (RFC 6298), Karn's
 * rule and timestamp RTT samples, the retransmission limit, the loss window after a timeout
 * (RFC 5681 §3.1), zero-window probes (RFC 9293 §3.8.6.1) and keep-alive (RFC 1122 §4.2.3.6).
 *
 * Read first: RFC 6298 §2-§5, RFC 7323 §4, RFC 5681 §3.1, RFC 9293 §3.8.1 and §3.8.6.1,
 * RFC 1122 §4.2.2.17, §4.2.3.5 and §4.2.3.6.
 *
 * The fixtures complete the handshake at t=0, which is itself an RTT sample of 0 ms (RFC 6298
 * §2.2): the RTO is then the floor, minRtoMs. Tests of the 1-2-4-8 s series set minRtoMs to
 * 1000, the floor RFC 6298 (2.4) asks for.
 */
import { expect } from "chai";
import { TcpEvent } from "../../src/tcp/state.js";
import {
  ACK,
  LOCAL_SEQ,
  PSH,
  RECV,
  REMOTE_SEQ,
  RST,
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
  tsOpt,
  type Seg,
} from "./harness.js";

const SLOW = { minRtoMs: 1000 };

/** A probe with no data at `SEQ = n - 1` (zero-window probe at SND.UNA, keep-alive at SND.MAX). */
function probeAt(n: number): Seg {
  return { ...RECV, seq: ourSeq(n - 1), ack: peerSeq(0), window: 65535 };
}

describe("tcp/timers: retransmission timeout (RFC 6298)", () => {
  it("(2.1): with no RTT sample the first RTO is 1 s: the SYN-ACK is repeated at 1000 ms, not before", () => {
    const c = heldSyn();
    c.accept(0);
    const synAck: Seg = { ...RECV, seq: LOCAL_SEQ, ack: s(REMOTE_SEQ, 1), flags: SYN | ACK, window: 65535, options: { mss: 1460 } };
    recv(c, 0, [synAck]);
    expect(c.pollAt()).to.equal(1000);
    recvNothing(c, 999);
    recv(c, 1000, [synAck]);
  });

  it("(2.2)/(2.4): after the handshake's 0 ms sample the data RTO is the floor minRto (200 ms)", () => {
    const c = established();
    const d = pattern(100);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 100, PSH | ACK)]);
    expect(c.pollAt()).to.equal(200);
    recvNothing(c, 199);
    recv(c, 200, [ourData(d, 0, 100, PSH | ACK)]);
  });

  it("(2.4)/(5.5): with a 1 s floor, the same segment is retransmitted at 1, 3, 7, 15 and 31 s (doubling)", () => {
    const c = established(SLOW);
    const d = pattern(100);
    c.write(d);
    const seg = ourData(d, 0, 100, PSH | ACK);
    recv(c, 0, [seg]);
    for (const t of [1000, 3000, 7000, 15000, 31000]) {
      recvNothing(c, t - 1);
      recv(c, t, [seg]);
    }
  });

  it("(5.5)/(2.5): the backoff is capped at maxRtoMs", () => {
    const c = established({ ...SLOW, maxRtoMs: 4000 });
    const d = pattern(100);
    c.write(d);
    const seg = ourData(d, 0, 100, PSH | ACK);
    recv(c, 0, [seg]);
    for (const t of [1000, 3000, 7000, 11000, 15000]) {
      recvNothing(c, t - 1);
      recv(c, t, [seg]);
    }
  });

  it("(2.2)/(2.3): RTO = max(minRto, SRTT + 4*RTTVAR) from measured samples", () => {
    // Handshake: SYN-ACK at 0, ACK at 100: R = 100, SRTT = 100, RTTVAR = 50, RTO = 300.
    const c = openPassive({}, { mss: 1460 }, { ackAt: 100 });
    expect(c.snapshot().srtt).to.equal(100);
    expect(c.snapshot().rto).to.equal(300);
    const d = pattern(200);
    c.write(d.subarray(0, 100));
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK)]);
    // R = 300: RTTVAR = 3/4*50 + 1/4*|100-300| = 87.5; SRTT = 7/8*100 + 1/8*300 = 125; RTO = 125 + 350 = 475.
    send(c, 1300, peerAck(100));
    expect(c.snapshot().srtt).to.equal(125);
    expect(c.snapshot().rto).to.equal(475);
    c.write(d.subarray(100));
    recv(c, 2000, [ourData(d, 100, 200, PSH | ACK)]);
    recvNothing(c, 2474);
    recv(c, 2475, [ourData(d, 100, 200, PSH | ACK)]);
  });

  it("(5.7): after the SYN-ACK was retransmitted, the data RTO starts at 3 s", () => {
    const c = heldSyn();
    c.accept(0);
    drain(c, 0);
    expect(drain(c, 1000).length).to.equal(1); // the SYN-ACK again
    send(c, 1000, peerAck(0));
    const d = pattern(100);
    c.write(d);
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK)]);
    recvNothing(c, 3999);
    recv(c, 4000, [ourData(d, 0, 100, PSH | ACK)]);
  });

  it("(5.3): an ACK of new data restarts the timer for the rest", () => {
    const c = established(SLOW);
    const d = pattern(2920);
    c.write(d);
    recv(c, 0, [ourData(d, 0, 1460), ourData(d, 1460, 2920, PSH | ACK)]);
    send(c, 500, peerAck(1460));
    recvNothing(c, 500);
    expect(c.pollAt()).to.equal(1500);
    recvNothing(c, 1499);
    recv(c, 1500, [ourData(d, 1460, 2920, PSH | ACK)]);
  });

  it("(5.2): the timer stops when everything is acknowledged", () => {
    const c = established(SLOW);
    c.write(pattern(100));
    drain(c, 0);
    send(c, 500, peerAck(100));
    recvNothing(c, 500);
    expect(c.pollAt()).to.equal(Infinity);
    recvNothing(c, 100_000);
  });

  it("RFC 5681 §3.1: after a timeout cwnd = 1 SMSS, ssthresh = max(FlightSize/2, 2*SMSS), and slow start resends from SND.UNA", () => {
    const c = established(SLOW);
    const d = pattern(7300);
    c.write(d);
    recv(c, 0, [0, 1, 2, 3].map((k) => ourData(d, k * 1460, (k + 1) * 1460)).concat(ourData(d, 5840, 7300, PSH | ACK)));
    recv(c, 1000, [ourData(d, 0, 1460)]);
    expect(c.snapshot().cwnd).to.equal(1460);
    expect(c.snapshot().ssthresh).to.equal(3650);
    send(c, 1100, peerAck(1460));
    expect(c.snapshot().cwnd).to.equal(2920);
    recv(c, 1100, [ourData(d, 1460, 2920), ourData(d, 2920, 4380)]);
  });

  it("RFC 1122 §4.2.3.5: after maxRetransmits the connection is reset with error \"timeout\"", () => {
    const c = established({ ...SLOW, maxRetransmits: 2 });
    const d = pattern(100);
    c.write(d);
    drain(c, 0);
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK)]);
    recv(c, 3000, [ourData(d, 0, 100, PSH | ACK)]);
    recvNothing(c, 6999);
    expect(c.takeEvents()).to.equal(0);
    // RFC 9293 §3.10.5 (ABORT): <SEQ=SND.NXT><CTL=RST>; skiff's resets also carry its ACK.
    recv(c, 7000, [{ ...RECV, seq: ourSeq(100), ack: peerSeq(0), flags: RST | ACK, window: 65535 }]);
    expect(c.error).to.equal("timeout");
    expect(c.stateName).to.equal("CLOSED");
    expect(c.takeEvents()).to.equal(TcpEvent.Reset | TcpEvent.Closed);
    expect(c.pollAt()).to.equal(Infinity);
  });
});

describe("tcp/timers: RTT samples (RFC 6298 §3 Karn, RFC 7323 §4)", () => {
  it("RFC 6298 §3 (Karn): no sample from an ACK of retransmitted data; the next fresh segment gives one", () => {
    const c = openPassive({}, { mss: 1460 }, { ackAt: 100 }); // SRTT 100, RTTVAR 50, RTO 300
    const d = pattern(200);
    c.write(d.subarray(0, 100));
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK)]);
    recv(c, 1300, [ourData(d, 0, 100, PSH | ACK)]);
    send(c, 1350, peerAck(100));
    expect(c.snapshot().srtt).to.equal(100);
    c.write(d.subarray(100));
    recv(c, 2000, [ourData(d, 100, 200, PSH | ACK)]);
    // R = 200: RTTVAR = 37.5 + 25 = 62.5; SRTT = 87.5 + 25 = 112.5; RTO = 112.5 + 250 = 362.5.
    send(c, 2200, peerAck(200));
    expect(c.snapshot().srtt).to.equal(112.5);
    expect(c.snapshot().rto).to.equal(362.5);
  });

  it("RFC 7323 §4.1: with timestamps each ACK's TSecr gives the sample", () => {
    const c = openPassive({ timestamps: true }, { mss: 1460, ...tsOpt(1, 0) }, { tsOffset: 5000, ackAt: 100, third: { options: tsOpt(2, 5000) } });
    expect(c.snapshot().srtt).to.equal(100); // 5100 - 5000
    const d = pattern(100);
    c.write(d);
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK, { options: tsOpt(6000, 2) })]);
    // The ACK comes at 1200 echoing 6000: R = 200. RTTVAR = 62.5, SRTT = 112.5, RTO = 362.5.
    send(c, 1200, peerAck(100, 65535, { options: tsOpt(3, 6000) }));
    expect(c.snapshot().srtt).to.equal(112.5);
    expect(c.snapshot().rto).to.equal(362.5);
  });

  it("RFC 6298 §3: with timestamps a retransmission may be timed: R comes from the echoed tsVal", () => {
    const c = openPassive({ timestamps: true }, { mss: 1460, ...tsOpt(1, 0) }, { tsOffset: 5000, ackAt: 100, third: { options: tsOpt(2, 5000) } });
    const d = pattern(100);
    c.write(d);
    recv(c, 1000, [ourData(d, 0, 100, PSH | ACK, { options: tsOpt(6000, 2) })]);
    recv(c, 1300, [ourData(d, 0, 100, PSH | ACK, { options: tsOpt(6300, 2) })]);
    // The echo names the retransmission: R = 6350 - 6300 = 50. RTTVAR = 37.5 + 12.5 = 50;
    // SRTT = 87.5 + 6.25 = 93.75; RTO = 93.75 + 200 = 293.75.
    send(c, 1350, peerAck(100, 65535, { options: tsOpt(3, 6300) }));
    expect(c.snapshot().srtt).to.equal(93.75);
    expect(c.snapshot().rto).to.equal(293.75);
  });
});

describe("tcp/timers: zero-window probes (RFC 9293 §3.8.6.1)", () => {
  it("§3.8.6.1: with a zero window and data queued, a probe (SEQ=SND.UNA-1, no data) goes after the RTO, then at 2x, 4x", () => {
    const c = openPassive(SLOW, { mss: 1460 }, { third: { window: 0 } });
    c.write(pattern(100));
    recvNothing(c, 0);
    expect(c.pollAt()).to.equal(1000);
    recvNothing(c, 999);
    recv(c, 1000, [probeAt(0)]);
    recvNothing(c, 2999);
    recv(c, 3000, [probeAt(0)]);
    recvNothing(c, 6999);
    recv(c, 7000, [probeAt(0)]);
  });

  it("§3.8.6.1: a window opening stops the probes and lets the data out", () => {
    const c = openPassive(SLOW, { mss: 1460 }, { third: { window: 0 } });
    const d = pattern(100);
    c.write(d);
    recvNothing(c, 0);
    recv(c, 1000, [probeAt(0)]);
    send(c, 1010, peerAck(0, 65535));
    recv(c, 1010, [ourData(d, 0, 100, PSH | ACK)]);
    send(c, 1020, peerAck(100, 65535));
    recvNothing(c, 1020);
    expect(c.pollAt()).to.equal(Infinity);
    recvNothing(c, 100_000);
  });

  it("§3.8.6.1 (MUST-36): while the peer answers the probes, the connection stays open", () => {
    const c = openPassive(SLOW, { mss: 1460 }, { third: { window: 0 } });
    c.write(pattern(100));
    recvNothing(c, 0);
    let last = 0;
    for (let i = 0; i < 30; i++) {
      const t = c.pollAt();
      expect(t - last, `probe ${i} interval`).to.be.within(1000, 60_000);
      expect(drain(c, t), `probe ${i} at ${t}`).to.deep.equal([probeAt(0)]);
      send(c, t + 1, peerAck(0, 0));
      recvNothing(c, t + 1);
      last = t;
    }
    expect(c.stateName).to.equal("ESTABLISHED");
    expect(c.error).to.equal(undefined);
  });
});

describe("tcp/timers: keep-alive (RFC 1122 §4.2.3.6)", () => {
  const KA = { keepalive: { idleMs: 10_000, intervalMs: 1000, probes: 3 } };

  it("§4.2.3.6: no keep-alive by default: an idle connection sends nothing for hours", () => {
    const c = established();
    expect(c.pollAt()).to.equal(Infinity);
    recvNothing(c, 3 * 7200 * 1000);
  });

  it("§4.2.3.6: after idleMs a probe SEQ=SND.NXT-1 with no data, repeated every intervalMs", () => {
    const c = established(KA);
    expect(c.pollAt()).to.equal(10_000);
    recvNothing(c, 9999);
    recv(c, 10_000, [probeAt(0)]);
    recvNothing(c, 10_999);
    recv(c, 11_000, [probeAt(0)]);
    recv(c, 12_000, [probeAt(0)]);
  });

  it("§4.2.3.6: the probe uses the highest sequence number sent (SND.MAX - 1)", () => {
    const c = established(KA);
    c.write(pattern(100));
    drain(c, 0);
    send(c, 10, peerAck(100));
    recvNothing(c, 10);
    recv(c, 10_010, [probeAt(100)]);
  });

  it("§4.2.3.6: after `probes` unanswered probes the connection is reset with error \"timeout\"", () => {
    const c = established(KA);
    for (const t of [10_000, 11_000, 12_000]) recv(c, t, [probeAt(0)]);
    expect(c.takeEvents()).to.equal(0);
    recv(c, 13_000, [{ ...RECV, seq: ourSeq(0), ack: peerSeq(0), flags: RST | ACK, window: 65535 }]);
    expect(c.error).to.equal("timeout");
    expect(c.takeEvents()).to.equal(TcpEvent.Reset | TcpEvent.Closed);
  });

  it("§4.2.3.6: an answer resets the count and the idle time", () => {
    const c = established(KA);
    recv(c, 10_000, [probeAt(0)]);
    recv(c, 11_000, [probeAt(0)]);
    send(c, 11_500, peerAck(0));
    recvNothing(c, 11_500);
    expect(c.pollAt()).to.equal(21_500);
    for (const t of [21_500, 22_500, 23_500]) recv(c, t, [probeAt(0)]);
    expect(c.stateName).to.equal("ESTABLISHED");
  });
});
