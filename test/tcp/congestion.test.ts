import { expect } from "chai";
import fc from "fast-check";
import {
  INITIAL_SSTHRESH,
  NewReno,
  deflateForPartialAck,
  inflateForDupAck,
  inflateOnEnter,
  initialWindow,
  lossSsthresh,
  type CongestionControlFactory,
} from "../../src/tcp/congestion.js";

const MSS = 1460;

/** One round trip: a window's worth of segments acknowledged `perAck` segments at a time. */
function roundTrip(cc: NewReno, perAck: number, mss = MSS): void {
  const segments = Math.floor(cc.cwnd / mss);
  for (let sent = 0; sent < segments; sent += perAck) cc.onAck(Math.min(perAck, segments - sent) * mss, mss, 0);
}

describe("tcp/congestion (RFC 5681, RFC 6582, RFC 3465, RFC 6928)", () => {
  it("initial window: RFC 6928 IW10 by default, RFC 3390 for four segments", () => {
    expect(initialWindow(1460)).to.equal(14_600);
    expect(initialWindow(536)).to.equal(5360);
    expect(initialWindow(1000)).to.equal(10_000);
    expect(initialWindow(9000)).to.equal(18_000); // max(2*MSS, 14600) caps jumbo segments
    expect(initialWindow(1460, 4)).to.equal(4380); // 3 segments of 1460
    expect(initialWindow(1095, 4)).to.equal(4380);
    expect(initialWindow(536, 4)).to.equal(2144);
    expect(initialWindow(3000, 4)).to.equal(6000);
    expect(initialWindow(1460, 1)).to.equal(1460);
    expect(initialWindow(1460, 20)).to.equal(29_200);
    expect(new NewReno(1460).cwnd).to.equal(14_600);
    expect(new NewReno(1460, 4).cwnd).to.equal(4380);
  });

  it("starts in slow start with an arbitrarily high ssthresh (RFC 5681 §3.1)", () => {
    const cc = new NewReno(MSS);
    expect(cc.name).to.equal("newreno");
    expect(cc.ssthresh).to.equal(INITIAL_SSTHRESH);
    expect(INITIAL_SSTHRESH).to.equal(65_535 * 16_384);
  });

  it("slow start doubles cwnd per RTT, with one ACK per segment or per two (ABC, L = 2*SMSS)", () => {
    for (const perAck of [1, 2]) {
      const cc = new NewReno(MSS);
      const seen = [cc.cwnd];
      for (let rtt = 0; rtt < 4; rtt++) {
        roundTrip(cc, perAck);
        seen.push(cc.cwnd);
      }
      expect(seen).to.deep.equal([10, 20, 40, 80, 160].map((n) => n * MSS));
    }
  });

  it("limits growth per ACK to 2*SMSS in slow start (RFC 3465 §2.2)", () => {
    const cc = new NewReno(MSS);
    cc.onAck(8 * MSS, MSS, 0); // one stretch ACK for 8 segments
    expect(cc.cwnd).to.equal(12 * MSS);
    roundTrip(cc, 4); // 12 segments in 3 ACKs: +2 MSS each
    expect(cc.cwnd).to.equal(18 * MSS);
    cc.onAck(100, MSS, 0); // a small ACK grows by what it acknowledges
    expect(cc.cwnd).to.equal(18 * MSS + 100);
    cc.onAck(0, MSS, 0);
    cc.onAck(-5, MSS, 0);
    expect(cc.cwnd).to.equal(18 * MSS + 100);
  });

  it("stops slow start at ssthresh and continues in congestion avoidance", () => {
    const cc = new NewReno(MSS);
    cc.ssthresh = 11 * MSS;
    cc.onAck(2 * MSS, MSS, 0);
    expect(cc.cwnd).to.equal(11 * MSS); // capped at ssthresh, 1 MSS of this ACK goes to byte counting
    for (let i = 0; i < 9; i++) cc.onAck(MSS, MSS, 0);
    expect(cc.cwnd).to.equal(11 * MSS);
    cc.onAck(MSS, MSS, 0); // 11 MSS counted: one increment
    expect(cc.cwnd).to.equal(12 * MSS);
  });

  it("congestion avoidance grows about one SMSS per RTT (RFC 5681 §3.1, byte counting)", () => {
    const cc = new NewReno(MSS);
    cc.cwnd = 20 * MSS;
    cc.ssthresh = 20 * MSS;
    const seen = [cc.cwnd];
    for (let rtt = 0; rtt < 5; rtt++) {
      roundTrip(cc, 1);
      seen.push(cc.cwnd);
    }
    expect(seen).to.deep.equal([20, 21, 22, 23, 24, 25].map((n) => n * MSS));
    // Delayed ACKs do not slow it down: byte counting, not ACK counting.
    roundTrip(cc, 2);
    expect(cc.cwnd).to.equal(26 * MSS);
  });

  it("congestion avoidance never grows by more than one SMSS per cwnd of acknowledged bytes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 4, max: 200 }), fc.array(fc.integer({ min: 1, max: 3 * MSS }), { minLength: 1, maxLength: 400 }), (w, acks) => {
        const cc = new NewReno(MSS);
        cc.cwnd = w * MSS;
        cc.ssthresh = cc.cwnd;
        const total = acks.reduce((a, b) => a + b, 0);
        for (const a of acks) cc.onAck(a, MSS, 0);
        const grew = cc.cwnd - w * MSS;
        expect(grew % MSS).to.equal(0);
        // Growth n SMSS needs at least w + (w+1) + ... + (w+n-1) SMSS of acknowledged bytes.
        const n = grew / MSS;
        expect(total).to.be.at.least(((n * (2 * w + n - 1)) / 2) * MSS);
      }),
    );
  });

  it("entering recovery: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = ssthresh (RFC 5681 §3.2, RFC 6675 §5)", () => {
    const cc = new NewReno(MSS);
    cc.onEnterRecovery(20 * MSS, MSS, 0);
    expect([cc.ssthresh, cc.cwnd]).to.deep.equal([10 * MSS, 10 * MSS]);
    cc.onEnterRecovery(MSS, MSS, 0);
    expect([cc.ssthresh, cc.cwnd]).to.deep.equal([2 * MSS, 2 * MSS]);
    cc.onEnterRecovery(10_001, 1000, 0);
    expect(cc.ssthresh).to.equal(5000); // whole bytes
    expect(lossSsthresh(10_001, 1000)).to.equal(5000);
  });

  it("NewReno recovery without SACK: inflate by 3*SMSS, then 1 SMSS per dupACK, deflate on partial ACK", () => {
    const cc = new NewReno(MSS);
    cc.onEnterRecovery(20 * MSS, MSS, 0);
    inflateOnEnter(cc, MSS);
    expect(cc.cwnd).to.equal(13 * MSS);
    inflateForDupAck(cc, MSS);
    inflateForDupAck(cc, MSS);
    expect(cc.cwnd).to.equal(15 * MSS);
    deflateForPartialAck(cc, 4 * MSS, MSS); // -4 SMSS acknowledged, +1 SMSS back
    expect(cc.cwnd).to.equal(12 * MSS);
    deflateForPartialAck(cc, 100, MSS); // less than one SMSS: nothing added back
    expect(cc.cwnd).to.equal(12 * MSS - 100);
    deflateForPartialAck(cc, 100 * MSS, MSS);
    expect(cc.cwnd).to.equal(MSS);
  });

  it("full ACK leaving recovery: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) (RFC 6582 §3.2 step 3)", () => {
    const cc = new NewReno(MSS);
    cc.onEnterRecovery(20 * MSS, MSS, 0); // ssthresh 10 MSS
    cc.cwnd = 17 * MSS; // inflated meanwhile
    cc.onExitRecovery(3 * MSS, MSS, 0);
    expect(cc.cwnd).to.equal(4 * MSS);
    cc.onExitRecovery(20 * MSS, MSS, 0);
    expect(cc.cwnd).to.equal(10 * MSS);
    cc.onExitRecovery(0, MSS, 0);
    expect(cc.cwnd).to.equal(2 * MSS);
    expect(cc.ssthresh).to.equal(10 * MSS);
    // After recovery cwnd < ssthresh: slow start again up to ssthresh.
    cc.onAck(2 * MSS, MSS, 0);
    expect(cc.cwnd).to.equal(4 * MSS);
  });

  it("retransmission timeout: ssthresh = max(FlightSize/2, 2*SMSS), cwnd = 1 SMSS, then slow start", () => {
    const cc = new NewReno(MSS);
    roundTrip(cc, 1); // 20 MSS
    cc.onRetransmitTimeout(16 * MSS, MSS, 0);
    expect([cc.ssthresh, cc.cwnd]).to.deep.equal([8 * MSS, MSS]);
    const seen = [cc.cwnd];
    for (let rtt = 0; rtt < 5; rtt++) {
      roundTrip(cc, 1);
      seen.push(cc.cwnd);
    }
    // 1, 2, 4, 8 (ssthresh reached), then one SMSS per RTT.
    expect(seen).to.deep.equal([1, 2, 4, 8, 9, 10].map((n) => n * MSS));
    cc.onRetransmitTimeout(MSS, MSS, 0);
    expect([cc.ssthresh, cc.cwnd]).to.deep.equal([2 * MSS, MSS]);
  });

  it("is usable as a factory for the engine configuration", () => {
    const factory: CongestionControlFactory = (mss) => new NewReno(mss);
    const cc = factory(536);
    expect(cc.cwnd).to.equal(5360);
    expect(cc.name).to.equal("newreno");
  });
});
