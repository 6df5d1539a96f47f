/**
 * The TCP engine against itself over a seeded, lossy, reordering, duplicating link
 * (test/tcp/netsim.ts): byte-exact delivery both ways with half-close, and a clean close,
 * across thousands of seeds; multi-megabyte transfers; and long fat pipes where window
 * scaling and SACK must show in the completion time. Deterministic: a failing seed replays.
 */
import { expect } from "chai";
import { runTransfer, type LinkParams, type SimResult } from "./netsim.js";
import { seededRandom } from "../../src/link/fault.js";
import type { TcpConfig } from "../../src/tcp/config.js";

function randomLink(seed: number): { link: LinkParams; config: Partial<TcpConfig> } {
  const r = seededRandom(seed * 7919 + 13);
  const link: LinkParams = {
    delayMs: 0.1 + r() * 20,
    jitterMs: r() < 0.5 ? 0 : r() * 5,
    loss: r() < 0.2 ? 0 : r() * 0.1,
    duplicate: r() < 0.5 ? 0 : r() * 0.05,
    bandwidth: [1e3, 1e4, 1e5][Math.floor(r() * 3)],
    queueBytes: [64e3, 256e3, 4e6][Math.floor(r() * 3)],
  };
  const config: Partial<TcpConfig> = {
    sack: r() < 0.75,
    timestamps: r() < 0.75,
    windowScaling: r() < 0.75,
    delayedAckMs: r() < 0.5 ? 0 : 40,
    nagle: r() < 0.2,
    recvBufferSize: [16e3, 64e3, 1 << 20][Math.floor(r() * 3)],
    mss: [536, 1460, 8960][Math.floor(r() * 3)],
  };
  return { link, config };
}

function clean(r: SimResult, a: number, b: number): string | undefined {
  if (r.corruptAtA || r.corruptAtB) return "corrupt data";
  if (r.receivedAtB !== a) return `B received ${r.receivedAtB} of ${a}`;
  if (r.receivedAtA !== b) return `A received ${r.receivedAtA} of ${b}`;
  if (!r.closedA || !r.closedB) return `not closed (A ${r.closedA}, B ${r.closedB})`;
  if (r.errorA || r.errorB) return `error A=${r.errorA} B=${r.errorB}`;
  return undefined;
}

const SEEDS = Number(process.env.SKIFF_NETSIM_SEEDS ?? 5000);

describe("tcp/netsim: two engines over a hostile link", function () {
  this.timeout(600_000);

  it(`delivers byte-exact both ways and closes cleanly for ${SEEDS} seeds (random loss, duplication, reordering, options)`, () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= SEEDS; seed++) {
      const { link, config } = randomLink(seed);
      const a = 40_000 + (seed % 7) * 9_000;
      const b = 20_000 + (seed % 5) * 7_000;
      const r = runTransfer({ seed, link, config, sizeAtoB: a, sizeBtoA: b, writeSize: 1000 + (seed % 13) * 700 });
      const why = clean(r, a, b);
      if (why) failures.push(`seed ${seed}: ${why} (${JSON.stringify({ link, config })})`);
    }
    expect(failures.slice(0, 5)).to.deep.equal([]);
  });

  it("moves 4 MB each way under 1% loss, 1% duplication and jitter, for 20 seeds", () => {
    const link: LinkParams = { delayMs: 5, jitterMs: 0.5, loss: 0.01, duplicate: 0.01, bandwidth: 1e5, queueBytes: 2e6 };
    for (let seed = 1; seed <= 20; seed++) {
      const r = runTransfer({ seed, link, sizeAtoB: 4 << 20, sizeBtoA: 4 << 20, config: { recvBufferSize: 1 << 20 } });
      expect(clean(r, 4 << 20, 4 << 20), `seed ${seed}`).to.equal(undefined);
    }
  });

  describe("long fat pipe (100 ms RTT, 80 Mbit/s, 8 MB)", () => {
    const lfn: LinkParams = { delayMs: 50, jitterMs: 0, loss: 0, duplicate: 0, bandwidth: 1e4, queueBytes: 2e6 };
    const big: Partial<TcpConfig> = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 };
    const avg = (link: LinkParams, config: Partial<TcpConfig>, seeds = 4) => {
      let t = 0;
      for (let seed = 1; seed <= seeds; seed++) {
        const r = runTransfer({ seed, link, config, sizeAtoB: 8e6, sizeBtoA: 0 });
        expect(clean(r, 8e6, 0), `seed ${seed}`).to.equal(undefined);
        t += r.doneAtoBMs;
      }
      return t / seeds;
    };

    it("window scaling: at least 3× faster than a 64 KiB window (RFC 7323 §2)", () => {
      const withWs = avg(lfn, big);
      const without = avg(lfn, { ...big, windowScaling: false });
      console.log(`      8 MB over LFN: ${withWs.toFixed(0)} ms with window scaling, ${without.toFixed(0)} ms without`);
      // Without scaling the window caps the rate at 64 KiB per RTT: 8 MB needs >= 12 s.
      expect(without).to.be.greaterThan(12_000);
      expect(withWs * 3).to.be.lessThan(without);
    });

    it("SACK: faster than NewReno alone under 0.2% random loss (RFC 6675)", () => {
      const lossy = { ...lfn, loss: 0.002 };
      const sack = avg(lossy, big);
      const newreno = avg(lossy, { ...big, sack: false });
      console.log(`      8 MB over LFN, 0.2% loss: ${sack.toFixed(0)} ms with SACK, ${newreno.toFixed(0)} ms without`);
      expect(sack).to.be.lessThan(newreno);
    });
  });
});
