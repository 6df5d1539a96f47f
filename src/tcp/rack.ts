/**
 * RACK: time-based loss detection for the sender (RFC 8985), over a list of the segments in
 * flight with their last transmission time. Pure bookkeeping: the engine reports what it sends
 * and what the peer acknowledges, asks which segments are lost and when to look again (the
 * RACK reordering timer), and does the retransmitting and the congestion response itself.
 *
 * Read first:
 *  - RFC 8985 §2 (the idea: a segment is lost when one sent sufficiently later was delivered),
 *    §5.2 (per-segment variables: xmit_ts, end_seq, retransmitted, lost; RACK.xmit_ts,
 *    RACK.end_seq, RACK.rtt, RACK.min_RTT, RACK.fack, RACK.reordering_seen, RACK.reo_wnd);
 *  - §6.2 steps 1-5 (on each ACK: update RACK.min_RTT; update the most recently sent delivered
 *    segment, skipping ambiguous retransmissions; detect reordering; compute the reordering
 *    window; mark lost the segments sent a reordering window before it) — `onAck`,
 *    `reoWnd`, `detectLoss`;
 *  - §6.3 (upon the RTO every outstanding segment is marked lost) — `onRetransmitTimeout`;
 *  - RFC 2018 §3 and §8 for the SACK blocks that mark segments delivered, and RFC 2883 (a
 *    block at or below the cumulative ACK is a D-SACK: ignored here).
 *
 * Not implemented: the D-SACK-driven growth of the reordering window (RFC 8985 §6.2 step 4,
 * RACK.reo_wnd_mult stays 1) and a windowed min_RTT filter (the minimum over the connection).
 *
 * Segments are kept in sequence order; a range the engine sends again (a retransmission, or
 * the go-back-N resend after a timeout, with other boundaries) splits the records at its edges,
 * as do SACK blocks, so each record is either wholly SACKed or not. Records are pooled. Their
 * number is bounded (`maxSegments`): a peer that SACKs odd byte ranges to split them further
 * gets only whole records marked (its partly SACKed ones stay outstanding, which is safe: they
 * are resent if judged lost, never dropped).
 */

import { seqGt, seqLt, seqLe, seqSub } from "./seq.js";

/** One segment in flight (RFC 8985 §5.2 "Per-segment variables"). */
interface Seg {
  start: number;
  end: number;
  /** Segment.xmit_ts: time of the last (re)transmission, ms. */
  xmitTs: number;
  retransmitted: boolean;
  lost: boolean;
  sacked: boolean;
}

/** RACK_sent_after (RFC 8985 §6.2 step 2). */
function sentAfter(t1: number, seq1: number, t2: number, seq2: number): boolean {
  return t1 > t2 || (t1 === t2 && seqGt(seq1, seq2));
}

/** Default bound on the records kept (segments in flight, after splits). */
export const DEFAULT_MAX_RACK_SEGMENTS = 16_384;

export class Rack {
  private segs: Seg[] = [];
  /** Index of the first live record in `segs` (records before it are acknowledged). */
  private head = 0;
  private readonly pool: Seg[] = [];
  /** Bytes in records marked lost and not retransmitted since. */
  lostBytes = 0;
  /** Bytes in records marked SACKed. */
  sackedBytes = 0;
  /** Live records marked retransmitted (none, and nothing SACKed: no loss to look for). */
  private rexmits = 0;

  // ---- RFC 8985 §5.2 connection variables ----
  /** RACK.xmit_ts / RACK.end_seq: the most recently sent segment delivered; -Infinity: none yet. */
  private rackXmitTs = -Infinity;
  private rackEndSeq = 0;
  /** RACK.rtt: RTT of that segment, ms. */
  rtt = 0;
  /** RACK.min_RTT, ms. */
  minRtt = Infinity;
  /** RACK.fack: highest end_seq delivered; undefined until the first delivery. */
  private fack: number | undefined;
  /** RACK.reordering_seen. */
  reorderingSeen = false;

  constructor(readonly maxSegments: number = DEFAULT_MAX_RACK_SEGMENTS) {
    if (!(maxSegments >= 16)) throw new RangeError(`bad maxSegments ${maxSegments}`);
  }

  /** Records in flight (for tests and the snapshot). */
  get segments(): number {
    return this.segs.length - this.head;
  }

  private get full(): boolean {
    return this.segs.length - this.head >= this.maxSegments;
  }

  /**
   * The engine sent the data bytes [start, end) at `now`. New data appends a record; a range
   * already in flight is split out and marked retransmitted.
   */
  onSend(start: number, end: number, now: number): void {
    if (!seqLt(start, end)) return;
    const n = this.segs.length;
    if (n === this.head || !seqLt(start, this.segs[n - 1].end)) {
      // All new (the usual case): one record.
      this.push(start, end, now);
      return;
    }
    // A resend of bytes already recorded, possibly followed by new ones.
    const oldEnd = this.segs[n - 1].end;
    const resendEnd = seqLt(end, oldEnd) ? end : oldEnd;
    // At the bound, whole records are marked resent (their xmit_ts later than some bytes'
    // real one, which only delays RACK's verdict on those bytes).
    let i = this.full ? this.firstEndingAfter(start) : this.splitAt(start);
    for (; i < this.segs.length && seqLt(this.segs[i].start, resendEnd); i++) {
      if (seqGt(this.segs[i].end, resendEnd) && !this.full) this.splitAt(resendEnd);
      const s = this.segs[i];
      if (s.sacked) continue; // never resent on purpose; keep it delivered
      if (s.lost) this.lostBytes -= seqSub(s.end, s.start);
      s.lost = false;
      if (!s.retransmitted) this.rexmits++;
      s.retransmitted = true;
      s.xmitTs = now;
    }
    if (seqLt(resendEnd, end)) this.push(resendEnd, end, now);
  }

  /**
   * An ACK arrived: the cumulative acknowledgment `ack` (SND.UNA after it) and its SACK blocks.
   * Marks what it newly delivers and applies RFC 8985 §6.2 steps 1-3 to each such segment.
   * `tsEcr` is the ACK's timestamp echo (undefined without timestamps) and `tsOffset` our
   * timestamp clock's offset (TSval = floor(time) + offset). Returns the records newly delivered.
   */
  onAck(ack: number, sndMax: number, sack: ReadonlyArray<readonly [number, number]> | undefined, now: number, tsEcr?: number, tsOffset = 0): number {
    let delivered = 0;
    // SACKed segments (RFC 2018 §3): trust only blocks within [ack, sndMax].
    if (sack !== undefined) {
      for (const [l0, r] of sack) {
        if (!seqLt(l0, r) || !seqGt(r, ack) || seqGt(r, sndMax)) continue;
        const l = seqLt(l0, ack) ? ack : l0;
        let i = this.full ? this.firstEndingAfter(l) : this.splitAt(l);
        for (; i < this.segs.length && seqLt(this.segs[i].start, r); i++) {
          if (seqGt(this.segs[i].end, r)) {
            if (this.full) break; // partly covered: left outstanding at the bound
            this.splitAt(r);
          }
          const s = this.segs[i];
          if (s.sacked || seqLt(s.start, l)) continue; // partly covered (only at the bound)
          s.sacked = true;
          const len = seqSub(s.end, s.start);
          this.sackedBytes += len;
          if (s.lost) {
            s.lost = false;
            this.lostBytes -= len;
          }
          this.delivered(s, now, tsEcr, tsOffset);
          delivered++;
        }
      }
    }
    // Cumulatively acknowledged segments leave the list.
    while (this.head < this.segs.length) {
      const s = this.segs[this.head];
      if (seqLe(s.end, ack)) {
        const len = seqSub(s.end, s.start);
        if (s.retransmitted) this.rexmits--;
        if (s.sacked) this.sackedBytes -= len;
        else {
          if (s.lost) this.lostBytes -= len;
          this.delivered(s, now, tsEcr, tsOffset);
          delivered++;
        }
        this.pool.push(s);
        this.head++;
      } else {
        if (seqLt(s.start, ack)) {
          // Partly acknowledged: the rest stays in flight.
          const cut = seqSub(ack, s.start);
          if (s.sacked) this.sackedBytes -= cut;
          if (s.lost) this.lostBytes -= cut;
          s.start = ack;
        }
        break;
      }
    }
    this.compact();
    return delivered;
  }

  /** RFC 8985 §6.2 steps 1-3 for one delivered segment. */
  private delivered(s: Seg, now: number, tsEcr: number | undefined, tsOffset: number): void {
    const rtt = now - s.xmitTs;
    if (s.retransmitted) {
      // Step 2: a retransmitted segment's delivery is ambiguous if the ACK echoes a timestamp
      // older than the retransmission, or if it came back faster than any round trip.
      if (tsEcr !== undefined && seqLt(tsEcr >>> 0, (Math.floor(s.xmitTs) + tsOffset) >>> 0)) return;
      if (rtt < this.minRtt) return;
    } else if (rtt >= 0 && rtt < this.minRtt) {
      // Step 1: RACK.min_RTT from unambiguous samples.
      this.minRtt = rtt;
    }
    // RACK.rtt goes with RACK.xmit_ts: the RTT of the most recently sent segment delivered
    // (RFC 8985 takes the segments in xmit_ts order; here they come in sequence order).
    if (sentAfter(s.xmitTs, s.end, this.rackXmitTs, this.rackEndSeq)) {
      this.rtt = rtt;
      this.rackXmitTs = s.xmitTs;
      this.rackEndSeq = s.end;
    }
    // Step 3: reordering — an original transmission delivered below RACK.fack.
    if (this.fack === undefined || seqGt(s.end, this.fack)) this.fack = s.end;
    else if (seqLt(s.end, this.fack) && !s.retransmitted) this.reorderingSeen = true;
  }

  /**
   * RFC 8985 §6.2 step 4, RACK.reo_wnd: 0 when no reordering has been seen and the sender is in
   * loss recovery or has DupThresh duplicate ACKs; else min(RACK.min_RTT / 4, SRTT).
   */
  reoWnd(inRecovery: boolean, dupAcks: number, dupThresh: number, srtt: number): number {
    if (!this.reorderingSeen && (inRecovery || dupAcks >= dupThresh)) return 0;
    const m = this.minRtt === Infinity ? 0 : this.minRtt / 4;
    return Math.min(m, srtt);
  }

  /**
   * RFC 8985 §6.2 step 5 (RACK_detect_loss): mark lost every segment not yet delivered or
   * marked that was sent before the most recently delivered one by more than `reoWnd`, measured
   * as Segment.xmit_ts + RACK.rtt + reo_wnd <= now. Returns the bytes newly marked lost and, in
   * `timeoutAt`, when the next segment would qualify (the RACK reordering timer; Infinity: none).
   */
  detectLoss(now: number, reoWnd: number): { lost: number; timeoutAt: number } {
    let lost = 0;
    let timeoutAt = Infinity;
    if (this.rackXmitTs === -Infinity || this.head === this.segs.length) return { lost, timeoutAt };
    // Nothing SACKed or resent among the records: they were sent in sequence order, so their
    // xmit_ts never decrease; if the first was sent after RACK.xmit_ts, all were, and none can
    // be lost (the common case, kept O(1) per ACK).
    const first = this.segs[this.head];
    if (this.sackedBytes === 0 && this.rexmits === 0 && !sentAfter(this.rackXmitTs, this.rackEndSeq, first.xmitTs, first.end)) return { lost, timeoutAt };
    for (let i = this.head; i < this.segs.length; i++) {
      const s = this.segs[i];
      if (s.sacked || s.lost) continue;
      if (!sentAfter(this.rackXmitTs, this.rackEndSeq, s.xmitTs, s.end)) continue;
      const at = s.xmitTs + this.rtt + reoWnd;
      if (at <= now) {
        s.lost = true;
        const len = seqSub(s.end, s.start);
        this.lostBytes += len;
        lost += len;
      } else if (at < timeoutAt) timeoutAt = at;
    }
    return { lost, timeoutAt };
  }

  /** The first segment marked lost (to retransmit), as [start, end), or undefined. */
  firstLost(): [number, number] | undefined {
    if (this.lostBytes <= 0) return undefined;
    for (let i = this.head; i < this.segs.length; i++) {
      const s = this.segs[i];
      if (s.lost) return [s.start, s.end];
    }
    return undefined;
  }

  /** The last segment in flight, as [start, end) (the tail loss probe resends it), or undefined. */
  last(): [number, number] | undefined {
    if (this.head === this.segs.length) return undefined;
    const s = this.segs[this.segs.length - 1];
    return [s.start, s.end];
  }

  /**
   * RFC 8985 §6.3: upon a retransmission timeout every outstanding segment counts as lost; and
   * RFC 2018 §8: the SACKed bits are turned off (the peer may have reneged). The engine resends
   * from SND.UNA.
   */
  onRetransmitTimeout(): void {
    this.lostBytes = 0;
    this.sackedBytes = 0;
    for (let i = this.head; i < this.segs.length; i++) {
      const s = this.segs[i];
      s.sacked = false;
      s.lost = true;
      this.lostBytes += seqSub(s.end, s.start);
    }
  }

  /** Forget everything (connection closed). */
  clear(): void {
    for (let i = this.head; i < this.segs.length; i++) this.pool.push(this.segs[i]);
    this.segs = [];
    this.head = 0;
    this.lostBytes = 0;
    this.sackedBytes = 0;
    this.rexmits = 0;
  }

  private push(start: number, end: number, now: number): void {
    const s = this.pool.pop() ?? { start: 0, end: 0, xmitTs: 0, retransmitted: false, lost: false, sacked: false };
    s.start = start;
    s.end = end;
    s.xmitTs = now;
    s.retransmitted = false;
    s.lost = false;
    s.sacked = false;
    this.segs.push(s);
  }

  /**
   * Make a record boundary at `seq` (splitting the record that spans it) and return the index
   * of the first record starting at or after `seq`.
   */
  private splitAt(seq: number): number {
    const segs = this.segs;
    const lo = this.firstEndingAfter(seq);
    if (lo === segs.length) return lo;
    const s = segs[lo];
    if (!seqLt(s.start, seq)) return lo;
    const t = this.pool.pop() ?? { start: 0, end: 0, xmitTs: 0, retransmitted: false, lost: false, sacked: false };
    t.start = seq;
    t.end = s.end;
    t.xmitTs = s.xmitTs;
    t.retransmitted = s.retransmitted;
    t.lost = s.lost;
    t.sacked = s.sacked;
    if (t.retransmitted) this.rexmits++;
    s.end = seq;
    segs.splice(lo + 1, 0, t);
    return lo + 1;
  }

  /** Index of the first live record whose end lies after `seq` (`segs.length` if none). */
  private firstEndingAfter(seq: number): number {
    const segs = this.segs;
    let lo = this.head;
    let hi = segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqGt(segs[mid].end, seq)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Drop acknowledged records from the front of the array now and then. */
  private compact(): void {
    if (this.head === this.segs.length) {
      this.segs.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.segs.length) {
      this.segs.splice(0, this.head);
      this.head = 0;
    }
  }
}
