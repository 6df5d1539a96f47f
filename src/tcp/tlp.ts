/**
 * Tail Loss Probe (RFC 8985 §7): when the ACKs stop while data is in flight (the last segments
 * of a flight, or all of them, were lost, so no SACK can reveal the loss), send one probe
 * segment after a probe timeout (PTO) of about two round trips instead of waiting for the
 * retransmission timeout; its ACK (with SACK) lets RACK find the loss and fast recovery repair
 * it. This file holds the episode state and the timeout arithmetic; the engine arms the timer
 * and sends the probe.
 *
 * Read first: RFC 8985 §7.2 (scheduling: after new data is sent, or on an ACK, while not in
 * loss recovery and no probe is outstanding; PTO = 2*SRTT, plus WCDelAckT when one segment is
 * in flight, 1 s without an RTT sample; never after the RTO), §7.3 (the probe: new data if the
 * windows allow, else the highest-sequence segment sent; then arm the RTO), §7.4 (detecting a
 * loss the probe repaired: when the cumulative ACK passes the probe and no D-SACK says the
 * probe was a duplicate, the congestion control is told of one loss).
 *
 * Deviations, for a peer whose round trip is far below the 200 ms minimum RTO:
 *  - the PTO has a floor (`minPtoMs`, 1 ms by default, the timer's granularity; Linux uses
 *    10 ms): 2*SRTT to a guest on the same machine is a fraction of a millisecond (and SRTT
 *    from 1 ms timestamps may read 0), while under heavy loss with a small cwnd most stalls end
 *    with a probe — over 4 MB at 10% loss and a 0.3 ms RTT in netsim: 2.4 s with a 10 ms floor,
 *    1.2 s with 2 ms, 1.05 s with 1 ms;
 *  - an episode may send up to `maxProbes` probes (6 by default; RFC 8985 sends one), each
 *    after twice the previous PTO and before the RTO would fire, while none is answered: a lost
 *    probe (or its lost ACK) then costs another PTO rather than the RTO (at 10% loss each way a
 *    probe goes unanswered one time in five; with three probes a 20 MB transfer still met
 *    about five RTOs, with six none). The later probes resend the segment at SND.UNA,
 *    which a receiver acknowledges at once (a duplicate, or a hole filled), where a first probe
 *    of new in-order data may sit in the receiver's delayed-ACK timer;
 *  - a probe may be scheduled again as soon as an ACK answers the outstanding one (new data
 *    delivered), even before the cumulative ACK passes it, and also in loss recovery (see the
 *    engine's `armPto`).
 */

import { seqGe } from "./seq.js";

export interface TlpConfig {
  /** RFC 8985 §7.2 WCDelAckT: the peer's worst-case delayed-ACK time, added when one segment is in flight, ms. */
  maxAckDelayMs: number;
  /** Floor of the PTO, ms. */
  minPtoMs: number;
  /** Probes per episode while none is answered (RFC 8985: 1). */
  maxProbes: number;
}

export const DEFAULT_TLP_CONFIG: Readonly<TlpConfig> = Object.freeze({ maxAckDelayMs: 200, minPtoMs: 1, maxProbes: 6 });

/** RFC 8985 §7.2 "Calculate the PTO". `srtt` undefined: no RTT sample yet. */
export function probeTimeout(srtt: number | undefined, oneSegmentInFlight: boolean, cfg: TlpConfig): number {
  if (srtt === undefined) return 1000;
  let pto = 2 * srtt;
  if (oneSegmentInFlight) pto += cfg.maxAckDelayMs;
  return Math.max(pto, cfg.minPtoMs);
}

/** One probe episode (RFC 8985 §7.3/§7.4: TLP.end_seq, TLP.is_retrans). */
export class TlpEpisode {
  /** TLP.end_seq: SND.NXT after the probe; undefined when no probe is outstanding. */
  endSeq: number | undefined;
  /** TLP.is_retrans: the probe resent data already in flight. */
  isRetrans = false;
  /** Probes sent in this episode without an answer. */
  probes = 0;
  /** An ACK delivering data arrived after the last probe. */
  answered = false;
  /** A D-SACK reported the probe's data as received twice (so nothing was lost). */
  private dsacked = false;

  /** A probe is outstanding and nothing has answered it. */
  get unanswered(): boolean {
    return this.endSeq !== undefined && !this.answered;
  }

  /** Whether another probe may be scheduled now, and with which PTO multiplier (0: not). */
  backoff(cfg: TlpConfig): number {
    if (this.endSeq === undefined || this.answered) return 1;
    return this.probes < cfg.maxProbes ? 2 ** this.probes : 0;
  }

  /** A probe went out; `endSeq` is SND.NXT after it. */
  sent(endSeq: number, isRetrans: boolean): void {
    if (this.endSeq === undefined || this.answered) {
      this.probes = 0;
      this.isRetrans = isRetrans;
      this.dsacked = false;
    } else this.isRetrans ||= isRetrans;
    this.probes++;
    this.answered = false;
    this.endSeq = endSeq;
  }

  /** An ACK delivered data (cumulatively or by SACK) while a probe is outstanding. */
  noteDelivery(): void {
    if (this.endSeq !== undefined) this.answered = true;
  }

  /** A D-SACK block (RFC 2883 §4) arrived while the probe is outstanding. */
  noteDsack(): void {
    if (this.endSeq !== undefined) this.dsacked = true;
  }

  /**
   * RFC 8985 §7.4.2 on an ACK (after the D-SACK check), with SND.UNA after it and whether it
   * delivered anything (SND.UNA advanced or new data SACKed). Returns true when the episode ends
   * with a loss the probe repaired (the congestion control must react once):
   *  - below TLP.end_seq: keep waiting;
   *  - a probe of new data, or a D-SACK for the probe: both copies arrived, no loss;
   *  - the cumulative ACK beyond TLP.end_seq without a D-SACK: the probe repaired a loss;
   *  - exactly at TLP.end_seq: this may be the ACK of the original, with the probe's D-SACK
   *    still to come: keep waiting, unless the ACK is a pure duplicate (then nothing was lost).
   */
  onAck(sndUna: number, delivered: boolean): boolean {
    if (this.endSeq === undefined || !seqGe(sndUna, this.endSeq)) return false;
    if (!this.isRetrans || this.dsacked || (sndUna === this.endSeq && !delivered)) {
      this.endSeq = undefined;
      return false;
    }
    if (sndUna === this.endSeq) return false;
    this.endSeq = undefined;
    return true;
  }

  clear(): void {
    this.endSeq = undefined;
    this.answered = false;
    this.probes = 0;
  }
}
