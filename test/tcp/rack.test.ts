/**
 * RACK-TLP (RFC 8985), exact segments: time-based loss detection with the reordering window and
 * timer (§6.2), lost retransmissions found without a timeout, tail loss probes at the PTO
 * (§7), and the RTO as the backstop when even the probes go unanswered.
 *
 * Read first: RFC 8985 §6.2 (RACK_detect_loss: a segment is lost when one sent after it was
 * delivered and more than RACK.rtt + RACK.reo_wnd has passed since it was sent; reo_wnd =
 * min(min_RTT/4, SRTT), 0 in recovery until reordering is seen), §7.2-§7.3 (PTO = 2*SRTT; the
 * probe is new data or the last segment again); RFC 2018 §3 (SACK blocks).
 *
 * Every test opens with an RTT of 10 ms (the peer's ACK of our SYN-ACK at t=10, so SRTT = 10,
 * RTO = the 200 ms floor) and sends its first flight at t=10; the peer answers 10 ms later.
 * Retransmissions carry PSH (as in recovery.test.ts).
 */
import { expect } from "chai";
import type { TcpConnection } from "../../src/tcp/connection.js";
import type { TcpConfig } from "../../src/tcp/config.js";
import { ACK, PSH, drain, openPassive, ourData, ourSeq, pattern, peerAck, recv, recvNothing, send, type Seg } from "./harness.js";

const MSS = 1460;
const SACK_SYN = { mss: 1460, sackPermitted: true };

function segK(d: Uint8Array, k: number, flags: number = ACK): Seg {
  return ourData(d, k * MSS, (k + 1) * MSS, flags);
}

function rtx(d: Uint8Array, k: number): Seg {
  return segK(d, k, PSH | ACK);
}

/** The peer's ACK of our segment `n` (exclusive), with SACK blocks in segment numbers [from, to). */
function sackAck(n: number, sack: Array<[number, number]> = []): Seg {
  const options = sack.length ? { sack: sack.map(([a, b]): [number, number] => [ourSeq(a * MSS), ourSeq(b * MSS)]) } : {};
  return peerAck(n * MSS, 65535, { options });
}

/** Segment numbers of the data segments in `segs` (for the steps where only which ones matters). */
function which(segs: Seg[]): number[] {
  return segs.filter((x) => x.payload.length > 0).map((x) => ((x.seq - ourSeq(0)) >>> 0) / MSS);
}

/** ESTABLISHED with SACK and SRTT = 10 ms; `segments` full segments written; the first flight sent at t=10. */
function flight(segments: number, cfg: Partial<TcpConfig> = {}): { c: TcpConnection; d: Uint8Array } {
  const c = openPassive({ sack: true, ...cfg }, SACK_SYN, { synAt: 0, ackAt: 10 });
  const d = pattern(segments * MSS);
  c.write(d);
  const sent = drain(c, 10);
  expect(which(sent)).to.deep.equal(Array.from({ length: Math.min(10, segments) }, (_, k) => k));
  return { c, d };
}

describe("tcp/rack: RACK loss detection (RFC 8985 §6)", () => {
  it("§6.2 step 5: one SACK above a hole marks it lost when the reordering timer fires (RACK.rtt + min_RTT/4 after it was sent), before three duplicate ACKs", () => {
    const { c, d } = flight(10);
    send(c, 20, sackAck(0, [[1, 2]]));
    recvNothing(c, 20);
    // Sent at 10, RACK.rtt 10, reo_wnd = min(10/4, SRTT) = 2.5.
    expect(c.pollAt()).to.equal(22.5);
    recvNothing(c, 22.4);
    recv(c, 22.5, [rtx(d, 0)]);
    expect(c.snapshot().inRecovery).to.equal(true);
    expect(c.counters.rackRecoveries).to.equal(1);
    expect(c.counters.timeouts).to.equal(0);
  });

  it("§6.2 step 3-4: reordering within the window is not marked lost (the late segment arrives before the timer)", () => {
    const { c } = flight(10);
    send(c, 20, sackAck(0, [[1, 2]]));
    recvNothing(c, 20);
    // Segment 0 was only late: the cumulative ACK covers it before 22.5.
    send(c, 21, sackAck(2));
    recvNothing(c, 21);
    recvNothing(c, 25);
    expect(c.counters.retransmittedSegments).to.equal(0);
    expect(c.snapshot().inRecovery).to.equal(false);
    expect(c.snapshot().ssthresh).to.be.greaterThan(1e6);
  });

  it("§6.2: a lost retransmission is found when a segment sent after it is SACKed, and resent without a timeout", () => {
    const { c, d } = flight(20);
    // Segments 0 and 1 acknowledged: slow start sends four more (10-13).
    send(c, 20, sackAck(2));
    expect(which(drain(c, 20))).to.deep.equal([10, 11, 12, 13]);
    // Segment 2 lost: duplicate ACKs with SACK; limited transmit sends 14 and 15.
    send(c, 21, sackAck(2, [[3, 4]]));
    expect(which(drain(c, 21))).to.deep.equal([14]);
    send(c, 22, sackAck(2, [[3, 5]]));
    expect(which(drain(c, 22))).to.deep.equal([15]);
    // Third duplicate ACK: reo_wnd drops to 0 (§6.2 step 4) and segment 2 is lost.
    send(c, 23, sackAck(2, [[3, 6]]));
    recv(c, 23, [rtx(d, 2)]);
    // The retransmission is lost too. SACKs for older segments say nothing about it ...
    send(c, 30, sackAck(2, [[3, 12]]));
    expect(which(drain(c, 30))).to.deep.equal([16, 17]);
    // ... but segments 16 and 17, sent at 30 after it, arrive: segment 2 goes again at once
    // (and, with the pipe down to one segment, the last new data).
    send(c, 40, sackAck(2, [[3, 18]]));
    expect(which(drain(c, 40))).to.deep.equal([2, 18, 19]);
    expect(c.counters.timeouts).to.equal(0);
    send(c, 45, sackAck(20));
    expect(c.snapshot().inRecovery).to.equal(false);
    recvNothing(c, 45);
    expect(c.pollAt()).to.equal(Infinity);
    expect(c.counters.timeouts).to.equal(0);
  });
});

describe("tcp/rack: tail loss probe (RFC 8985 §7)", () => {
  it("§7.2-7.3: the last segments lost: a probe (the last segment again) at PTO = 2*SRTT, then RACK repairs the rest, no RTO", () => {
    const { c, d } = flight(10);
    // Segments 8 and 9 lost: nothing more arrives after this ACK.
    send(c, 20, sackAck(8));
    recvNothing(c, 20);
    expect(c.pollAt()).to.equal(40);
    recvNothing(c, 39);
    recv(c, 40, [rtx(d, 9)]);
    expect(c.counters.lossProbes).to.equal(1);
    // The probe's ACK SACKs segment 9: segment 8, sent long before, is lost.
    send(c, 50, sackAck(8, [[9, 10]]));
    recv(c, 50, [rtx(d, 8)]);
    send(c, 60, sackAck(10));
    recvNothing(c, 60);
    expect(c.counters.timeouts).to.equal(0);
    expect(c.pollAt()).to.equal(Infinity);
  });

  it("§7.3: with data queued and room in the peer's window, the probe is the next new segment (beyond cwnd)", () => {
    const { c, d } = flight(12);
    // The whole flight is lost; the peer's window has room for segments 10 and 11.
    recvNothing(c, 29);
    recv(c, 30, [segK(d, 10)]);
    expect(c.counters.lossProbes).to.equal(1);
    send(c, 40, sackAck(0, [[10, 11]]));
    // Everything sent at 10 is lost by RACK; recovery resends from segment 0 as cwnd allows.
    expect(which(drain(c, 40))[0]).to.equal(0);
    expect(c.counters.timeouts).to.equal(0);
  });

  it("the RTO stays the backstop: unanswered probes (the last segment at PTO, then the first at 2, 4, 8 x PTO) until the RTO would come first", () => {
    const { c, d } = flight(10);
    recv(c, 30, [rtx(d, 9)]);
    recvNothing(c, 69);
    recv(c, 70, [rtx(d, 0)]);
    recvNothing(c, 149);
    recv(c, 150, [rtx(d, 0)]);
    recvNothing(c, 309);
    recv(c, 310, [rtx(d, 0)]);
    expect(c.counters.lossProbes).to.equal(4);
    // The next probe would be due at 310 + 16 * 20 = 630, after the RTO (restarted with the last probe): 310 + 200.
    expect(c.pollAt()).to.equal(510);
    recv(c, 510, [segK(d, 0)]);
    expect(c.counters.timeouts).to.equal(1);
    expect(c.counters.lossProbes).to.equal(4);
  });

  it("§7.4.2: a probe that was not needed (the ACK of the original was only late): the D-SACK for the probe keeps cwnd", () => {
    const { c, d } = flight(10);
    send(c, 20, sackAck(8));
    recv(c, 40, [rtx(d, 9)]);
    // The original's ACK (exactly TLP.end_seq: may be for either copy), then the probe's D-SACK.
    send(c, 41, sackAck(10));
    send(c, 42, sackAck(10, [[9, 10]]));
    recvNothing(c, 42);
    expect(c.snapshot().ssthresh).to.be.greaterThan(1e6);
    expect(c.counters.timeouts).to.equal(0);
  });

  it("§7.4.2: a probe that repaired a loss (the cumulative ACK passes it, no D-SACK): cwnd is reduced once", () => {
    const { c, d } = flight(10);
    // Segment 8 arrives but its ACK is lost; segment 9 is lost.
    send(c, 20, sackAck(8));
    recv(c, 40, [rtx(d, 9)]);
    const before = c.snapshot().cwnd;
    // The probe fills the hole; more data follows and is acknowledged beyond TLP.end_seq.
    send(c, 50, sackAck(10));
    const more = pattern(2 * MSS, 7);
    c.write(more);
    expect(which(drain(c, 50))).to.deep.equal([10, 11]);
    expect(c.snapshot().ssthresh).to.be.greaterThan(1e6);
    const grown = c.snapshot().cwnd;
    send(c, 60, sackAck(12));
    // RFC 5681 eq. (4) on the window of the moment (grown by this ACK's 2 SMSS): halved, once.
    const snap = c.snapshot();
    expect(grown).to.be.greaterThan(before);
    expect(snap.ssthresh).to.equal(Math.floor((grown + 2 * MSS) / 2));
    expect(snap.cwnd).to.equal(snap.ssthresh);
    expect(snap.inRecovery).to.equal(false);
  });

  it("off with `tlp: false` (RACK alone): the tail waits for the RTO", () => {
    const { c, d } = flight(10, { tlp: false });
    send(c, 20, sackAck(8));
    recvNothing(c, 20);
    expect(c.pollAt()).to.equal(220);
    recv(c, 220, [segK(d, 8)]);
    expect(c.counters.timeouts).to.equal(1);
  });
});
