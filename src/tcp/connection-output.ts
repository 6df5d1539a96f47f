/**
 * The connection's output: the next segment to send. SYN and SYN-ACK with the options offered
 * (RFC 9293 §3.7.1, RFC 7323 §1.3/§2.2, RFC 2018 §2), new data within the send window and cwnd
 * with sender silly-window avoidance (RFC 9293 §3.8.6.2.1), Nagle (§3.7.4) and limited
 * transmit (RFC 3042), retransmissions (RFC 6298 §5, NewReno RFC 6582 §3.2, SACK recovery
 * RFC 6675 §5 NextSeg, RACK RFC 8985 §9), tail loss probes (RFC 8985 §7.3), zero-window and
 * keep-alive probes (RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6), pure ACKs; every segment's ACK,
 * window advertisement with receiver SWS avoidance (RFC 9293 §3.8.6.2.2, RFC 7323 §2.3),
 * timestamps (RFC 7323 §3) and SACK blocks (RFC 2018 §4).
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

import { TcpFlag, type TcpOptions, type TcpRepr } from "./wire.js";
import { seqAdd, seqSub, seqLt, seqGt, seqMax } from "./seq.js";
import { TcpState } from "./state.js";
import { EMPTY } from "./connection-tcb.js";
import { TcpAckProcessing } from "./connection-ack.js";

/** Segment building: what `output` returns. */
export abstract class TcpOutput extends TcpAckProcessing {
  /** Next segment to send, or undefined. The repr is reused: valid until the next call. */
  output(now: number): TcpRepr | undefined {
    this.runTimers(now);
    const seg = this.nextSegment(now);
    if (seg === undefined) {
      this.dirty = false;
      return undefined;
    }
    this.counters.segmentsOut++;
    return seg;
  }

  /** In order: a pending RST, the SYN, a loss probe, retransmissions, new data, probes, a pure ACK. */
  private nextSegment(now: number): TcpRepr | undefined {
    if (this.rstPending) {
      this.rstPending = false;
      return this.fill(this.sndMax, this.rcvNxt, TcpFlag.RST | TcpFlag.ACK, EMPTY, now, false);
    }
    const s = this.state;
    if (s === TcpState.Closed || this.held) return undefined;
    if (this.synPending) return this.sendSyn(now);
    if (s === TcpState.SynSent) return undefined;
    if (s === TcpState.SynReceived) return this.ackNow ? this.pureAck(now) : undefined;

    if (this.tlpPending) {
      const seg = this.sendProbe(now);
      if (seg) return seg;
    }
    if (this.rtxPending) {
      const seg = this.fastRetransmit(now);
      if (seg) return seg;
    }
    if (this.inRecovery && this.sackOn) {
      const seg = this.sackRecoverySend(now);
      if (seg) return seg;
    }
    const data = this.sendData(now);
    if (data) return data;
    if (this.probePending) {
      this.probePending = false;
      this.persistAt = now + this.persistTimeout();
      // A zero-window probe that carries no new data: SEQ = SND.UNA - 1 elicits an ACK with the window.
      return this.fill(seqAdd(this.sndUna, -1), this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
    }
    if (this.keepalivePending) {
      this.keepalivePending = false;
      // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1, no data.
      return this.fill(seqAdd(this.sndMax, -1), this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
    }
    if (this.ackNow) return this.pureAck(now);
    return undefined;
  }

  /** Our SYN or SYN-ACK with the options offered (RFC 9293 §3.7.1, RFC 7323 §1.3, RFC 2018 §2). */
  private sendSyn(now: number): TcpRepr {
    this.synPending = false;
    const active = this.state === TcpState.SynSent;
    const o: TcpOptions = { mss: this.cfg.mss };
    // Offer each option in a SYN; in a SYN-ACK only those the peer offered (RFC 7323 §1.3, RFC 2018 §2).
    if (this.cfg.windowScaling && (active || this.peerOfferedWs)) o.windowScale = this.rcvScaleOffer;
    if (this.cfg.sack && (active || this.sackOn)) o.sackPermitted = true;
    if (this.cfg.timestamps && (active || this.tsOn)) o.timestamp = { tsVal: this.tsNow(now), tsEcr: active ? 0 : this.tsRecent };
    const flags = active ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK;
    const seg = this.fillWith(this.iss, active ? 0 : this.rcvNxt, flags, EMPTY, o);
    // RFC 7323 §2.2: the window field of a SYN is never scaled.
    seg.window = Math.min(this.cfg.recvBufferSize, 0xffff);
    if (!active) {
      this.rcvAdvEdge = seqAdd(this.rcvNxt, seg.window);
      this.synWindowOnly = true;
    }
    if (seqLt(this.sndMax, seqAdd(this.iss, 1))) this.sndMax = seqAdd(this.iss, 1);
    this.sndNxt = seqAdd(this.iss, 1);
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rtoTimeout();
    if (this.retransmits === 0 && this.rttSeq === undefined) {
      this.rttSeq = seqAdd(this.iss, 1);
      this.rttTime = now;
    } else if (this.retransmits > 0) {
      this.rttSeq = undefined;
      this.counters.retransmittedSegments++;
    }
    if (!active) this.lastAckSent = this.rcvNxt;
    this.ackNow = false;
    return seg;
  }

  /** NewReno fast retransmit / partial-ACK retransmit: the segment at SND.UNA. */
  private fastRetransmit(now: number): TcpRepr | undefined {
    this.rtxPending = false;
    // RFC 6675 §5 step (4.3) / RFC 5681 §3.2 step 2: the first segment presumed lost is
    // retransmitted at once, whatever the pipe; NewReno's partial ACKs do the same.
    return this.retransmitAt(this.sndUna, now);
  }

  /** Send one segment's worth starting at `seq` (a retransmission). */
  private retransmitAt(seq: number, now: number, end?: number): TcpRepr | undefined {
    const off = this.dataOffset(seq);
    const queued = this.sendQ.length;
    let len = Math.min(this.sndMss, queued - off);
    if (end !== undefined) len = Math.min(len, seqSub(end, seq));
    let flags = TcpFlag.ACK;
    if (len < 0) len = 0;
    if (this.finSeq !== undefined && seqAdd(seq, len) === this.finSeq && seqGt(this.sndMax, this.finSeq)) flags |= TcpFlag.FIN;
    if (len === 0 && !(flags & TcpFlag.FIN)) return undefined;
    const payload = len > 0 ? this.sendQ.slice(off, len) : EMPTY;
    this.counters.retransmittedSegments++;
    // Re-arm the timer when the head is retransmitted (as Linux does): its ACK needs a whole
    // round trip, and the timer last started when the segment before it was acknowledged.
    if (this.rtoAt === Infinity || seq === this.sndUna) this.rtoAt = now + this.rtoTimeout();
    const segEnd = seqAdd(seq, len + (flags & TcpFlag.FIN ? 1 : 0));
    if (seqGt(segEnd, this.highRxt)) this.highRxt = segEnd;
    // RACK tracks data bytes only: a FIN cannot be SACKed, so it would look lost (RFC 8985 §6.2)
    // once later data is SACKed; a lost FIN is left to the probe and the RTO.
    if (this.rackOn) this.rack.onSend(seq, seqAdd(seq, len), now);
    if (this.inRecovery) this.prr.onSent(len);
    return this.fill(seq, this.rcvNxt, flags | (len > 0 ? TcpFlag.PSH : 0), payload, now, true);
  }

  /**
   * RFC 6675 §5 (step C) with NextSeg (§4): during SACK recovery, while pipe allows, send the
   * first lost hole above HighRxt, else new data, else any unSACKed hole above HighRxt.
   */
  private sackRecoverySend(now: number): TcpRepr | undefined {
    const pipe = this.pipe();
    if (this.rackOn) {
      // RFC 8985 §9 with RFC 6675 §5 step (C): the segments RACK marked lost first, then new data.
      const lost = this.rack.firstLost();
      if (lost === undefined || (!this.rackForceRtx && this.cc.cwnd - pipe < this.sndMss)) return undefined;
      this.rackForceRtx = false;
      return this.retransmitAt(lost[0], now, lost[1]);
    }
    if (this.cc.cwnd - pipe < this.sndMss) return undefined;
    // Rule 1: a lost, unSACKed, not-yet-retransmitted range.
    const from = seqGt(this.highRxt, this.sndUna) ? this.highRxt : this.sndUna;
    const hole = this.scoreboard.nextHole(from);
    if (hole !== undefined && this.scoreboard.isLost(hole[0], this.sndMss, this.cfg.dupThresh)) {
      return this.retransmitAt(hole[0], now, hole[1]);
    }
    // Rule 2: new data, if the receiver's window allows.
    if (this.unsentBytes() > 0 || this.finUnsent()) return undefined; // let sendData handle it
    // Rule 3: an unSACKed hole above HighRxt even if not judged lost.
    if (hole !== undefined) return this.retransmitAt(hole[0], now, hole[1]);
    return undefined;
  }

  /** New data (and the FIN) within the send window and cwnd, with sender SWS avoidance. */
  private sendData(now: number, probe = false): TcpRepr | undefined {
    const s = this.state;
    if (s !== TcpState.Established && s !== TcpState.CloseWait && s !== TcpState.FinWait1 && s !== TcpState.LastAck && s !== TcpState.Closing) {
      return undefined;
    }
    const off = this.dataOffset(this.sndNxt);
    const unsent = this.sendQ.length - off;
    const finPending = this.finUnsent();
    if (unsent <= 0 && !finPending) return undefined;

    const inFlight = this.sackOn && this.inRecovery ? this.pipe() : seqSub(this.sndNxt, this.sndUna);
    const wndRoom = seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt);
    // RFC 3042 limited transmit: the first two duplicate ACKs each let one new segment out.
    // (Only for previously unsent data: not for the go-back-N resends after a timeout.)
    const limited = this.inRecovery || this.sndNxt !== this.sndMax ? 0 : Math.min(this.dupAcks, 2) * this.sndMss;
    // A tail loss probe (RFC 8985 §7.3) may send one segment beyond cwnd.
    const cwndRoom = probe ? this.sndMss : this.cc.cwnd + limited - inFlight;
    const room = Math.min(wndRoom, cwndRoom);
    let len = Math.max(0, Math.min(unsent, room, this.sndMss));
    if (len === this.sndMss && this.superSegment > this.sndMss && !this.inRecovery && this.sndNxt === this.sndMax) {
      // Segmentation offload: several MSS of new data in one segment; whole MSS pieces unless
      // it carries the last of the queue.
      len = Math.min(unsent, room, this.superSegment);
      if (len < unsent) len -= len % this.sndMss;
    }

    if (unsent > 0) {
      if (len === 0) {
        if (wndRoom <= 0) this.armPersist(now);
        return undefined;
      }
      if (len < unsent && len < this.sndMss) {
        // RFC 9293 §3.8.6.2.1: send only if a full segment fits, or all remaining data does,
        // or at least half the peer's largest window does. Otherwise wait (persist timer).
        if (!(this.maxSndWnd > 0 && len >= this.maxSndWnd / 2) && !this.overridePending) {
          if (wndRoom < this.sndMss && inFlight === 0) this.armPersist(now);
          return undefined;
        }
        this.overridePending = false;
      }
      // Nagle (RFC 9293 §3.7.4), when enabled: hold a small segment while data is unacknowledged.
      if (this.cfg.nagle && len < this.sndMss && len === unsent && inFlight > 0) return undefined;
    }

    let flags = TcpFlag.ACK;
    if (len > 0 && len === unsent) flags |= TcpFlag.PSH;
    const seq = this.sndNxt;
    // The FIN rides on the last data segment, or goes alone once all data is sent (a bare
    // FIN is sent whatever the window, like Linux: it carries no data).
    if (finPending && len === unsent && seqAdd(seq, len) === this.finSeq) flags |= TcpFlag.FIN;
    if (len === 0 && !(flags & TcpFlag.FIN)) return undefined;
    const payload = len > 0 ? this.sendQ.slice(off, len) : EMPTY;
    const end = seqAdd(seq, len + (flags & TcpFlag.FIN ? 1 : 0));
    const retransmission = seqLt(seq, this.sndMax);
    if (retransmission) this.counters.retransmittedSegments++;
    else if (this.rttSeq === undefined && !this.tsOn) {
      this.rttSeq = end;
      this.rttTime = now;
    }
    this.sndNxt = end;
    if (seqGt(end, this.sndMax)) this.sndMax = end;
    if (this.rtoAt === Infinity) this.rtoAt = now + this.rtoTimeout();
    this.persistAt = Infinity;
    if (this.inRecovery) this.prr.onSent(len);
    if (this.rackOn) {
      this.rack.onSend(seq, seqAdd(seq, len), now);
      // RFC 8985 §7.2: (re)schedule the probe after sending new data (and, see armPto, after
      // the first resend following a timeout).
      if (!probe && (!retransmission || this.ptoAt === Infinity)) this.armPto(now);
    }
    return this.fill(seq, this.rcvNxt, flags, payload, now, true);
  }

  /** RFC 8985 §7.3: the probe — one new segment if the peer's window allows, else the last segment again. */
  private sendProbe(now: number): TcpRepr | undefined {
    this.tlpPending = false;
    if (this.sndUna === this.sndMax) return undefined;
    const before = this.sndMax;
    if (this.tlp.unanswered) {
      // A second probe (tlp.ts): the segment at SND.UNA again. A receiver answers a duplicate, or
      // a segment filling a hole, at once (RFC 5681 §4.2), where new in-order data may wait for
      // its delayed ACK (the case when only our ACKs were lost).
      const again = this.retransmitAt(this.sndUna, now);
      if (again === undefined) return undefined;
      this.counters.lossProbes++;
      this.tlp.sent(before, true);
      this.rtoAt = now + this.rtoTimeout();
      this.armPto(now);
      return again;
    }
    let seg = this.unsentBytes() > 0 && seqSub(seqAdd(this.sndUna, this.sndWnd), this.sndNxt) >= Math.min(this.sndMss, this.unsentBytes()) ? this.sendData(now, true) : undefined;
    const isRetrans = seg === undefined;
    if (seg === undefined) {
      // The last segment sent (with the FIN if it carried one), or a bare FIN.
      const last = this.rack.last();
      const from = last === undefined ? this.sndUna : seqSub(last[1], last[0]) > this.sndMss ? seqAdd(last[1], -this.sndMss) : last[0];
      seg = this.retransmitAt(from, now, last?.[1]);
      if (seg === undefined) return undefined;
    }
    this.counters.lossProbes++;
    this.tlp.sent(isRetrans ? before : this.sndMax, isRetrans);
    // §7.3: after the probe, the RTO timer (and, while unanswered, another probe: see tlp.ts).
    this.rtoAt = now + this.rtoTimeout();
    this.armPto(now);
    return seg;
  }

  /**
   * A segment with no data: its sequence number is SND.MAX, the next *new* sequence number.
   * (SND.NXT may have been rewound by a retransmission timeout; an ACK carrying that older
   * number would fall left of the peer's window and be discarded unread, RFC 9293 §3.10.7.4.)
   */
  private pureAck(now: number): TcpRepr {
    return this.fill(this.sndMax, this.rcvNxt, TcpFlag.ACK, EMPTY, now, true);
  }

  /** Fill the reused output repr for a segment that carries our current ACK and window. */
  private fill(seq: number, ack: number, flags: number, payload: Uint8Array, now: number, withSack: boolean): TcpRepr {
    const o: TcpOptions = {};
    if (this.tsOn) o.timestamp = { tsVal: this.tsNow(now), tsEcr: this.tsRecent };
    if (withSack && this.sackOn && this.ooo.bytes > 0 && !(flags & TcpFlag.RST)) {
      const blocks = this.ooo.sackBlocks(this.tsOn ? 3 : 4);
      if (blocks.length > 0) o.sack = blocks;
    }
    const seg = this.fillWith(seq, ack, flags, payload, o);
    if (flags & TcpFlag.ACK) {
      const wnd = this.windowToAdvertise();
      seg.window = wnd >>> this.rcvScale;
      this.rcvAdvEdge = seqMax(this.rcvAdvEdge, seqAdd(this.rcvNxt, wnd));
      this.synWindowOnly = false;
      this.lastAckSent = ack;
      this.ackNow = false;
      this.delayedAckAt = Infinity;
      this.unackedSegments = 0;
    }
    return seg;
  }

  /** The reused output repr with these fields (window 0 until `fill` sets it). */
  private fillWith(seq: number, ack: number, flags: number, payload: Uint8Array, options: TcpOptions): TcpRepr {
    const seg = this.out;
    seg.seq = seq >>> 0;
    seg.ack = flags & TcpFlag.ACK ? ack >>> 0 : 0;
    seg.flags = flags;
    seg.window = 0;
    seg.options = options;
    seg.payload = payload;
    return seg;
  }

  /**
   * Window to advertise now: free receive buffer space, with receiver-side silly window
   * avoidance (RFC 9293 §3.8.6.2.2: move the right edge only by at least min(buffer/2, MSS))
   * and never shrinking the window already offered.
   */
  private windowToAdvertise(): number {
    const free = Math.max(0, this.cfg.recvBufferSize - this.recvQ.length);
    const current = this.rcvWindow();
    let wnd = free;
    if (wnd - current < Math.min(this.cfg.recvBufferSize / 2, this.cfg.mss)) wnd = current;
    wnd = Math.max(wnd, current);
    // Representable with our scale (RFC 7323 §2.3), rounded down.
    const max = 0xffff << this.rcvScale;
    if (wnd > max) wnd = max;
    return (wnd >>> this.rcvScale) << this.rcvScale;
  }
}
