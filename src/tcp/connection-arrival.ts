/**
 * SEGMENT ARRIVES (RFC 9293 §3.10.7): SYN-SENT (§3.10.7.3) and the synchronized states
 * (§3.10.7.4): PAWS (RFC 7323 §5.3), "first, check sequence number", "second, check the RST
 * bit" and "fourth, check the SYN bit" with RFC 5961 §3.2/§4.2, trimming to the window, the
 * ACK field (connection-ack.ts), TS.Recent (RFC 7323 §4.3), "seventh, process the segment
 * text" with out-of-order reassembly and the ACK policy of RFC 5681 §4.2, "eighth, check the
 * FIN bit"; the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2/§3.2, RFC 2018 §2);
 * a new SYN in TIME-WAIT (RFC 6191).
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
import { seqAdd, seqSub, seqLt, seqLe, seqGt, seqInRange } from "./seq.js";
import { TcpState, TcpEvent } from "./state.js";
import { EMPTY, DEFAULT_PEER_MSS, PAWS_IDLE_MS, TS_OPTION_LEN } from "./connection-tcb.js";
import { TcpOutput } from "./connection-output.js";

/** What an arriving segment does (`onSegment`). */
export abstract class TcpSegmentArrival extends TcpOutput {
  /** Process one arriving segment. The repr and its payload are borrowed for the call. */
  onSegment(seg: TcpRepr, now: number): void {
    this.counters.segmentsIn++;
    this.dirty = true;
    switch (this.state) {
      case TcpState.Closed:
        // §3.10.7.1: answered by the owner (no TCB); nothing to do here.
        return;
      case TcpState.SynSent:
        this.onSegmentSynSent(seg, now);
        return;
      default:
        if (this.held) {
          this.onSegmentHeld(seg);
          return;
        }
        this.onSegmentSynchronized(seg, now);
    }
  }

  /** While the SYN is held: a retransmitted SYN is absorbed; RST aborts; the rest waits. */
  private onSegmentHeld(seg: TcpRepr): void {
    if (seg.flags & TcpFlag.RST && seg.seq >>> 0 === this.rcvNxt) this.toClosed("reset");
  }

  /** RFC 9293 §3.10.7.3, SYN-SENT. */
  private onSegmentSynSent(seg: TcpRepr, now: number): void {
    const f = seg.flags;
    const ack = seg.ack >>> 0;
    let ackOk = false;
    if (f & TcpFlag.ACK) {
      // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset ... and discard the segment."
      if (seqLe(ack, this.iss) || seqGt(ack, this.sndMax)) {
        if (!(f & TcpFlag.RST)) this.sendReset(ack, 0, false);
        return;
      }
      ackOk = seqGt(ack, this.sndUna);
    }
    if (f & TcpFlag.RST) {
      // RFC 5961 §3.2 / RFC 9293: only an RST that acknowledges our SYN is believed.
      if (ackOk) this.toClosed("refused");
      return;
    }
    if (!(f & TcpFlag.SYN)) return;
    this.irs = seg.seq >>> 0;
    this.rcvNxt = seqAdd(this.irs, 1);
    this.rcvAdvEdge = this.rcvNxt;
    this.lastAckSent = this.rcvNxt;
    this.negotiate(seg.options, true);
    if (this.tsOn && seg.options.timestamp) {
      this.tsRecent = seg.options.timestamp.tsVal >>> 0;
      this.tsRecentAge = now;
    }
    this.lastRecvAt = now;
    if (ackOk) {
      this.sndUna = ack;
      if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
      this.rttAck(seg, now);
      this.rtoAt = Infinity;
      this.retransmits = 0;
      this.synPending = false;
      // RFC 7323 §2.2: the SYN's window is not scaled.
      this.sndWnd = seg.window;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = this.irs;
      this.sndWl2 = ack;
      this.state = this.finQueued ? TcpState.FinWait1 : TcpState.Established;
      this.events |= TcpEvent.Established | (this.sendQ.length < this.cfg.sendBufferSize ? TcpEvent.Writable : 0);
      this.ackNow = true;
      this.armKeepalive(now);
      if (seg.payload.length > 0 || f & TcpFlag.FIN) this.processText(seg, seqAdd(this.irs, 1), now);
    } else {
      // Simultaneous open (§3.10.7.3 "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment").
      this.state = TcpState.SynReceived;
      this.sndWnd = seg.window;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = this.irs;
      this.sndWl2 = this.sndUna;
      this.synPending = true;
      this.sndNxt = this.iss;
    }
  }

  /** RFC 9293 §3.10.7.4, the synchronized states (and SYN-RECEIVED after accept). */
  private onSegmentSynchronized(seg: TcpRepr, now: number): void {
    const f = seg.flags;
    let seq = seg.seq >>> 0;
    let payload = seg.payload;
    let fin = (f & TcpFlag.FIN) !== 0;
    const syn = (f & TcpFlag.SYN) !== 0;
    const segLen = payload.length + (syn ? 1 : 0) + (fin ? 1 : 0);
    const ts = this.tsOn ? seg.options.timestamp : undefined;

    // RFC 7323 §5.3 R1: PAWS — a segment with an older timestamp is a duplicate.
    if (ts !== undefined && !(f & TcpFlag.RST) && now - this.tsRecentAge < PAWS_IDLE_MS) {
      if (seqLt(ts.tsVal >>> 0, this.tsRecent)) {
        this.counters.pawsDrops++;
        this.ackNow = true;
        return;
      }
    }

    // "first, check sequence number": the four acceptability cases.
    const wnd = this.rcvWindow();
    const rn = this.rcvNxt;
    let acceptable: boolean;
    if (segLen === 0) {
      acceptable = wnd === 0 ? seq === rn : seqInRange(seq, rn, seqAdd(rn, wnd));
    } else if (wnd === 0) {
      acceptable = false;
    } else {
      acceptable = seqInRange(seq, rn, seqAdd(rn, wnd)) || seqInRange(seqAdd(seq, segLen - 1), rn, seqAdd(rn, wnd));
    }
    if (syn && this.state === TcpState.SynReceived && seq === this.irs) {
      const ack = seg.ack >>> 0;
      if (!(f & TcpFlag.ACK) || !(seqGt(ack, this.sndUna) && seqLe(ack, this.sndMax))) {
        // A retransmitted SYN in SYN-RECEIVED: answer with the SYN-ACK again.
        this.synPending = true;
        return;
      }
      // Simultaneous open (RFC 9293 §3.5, figure 7 line 6): the peer's SYN,ACK acknowledges our
      // SYN. Its SYN was already counted: process it as an ACK, then acknowledge.
      this.ackNow = true;
      this.onSegmentSynchronized({ ...seg, seq: seqAdd(seq, 1), flags: f & ~TcpFlag.SYN }, now);
      return;
    }
    if (!acceptable) {
      // "special allowance should be made to accept valid ACKs, URGs, and RSTs" when RCV.WND is 0.
      if (wnd === 0 && seq === rn && !syn) {
        // Process the ACK, drop the data (a zero-window probe), and say so with an ACK (§3.10.7.4).
        if (payload.length > 0 || fin) this.ackNow = true;
        payload = EMPTY;
        fin = false;
      } else {
        this.counters.outOfWindow++;
        if (segLen > 0 && seqLt(seq, rn)) this.counters.duplicateBytes += payload.length;
        if (!(f & TcpFlag.RST)) this.ackNow = true;
        // RFC 9293 §3.10.7.4 TIME-WAIT: a retransmission of the peer's FIN restarts the 2 MSL timeout.
        if (this.state === TcpState.TimeWait && fin && seqAdd(seq, segLen) === rn) this.timeWaitAt = now + this.cfg.timeWaitMs;
        return;
      }
    }

    // "second, check the RST bit" (RFC 5961 §3.2).
    if (f & TcpFlag.RST) {
      if (seq === rn) this.toClosed(this.state === TcpState.SynReceived ? "refused" : "reset");
      else this.challengeAck(now);
      return;
    }

    // "fourth, check the SYN bit" (RFC 5961 §4.2): a SYN in a synchronized state gets a challenge ACK.
    if (syn) {
      this.challengeAck(now);
      return;
    }

    // Trim to the window: bytes before RCV.NXT (duplicates) and beyond the right edge.
    if (seqLt(seq, rn)) {
      const dup = seqSub(rn, seq);
      this.counters.duplicateBytes += Math.min(dup, payload.length);
      payload = dup >= payload.length ? EMPTY : payload.subarray(dup);
      seq = rn;
    }
    const room = seqSub(seqAdd(rn, wnd), seq);
    if (payload.length > room) {
      payload = payload.subarray(0, Math.max(0, room));
      fin = false;
    }

    // "fifth, check the ACK field".
    if (!(f & TcpFlag.ACK)) return;
    if (!this.processAck(seg, now)) return;
    if (this.state === TcpState.Closed) return;

    // RFC 7323 §4.3 (2): update TS.Recent when the segment covers Last.ACK.sent.
    if (ts !== undefined && seqLe(seq, this.lastAckSent) && !seqLt(ts.tsVal >>> 0, this.tsRecent)) {
      this.tsRecent = ts.tsVal >>> 0;
      this.tsRecentAge = now;
    }
    this.lastRecvAt = now;
    this.keepaliveProbes = 0;
    if (this.cfg.keepalive) this.armKeepalive(now);

    // "seventh, process the segment text" and "eighth, check the FIN bit".
    if (payload.length > 0 || fin) {
      this.processText({ ...seg, payload, flags: fin ? f : f & ~TcpFlag.FIN }, seq, now);
    }
  }

  /** "seventh, process the segment text" and "eighth, check the FIN bit". */
  private processText(seg: TcpRepr, seq: number, now: number): void {
    const s = this.state;
    const receiving = s === TcpState.Established || s === TcpState.FinWait1 || s === TcpState.FinWait2;
    const payload = seg.payload;
    const fin = (seg.flags & TcpFlag.FIN) !== 0;
    if (payload.length > 0 && receiving) {
      if (seq === this.rcvNxt) {
        const hadHoles = this.ooo.bytes > 0;
        this.recvQ.push(payload);
        this.rcvNxt = seqAdd(this.rcvNxt, payload.length);
        if (hadHoles) {
          for (const chunk of this.ooo.take(this.rcvNxt)) {
            this.recvQ.push(chunk);
            this.rcvNxt = seqAdd(this.rcvNxt, chunk.length);
          }
          // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
          this.ackNow = true;
        }
        this.events |= TcpEvent.Readable;
        this.scheduleAck(payload.length, now);
      } else {
        // Out of order: keep it (bounded) and send an immediate duplicate ACK with SACK (RFC 5681 §4.2).
        this.ooo.insert(seq, payload, this.rcvNxt);
        this.ackNow = true;
      }
    }
    if (fin && (receiving || s === TcpState.CloseWait || s === TcpState.Closing || s === TcpState.LastAck || s === TcpState.TimeWait)) {
      this.peerFinSeq = seqAdd(seq, payload.length);
      // RFC 5681 §4.2: an out-of-order segment (a FIN ahead of missing data too) is ACKed at once.
      if (this.peerFinSeq !== this.rcvNxt) this.ackNow = true;
    }
    this.maybeFinArrived(now);
  }

  /** The peer's FIN counts once every byte before it has arrived. */
  private maybeFinArrived(now: number): void {
    if (this.peerFinSeq === undefined || this.peerFinSeq !== this.rcvNxt) {
      if (this.peerFinSeq !== undefined && this.peerFinDone && seqLt(this.peerFinSeq, this.rcvNxt) && this.state === TcpState.TimeWait) {
        // A retransmitted FIN in TIME-WAIT: acknowledge it and restart the 2MSL timeout.
        this.ackNow = true;
        this.timeWaitAt = now + this.cfg.timeWaitMs;
      }
      return;
    }
    if (this.peerFinDone) return;
    this.peerFinDone = true;
    this.rcvNxt = seqAdd(this.rcvNxt, 1);
    this.ackNow = true;
    this.events |= TcpEvent.PeerFin | TcpEvent.Readable;
    switch (this.state) {
      case TcpState.SynReceived:
      case TcpState.Established:
        this.state = TcpState.CloseWait;
        break;
      case TcpState.FinWait1:
        // Our FIN not yet acknowledged (else we would be in FIN-WAIT-2): simultaneous close.
        this.state = TcpState.Closing;
        break;
      case TcpState.FinWait2:
        this.enterTimeWait(now);
        break;
    }
  }

  /** Apply the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323 §2.2/§3.2, RFC 2018 §2). */
  protected negotiate(o: TcpOptions, weOffer: boolean): void {
    const peerMss = o.mss ?? DEFAULT_PEER_MSS;
    this.tsOn = weOffer && this.cfg.timestamps && o.timestamp !== undefined;
    this.sackOn = weOffer && this.cfg.sack && o.sackPermitted === true;
    this.peerOfferedWs = o.windowScale !== undefined;
    if (this.cfg.windowScaling && o.windowScale !== undefined) {
      // RFC 7323 §2.3: a shift above 14 is treated as 14.
      this.sndScale = Math.min(o.windowScale, 14);
      this.rcvScale = this.rcvScaleOffer;
    } else {
      this.sndScale = 0;
      this.rcvScale = 0;
    }
    const mss = Math.max(64, Math.min(peerMss, this.cfg.mss)) - (this.tsOn ? TS_OPTION_LEN : 0);
    this.sndMss = mss;
    this.cc.cwnd = Math.min(this.cfg.initialCwndSegments * mss, Math.max(2 * mss, 14600));
    if (this.cfg.initialCwndSegments * mss <= 14600) this.cc.cwnd = this.cfg.initialCwndSegments * mss;
  }

  /**
   * RFC 9293 §3.10.7.4 TIME-WAIT and RFC 6191: may a new SYN for this 4-tuple replace this
   * connection? Yes when its sequence number (or timestamp) is beyond the old connection's.
   */
  acceptsNewSyn(syn: TcpRepr): boolean {
    if (this.state !== TcpState.TimeWait) return false;
    const ts = syn.options.timestamp;
    if (this.tsOn && ts !== undefined) return seqGt(ts.tsVal >>> 0, this.tsRecent);
    return seqGt(syn.seq >>> 0, this.rcvNxt);
  }
}
