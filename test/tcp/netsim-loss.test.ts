/**
 * The TCP engine against itself over a seeded link with random loss each way and a round trip
 * of 0.1 ms (a guest on the same machine, where the 200 ms minimum RTO is 2,000 round trips):
 * every byte arrives intact both ways, and with RACK-TLP (RFC 8985) the retransmission timer
 * almost never has to fire — counted, not timed. The same transfers with RACK-TLP off (RFC 6675
 * and NewReno alone) give the comparison.
 */
import { expect } from "chai";
import { runTransfer, type LinkParams } from "./netsim.js";

const SEEDS = 10;
const A_TO_B = 2_000_000;
const B_TO_A = 200_000;

/** Total RTO expiries (both ends) over the seeds; every transfer must be intact and closed. */
function timeouts(loss: number, rack: boolean): number {
  const link: LinkParams = { delayMs: 0.05, jitterMs: 0, loss, duplicate: 0, bandwidth: 1e5, queueBytes: 4e6 };
  let total = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = runTransfer({ seed, link, sizeAtoB: A_TO_B, sizeBtoA: B_TO_A, config: { rack, tlp: rack, recvBufferSize: 1 << 20 } });
    const where = `loss ${loss}, rack ${rack}, seed ${seed}`;
    expect(r.corruptAtB || r.corruptAtA, where).to.equal(false);
    expect([r.receivedAtB, r.receivedAtA], where).to.deep.equal([A_TO_B, B_TO_A]);
    expect([r.closedA, r.closedB], where).to.deep.equal([true, true]);
    // Without RACK-TLP a spurious FIN retransmission can end in an RST from the peer that has
    // already closed (TIME-WAIT then records "reset"); with it the close is clean.
    if (rack) expect([r.errorA, r.errorB], where).to.deep.equal([undefined, undefined]);
    total += r.timeouts;
  }
  return total;
}

describe("tcp/netsim-loss: RACK-TLP under random loss (RFC 8985), RTOs counted", function () {
  this.timeout(120_000);

  // Bounds: the handshake's own losses (a lost SYN or SYN-ACK can only time out) plus a little.
  for (const [loss, bound] of [
    [0.01, 5],
    [0.05, 10],
    [0.1, 16],
  ] as const) {
    it(`${loss * 100}% loss each way, ${SEEDS} seeds of 2 MB + 200 kB: intact, at most ${bound} RTOs in all with RACK-TLP, under a quarter of those without`, () => {
      const withRack = timeouts(loss, true);
      const without = timeouts(loss, false);
      console.log(`      ${loss * 100}% loss: ${withRack} RTOs with RACK-TLP, ${without} without`);
      expect(withRack).to.be.at.most(bound);
      if (loss >= 0.05) expect(withRack * 4).to.be.lessThan(without);
    });
  }
});
