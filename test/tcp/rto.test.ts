import { expect } from "chai";
import fc from "fast-check";
import { RttEstimator, type RtoOptions } from "../../src/tcp/rto.js";

const OPTS: RtoOptions = { initialRto: 1000, minRto: 200, maxRto: 60_000 };

describe("tcp/rto (RFC 6298)", () => {
  it("starts at the initial RTO with no measurement (2.1)", () => {
    const e = new RttEstimator(OPTS);
    expect(e.srtt).to.equal(undefined);
    expect(e.rttvar).to.equal(undefined);
    expect(e.rto).to.equal(1000);
    expect(e.timeout()).to.equal(1000);
    expect(e.backoffs).to.equal(0);
  });

  it("computes the exact values of (2.2) and (2.3) after known samples", () => {
    const e = new RttEstimator(OPTS);
    // (2.2): SRTT = 100, RTTVAR = 50, RTO = 100 + max(1, 4*50) = 300.
    e.sample(100);
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([100, 50, 300]);
    // (2.3), RTTVAR first with the old SRTT: 3/4*50 + 1/4*|100-200| = 62.5;
    // SRTT = 7/8*100 + 1/8*200 = 112.5; RTO = 112.5 + 4*62.5 = 362.5.
    e.sample(200);
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([112.5, 62.5, 362.5]);
    // RTTVAR = 3/4*62.5 + 1/4*|112.5-80| = 46.875 + 8.125 = 55;
    // SRTT = 7/8*112.5 + 1/8*80 = 108.4375; RTO = 108.4375 + 220 = 328.4375.
    e.sample(80);
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([108.4375, 55, 328.4375]);
  });

  it("uses the clock granularity G when K*RTTVAR is smaller (2.3)", () => {
    const e = new RttEstimator({ initialRto: 1000, minRto: 0.5, maxRto: 60_000, granularity: 10 });
    e.sample(1); // RTO = 1 + max(10, 4*0.5) = 11
    expect(e.rto).to.equal(11);
    e.sample(1); // RTTVAR = 3/8, RTO = 1 + max(10, 1.5) = 11
    expect(e.rttvar).to.equal(0.375);
    expect(e.rto).to.equal(11);
    const g1 = new RttEstimator({ initialRto: 1000, minRto: 0.5, maxRto: 60_000 });
    for (let i = 0; i < 200; i++) g1.sample(4); // RTTVAR decays to ~0, G = 1 ms by default
    expect(g1.rto).to.be.closeTo(5, 1e-9);
  });

  it("clamps to [minRto, maxRto] (2.4), (2.5), including the initial value", () => {
    const e = new RttEstimator(OPTS);
    e.sample(1); // 1 + max(1, 2) = 3 -> 200
    expect(e.rto).to.equal(200);
    e.sample(0); // a zero RTT on a local link is a valid sample
    expect(e.srtt).to.equal(0.875);
    expect(e.rto).to.equal(200);
    const slow = new RttEstimator(OPTS);
    slow.sample(100_000);
    expect(slow.rto).to.equal(60_000);
    expect(new RttEstimator({ ...OPTS, initialRto: 50 }).rto).to.equal(200);
    expect(new RttEstimator({ ...OPTS, initialRto: 90_000 }).rto).to.equal(60_000);
  });

  it("doubles the timeout per backoff (5.5), capped at maxRto", () => {
    const e = new RttEstimator(OPTS);
    e.sample(100); // RTO 300
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      seen.push(e.timeout());
      e.backoff();
    }
    expect(seen).to.deep.equal([300, 600, 1200, 2400, 4800, 9600, 19_200, 38_400, 60_000, 60_000]);
    expect(e.backoffs).to.equal(10);
    expect(e.rto).to.equal(300); // rto itself is the estimator's value, without backoff
    for (let i = 0; i < 5000; i++) e.backoff();
    expect(e.timeout()).to.equal(60_000); // no overflow to NaN/Infinity
  });

  it("backs off from the initial RTO before any sample (2.1)", () => {
    const e = new RttEstimator(OPTS);
    e.backoff();
    e.backoff();
    expect(e.timeout()).to.equal(4000);
  });

  it("a new sample collapses the backoff (§5); resetBackoff clears it too", () => {
    const e = new RttEstimator(OPTS);
    e.backoff();
    e.backoff();
    e.sample(100);
    expect(e.backoffs).to.equal(0);
    expect(e.timeout()).to.equal(300);
    e.backoff();
    expect(e.timeout()).to.equal(600);
    e.resetBackoff();
    expect(e.backoffs).to.equal(0);
    expect(e.timeout()).to.equal(300);
  });

  it("ignores negative and non-finite samples", () => {
    const e = new RttEstimator(OPTS);
    e.sample(-5);
    e.sample(Number.NaN);
    e.sample(Infinity);
    expect(e.srtt).to.equal(undefined);
    e.sample(100);
    e.sample(-1);
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([100, 50, 300]);
  });

  it("resetMeasurements returns to the initial RTO and the next sample uses (2.2)", () => {
    const e = new RttEstimator(OPTS);
    e.sample(100);
    e.sample(300);
    e.resetMeasurements();
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([undefined, undefined, 1000]);
    e.sample(400);
    expect([e.srtt, e.rttvar, e.rto]).to.deep.equal([400, 200, 1200]);
  });

  it("rejects inconsistent options", () => {
    expect(() => new RttEstimator({ initialRto: 1000, minRto: 0, maxRto: 100 })).to.throw(RangeError);
    expect(() => new RttEstimator({ initialRto: 1000, minRto: 300, maxRto: 100 })).to.throw(RangeError);
    expect(() => new RttEstimator({ initialRto: 0, minRto: 1, maxRto: 100 })).to.throw(RangeError);
  });

  it("keeps rto and timeout within bounds for any samples and backoffs", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.double({ min: 0, max: 200_000, noNaN: true }), fc.constant(-1 as number)), { maxLength: 50 }),
        fc.nat(40),
        (samples, backoffs) => {
          const e = new RttEstimator(OPTS);
          for (const s of samples) {
            e.sample(s);
            expect(e.rto).to.be.within(200, 60_000);
            if (e.srtt !== undefined) expect(e.rttvar).to.be.at.least(0);
          }
          for (let i = 0; i < backoffs; i++) e.backoff();
          const t = e.timeout();
          expect(t).to.be.within(e.rto, 60_000);
          expect(t).to.equal(Math.min(60_000, e.rto * 2 ** backoffs));
        },
      ),
    );
  });
});
