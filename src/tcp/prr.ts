/**
 * Proportional Rate Reduction (RFC 6937): how much a sender may send on each ACK during fast
 * recovery, so that the window comes down to ssthresh smoothly over the recovery (instead of
 * stopping until the pipe drains below it, then bursting) and ends near ssthresh (instead of
 * collapsing when little is in flight). RFC 8985 §9 recommends it with RACK-TLP.
 *
 * Read first: RFC 6937 §3 (the algorithm: prr_delivered, prr_out, RecoverFS; the proportional
 * part while pipe > ssthresh and the slow-start reduction bound, PRR-SSRB, below it) and §5.
 * The engine computes DeliveredData and the pipe (RFC 6675 §4 SetPipe); this file keeps the
 * counters and does the arithmetic.
 */

export class Prr {
  /** RecoverFS: FlightSize when recovery started, bytes. */
  private recoverFs = 1;
  /** prr_delivered: bytes delivered to the receiver since recovery started. */
  private delivered = 0;
  /** prr_out: bytes sent since recovery started. */
  private out = 0;

  /** RFC 6937 §3 "at the beginning of recovery". */
  start(flightSize: number): void {
    this.recoverFs = Math.max(1, flightSize);
    this.delivered = 0;
    this.out = 0;
  }

  /** "On any data transmission or retransmission": prr_out += data sent. */
  onSent(bytes: number): void {
    this.out += bytes;
  }

  /**
   * RFC 6937 §3 "on every ACK during recovery": the new cwnd, pipe + sndcnt, given this ACK's
   * DeliveredData (the change in SND.UNA plus the change in SACKed bytes), the pipe after it,
   * ssthresh and the SMSS.
   */
  onAck(deliveredData: number, pipe: number, ssthresh: number, mss: number): number {
    this.delivered += Math.max(0, deliveredData);
    let sndcnt: number;
    if (pipe > ssthresh) {
      // Proportional rate reduction: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
      sndcnt = Math.ceil((this.delivered * ssthresh) / this.recoverFs) - this.out;
    } else {
      // PRR-SSRB: limit = MAX(prr_delivered - prr_out, DeliveredData) + MSS.
      const limit = Math.max(this.delivered - this.out, deliveredData) + mss;
      sndcnt = Math.min(ssthresh - pipe, limit);
    }
    return pipe + Math.max(0, sndcnt);
  }
}
