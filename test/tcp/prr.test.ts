/**
 * Proportional Rate Reduction (RFC 6937 §3), the arithmetic: while the pipe is above ssthresh
 * the sender sends ssthresh/RecoverFS of what is delivered (one segment per two delivered when
 * ssthresh is half the flight); at or below ssthresh, PRR-SSRB grows back toward ssthresh by at
 * most what was delivered plus one segment per ACK.
 */
import { expect } from "chai";
import { Prr } from "../../src/tcp/prr.js";

describe("tcp/prr: RFC 6937 rate reduction", () => {
  it("§3 proportional part: RecoverFS 20, ssthresh 10: one segment sent for every two delivered", () => {
    const p = new Prr();
    p.start(20);
    let pipe = 20;
    const sent: number[] = [];
    for (let ack = 0; ack < 10; ack++) {
      pipe -= 1; // one segment delivered (SACKed) by each ACK
      const cwnd = p.onAck(1, pipe, 10, 1);
      const sndcnt = cwnd - pipe;
      sent.push(sndcnt);
      p.onSent(sndcnt);
      pipe += sndcnt;
    }
    expect(sent).to.deep.equal([1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
    expect(pipe).to.equal(15);
  });

  it("§3 PRR-SSRB: with the pipe below ssthresh, at most DeliveredData + 1 MSS more per ACK, never past ssthresh", () => {
    const p = new Prr();
    p.start(10);
    // A burst of losses left 2 in the pipe; this ACK delivered 4.
    expect(p.onAck(4, 2, 5, 1)).to.equal(5);
    p.onSent(3);
    // Next ACK delivers 1 with the pipe at 4: limit = max(5 - 3, 1) + 1 = 3, capped by ssthresh - pipe = 1.
    expect(p.onAck(1, 4, 5, 1)).to.equal(5);
  });

  it("never a negative send count: cwnd is at least the pipe", () => {
    const p = new Prr();
    p.start(100);
    p.onSent(50);
    expect(p.onAck(1, 80, 50, 1)).to.equal(80);
  });
});
