/**
 * ACK processing and send-side bookkeeping: RFC 9293 §3.10.7.4 "fifth, check the ACK field"
 * (SND.UNA and the send window SND.WND/SND.WL1/SND.WL2, our FIN acknowledged), RFC 5961 §5.2
 * ACK validation and §7 challenge ACKs, RTT samples (RFC 7323 §4.1, RFC 6298 §3 Karn),
 * congestion control on ACKs (RFC 5681 §3), duplicate ACKs and fast recovery (RFC 5681 §3.2,
 * RFC 6582 NewReno), the SACK scoreboard and pipe (RFC 2018 §3, RFC 6675 §4-§5), and the hooks
 * of RACK-TLP (RFC 8985 §6.2, §7.4; rack.ts, tlp.ts) and PRR (RFC 6937 §3; prr.ts).
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

import { TcpFlag, type TcpRepr } from "./wire.js";
import { seqAdd, seqSub, seqLt, seqLe, seqGt, seqGe } from "./seq.js";
import { TcpState, TcpEvent } from "./state.js";
import { TcpTimers } from "./connection-timers.js";

/** What an arriving ACK does to the sending side. */
export abstract class TcpAckProcessing extends TcpTimers {
  /**
   * RFC 9293 §3.10.7.4 "fifth, check the ACK field", with RFC 5961 §5.2 ACK validation,
   * congestion control and loss recovery. Returns false when the segment must be dropped.
   */
  protected processAck(seg: TcpRepr, now: number): boolean {
    const ack = seg.ack >>> 0;
    if (this.state === TcpState.SynReceived) {
      // "If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED state ..."
      if (seqGt(ack, this.sndUna) && seqLe(ack, this.sndMax)) {
        this.state = this.finQueued ? TcpState.FinWait1 : TcpState.Established;
        this.synPending = false;
        this.sndWnd = seg.window << this.sndScale;
        this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
        this.sndWl1 = seg.seq >>> 0;
        this.sndWl2 = ack;
        this.events |= TcpEvent.Established | TcpEvent.Writable;
        this.armKeepalive(now);
      } else {
        // "If the segment acknowledgment is not acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST>."
        this.sendReset(ack, 0, false);
        return false;
      }
    }
    // RFC 5961 §5.2: acceptable if SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT.
    if (seqGt(ack, this.sndMax)) {
      this.ackNow = true;
      return false;
    }
    if (seqLt(ack, seqSub0(this.sndUna, Math.max(this.maxSndWnd, 1)))) {
      this.challengeAck(now);
      return false;
    }

    this.probesUnanswered = 0;
    // SACK information (RFC 2018 §3, RFC 6675 §5 "update the scoreboard").
    let newlySacked = 0;
    if (this.sackOn && seg.options.sack && seg.options.sack.length > 0) {
      newlySacked = this.scoreboard.update(seqGt(ack, this.sndUna) ? ack : this.sndUna, this.sndMax, seg.options.sack);
    }
    // RFC 6937 DeliveredData: the change in SND.UNA plus the change in SACKed bytes.
    const una0 = this.sndUna;
    const sacked0 = this.rack.sackedBytes;
    if (this.rackOn) this.rackOnAck(seg, ack, now);

    const window = seg.window << this.sndScale;
    if (seqGt(ack, this.sndUna)) {
      this.ackAdvanced(seg, ack, now);
    } else if (ack === this.sndUna) {
      // RFC 5681 §2 "DUPLICATE ACKNOWLEDGMENT": outstanding data, no data or SYN/FIN in the
      // segment, same window (or, with SACK, new SACK information, RFC 6675 §2).
      const outstanding = this.sndMax !== this.sndUna;
      const pure = seg.payload.length === 0 && !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN));
      if (outstanding && pure && (window === this.sndWnd || newlySacked > 0)) this.duplicateAck(now);
    }

    // Window update (§3.10.7.4 ESTABLISHED, "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated").
    const seq = seg.seq >>> 0;
    if (seqLt(this.sndWl1, seq) || (this.sndWl1 === seq && seqLe(this.sndWl2, ack))) {
      const wasZero = this.sndWnd === 0;
      this.sndWnd = window;
      this.sndWl1 = seq;
      this.sndWl2 = ack;
      if (window > this.maxSndWnd) this.maxSndWnd = window;
      if (wasZero && window > 0) {
        this.persistAt = Infinity;
        this.persistBackoff = 0;
      }
    }
    if (this.probePending && this.sndWnd > 0) this.probePending = false;
    if (this.rackOn) this.rackAfterAck(now, seqSub(this.sndUna, una0) + this.rack.sackedBytes - sacked0);
    return true;
  }

  /** RFC 5961 §7: challenge ACKs, rate-limited per connection. */
  protected challengeAck(now: number): void {
    if (now - this.challengeWindowStart >= 1000) {
      this.challengeWindowStart = now;
      this.challengeCount = 0;
    }
    if (this.challengeCount >= this.cfg.challengeAckLimit) return;
    this.challengeCount++;
    this.counters.challengeAcks++;
    this.ackNow = true;
  }

  /** New data acknowledged: free the send buffer, sample RTT, grow cwnd or progress recovery. */
  private ackAdvanced(seg: TcpRepr, ack: number, now: number): void {
    const acked = seqSub(ack, this.sndUna);
    let dataAcked = acked;
    // The SYN and the FIN each occupy a sequence number but no byte of the send queue.
    if (this.finSeq !== undefined && seqGt(ack, this.finSeq) && seqLe(this.sndUna, this.finSeq)) dataAcked -= 1;
    if (seqLe(this.sndUna, this.iss)) dataAcked -= 1;
    if (dataAcked > 0) this.sendQ.consume(Math.min(dataAcked, this.sendQ.length));
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.scoreboard.advance(ack);
    this.rttAck(seg, now);
    this.retransmits = 0;
    this.rtt.resetBackoff();
    this.persistBackoff = 0;

    if (this.inRecovery) {
      if (seqGe(ack, this.recoveryPoint)) {
        // RFC 6582 §3.2 step 3 ("full acknowledgment"): leave recovery.
        this.inRecovery = false;
        this.dupAcks = 0;
        this.cc.onExitRecovery(seqSub(this.sndMax, this.sndUna), this.sndMss, now);
        // RFC 6937 §3: at the end of recovery, cwnd = ssthresh.
        if (this.rackOn && this.cfg.prr) this.cc.cwnd = this.cc.ssthresh;
      } else if (!this.sackOn) {
        // RFC 6582 §3.2 step 4 ("partial acknowledgment"): retransmit the next segment,
        // deflate cwnd by the amount acknowledged, add back one SMSS.
        this.rtxPending = true;
        this.cc.cwnd = Math.max(this.sndMss, this.cc.cwnd - acked + this.sndMss);
      }
    } else {
      this.dupAcks = 0;
      if (dataAcked > 0) this.cc.onAck(dataAcked, this.sndMss, now);
    }

    // RFC 6298 (5.2)/(5.3): stop the timer when everything is acknowledged, else restart it.
    this.rtoAt = this.sndUna === this.sndMax ? Infinity : now + this.rtoTimeout();

    // Our FIN acknowledged?
    if (this.finSeq !== undefined && seqGt(ack, this.finSeq)) {
      switch (this.state) {
        case TcpState.FinWait1:
          this.state = TcpState.FinWait2;
          if (this.cfg.finWait2TimeoutMs !== null) this.finWait2At = now + this.cfg.finWait2TimeoutMs;
          break;
        case TcpState.Closing:
          this.enterTimeWait(now);
          break;
        case TcpState.LastAck:
          this.toClosed(undefined);
          return;
      }
    }
    if (this.writeBlocked && this.writable > 0) {
      this.writeBlocked = false;
      this.events |= TcpEvent.Writable;
    }
  }

  /** RFC 5681 §3.2 / RFC 6675 §5: count duplicate ACKs; enter fast recovery at DupThresh. */
  private duplicateAck(now: number): void {
    this.dupAcks++;
    if (this.inRecovery) {
      // RFC 5681 §3.2 step 4 (NewReno): inflate cwnd for each further duplicate ACK.
      if (!this.sackOn) this.cc.cwnd += this.sndMss;
      return;
    }
    // With RACK (RFC 8985 §6.2 step 4 makes reo_wnd 0 at DupThresh) loss detection is RACK's alone.
    if (this.rackOn) return;
    const lost = this.sackOn && this.scoreboard.isLost(this.sndUna, this.sndMss, this.cfg.dupThresh);
    if (this.dupAcks < this.cfg.dupThresh && !lost) return;
    // RFC 6582 §3.2 step 2 (and RFC 6675 §5 step 4: "HighACK > RecoveryPoint"): only when the
    // cumulative ACK covers more than the previous recovery point, so the duplicate ACKs that
    // still arrive for data sent before a recovery or a timeout do not start another one.
    if (!seqGt(this.sndUna, this.recoveryPoint)) return;
    this.inRecovery = true;
    this.recoveryPoint = this.sndMax;
    this.highRxt = this.sndUna;
    const flight = seqSub(this.sndMax, this.sndUna);
    this.cc.onEnterRecovery(flight, this.sndMss, now);
    // RFC 5681 §3.2 step 3: cwnd = ssthresh + 3*SMSS for NewReno; RFC 6675 uses pipe instead.
    if (!this.sackOn) this.cc.cwnd = this.cc.ssthresh + 3 * this.sndMss;
    this.rtxPending = true;
    this.counters.fastRetransmits++;
    // Karn: no RTT sample from retransmitted data.
    this.rttSeq = undefined;
  }

  /** RTT measurement on an ACK that advances SND.UNA (RFC 7323 §4.1; RFC 6298 §3 Karn). */
  protected rttAck(seg: TcpRepr, now: number): void {
    const ts = seg.options.timestamp;
    if (this.tsOn && ts !== undefined && ts.tsEcr !== 0) {
      const sample = this.tsNow(now) - (ts.tsEcr >>> 0);
      if (sample >= 0 && sample < 0x7fffffff) this.rtt.sample(Math.max(sample, 0));
      return;
    }
    if (this.rttSeq !== undefined && seqGe(seg.ack >>> 0, this.rttSeq)) {
      this.rtt.sample(now - this.rttTime);
      this.rttSeq = undefined;
    }
  }

  /** RFC 6675 §4 SetPipe: octets in flight, not SACKed, not lost, plus retransmitted ones. */
  protected pipe(): number {
    const outstanding = seqSub(this.sndMax, this.sndUna);
    if (!this.sackOn || !this.inRecovery) return seqSub(this.sndNxt, this.sndUna);
    // RFC 8985 with RFC 6675 §4 SetPipe: in flight = outstanding - SACKed - marked lost (not resent).
    if (this.rackOn) return Math.max(0, outstanding - this.rack.sackedBytes - this.rack.lostBytes);
    const sacked = this.scoreboard.sackedIn(this.sndUna, this.sndMax);
    let pipe = outstanding - sacked;
    // Lost (not retransmitted) octets are not in the network: estimate them as the holes below
    // HighSACK beyond HighRxt that IsLost() marks.
    const high = this.scoreboard.highSacked;
    if (high !== undefined) {
      let at = seqGt(this.highRxt, this.sndUna) ? this.highRxt : this.sndUna;
      for (let i = 0; i < 64; i++) {
        const hole = this.scoreboard.nextHole(at);
        if (hole === undefined) break;
        if (this.scoreboard.isLost(hole[0], this.sndMss, this.cfg.dupThresh)) pipe -= seqSub(hole[1], hole[0]);
        at = hole[1];
      }
    }
    return Math.max(0, pipe);
  }

  /** RFC 8985 §6.2 steps 1-3: what this ACK delivered (cumulatively or by SACK). */
  private rackOnAck(seg: TcpRepr, ack: number, now: number): void {
    const sack = seg.options.sack;
    const ts = this.tsOn ? seg.options.timestamp : undefined;
    if (this.rack.onAck(seqGt(ack, this.sndUna) ? ack : this.sndUna, this.sndMax, sack, now, ts?.tsEcr, this.tsOffset) > 0) this.tlp.noteDelivery();
    // RFC 2883 §4: a first block at or below the cumulative ACK, or inside the second, is a D-SACK.
    if (sack && sack.length > 0 && (seqLe(sack[0][1], ack) || (sack.length > 1 && seqGe(sack[0][0], sack[1][0]) && seqLe(sack[0][1], sack[1][1])))) this.tlp.noteDsack();
  }

  /**
   * After an ACK that delivered `delivered` bytes: end a probe episode (RFC 8985 §7.4), detect
   * losses (§6.2 step 5), set cwnd by PRR in recovery (RFC 6937), re-arm the PTO (§7.2).
   */
  private rackAfterAck(now: number, delivered: number): void {
    if (this.tlp.onAck(this.sndUna, delivered > 0) && !this.inRecovery) {
      // §7.4.2: the probe repaired a loss; react once as to a loss (RFC 5681 eq. (4)).
      this.cc.onEnterRecovery(this.cc.cwnd, this.sndMss, now);
    }
    this.rackDetect(now);
    this.prrOnAck(delivered);
    this.armPto(now);
  }

  /** RFC 6937 §3 "on every ACK during recovery": cwnd = pipe + sndcnt. */
  protected override prrOnAck(delivered: number): void {
    if (this.inRecovery && this.cfg.prr) this.cc.cwnd = this.prr.onAck(delivered, this.pipe(), this.cc.ssthresh, this.sndMss);
  }

  /** RFC 8985 §6.2 step 5, and entering fast recovery when it finds a loss (§9, RFC 6675 §5 step 4). */
  protected override rackDetect(now: number): void {
    this.rackAt = Infinity;
    if (this.sndUna === this.sndMax) return;
    // SRTT caps the window; timestamp samples have 1 ms granularity, so a local peer's SRTT may
    // read 0: RACK's own (sub-millisecond) minimum stands in as its floor.
    const srtt = Math.max(this.rtt.srtt ?? this.rack.rtt, this.rack.minRtt === Infinity ? 0 : this.rack.minRtt);
    const reo = this.rack.reoWnd(this.inRecovery, this.dupAcks, this.cfg.dupThresh, srtt);
    const r = this.rack.detectLoss(now, reo);
    if (r.timeoutAt !== Infinity) this.rackAt = r.timeoutAt;
    if (r.lost === 0) return;
    this.dirty = true;
    if (this.inRecovery) return;
    this.inRecovery = true;
    this.rackForceRtx = true;
    this.counters.rackRecoveries++;
    this.rttSeq = undefined;
    // One reduction per window of data (RFC 6675 §5 step 4 "HighACK > RecoveryPoint"): not
    // again for data sent before a timeout or the previous recovery.
    const flight = seqSub(this.sndMax, this.sndUna);
    if (seqGt(this.sndUna, this.recoveryPoint)) this.cc.onEnterRecovery(flight, this.sndMss, now);
    this.recoveryPoint = this.sndMax;
    this.prr.start(flight);
  }
}


/** seqAdd with a negative amount, named for readability at its one use. */
function seqSub0(a: number, n: number): number {
  return seqAdd(a, -n);
}
