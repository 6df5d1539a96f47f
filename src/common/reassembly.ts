/**
 * What IPv4 and IPv6 fragment reassembly share (src/ipv4/fragments.ts, src/ipv6/fragments.ts):
 *
 *  - `DatagramTable`: the datagrams under way, keyed by a number (several datagrams with one
 *    key are chained along `sameKey`; the owner tells them apart), and an age list, oldest
 *    first, for timeouts and eviction. O(1) insert and remove; no allocation of its own.
 *  - `placeRange`: copy a fragment's data into the datagram's buffer and merge its byte range
 *    into the sorted list of received ranges, after checking what it overlaps. The overlap
 *    rule is the caller's: IPv4 accepts overlapping bytes that are identical (RFC 791 leaves
 *    overlaps to the receiver; differing bytes are an attack, RFC 5722 §3), IPv6 refuses every
 *    overlap (RFC 5722 §4, RFC 8200 §4.5) but a fragment wholly inside data already received
 *    with the same bytes, which is a duplicate.
 */

/** One datagram under reassembly, as the table links it. */
export interface TableEntry<R> {
  readonly key: number;
  /** Next datagram with the same key. */
  sameKey: R | undefined;
  /** Neighbours in the age list. */
  older: R | undefined;
  newer: R | undefined;
}

export class DatagramTable<R extends TableEntry<R>> {
  private readonly table = new Map<number, R>();
  /** Oldest and newest in the age list. */
  oldest: R | undefined = undefined;
  newest: R | undefined = undefined;

  /** The first datagram with `key` (follow `sameKey` for the others). */
  first(key: number): R | undefined {
    return this.table.get(key);
  }

  /** Add `r` as the newest datagram. */
  insert(r: R): void {
    r.sameKey = this.table.get(r.key);
    this.table.set(r.key, r);
    r.older = this.newest;
    r.newer = undefined;
    if (this.newest !== undefined) this.newest.newer = r;
    else this.oldest = r;
    this.newest = r;
  }

  /** Unlink `r` from its key's chain and the age list. */
  remove(r: R): void {
    let p = this.table.get(r.key);
    if (p === r) {
      if (r.sameKey === undefined) this.table.delete(r.key);
      else this.table.set(r.key, r.sameKey);
    } else {
      while (p !== undefined && p.sameKey !== r) p = p.sameKey;
      if (p !== undefined) p.sameKey = r.sameKey;
    }
    if (r.older !== undefined) r.older.newer = r.newer;
    else this.oldest = r.newer;
    if (r.newer !== undefined) r.newer.older = r.older;
    else this.newest = r.older;
    r.older = r.newer = r.sameKey = undefined;
  }
}

/**
 * What `placeRange` did: "placed" (copied and merged), "duplicate" (wholly inside received data
 * with the same bytes: nothing to do), "conflict" (overlaps received bytes with other values),
 * "overlap" (overlaps received data with the same bytes, not wholly inside one range). Nothing
 * is changed unless "placed".
 */
export type Placement = "placed" | "duplicate" | "conflict" | "overlap";

/**
 * Place `data` at `off` of `buf` (large enough), whose received ranges are `ranges`
 * ([start0, end0, start1, end1, …], sorted, disjoint, not adjacent; kept so). With
 * `acceptOverlap`, an overlap with identical bytes is placed rather than reported.
 */
export function placeRange(ranges: number[], buf: Uint8Array, off: number, data: Uint8Array, acceptOverlap: boolean): Placement {
  const end = off + data.length;
  // First range ending at or after off (binary search over the pairs).
  let lo = 0;
  let hi = ranges.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[2 * mid + 1] < off) lo = mid + 1;
    else hi = mid;
  }
  // Ranges lo..j-1 overlap or touch [off, end): compare what overlaps.
  let j = lo;
  let overlapped = false;
  for (; 2 * j < ranges.length && ranges[2 * j] <= end; j++) {
    const s = Math.max(ranges[2 * j], off);
    const e = Math.min(ranges[2 * j + 1], end);
    if (s >= e) continue; // only touching
    for (let i = s; i < e; i++) if (buf[i] !== data[i - off]) return "conflict";
    if (ranges[2 * j] <= off && end <= ranges[2 * j + 1]) return "duplicate";
    overlapped = true;
  }
  if (overlapped && !acceptOverlap) return "overlap";
  buf.set(data, off);
  if (j === lo) {
    ranges.splice(2 * lo, 0, off, end);
  } else {
    const start = Math.min(ranges[2 * lo], off);
    const stop = Math.max(ranges[2 * j - 1], end);
    ranges.splice(2 * lo, 2 * (j - lo), start, stop);
  }
  return "placed";
}
