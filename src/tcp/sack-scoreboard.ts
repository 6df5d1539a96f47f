/**
 * Sender-side SACK scoreboard: which bytes between SND.UNA and SND.NXT the receiver has
 * reported holding (selectively acknowledged), and the queries loss recovery needs.
 *
 * Read first:
 *  - RFC 2018 §3 (a block [left, right) reports data the receiver holds, "Right Edge of Block"
 *    being "the sequence number immediately following the last sequence number of this block")
 *    and §8 (SACK information is advisory: the sender keeps data until it is cumulatively
 *    acknowledged, and "after a retransmit timeout the data sender SHOULD turn off all of the
 *    SACKed bits" — the engine calls `clear`);
 *  - RFC 6675 §2 (definitions: HighACK, HighData, DupThresh, SMSS), §3 (keeping the scoreboard)
 *    and §4 (IsLost, NextSeg, SetPipe, which the engine builds from these queries);
 *  - RFC 2883 (D-SACK: a first block at or below the cumulative ACK reports a duplicate, not
 *    new data; it is ignored here).
 *
 * Ranges are kept sorted, merged and relative to SND.UNA; every comparison goes through
 * `seq.ts`. The scoreboard is bounded (`maxRanges`): a receiver reporting more holes than that
 * loses the highest ones, which only makes the sender more conservative (data not known to be
 * SACKed is retransmitted if judged lost, never discarded).
 */

import { seqAdd, seqGt, seqLt, seqSub } from "./seq.js";

/** Default bound on the number of disjoint SACKed ranges kept. */
export const DEFAULT_MAX_SACK_RANGES = 256;

/** RFC 6675 §2 "DupThresh": "The current value of DupThresh is 3". */
export const DEFAULT_DUP_THRESH = 3;

export class SackScoreboard {
  /** Sorted, disjoint, non-adjacent [start, end) ranges, all at or above `base`. */
  private _ranges: Array<readonly [number, number]> = [];
  /** SND.UNA as last seen: every range lies in [base, base + 2^31). */
  private base = 0;
  private _sacked = 0;
  /** cum[i] = SACKed bytes in ranges[0..i); rebuilt lazily after a change. */
  private cum: number[] | undefined;

  constructor(readonly maxRanges: number = DEFAULT_MAX_SACK_RANGES) {
    if (!(maxRanges >= 1)) throw new RangeError(`bad maxRanges ${maxRanges}`);
  }

  /** Bytes currently marked SACKed. */
  get sackedBytes(): number {
    return this._sacked;
  }

  /** The SACKed ranges, sorted and merged ([start, end) sequence numbers; a live view, do not keep). */
  get ranges(): ReadonlyArray<readonly [number, number]> {
    return this._ranges;
  }

  /** Highest SACKed sequence number + 1 (RFC 6675 §2 "HighACK"-like; "HighSACK"), or undefined. */
  get highSacked(): number | undefined {
    const n = this._ranges.length;
    return n === 0 ? undefined : this._ranges[n - 1][1];
  }

  /**
   * Merge the SACK blocks of one ACK, where `sndUna` is the cumulative acknowledgment (after
   * this ACK) and `sndNxt` the highest sequence number sent + 1 (SND.MAX). A block is trusted
   * only if it is a proper range, its right edge lies above `sndUna` and at or below `sndNxt`:
   * RFC 2018 §3 blocks report data the receiver holds, which cannot be data never sent
   * (RFC 6675 §4 uses only SACK information about sent data); a block at or below `sndUna`
   * is a D-SACK (RFC 2883 §4) or stale. A block that starts below `sndUna` counts from `sndUna`.
   * Returns the bytes newly marked SACKed.
   */
  update(sndUna: number, sndNxt: number, blocks: ReadonlyArray<readonly [number, number]>): number {
    this.advance(sndUna);
    const before = this._sacked;
    for (const [l, r] of blocks) {
      if (!seqLt(l, r) || !seqGt(r, sndUna) || seqGt(r, sndNxt)) continue;
      this.add(seqLt(l, sndUna) ? sndUna : l, r);
    }
    // Bound the scoreboard: forget the highest ranges (the least useful to recovery).
    while (this._ranges.length > this.maxRanges) {
      const [s, e] = this._ranges.pop()!;
      this._sacked -= seqSub(e, s);
    }
    this.cum = undefined;
    return Math.max(0, this._sacked - before);
  }

  /**
   * The cumulative acknowledgment advanced to `sndUna`: forget what lies below it (RFC 6675 §3,
   * the scoreboard covers only SND.UNA and above). A value at or below the current one is ignored.
   */
  advance(sndUna: number): void {
    const rs = this._ranges;
    if (rs.length === 0) {
      this.base = sndUna;
      return;
    }
    if (!seqGt(sndUna, this.base)) return;
    this.base = sndUna;
    let drop = 0;
    while (drop < rs.length && seqSub(rs[drop][1], sndUna) <= 0) {
      this._sacked -= seqSub(rs[drop][1], rs[drop][0]);
      drop++;
    }
    if (drop > 0) rs.splice(0, drop);
    if (rs.length > 0 && seqLt(rs[0][0], sndUna)) {
      this._sacked -= seqSub(sndUna, rs[0][0]);
      rs[0] = [sndUna, rs[0][1]];
    }
    this.cum = undefined;
  }

  /** Forget everything (RFC 2018 §8: after a retransmission timeout). */
  clear(): void {
    this._ranges = [];
    this._sacked = 0;
    this.cum = undefined;
  }

  /** Whether the byte with sequence number `seq` is SACKed. */
  isSacked(seq: number): boolean {
    const o = this.off(seq);
    const i = this.firstEndingAfter(o);
    return i < this._ranges.length && this.off(this._ranges[i][0]) <= o;
  }

  /**
   * RFC 6675 §4 IsLost(SeqNum): "returns true when either DupThresh discontiguous SACKed
   * sequences have arrived above 'SeqNum' or more than (DupThresh - 1) * SMSS bytes with
   * sequence numbers greater than 'SeqNum' have been SACKed". Discontiguous sequences are
   * counted as SACKed ranges. A SACKed `seq` is not lost.
   */
  isLost(seq: number, mss: number, dupThresh: number = DEFAULT_DUP_THRESH): boolean {
    const o = this.off(seq);
    const i = this.firstEndingAfter(o);
    const n = this._ranges.length;
    if (i === n) return false; // nothing SACKed above
    if (this.off(this._ranges[i][0]) <= o) return false; // seq itself is SACKed
    const rangesAbove = n - i;
    const bytesAbove = this._sacked - this.cumulative()[i];
    return rangesAbove >= dupThresh || bytesAbove > (dupThresh - 1) * mss;
  }

  /**
   * The first hole (an unSACKed range) at or after `from` and below `highSacked`, as
   * [start, end), or undefined. Nothing below SND.UNA is a hole. (RFC 6675 §4 NextSeg walks these.)
   */
  nextHole(from: number): [number, number] | undefined {
    const rs = this._ranges;
    let o = Math.max(this.off(from), 0);
    let i = this.firstEndingAfter(o);
    if (i === rs.length) return undefined; // at or above HighSACK
    if (this.off(rs[i][0]) <= o) {
      // Inside a SACKed range: the hole starts where it ends (ranges are never adjacent).
      o = this.off(rs[i][1]);
      i++;
      if (i === rs.length) return undefined;
    }
    return [seqAdd(this.base, o), rs[i][0]];
  }

  /** SACKed bytes within [start, end). */
  sackedIn(start: number, end: number): number {
    const a = Math.max(this.off(start), 0);
    const b = this.off(end);
    if (b <= a) return 0;
    return this.sackedBelow(b) - this.sackedBelow(a);
  }

  /** Offset of `seq` from SND.UNA (negative below it). */
  private off(seq: number): number {
    return seqSub(seq, this.base);
  }

  /** SACKed bytes at offsets below `o` (o >= 0). */
  private sackedBelow(o: number): number {
    const i = this.firstEndingAfter(o);
    let n = this.cumulative()[i];
    if (i < this._ranges.length) {
      const s = this.off(this._ranges[i][0]);
      if (s < o) n += o - s;
    }
    return n;
  }

  /** Index of the first range whose end lies after offset `o`; `ranges.length` if none. */
  private firstEndingAfter(o: number): number {
    const rs = this._ranges;
    let lo = 0;
    let hi = rs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.off(rs[mid][1]) > o) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  private cumulative(): number[] {
    if (this.cum !== undefined) return this.cum;
    const rs = this._ranges;
    const c = new Array<number>(rs.length + 1);
    c[0] = 0;
    for (let i = 0; i < rs.length; i++) c[i + 1] = c[i] + seqSub(rs[i][1], rs[i][0]);
    this.cum = c;
    return c;
  }

  /** Mark [l, r) SACKed (both at or above `base`), merging with overlapping or adjacent ranges. */
  private add(l: number, r: number): void {
    const rs = this._ranges;
    const lo = this.off(l);
    const hi = this.off(r);
    // First range ending at or after lo (overlapping or adjacent on the left).
    const i = this.firstEndingAfter(lo - 1);
    let j = i;
    let start = lo;
    let end = hi;
    let covered = 0;
    while (j < rs.length && this.off(rs[j][0]) <= hi) {
      const s = this.off(rs[j][0]);
      const e = this.off(rs[j][1]);
      if (s < start) start = s;
      if (e > end) end = e;
      covered += e - s;
      j++;
    }
    this._sacked += end - start - covered;
    rs.splice(i, j - i, [seqAdd(this.base, start), seqAdd(this.base, end)]);
  }
}
