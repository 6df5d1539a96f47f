/**
 * Loss recovery, exact segments: fast retransmit and NewReno fast recovery (RFC 5681 §3.2,
 * RFC 6582), and SACK-based recovery (RFC 6675) with the scoreboard fed by the peer's blocks.
 *
 * Read first: RFC 5681 §2 (definition of a duplicate acknowledgment) and §3.2; RFC 6582 §3.2
 * (recover, full and partial acknowledgments) and §4; RFC 6675 §2-§5 (IsLost, SetPipe,
 * NextSeg); RFC 2018 §3.
 *
 * Every test sends ten full segments (IW10) at t=0 and plays the peer's ACKs before the RTO
 * (minRtoMs 1000), so only duplicate ACKs drive what is retransmitted. Retransmissions from
 * recovery carry PSH (skiff sets it on every fast retransmission; RFC 1122 §4.2.2.2 leaves
 * PSH on retransmissions to the sender).
 */
import { expect } from "chai";
import type { TcpConnection } from "../../src/tcp/connection.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import {
  ACK,
  PSH,
  RECV,
  SEND,
  drain,
  established,
  ourData,
  ourSeq,
  peerAck,
  pattern,
  peerSeq,
  recv,
  recvNothing,
  send,
  type Seg,
} from "./harness.js";

const MSS = 1460;
const NEWRENO = { minRtoMs: 1000 };
/** RFC 6675's DupThresh/IsLost rules as such: RACK-TLP (RFC 8985, on by default) off; see rack.test.ts. */
const SACK = { minRtoMs: 1000, sack: true, rack: false };
const SACK_SYN = { mss: 1460, sackPermitted: true };

/** Our segment k (bytes [k*MSS, (k+1)*MSS) of `d`). */
function segK(d: Uint8Array, k: number, flags: number = ACK): Seg {
  return ourData(d, k * MSS, (k + 1) * MSS, flags);
}

/** A retransmission of segment k from recovery. */
function rtx(d: Uint8Array, k: number): Seg {
  return segK(d, k, PSH | ACK);
}

/** The peer's ACK of our byte `n`, with SACK blocks given in segment numbers [from, to). */
function sackAck(n: number, sack: Array<[number, number]>): Seg {
  return peerAck(n, 65535, { options: { sack: sack.map(([a, b]): [number, number] => [ourSeq(a * MSS), ourSeq(b * MSS)]) } });
}

/** Established, `segments` of data written and the first ten segments sent at t=0. */
function tenInFlight(cfg: Partial<TcpConfig>, synOptions = { mss: 1460 }, segments = 10): { c: TcpConnection; d: Uint8Array } {
  const c = established(cfg, synOptions);
  const d = pattern(segments * MSS);
  c.write(d);
  const first = Array.from({ length: 10 }, (_, k) => segK(d, k, segments === 10 && k === 9 ? PSH | ACK : ACK));
  recv(c, 0, first);
  return { c, d };
}

describe("tcp/recovery: fast retransmit and NewReno (RFC 5681 §3.2, RFC 6582)", () => {
  it("RFC 5681 §3.2 steps 1-3: the third duplicate ACK retransmits the segment at SND.UNA; ssthresh = FlightSize/2, cwnd = ssthresh + 3*SMSS", () => {
    const { c, d } = tenInFlight(NEWRENO);
    send(c, 10, peerAck(0));
    recvNothing(c, 10);
    send(c, 11, peerAck(0));
    recvNothing(c, 11);
    send(c, 12, peerAck(0));
    recv(c, 12, [rtx(d, 0)]);
    const snap = c.snapshot();
    expect(snap.inRecovery).to.equal(true);
    expect(snap.ssthresh).to.equal(7300); // max(14600 / 2, 2 * 1460)
    expect(snap.cwnd).to.equal(7300 + 3 * MSS);
  });

  it("RFC 5681 §3.2 step 2: ssthresh is at least 2*SMSS", () => {
    const c = established(NEWRENO);
    const d = pattern(3 * MSS + 100);
    c.write(d);
    drain(c, 0);
    for (const t of [10, 11, 12]) send(c, t, peerAck(0));
    recv(c, 12, [rtx(d, 0)]);
    // FlightSize 4480: max(2240, 2920) = 2920.
    expect(c.snapshot().ssthresh).to.equal(2 * MSS);
    expect(c.snapshot().cwnd).to.equal(2 * MSS + 3 * MSS);
  });

  it("RFC 5681 §3.2 step 1 / RFC 3042: the first and second duplicate ACKs each send one new segment (limited transmit)", () => {
    const { c, d } = tenInFlight(NEWRENO, { mss: 1460 }, 20);
    send(c, 10, peerAck(0));
    recv(c, 10, [segK(d, 10)]);
    send(c, 11, peerAck(0));
    recv(c, 11, [segK(d, 11)]);
  });

  it("RFC 5681 §3.2 steps 4-5: each further duplicate ACK adds SMSS; new data goes when cwnd allows; no second retransmission", () => {
    const { c } = tenInFlight(NEWRENO);
    for (const t of [10, 11, 12]) send(c, t, peerAck(0));
    const d = pattern(20 * MSS);
    recv(c, 12, [rtx(d, 0)]);
    // New data becomes available during recovery.
    c.write(d.subarray(10 * MSS));
    // FlightSize stays 14600: segments go once cwnd exceeds it by a full segment.
    const expected: Array<[number, Seg[]]> = [
      [13140, []],
      [14600, []],
      [16060, [segK(d, 10)]],
      [17520, [segK(d, 11)]],
    ];
    let t = 13;
    for (const [cwnd, out] of expected) {
      send(c, t, peerAck(0));
      expect(c.snapshot().cwnd).to.equal(cwnd);
      recv(c, t, out);
      t++;
    }
  });

  it("RFC 6582 §3.2 step 3: a partial ACK retransmits the next unacknowledged segment, deflates cwnd, and recovery continues", () => {
    // Segments 0 and 4 lost; 1-3 and 5-9 arrive (eight duplicate ACKs).
    const { c, d } = tenInFlight(NEWRENO);
    for (const t of [10, 11, 12]) send(c, t, peerAck(0));
    recv(c, 12, [rtx(d, 0)]);
    for (let t = 13; t < 18; t++) send(c, t, peerAck(0));
    recvNothing(c, 17);
    expect(c.snapshot().cwnd).to.equal(11680 + 5 * MSS);
    // The retransmitted segment 0 fills up to segment 4.
    send(c, 30, peerAck(4 * MSS));
    recv(c, 30, [rtx(d, 4)]);
    expect(c.snapshot().inRecovery).to.equal(true);
    // Deflate by the 5840 bytes acknowledged, add back one SMSS: 18980 - 5840 + 1460.
    expect(c.snapshot().cwnd).to.equal(14600);
  });

  it("RFC 6582 §3.2 step 3: the full ACK (covering recover) ends recovery with cwnd min(ssthresh, max(FlightSize, SMSS) + SMSS) or ssthresh", () => {
    const { c, d } = tenInFlight(NEWRENO);
    for (const t of [10, 11, 12]) send(c, t, peerAck(0));
    recv(c, 12, [rtx(d, 0)]);
    for (let t = 13; t < 19; t++) send(c, t, peerAck(0));
    recvNothing(c, 19);
    send(c, 30, peerAck(10 * MSS));
    recvNothing(c, 30);
    const snap = c.snapshot();
    expect(snap.inRecovery).to.equal(false);
    // FlightSize is 0 after this ACK: option (1) gives min(7300, 1460 + 1460) = 2920, option (2) 7300.
    expect([2920, 7300]).to.include(snap.cwnd);
    expect(snap.ssthresh).to.equal(7300);
    expect(c.pollAt()).to.equal(Infinity);
  });

  it("RFC 5681 §2 (b): ACKs carrying data are not duplicate ACKs", () => {
    const { c } = tenInFlight(NEWRENO);
    for (let k = 1; k <= 4; k++) {
      send(c, 10 + k, { ...SEND, seq: peerSeq(10 * (k - 1)), ack: ourSeq(0), payload: pattern(10) });
      // Only the ACK of their data; its sequence number is SND.MAX.
      recv(c, 10 + k, [{ ...RECV, seq: ourSeq(10 * MSS), ack: peerSeq(10 * k), window: 65535 - 10 * k }]);
    }
    expect(c.snapshot().inRecovery).to.equal(false);
  });

  it("RFC 5681 §2 (e): ACKs that change the window are not duplicate ACKs", () => {
    const { c, d } = tenInFlight(NEWRENO);
    let t = 10;
    for (const w of [65000, 64000, 63000]) {
      send(c, t, peerAck(0, w));
      recvNothing(c, t++);
    }
    // Three more with the same window are.
    send(c, t, peerAck(0, 63000));
    recvNothing(c, t++);
    send(c, t, peerAck(0, 63000));
    recvNothing(c, t++);
    send(c, t, peerAck(0, 63000));
    recv(c, t, [rtx(d, 0)]);
  });

  it("RFC 6582 §3.2 steps 2 and 4: duplicate ACKs for data sent before a timeout do not start fast retransmit", () => {
    const { c, d } = tenInFlight(NEWRENO);
    recv(c, 1000, [segK(d, 0)]); // RTO: recover = SND.MAX
    for (const t of [1010, 1011, 1012, 1013]) {
      send(c, t, peerAck(0));
      recvNothing(c, t);
    }
    expect(c.snapshot().inRecovery).to.equal(false);
    expect(c.snapshot().ssthresh).to.equal(7300);
  });
});

describe("tcp/recovery: SACK-based recovery (RFC 6675)", () => {
  it("RFC 6675 §5: the third duplicate ACK with SACK retransmits the hole at SND.UNA; cwnd = ssthresh = FlightSize/2", () => {
    const { c, d } = tenInFlight(SACK, SACK_SYN);
    send(c, 10, sackAck(0, [[1, 2]]));
    recvNothing(c, 10);
    send(c, 11, sackAck(0, [[1, 3]]));
    recvNothing(c, 11);
    send(c, 12, sackAck(0, [[1, 4]]));
    recv(c, 12, [rtx(d, 0)]);
    expect(c.snapshot().inRecovery).to.equal(true);
    expect(c.snapshot().ssthresh).to.equal(7300);
    expect(c.snapshot().cwnd).to.equal(7300);
    // pipe = 6 unSACKed segments + the retransmission = 10220 > cwnd: nothing more.
    recvNothing(c, 13);
  });

  it("RFC 6675 §5 (2): one duplicate ACK whose SACK blocks make IsLost(HighACK+1) true is enough", () => {
    const { c, d } = tenInFlight(SACK, SACK_SYN);
    // More than (DupThresh - 1) * SMSS = 2920 bytes SACKed above segment 0.
    send(c, 10, sackAck(0, [[1, 4]]));
    recv(c, 10, [rtx(d, 0)]);
  });

  it("RFC 6675 §4-§5: several holes are retransmitted in one recovery as IsLost marks them and pipe allows", () => {
    // Segments 0 and 2 lost.
    const { c, d } = tenInFlight(SACK, SACK_SYN);
    send(c, 10, sackAck(0, [[1, 2]]));
    recvNothing(c, 10);
    send(c, 11, sackAck(0, [[3, 4], [1, 2]]));
    recvNothing(c, 11);
    send(c, 12, sackAck(0, [[3, 5], [1, 2]]));
    recv(c, 12, [rtx(d, 0)]);
    // Segment 2 is now lost (3 segments SACKed above it), but pipe = 14600 - 5840 SACKed
    // - 1460 lost = 7300 = cwnd: no room.
    send(c, 13, sackAck(0, [[3, 6], [1, 2]]));
    recvNothing(c, 13);
    // pipe = 14600 - 7300 - 1460 = 5840: one segment fits, the hole at segment 2.
    send(c, 14, sackAck(0, [[3, 7], [1, 2]]));
    recv(c, 14, [rtx(d, 2)]);
    expect(c.snapshot().cwnd).to.equal(7300);
  });

  it("RFC 6675 §5: the cumulative ACK covering RecoveryPoint ends SACK recovery", () => {
    const { c, d } = tenInFlight(SACK, SACK_SYN);
    send(c, 10, sackAck(0, [[1, 4]]));
    recv(c, 10, [rtx(d, 0)]);
    send(c, 20, peerAck(10 * MSS));
    recvNothing(c, 20);
    expect(c.snapshot().inRecovery).to.equal(false);
    expect(c.pollAt()).to.equal(Infinity);
  });

  it("RFC 2018 §2: SACK blocks are ignored when SACK was not negotiated", () => {
    const { c } = tenInFlight(NEWRENO, { mss: 1460 });
    send(c, 10, sackAck(0, [[1, 4]]));
    recvNothing(c, 10);
    expect(c.snapshot().inRecovery).to.equal(false);
  });

  it("SACK blocks above SND.MAX are ignored", () => {
    const { c } = tenInFlight(SACK, SACK_SYN);
    send(c, 10, sackAck(0, [[11, 14]]));
    recvNothing(c, 10);
    expect(c.snapshot().inRecovery).to.equal(false);
  });

  it("SACK blocks below SND.UNA or with the left edge not below the right are ignored; recovery then works as usual", () => {
    const { c, d } = tenInFlight(SACK, SACK_SYN);
    send(c, 10, peerAck(2 * MSS));
    recvNothing(c, 10);
    // [0, 2) lies below SND.UNA; [9, 3) is reversed (a naive length would be ~2^32).
    send(c, 11, sackAck(2 * MSS, [[0, 2], [9, 3]]));
    recvNothing(c, 11);
    expect(c.snapshot().inRecovery).to.equal(false);
    send(c, 12, sackAck(2 * MSS, [[3, 4]]));
    recvNothing(c, 12);
    send(c, 13, sackAck(2 * MSS, [[3, 5]]));
    // Third duplicate ACK: the segment at SND.UNA (segment 2) goes again.
    recv(c, 13, [rtx(d, 2)]);
  });
});
