/**
 * Out-of-order receive queue: segment text that arrived above RCV.NXT, held (bounded) until the
 * bytes before it arrive, and the SACK blocks that describe it to the sender.
 *
 * Read first:
 *  - RFC 9293 §3.10.7.4, "seventh, process the segment text" ("segments with higher beginning
 *    sequence numbers SHOULD be held for later processing") and §3.4 (the acceptance test that
 *    trims a segment to the window before it gets here);
 *  - RFC 2018 §3 (a SACK block is [left edge, right edge), the right edge being "the sequence
 *    number immediately following the last sequence number of this block") and §4 (which blocks
 *    to report, and in which order);
 *  - RFC 5681 §4.2 (an out-of-order segment is acknowledged at once: the caller's job).
 *
 * Held data is a sorted list of disjoint, non-adjacent ranges (adjacent or overlapping data is
 * merged), each holding owned copies of the bytes in chunks. Overlaps keep the copy already held
 * (RFC 9293 §3.10.7.4 lets a receiver trim duplicates; RFC 9293 §3.9 leaves which copy to keep
 * open, and keeping the first one makes a retransmission unable to rewrite data). Memory is
 * bounded by `maxBytes` and the number of ranges by `maxSegments`; data beyond either is
 * dropped and counted (DESIGN.md "Nothing a guest sends can ... grow memory without bound").
 *
 * Sequence numbers are compared only through `seq.ts`, as offsets from the caller's RCV.NXT.
 */

import { seqAdd, seqSub } from "./seq.js";

/**
 * Adjacent chunks inside a range are joined while together they stay this small, so a flood of
 * tiny segments costs a bounded number of chunk objects (at most 2 * maxBytes / COALESCE + 1).
 */
const COALESCE = 2048;

/** One contiguous range of held bytes. */
interface Range {
  /** Sequence number of the first byte. */
  start: number;
  len: number;
  /** Owned copies of the bytes, in order; their lengths add up to `len`. */
  chunks: Uint8Array[];
  /** Insertion clock of the last insert that touched this range (RFC 2018 §4 recency). */
  stamp: number;
}

/** Append borrowed `src` to `chunks`, joining it to the last chunk while both are small. */
function appendBytes(chunks: Uint8Array[], src: Uint8Array, owned: boolean): void {
  const k = chunks.length - 1;
  if (k >= 0 && chunks[k].length + src.length <= COALESCE) {
    const last = chunks[k];
    const joined = new Uint8Array(last.length + src.length);
    joined.set(last, 0);
    joined.set(src, last.length);
    chunks[k] = joined;
  } else {
    chunks.push(owned ? src : src.slice());
  }
}

/** Put a copy of borrowed `src` in front of `chunks`, joining it to the first chunk while both are small. */
function prependBytes(chunks: Uint8Array[], src: Uint8Array): void {
  if (chunks.length > 0 && chunks[0].length + src.length <= COALESCE) {
    const first = chunks[0];
    const joined = new Uint8Array(src.length + first.length);
    joined.set(src, 0);
    joined.set(first, src.length);
    chunks[0] = joined;
  } else {
    chunks.unshift(src.slice());
  }
}

/** Out-of-order segment text above RCV.NXT, bounded in bytes and ranges. */
export class ReassemblyQueue {
  private ranges: Range[] = [];
  private _bytes = 0;
  private _dropped = 0;
  private clock = 0;

  /**
   * @param maxBytes most bytes held at once
   * @param maxSegments most disjoint ranges held at once (each hole costs one)
   * Throws RangeError (a programmer error) for negative bounds.
   */
  constructor(
    readonly maxBytes: number,
    readonly maxSegments: number,
  ) {
    if (!(maxBytes >= 0 && maxSegments >= 0)) throw new RangeError(`bad reassembly bounds ${maxBytes}/${maxSegments}`);
  }

  /** Bytes held now. */
  get bytes(): number {
    return this._bytes;
  }

  /** Disjoint ranges held now. */
  get segments(): number {
    return this.ranges.length;
  }

  /** Counted drops: bytes refused because a bound was hit (cumulative; `clear` keeps it). */
  get droppedBytes(): number {
    return this._dropped;
  }

  /**
   * Insert `data` (borrowed; what is kept is copied) starting at sequence number `seq`, where
   * `rcvNxt` is the next expected sequence number and `seq` is above it (in-order data is the
   * caller's; any part at or before `rcvNxt` is ignored here). Bytes already held win over the
   * new copy; new bytes fill the holes, merging ranges they touch. Pieces that would exceed
   * `maxBytes` (the tail of what does not fit) or need a range beyond `maxSegments` are dropped
   * and counted. Returns the number of new bytes stored.
   */
  insert(seq: number, data: Uint8Array, rcvNxt: number): number {
    this.discardBefore(rcvNxt);
    const s0 = seqSub(seq, rcvNxt); // offset of data[0] from rcvNxt
    const e = s0 + data.length;
    if (e <= 0 || data.length === 0) return 0; // all of it already delivered
    const stamp = ++this.clock;
    let stored = 0;
    let cursor = s0 > 0 ? s0 : 0;
    while (cursor < e) {
      const i = this.firstEndingAfter(cursor, rcvNxt);
      const r = i < this.ranges.length ? this.ranges[i] : undefined;
      const rs = r === undefined ? Infinity : seqSub(r.start, rcvNxt);
      if (r !== undefined && rs <= cursor) {
        // RFC 9293 §3.10.7.4: this part is held already; the first copy stays. The range
        // still contains the segment that triggers the next ACK (RFC 2018 §4 ordering).
        r.stamp = stamp;
        cursor = rs + r.len;
        continue;
      }
      const gapEnd = rs < e ? rs : e;
      stored += this.fill(i, cursor, data.subarray(cursor - s0, gapEnd - s0), rcvNxt, stamp);
      cursor = gapEnd;
    }
    return stored;
  }

  /**
   * The bytes from `rcvNxt` on, when held data starts at or before `rcvNxt` and extends past it:
   * removed from the queue and returned in order as one or more chunks (owned by the caller).
   * Empty when the byte at `rcvNxt` is not held. Held data entirely before `rcvNxt` is discarded.
   */
  take(rcvNxt: number): Uint8Array[] {
    this.discardBefore(rcvNxt);
    if (this.ranges.length === 0) return [];
    const r = this.ranges[0];
    let skip = -seqSub(r.start, rcvNxt); // bytes of r before rcvNxt
    if (skip < 0) return []; // a hole before the first range
    this.ranges.shift();
    this._bytes -= r.len;
    // Ranges are never adjacent, so the next one starts after a hole: one range at most.
    const out: Uint8Array[] = [];
    for (const c of r.chunks) {
      if (skip >= c.length) {
        skip -= c.length;
        continue;
      }
      out.push(skip > 0 ? c.subarray(skip) : c);
      skip = 0;
    }
    return out;
  }

  /**
   * Up to `max` SACK blocks [left, right) of held data, as RFC 2018 §4 asks: "The first SACK
   * block ... MUST specify the contiguous block of data containing the segment which triggered
   * this ACK", then the others, most recently touched first (approximating "repeating the most
   * recently reported SACK blocks"). Each block is a whole held range, so blocks are disjoint.
   */
  sackBlocks(max: number): Array<[number, number]> {
    const n = Math.min(max, this.ranges.length);
    const out: Array<[number, number]> = [];
    const used: Range[] = [];
    for (let k = 0; k < n; k++) {
      let best: Range | undefined;
      for (const r of this.ranges) {
        if ((best === undefined || r.stamp > best.stamp) && !used.includes(r)) best = r;
      }
      if (best === undefined) break;
      used.push(best);
      out.push([best.start, seqAdd(best.start, best.len)]);
    }
    return out;
  }

  /** Drop all held data (the drop counter is kept). */
  clear(): void {
    this.ranges = [];
    this._bytes = 0;
  }

  /**
   * Store the hole-filling piece `src` at offset `at` (from `rcvNxt`), between ranges[i - 1]
   * (ending at or before `at`) and ranges[i] (starting at or after its end). Returns bytes stored.
   */
  private fill(i: number, at: number, src: Uint8Array, rcvNxt: number, stamp: number): number {
    let n = src.length;
    const room = this.maxBytes - this._bytes;
    if (n > room) {
      // Bound on bytes: keep the part nearest RCV.NXT (it is what unblocks the stream).
      this._dropped += n - Math.max(room, 0);
      n = Math.max(room, 0);
      if (n === 0) return 0;
      src = src.subarray(0, n);
    }
    const left = i > 0 ? this.ranges[i - 1] : undefined;
    const right = i < this.ranges.length ? this.ranges[i] : undefined;
    const leftAdj = left !== undefined && seqSub(left.start, rcvNxt) + left.len === at;
    const rightAdj = right !== undefined && seqSub(right.start, rcvNxt) === at + n;
    if (leftAdj && left !== undefined) {
      appendBytes(left.chunks, src, false);
      left.len += n;
      left.stamp = stamp;
      if (rightAdj && right !== undefined) {
        // The piece closes the hole between two ranges: they become one.
        appendBytes(left.chunks, right.chunks[0], true);
        for (let k = 1; k < right.chunks.length; k++) left.chunks.push(right.chunks[k]);
        left.len += right.len;
        this.ranges.splice(i, 1);
      }
    } else if (rightAdj && right !== undefined) {
      prependBytes(right.chunks, src);
      right.start = seqAdd(rcvNxt, at);
      right.len += n;
      right.stamp = stamp;
    } else {
      if (this.ranges.length >= this.maxSegments) {
        // Bound on ranges: a piece that would open a new one is refused.
        this._dropped += n;
        return 0;
      }
      this.ranges.splice(i, 0, { start: seqAdd(rcvNxt, at), len: n, chunks: [src.slice()], stamp });
    }
    this._bytes += n;
    return n;
  }

  /** Index of the first range ending after offset `at` (from `base`); `ranges.length` if none. */
  private firstEndingAfter(at: number, base: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const r = this.ranges[mid];
      if (seqSub(r.start, base) + r.len > at) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Forget ranges that end at or before `rcvNxt` (already delivered by another path). */
  private discardBefore(rcvNxt: number): void {
    while (this.ranges.length > 0) {
      const r = this.ranges[0];
      if (seqSub(r.start, rcvNxt) + r.len > 0) return;
      this.ranges.shift();
      this._bytes -= r.len;
    }
  }
}
