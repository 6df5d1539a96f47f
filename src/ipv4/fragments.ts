/**
 * IPv4 fragment reassembly, sans-I/O (RFC 791 §3.2 "Fragmentation and Reassembly" and its
 * reassembly procedure; RFC 815 "IP Datagram Reassembly Algorithms"; RFC 1122 §3.3.2;
 * the RFC 5722 overlap rule, which Linux also applies to IPv4).
 *
 * Fragments are grouped by (source, destination, protocol, identification) (RFC 791 §3.2).
 * Each datagram being reassembled owns one buffer that fragments are copied into at their
 * offset, and a sorted list of the byte ranges received so far (the complement of RFC 815's
 * hole list; adjacent ranges are merged, so fragments arriving in order keep one range). The
 * datagram is complete when the last fragment (MF=0) has fixed the total length and one range
 * covers it.
 *
 * Policy, and where it differs from Linux (net/ipv4/ip_fragment.c):
 *  - A fragment that overlaps data already received with *different* bytes drops the whole
 *    datagram (RFC 5722 §4: overlaps make the datagram ambiguous). Overlapping bytes that are
 *    identical (exact duplicates, or a retransmission cut differently) are harmless and
 *    accepted. Linux instead drops any partial overlap and ignores a contained one without
 *    comparing bytes.
 *  - A datagram whose reassembled size (a 20-byte header plus the data) would exceed 65535
 *    (or `maxDatagramSize`) is dropped whole: the "ping of death" (RFC 791 §3.1 Total Length
 *    is 16 bits).
 *  - A fragment with MF=1 whose length is not a multiple of 8, or an empty fragment, is
 *    invalid (RFC 791 §3.2: every fragment but the last carries a multiple of 8 octets) and is
 *    dropped alone. Linux trims the first and discards the datagram on the second.
 *  - A last fragment that disagrees with the known end (a second, different last fragment, or
 *    data already past it) drops the whole datagram, as in Linux.
 *  - The timer runs from a datagram's first fragment and is not refreshed (as in Linux; RFC 791
 *    suggests resetting it to the fragments' TTL). No ICMP "fragment reassembly time exceeded"
 *    (RFC 792, type 11 code 1) is sent.
 *  - Bounds: at most `maxDatagrams` datagrams and `maxBytes` buffered bytes. When a new
 *    datagram or a growing one would pass a bound, the oldest datagrams are evicted, so
 *    fragments of a datagram that never completes cannot lock out new ones.
 *
 * Memory: `counters.bytes` is the sum of the buffers' capacities and never exceeds `maxBytes`.
 * Ranges are disjoint and separated by gaps of at least 8 bytes (every fragment but the last
 * is at least 8 bytes), so a datagram holds at most capacity/16 + 1 ranges besides its buffer.
 *
 * No clock is read: time (ms) is passed into `add` and `expire` (ARCHITECTURE.md "Sans-I/O cores").
 */

import { DatagramTable, placeRange, type TableEntry } from "../common/reassembly.js";
import { IPV4_MAX_TOTAL_LEN, IPV4_MIN_HEADER_LEN, NO_IPV4_OPTIONS, type Ipv4Repr } from "./ipv4.js";

export interface FragmentLimits {
  /** Datagrams being reassembled at once (default 64). */
  maxDatagrams: number;
  /** Bytes buffered for all of them together (default 4 MiB). */
  maxBytes: number;
  /** Lifetime of an incomplete datagram from its first fragment (default 30 s as Linux; RFC 791 suggests 15 s). */
  timeoutMs: number;
  /** Largest reassembled datagram, 20-byte header included (default and at most 65535). */
  maxDatagramSize?: number;
}

export const DEFAULT_FRAGMENT_LIMITS: Readonly<Required<FragmentLimits>> = {
  maxDatagrams: 64,
  maxBytes: 4 * 1024 * 1024,
  timeoutMs: 30_000,
  maxDatagramSize: IPV4_MAX_TOTAL_LEN,
};

/** Why the last `add` dropped (the fragment, or with it the whole datagram). */
export type FragmentDrop = "invalid" | "too-big" | "overlap";

export interface FragmentCounters {
  /** Datagrams completed. */
  reassembled: number;
  /** Datagrams dropped by `expire`. */
  timedOut: number;
  /** Datagrams dropped for an overlap with different data. */
  overlaps: number;
  /** Datagrams (or lone fragments) dropped for exceeding the datagram size, or `maxBytes` on their own. */
  tooBig: number;
  /** Datagrams dropped to make room under `maxDatagrams` or `maxBytes`. */
  evicted: number;
  /** Fragments dropped as invalid (MF=1 with a length not a multiple of 8, empty, or an inconsistent end). */
  invalid: number;
  /** Bytes buffered now. */
  bytes: number;
  /** Datagrams being reassembled now. */
  datagrams: number;
}

/** One datagram being reassembled. */
class Reassembly implements TableEntry<Reassembly> {
  /** Next datagram with the same (src, id) map key but another dst or protocol. */
  sameKey: Reassembly | undefined = undefined;
  /** Neighbours in the age list (oldest first). */
  older: Reassembly | undefined = undefined;
  newer: Reassembly | undefined = undefined;
  buf: Uint8Array = NO_BYTES;
  /** Received byte ranges as [start0, end0, start1, end1, …], sorted, disjoint, not adjacent. */
  readonly ranges: number[] = [];
  /** Total data length, fixed by the last fragment (MF=0); -1 until it arrives. */
  total = -1;
  /** Header fields of the offset-0 fragment (RFC 791 §3.2: the first fragment's header is kept). */
  tos = 0;
  ttl = 0;
  df = false;

  constructor(
    readonly key: number,
    readonly src: number,
    readonly dst: number,
    readonly protocol: number,
    readonly id: number,
    readonly deadline: number,
  ) {}
}

const NO_BYTES = new Uint8Array(0);

/** A fragment's MF=1 data length must be a multiple of 8 (RFC 791 §3.2). */
const UNIT_MASK = 7;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`fragments: ${name} must be a positive integer, got ${v}`);
  return v;
}

export class FragmentReassembler {
  readonly limits: Readonly<Required<FragmentLimits>>;
  readonly counters: FragmentCounters = {
    reassembled: 0, timedOut: 0, overlaps: 0, tooBig: 0, evicted: 0, invalid: 0, bytes: 0, datagrams: 0,
  };
  /** Why the last `add` dropped, or undefined when it buffered or completed. */
  lastDrop: FragmentDrop | undefined = undefined;
  /**
   * Header of the datagram the last successful `add` completed: the offset-0 fragment's
   * fields, MF clear, offset 0, no options, `payloadLength` the whole data. A fresh object
   * each time; undefined until a datagram completes.
   */
  lastHeader: Ipv4Repr | undefined = undefined;

  /** Keyed by src * 65536 + id (exact in 48 bits); dst and protocol told apart along `sameKey`. */
  private readonly table = new DatagramTable<Reassembly>();
  /** Largest data length: the datagram size less a 20-byte header. */
  private readonly maxData: number;

  constructor(limits: Partial<FragmentLimits> = {}) {
    const l = { ...DEFAULT_FRAGMENT_LIMITS, ...limits };
    positiveInt("maxDatagrams", l.maxDatagrams);
    positiveInt("maxBytes", l.maxBytes);
    if (!(l.timeoutMs > 0)) throw new RangeError(`fragments: timeoutMs must be positive, got ${l.timeoutMs}`);
    const size = positiveInt("maxDatagramSize", l.maxDatagramSize);
    if (size <= IPV4_MIN_HEADER_LEN || size > IPV4_MAX_TOTAL_LEN) {
      throw new RangeError(`fragments: maxDatagramSize must be 21..65535, got ${size}`);
    }
    this.limits = l;
    this.maxData = size - IPV4_MIN_HEADER_LEN;
  }

  /**
   * Offer one fragment (`ip` its parsed header, `payload` its data, borrowed). Returns the
   * whole datagram's data (a new, owned Uint8Array) when this fragment completes it, and sets
   * `lastHeader`; otherwise undefined, with `lastDrop` telling whether the fragment was dropped.
   * Expires stale datagrams first (`expire(now)`), so a caller without a timer stays bounded.
   */
  add(ip: Ipv4Repr, payload: Uint8Array, now: number): Uint8Array | undefined {
    this.lastDrop = undefined;
    this.expire(now);
    const c = this.counters;
    const len = payload.length;
    const off = ip.fragmentOffset;
    const end = off + len;
    // RFC 791 §3.2: every fragment but the last carries a non-zero multiple of 8 octets.
    if (len === 0 || (ip.mf && (len & UNIT_MASK) !== 0)) return this.refuse("invalid");

    const key = ip.src * 0x10000 + ip.id;
    let r = this.table.first(key);
    while (r !== undefined && (r.dst !== ip.dst || r.protocol !== ip.protocol)) r = r.sameKey;

    // Ping of death: the reassembled datagram would not fit a 16-bit Total Length.
    if (end > this.maxData) {
      if (r !== undefined) this.remove(r);
      return this.refuse("too-big");
    }

    // The last fragment fixes the end; nothing may lie past it (RFC 791 §3.2, RFC 815 §3).
    const total = r === undefined ? -1 : r.total;
    const reached = r === undefined || r.ranges.length === 0 ? 0 : r.ranges[r.ranges.length - 1];
    if (!ip.mf ? (total >= 0 && end !== total) || end < reached : total >= 0 && end > total) {
      // r is defined here: a fresh datagram has no known end and nothing received.
      this.remove(r!);
      return this.refuse("invalid");
    }

    if (r === undefined) r = this.create(key, ip, now);
    if (!ip.mf) r.total = end;
    if (off === 0) {
      r.tos = ip.tos;
      r.ttl = ip.ttl;
      r.df = ip.df;
    }
    if (!this.reserve(r, end)) return this.refuse("too-big");
    if (!this.place(r, off, payload)) {
      this.remove(r);
      return this.refuse("overlap");
    }

    const ranges = r.ranges;
    if (r.total < 0 || ranges.length !== 2 || ranges[0] !== 0 || ranges[1] !== r.total) return undefined;
    // Complete (RFC 791 §3.2: all holes filled and the last fragment seen).
    this.remove(r);
    c.reassembled++;
    this.lastHeader = {
      src: r.src, dst: r.dst, protocol: r.protocol, id: r.id, tos: r.tos, ttl: r.ttl, df: r.df,
      mf: false, fragmentOffset: 0, payloadLength: r.total, options: NO_IPV4_OPTIONS,
    };
    return r.buf.length === r.total ? r.buf : r.buf.slice(0, r.total);
  }

  /** Drop datagrams whose timer has run out (now at or past first fragment + timeoutMs); returns how many. */
  expire(now: number): number {
    let n = 0;
    for (let r = this.table.oldest; r !== undefined && r.deadline <= now; r = this.table.oldest) {
      this.remove(r);
      n++;
    }
    this.counters.timedOut += n;
    return n;
  }

  /** Earliest expiry deadline, or Infinity when nothing is being reassembled. */
  nextExpiry(): number {
    const o = this.table.oldest;
    return o === undefined ? Infinity : o.deadline;
  }

  private refuse(why: FragmentDrop): undefined {
    const c = this.counters;
    if (why === "invalid") c.invalid++;
    else if (why === "too-big") c.tooBig++;
    else c.overlaps++;
    this.lastDrop = why;
    return undefined;
  }

  /** Start a datagram, evicting the oldest when `maxDatagrams` are already under way. */
  private create(key: number, ip: Ipv4Repr, now: number): Reassembly {
    const c = this.counters;
    while (c.datagrams >= this.limits.maxDatagrams) {
      this.remove(this.table.oldest!);
      c.evicted++;
    }
    const r = new Reassembly(key, ip.src, ip.dst, ip.protocol, ip.id, now + this.limits.timeoutMs);
    this.table.insert(r);
    c.datagrams++;
    return r;
  }


  /**
   * Make `r`'s buffer hold `end` bytes (exactly the total once known; otherwise doubling, so
   * in-order arrival copies O(n) bytes), evicting older datagrams to stay under `maxBytes`.
   * False, with `r` removed, when `r` alone cannot fit.
   */
  private reserve(r: Reassembly, end: number): boolean {
    const cap = r.buf.length;
    if (end <= cap) return true;
    const c = this.counters;
    const max = this.limits.maxBytes;
    const need = r.total >= 0 ? r.total : end;
    while (c.bytes + need - cap > max) {
      // Evict the oldest datagram other than r; when r is alone, it cannot fit at all.
      const victim = this.table.oldest === r ? r.newer : this.table.oldest;
      if (victim === undefined) {
        this.remove(r);
        return false;
      }
      this.remove(victim);
      c.evicted++;
    }
    // Double while it fits without evicting anything more.
    const grown = r.total >= 0 ? need : Math.min(this.maxData, Math.max(need, cap * 2), max - c.bytes + cap);
    const buf = new Uint8Array(grown);
    buf.set(r.buf.subarray(0, cap));
    r.buf = buf;
    c.bytes += grown - cap;
    return true;
  }

  /**
   * Copy `data` into `r` at `off` and merge its range. False when it overlaps received bytes
   * with different values (RFC 5722 §4); identical overlapping bytes are accepted.
   */
  private place(r: Reassembly, off: number, data: Uint8Array): boolean {
    const p = placeRange(r.ranges, r.buf, off, data, true);
    return p === "placed" || p === "duplicate";
  }

  /** Forget `r`: out of the table, the age list and the byte count. */
  private remove(r: Reassembly): void {
    this.table.remove(r);
    const c = this.counters;
    c.bytes -= r.buf.length;
    c.datagrams--;
  }
}
