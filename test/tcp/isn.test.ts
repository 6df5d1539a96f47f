import { expect } from "chai";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { IsnGenerator, randomU32 } from "../../src/tcp/isn.js";
import { seqSub } from "../../src/tcp/seq.js";
import { ipv4, u16 } from "../support/arbitraries.js";

const KEY = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const GUEST = 0xc0a84103; // 192.168.65.3
const GW = 0xc0a84101; // 192.168.65.1

describe("tcp/isn (RFC 6528 §3)", () => {
  it("matches ISN = M + F by hand: M = 250 ticks/ms, F = first 32 bits of SHA-256(tuple || key)", () => {
    const g = new IsnGenerator(KEY);
    const tuple = Buffer.from([0xc0, 0xa8, 0x41, 0x01, 0x00, 0x50, 0xc0, 0xa8, 0x41, 0x03, 0xd4, 0x31]);
    const f = createHash("sha256").update(tuple).update(KEY).digest().readUInt32BE(0);
    expect(g.next(GW, 80, GUEST, 54321, 0)).to.equal(f);
    expect(g.next(GW, 80, GUEST, 54321, 1000)).to.equal((f + 250_000) >>> 0);
  });

  it("gives the same ISN for the same tuple, time and secret", () => {
    fc.assert(
      fc.property(ipv4(), u16(), ipv4(), u16(), fc.double({ min: 0, max: 1e12, noNaN: true }), (li, lp, ri, rp, t) => {
        const a = new IsnGenerator(KEY).next(li, lp, ri, rp, t);
        const b = new IsnGenerator(KEY).next(li, lp, ri, rp, t);
        expect(a).to.equal(b);
        expect(a).to.be.within(0, 0xffff_ffff);
        expect(Number.isInteger(a)).to.equal(true);
      }),
    );
  });

  it("differs between secrets and between tuples", () => {
    const a = new IsnGenerator(KEY);
    const b = new IsnGenerator(Uint8Array.from(KEY, (x) => x ^ 0x80));
    let differ = 0;
    for (let port = 1000; port < 1100; port++) if (a.next(GW, 80, GUEST, port, 5) !== b.next(GW, 80, GUEST, port, 5)) differ++;
    expect(differ).to.equal(100);
    const seen = new Set<number>();
    for (let port = 1000; port < 1100; port++) seen.add(a.next(GW, 80, GUEST, port, 5));
    expect(seen.size).to.equal(100); // 100 tuples, 100 different offsets (a collision is ~1e-6 likely)
    // Swapping local and remote is a different connection.
    expect(a.next(GW, 80, GUEST, 1234, 0)).to.not.equal(a.next(GUEST, 1234, GW, 80, 0));
  });

  it("the default secret is random per generator", () => {
    expect(new IsnGenerator().next(GW, 80, GUEST, 1, 0)).to.not.equal(new IsnGenerator().next(GW, 80, GUEST, 1, 0));
  });

  it("copies the secret it is given", () => {
    const key = Uint8Array.from(KEY);
    const g = new IsnGenerator(key);
    const before = g.next(GW, 80, GUEST, 1, 0);
    key.fill(0);
    expect(g.next(GW, 80, GUEST, 1, 0)).to.equal(before);
  });

  it("advances with time at 250 per ms (a 4 µs clock), wrapping modulo 2^32", () => {
    const g = new IsnGenerator(KEY);
    const t0 = g.next(GW, 80, GUEST, 40_000, 0);
    expect(seqSub(g.next(GW, 80, GUEST, 40_000, 1), t0)).to.equal(250);
    expect(seqSub(g.next(GW, 80, GUEST, 40_000, 0.004), t0)).to.equal(1);
    expect(seqSub(g.next(GW, 80, GUEST, 40_000, 0.0039), t0)).to.equal(0);
    expect(seqSub(g.next(GW, 80, GUEST, 40_000, 3_600_000), t0)).to.equal(900_000_000); // one hour
    // 2^32 ticks = 17,179,869.184 ms later the clock has gone round once.
    expect(g.next(GW, 80, GUEST, 40_000, 17_179_869.184)).to.equal(t0);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e11 }), fc.integer({ min: 0, max: 1_000_000 }), (t, dtMs) => {
        const a = g.next(GW, 80, GUEST, 40_000, t);
        const b = g.next(GW, 80, GUEST, 40_000, t + dtMs);
        // dtMs milliseconds later: exactly 250 * dtMs ticks.
        expect(seqSub(b, a)).to.equal(250 * dtMs);
      }),
    );
  });

  it("randomU32: uint32 values, refilled past the 1,024-value pool, not constant", () => {
    const seen = new Set<number>();
    for (let i = 0; i < 3000; i++) {
      const v = randomU32();
      expect(Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff).to.equal(true);
      seen.add(v);
    }
    expect(seen.size).to.be.above(2990);
  });
});
