/**
 * The connection's timers, as deadlines (ms; Infinity = not running) that `pollAt` reports and
 * `output` runs: retransmission timeout (RFC 6298 §5, with RFC 5681 §3.1 loss window and
 * RFC 6298 (5.7) after a SYN timeout), persist and zero-window probes (RFC 9293 §3.8.6.1),
 * the override timeout of sender SWS avoidance (RFC 1122 §4.2.3.4, RFC 9293 §3.8.6.2.1),
 * keep-alive (RFC 1122 §4.2.3.6), delayed ACK (RFC 5681 §4.2, RFC 9293 §3.8.6.3), TIME-WAIT
 * (RFC 9293 §3.10.7.4) and the FIN-WAIT-2 limit, RACK's reordering timer (RFC 8985 §6.2 step 5)
 * and the tail-loss probe timeout (RFC 8985 §7.2); entering CLOSED (RFC 9293 §3.10.5, §3.10.7).
 *
 * The engine is one class, split along RFC 9293's lines into a chain of files, each class
 * extending the one before (no file imports a later one):
 *   connection-tcb.ts      the variables (TCB) and small helpers over them
 *   connection-timers.ts   RTO, persist, keep-alive, TIME-WAIT, delayed ACK, PTO; `pollAt`
 *   connection-ack.ts      ACK processing, send-side bookkeeping, loss-recovery hooks
 *   connection-output.ts   building segments: data, retransmissions, probes, window, options
 *   connection-arrival.ts  SEGMENT ARRIVES: state checks, RST/SYN, text, FIN
 *   connection.ts          `TcpConnection`: opening, the application side, the public API
 */

import { seqSub } from "./seq.js";
import { probeTimeout } from "./tlp.js";
import { TcpState, type TcpError, TcpEvent } from "./state.js";
import { TcpControlBlock } from "./connection-tcb.js";

/** Timer deadlines over the control block. */
export abstract class TcpTimers extends TcpControlBlock {
  /** RACK loss detection (connection-ack.ts), run when its reordering timer fires. */
  protected abstract rackDetect(now: number): void;
  /** PRR's cwnd on an ACK or a timer during recovery (connection-ack.ts). */
  protected abstract prrOnAck(delivered: number): void;

  /** When `output` next wants to be called: -Infinity for "now", Infinity for never. */
  pollAt(): number {
    if (this.state === TcpState.Closed && !this.rstPending) return Infinity;
    if (this.dirty || this.ackNow || this.rstPending) return -Infinity;
    return Math.min(this.rtoAt, this.rackAt, this.ptoAt, this.persistAt, this.delayedAckAt, this.timeWaitAt, this.finWait2At, this.keepaliveAt);
  }

  /** Run every deadline that has passed (called by `output` before it builds a segment). */
  protected runTimers(now: number): void {
    if (this.delayedAckAt <= now) {
      this.delayedAckAt = Infinity;
      this.ackNow = true;
    }
    if (this.timeWaitAt <= now) {
      this.timeWaitAt = Infinity;
      this.toClosed(undefined);
      return;
    }
    if (this.finWait2At <= now) {
      this.finWait2At = Infinity;
      if (this.state === TcpState.FinWait2) {
        this.toClosed("timeout");
        return;
      }
    }
    if (this.rtoAt <= now) this.retransmitTimeout(now);
    if (this.rackAt <= now) {
      this.rackDetect(now);
      this.prrOnAck(0);
      this.armPto(now);
    }
    if (this.ptoAt <= now) {
      this.ptoAt = Infinity;
      this.tlpPending = true;
      this.dirty = true;
    }
    if (this.persistAt <= now) {
      this.persistAt = Infinity;
      if (this.sndWnd === 0 && this.unsentBytes() > 0) {
        if (this.probesUnanswered > this.cfg.maxRetransmits) {
          this.abortWith("timeout");
          return;
        }
        this.probePending = true;
        this.probesUnanswered++;
        this.persistBackoff++;
      } else if (this.unsentBytes() > 0) {
        // RFC 1122 §4.2.3.4 / RFC 9293 §3.8.6.2.1: the override timeout — send what the window allows.
        this.overridePending = true;
        this.dirty = true;
      }
    }
    if (this.keepaliveAt <= now) {
      this.keepaliveAt = Infinity;
      const k = this.cfg.keepalive;
      if (k && this.state === TcpState.Established) {
        if (this.keepaliveProbes >= k.probes) {
          this.abortWith("timeout");
          return;
        }
        this.keepaliveProbes++;
        this.keepalivePending = true;
        this.keepaliveAt = now + k.intervalMs;
      }
    }
  }

  /** RFC 6298 §5.4-5.7 and RFC 5681 §3.1 (loss window): retransmit from SND.UNA. */
  private retransmitTimeout(now: number): void {
    this.rtoAt = Infinity;
    const isSyn = this.state === TcpState.SynSent || this.state === TcpState.SynReceived;
    const limit = isSyn ? this.cfg.maxSynRetransmits : this.cfg.maxRetransmits;
    if (this.retransmits >= limit) {
      this.abortWith("timeout");
      return;
    }
    this.retransmits++;
    this.counters.timeouts++;
    this.rtt.backoff();
    this.rttSeq = undefined;
    if (isSyn) {
      this.synPending = true;
      // RFC 6298 (5.7): after the SYN's retransmission, the RTO for data is 3 s if no sample.
      this.synTimedOut = true;
      return;
    }
    const flight = seqSub(this.sndMax, this.sndUna);
    this.cc.onRetransmitTimeout(flight, this.sndMss, now);
    this.inRecovery = false;
    this.rtxPending = false;
    this.dupAcks = 0;
    this.recoveryPoint = this.sndMax;
    // RFC 6675 §5.1: the scoreboard may have reneged data; start over from SND.UNA.
    this.scoreboard.clear();
    this.rack.onRetransmitTimeout();
    this.tlp.clear();
    this.rackAt = this.ptoAt = Infinity;
    this.tlpPending = this.rackForceRtx = false;
    this.sndNxt = this.sndUna;
    this.dirty = true;
  }

  /**
   * The retransmission timeout now: the estimator's, or — RFC 6298 (5.7) — at least 3 s (with
   * backoff) for data after a SYN timed out, until the first RTT sample.
   */
  protected rtoTimeout(): number {
    const t = this.rtt.timeout();
    if (!this.synTimedOut || this.rtt.srtt !== undefined || this.state <= TcpState.SynReceived) return t;
    return Math.min(this.cfg.maxRtoMs, Math.max(t, 3000 * 2 ** this.rtt.backoffs));
  }

  /** The persist timeout (RFC 9293 §3.8.6.1): the RTO, doubled per unanswered probe, capped. */
  protected persistTimeout(): number {
    return Math.min(this.cfg.maxRtoMs, this.rtt.rto * 2 ** Math.min(this.persistBackoff, 16));
  }

  /** Start the persist timer unless it or the retransmission timer runs (RFC 9293 §3.8.6.1). */
  protected armPersist(now: number): void {
    if (this.persistAt === Infinity && this.rtoAt === Infinity) this.persistAt = now + this.persistTimeout();
  }

  /** RFC 1122 §4.2.3.6: the keep-alive timer restarts whenever the peer is heard from. */
  protected armKeepalive(now: number): void {
    const k = this.cfg.keepalive;
    this.keepaliveAt = k ? now + k.idleMs : Infinity;
  }

  /**
   * RFC 8985 §7.2: schedule a tail loss probe while data is in flight and none is outstanding.
   * Deviation: also in loss recovery and after a timeout (RFC 8985 leaves those to the RTO): a
   * lost retransmission with nothing sent after it, or a lost go-back-N resend, would otherwise
   * cost a whole RTO (200 ms or more against a sub-millisecond RTT); the probe's ACK lets RACK
   * find the loss instead (an ACK for a segment sent later).
   */
  protected armPto(now: number): void {
    this.ptoAt = Infinity;
    if (!this.rackOn || !this.cfg.tlp || this.sndUna === this.sndMax) return;
    const cfg = this.cfg.tlpTiming;
    const mult = this.tlp.backoff(cfg);
    if (mult === 0) return;
    const one = seqSub(this.sndMax, this.sndUna) <= this.sndMss;
    const at = now + mult * probeTimeout(this.rtt.srtt, one, cfg);
    if (at < this.rtoAt) this.ptoAt = at;
  }

  /** RFC 5681 §4.2 / RFC 9293 §3.8.6.3: delayed ACK, at least every second full-sized segment. */
  protected scheduleAck(len: number, now: number): void {
    if (this.cfg.delayedAckMs <= 0) {
      this.ackNow = true;
      return;
    }
    if (len >= this.sndMssForAck()) this.unackedSegments++;
    if (this.unackedSegments >= 2) {
      this.ackNow = true;
      return;
    }
    if (this.delayedAckAt === Infinity) this.delayedAckAt = now + this.cfg.delayedAckMs;
  }

  /** RFC 9293 §3.10.7.4: enter TIME-WAIT for 2 MSL (`cfg.timeWaitMs`); the other timers stop. */
  protected enterTimeWait(now: number): void {
    this.state = TcpState.TimeWait;
    this.timeWaitAt = now + this.cfg.timeWaitMs;
    this.rtoAt = Infinity;
    this.persistAt = Infinity;
    this.keepaliveAt = Infinity;
    this.finWait2At = Infinity;
    this.sendQ.clear();
  }

  /** A timer gave up on the peer (retransmissions, probes, keep-alive): RST and CLOSED. */
  private abortWith(err: TcpError): void {
    // A reset only makes sense once the peer knows our sequence numbers.
    this.rstPending = this.state !== TcpState.SynSent;
    this.toClosed(err, false);
    this.dirty = true;
  }

  /** Enter CLOSED: drop queues and timers, report. `err` undefined is a normal close. */
  protected toClosed(err: TcpError | undefined, clearRst = true): void {
    if (this.state === TcpState.Closed) return;
    this.state = TcpState.Closed;
    if (err !== undefined) {
      this.error = err;
      this.events |= TcpEvent.Reset;
    }
    this.events |= TcpEvent.Closed;
    if (clearRst) this.rstPending = false;
    this.held = false;
    this.rtoAt = this.persistAt = this.delayedAckAt = this.timeWaitAt = this.finWait2At = this.keepaliveAt = Infinity;
    this.rackAt = this.ptoAt = Infinity;
    this.tlpPending = false;
    this.sendQ.clear();
    this.ooo.clear();
    this.scoreboard.clear();
    this.rack.clear();
    this.synPending = this.probePending = this.keepalivePending = this.ackNow = this.rtxPending = false;
  }
}
