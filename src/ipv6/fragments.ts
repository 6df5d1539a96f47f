/**
 * IPv6 fragment reassembly, sans-I/O (RFC 8200 §4.5 "Fragment Header" and its reassembly
 * rules; RFC 5722 "Handling of Overlapping IPv6 Fragments"; RFC 6946 "Processing of IPv6
 * 'Atomic' Fragments"; RFC 7112 for the first fragment's header chain, checked by
 * `walkExtensionHeaders` before a fragment gets here).
 *
 * Input: a whole IPv6 packet carrying a Fragment header and its `ExtChain`. Fragments are
 * grouped by (source, destination, Fragment Identification) (§4.5). The result is a new,
 * owned IPv6 packet: the first (offset 0) fragment's Unfragmentable Part, its last Next Header
 * replaced by the first fragment's Fragment header Next Header, Payload Length recomputed, then
 * the reassembled Fragmentable Part; no Fragment header. Walk its chain again to find the
 * upper layer.
 *
 * Rules (§4.5 unless noted):
 *  - Atomic fragments (offset 0, M clear) are returned at once, stripped of the Fragment
 *    header, in isolation from any reassembly under the same key (RFC 6946 §4).
 *  - A fragment with M set whose data is not a multiple of 8 bytes is dropped, with a
 *    Parameter Problem code 0 pointing at Payload Length suggested (`lastParamProblem`); an
 *    empty fragment is dropped silently.
 *  - A fragment that would make the reassembled Payload Length exceed 65535 is dropped (with
 *    the datagram), Parameter Problem code 0 pointing at the Fragment Offset field suggested.
 *  - Overlaps (RFC 5722 §4): a fragment overlapping data already received discards the whole
 *    datagram silently, and the key stays poisoned until the timeout so later fragments of it
 *    are discarded too ("including those not yet received"). One exception, as Linux: a
 *    fragment whose bytes all lie inside received data and are identical (a duplicated
 *    packet) is ignored, since it makes nothing ambiguous.
 *  - The last fragment fixes the length; a second, different last fragment or data past it
 *    discards the datagram.
 *  - Only the offset-0 fragment's Unfragmentable Part and Next Header are kept; Next Header
 *    values of other fragments may differ and are ignored.
 *  - Timeout: 60 s from the first fragment to arrive (not refreshed). `expire` reports
 *    datagrams whose offset-0 fragment had arrived, so the caller can send Time Exceeded code 1
 *    quoting it (§4.5: "if the first fragment has been received").
 *  - Bounds: at most `maxDatagrams` datagrams (poisoned keys included) and `maxBytes`
 *    buffered bytes; the oldest datagrams are evicted to make room.
 *
 * No clock is read: time (ms) is passed into `add` and `expire` (DESIGN.md "Sans-I/O cores").
 */

import { DatagramTable, placeRange, type TableEntry } from "../common/reassembly.js";
import { setU16 } from "../common/bytes.js";
import { hashIpv6, ipv6Equal, readIpv6Addr, type Ipv6Addr } from "./addr.js";
import { FRAGMENT_HEADER_LEN, emitFragmentHeader, type ExtChain } from "./ext.js";
import { IPV6_HEADER_LEN, IPV6_MAX_PAYLOAD_LEN, IPV6_MIN_MTU, Ipv6Field, NextHeader } from "./ipv6.js";

export interface Ipv6FragmentLimits {
  /** Datagrams being reassembled at once, poisoned keys included (default 64). */
  maxDatagrams: number;
  /** Bytes buffered for all of them together (default 4 MiB). */
  maxBytes: number;
  /** Lifetime of an incomplete datagram from its first fragment (default 60 s, RFC 8200 §4.5). */
  timeoutMs: number;
}

export const DEFAULT_IPV6_FRAGMENT_LIMITS: Readonly<Ipv6FragmentLimits> = {
  maxDatagrams: 64,
  maxBytes: 4 * 1024 * 1024,
  timeoutMs: 60_000,
};

/** Why the last `add` dropped. */
export type Ipv6FragmentDrop = "invalid" | "too-big" | "overlap" | "poisoned" | "duplicate";

export interface Ipv6FragmentCounters {
  reassembled: number;
  /** Atomic fragments passed through (RFC 6946). */
  atomic: number;
  timedOut: number;
  /** Datagrams discarded for an overlap (RFC 5722). */
  overlaps: number;
  /** Fragments dropped because their key was poisoned by an earlier overlap. */
  poisoned: number;
  /** Fragments ignored as identical duplicates. */
  duplicates: number;
  tooBig: number;
  evicted: number;
  invalid: number;
  /** Bytes buffered now. */
  bytes: number;
  /** Datagrams (and poisoned keys) held now. */
  datagrams: number;
}

/** A datagram that timed out after its first fragment arrived (for ICMPv6 Time Exceeded code 1). */
export interface ExpiredDatagram {
  src: Ipv6Addr;
  dst: Ipv6Addr;
  /**
   * The first fragment as it arrived up to the end of the data received contiguously from
   * offset 0, cut so an ICMPv6 error quoting it fits the minimum MTU (1232 bytes). Owned.
   */
  firstFragment: Uint8Array;
}

/** Largest invoking packet an ICMPv6 error can quote: 1280 - 40 - 8 (RFC 4443 §2.4(c)). */
const MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - 8;
const NO_BYTES = new Uint8Array(0);

class Reassembly implements TableEntry<Reassembly> {
  sameKey: Reassembly | undefined = undefined;
  older: Reassembly | undefined = undefined;
  newer: Reassembly | undefined = undefined;
  buf: Uint8Array = NO_BYTES;
  /** Received byte ranges [start0, end0, start1, end1, …], sorted, disjoint, not adjacent. */
  readonly ranges: number[] = [];
  /** Data length, fixed by the last fragment; -1 until then. */
  total = -1;
  /** Unfragmentable Part of the offset-0 fragment (IPv6 header included); undefined until it arrives. */
  unfrag: Uint8Array | undefined = undefined;
  /** Next Header of the offset-0 fragment's Fragment header. */
  nextHeader = 0;
  /** Offset of the Next Header field to patch in `unfrag`. */
  fieldAt = 0;
  /** Set after an overlap: the key drops every fragment until it times out (RFC 5722 §4). */
  poisoned = false;

  constructor(
    readonly key: number,
    readonly src: Ipv6Addr,
    readonly dst: Ipv6Addr,
    readonly id: number,
    readonly deadline: number,
  ) {}

  /** Bytes this datagram holds. */
  get size(): number {
    return this.buf.length + (this.unfrag === undefined ? 0 : this.unfrag.length);
  }
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`ipv6 fragments: ${name} must be a positive integer, got ${v}`);
}

export class Ipv6Reassembler {
  readonly limits: Readonly<Ipv6FragmentLimits>;
  readonly counters: Ipv6FragmentCounters = {
    reassembled: 0, atomic: 0, timedOut: 0, overlaps: 0, poisoned: 0, duplicates: 0, tooBig: 0, evicted: 0,
    invalid: 0, bytes: 0, datagrams: 0,
  };
  /** Why the last `add` dropped, or undefined when it buffered or completed. */
  lastDrop: Ipv6FragmentDrop | undefined = undefined;
  /**
   * When the last drop should be answered with a Parameter Problem code 0 (RFC 8200 §4.5):
   * the pointer (offset from the fragment's IPv6 header); otherwise -1.
   */
  lastParamProblemPointer = -1;

  private readonly table = new DatagramTable<Reassembly>();

  constructor(limits: Partial<Ipv6FragmentLimits> = {}) {
    const l = { ...DEFAULT_IPV6_FRAGMENT_LIMITS, ...limits };
    positiveInt("maxDatagrams", l.maxDatagrams);
    positiveInt("maxBytes", l.maxBytes);
    if (!(l.timeoutMs > 0)) throw new RangeError(`ipv6 fragments: timeoutMs must be positive, got ${l.timeoutMs}`);
    this.limits = l;
  }

  /**
   * Offer one fragment: `packet` the whole IPv6 packet (borrowed), `chain` its walk (with
   * `fragmentAt >= 0`). Returns the reassembled packet (new, owned) when this fragment
   * completes it or is atomic; otherwise undefined, with `lastDrop` telling whether it was
   * dropped. Expires stale datagrams first, so a caller without a timer stays bounded.
   */
  add(packet: Uint8Array, chain: ExtChain, now: number): Uint8Array | undefined {
    this.lastDrop = undefined;
    this.lastParamProblemPointer = -1;
    this.expire(now);
    const fragAt = chain.fragmentAt;
    if (fragAt < 0) return this.refuse("invalid");
    const dataAt = fragAt + FRAGMENT_HEADER_LEN;
    const len = chain.end - dataAt;
    const off = chain.fragmentOffset;
    const mf = chain.moreFragments;
    if (off === 0 && !mf) {
      // RFC 6946 §4: an atomic fragment is processed in isolation.
      this.counters.atomic++;
      return stripFragmentHeader(packet, fragAt, chain.fragmentFieldAt, packet[fragAt], chain.end);
    }
    if (len <= 0) return this.refuse("invalid");
    if (mf && (len & 7) !== 0) {
      this.lastParamProblemPointer = Ipv6Field.PayloadLength;
      return this.refuse("invalid");
    }
    const end = off + len;
    const src = readIpv6Addr(packet, Ipv6Field.Src);
    const dst = readIpv6Addr(packet, Ipv6Field.Dst);
    const key = (hashIpv6(src) ^ Math.imul(hashIpv6(dst), 0x27d4eb2d) ^ chain.fragmentId) >>> 0;
    let r = this.table.first(key);
    while (r !== undefined && !(r.id === chain.fragmentId && ipv6Equal(r.src, src) && ipv6Equal(r.dst, dst))) {
      r = r.sameKey;
    }
    if (r !== undefined && r.poisoned) {
      this.counters.poisoned++;
      this.lastDrop = "poisoned";
      return undefined;
    }
    // §4.5: the reassembled Payload Length (this fragment's unfragmentable part + data) must fit 16 bits.
    if (fragAt - IPV6_HEADER_LEN + end > IPV6_MAX_PAYLOAD_LEN) {
      if (r !== undefined) this.remove(r);
      this.lastParamProblemPointer = fragAt + 2;
      return this.refuse("too-big");
    }
    // The last fragment fixes the end; nothing may lie past it.
    if (r !== undefined) {
      const reached = r.ranges.length === 0 ? 0 : r.ranges[r.ranges.length - 1];
      if (!mf ? (r.total >= 0 && end !== r.total) || end < reached : r.total >= 0 && end > r.total) {
        this.remove(r);
        return this.refuse("invalid");
      }
    }
    if (r === undefined) r = this.create(key, src, dst, chain.fragmentId, now);
    if (!mf) r.total = end;
    const extra = off === 0 && r.unfrag === undefined ? fragAt : 0;
    if (!this.reserve(r, end, extra)) return this.refuse("too-big");
    const placed = this.place(r, off, packet.subarray(dataAt, chain.end));
    if (placed === "overlap") {
      this.poison(r);
      return this.refuse("overlap");
    }
    if (placed === "duplicate") {
      this.counters.duplicates++;
      this.lastDrop = "duplicate";
      return undefined;
    }
    if (off === 0 && r.unfrag === undefined) {
      r.unfrag = packet.slice(0, fragAt);
      r.nextHeader = packet[fragAt];
      r.fieldAt = chain.fragmentFieldAt;
      this.counters.bytes += fragAt;
    }
    const ranges = r.ranges;
    if (r.total < 0 || r.unfrag === undefined || ranges.length !== 2 || ranges[0] !== 0 || ranges[1] !== r.total) {
      return undefined;
    }
    // Complete: the Unfragmentable Part of the first fragment, then the data (§4.5).
    this.remove(r);
    const u = r.unfrag;
    if (u.length - IPV6_HEADER_LEN + r.total > IPV6_MAX_PAYLOAD_LEN) return this.refuse("too-big");
    const out = new Uint8Array(u.length + r.total);
    out.set(u);
    out.set(r.buf.subarray(0, r.total), u.length);
    out[r.fieldAt] = r.nextHeader;
    setU16(out, Ipv6Field.PayloadLength, out.length - IPV6_HEADER_LEN);
    this.counters.reassembled++;
    return out;
  }

  /**
   * Drop datagrams whose timer has run out (now at or past first fragment + timeoutMs);
   * returns how many. `report` is called for each one whose offset-0 fragment had arrived.
   */
  expire(now: number, report?: (d: ExpiredDatagram) => void): number {
    let n = 0;
    for (let r = this.table.oldest; r !== undefined && r.deadline <= now; r = this.table.oldest) {
      this.remove(r);
      if (!r.poisoned) n++;
      if (report !== undefined && r.unfrag !== undefined && !r.poisoned) report({ src: r.src, dst: r.dst, firstFragment: firstFragmentOf(r) });
    }
    this.counters.timedOut += n;
    return n;
  }

  /** Earliest expiry deadline, or Infinity when nothing is held. */
  nextExpiry(): number {
    const o = this.table.oldest;
    return o === undefined ? Infinity : o.deadline;
  }

  private refuse(why: Ipv6FragmentDrop): undefined {
    const c = this.counters;
    if (why === "invalid") c.invalid++;
    else if (why === "too-big") c.tooBig++;
    else if (why === "overlap") c.overlaps++;
    this.lastDrop = why;
    return undefined;
  }

  private create(key: number, src: Ipv6Addr, dst: Ipv6Addr, id: number, now: number): Reassembly {
    const c = this.counters;
    while (c.datagrams >= this.limits.maxDatagrams) {
      this.remove(this.table.oldest!);
      c.evicted++;
    }
    const r = new Reassembly(key, src, dst, id, now + this.limits.timeoutMs);
    this.table.insert(r);
    c.datagrams++;
    return r;
  }

  /** RFC 5722 §4: free the datagram's data but keep its key, dropping later fragments until the timeout. */
  private poison(r: Reassembly): void {
    this.counters.bytes -= r.size;
    r.poisoned = true;
    r.buf = NO_BYTES;
    r.unfrag = undefined;
    r.ranges.length = 0;
  }

  /**
   * Make `r`'s buffer hold `end` bytes (plus `extra` for the Unfragmentable Part about to be
   * kept), growing by doubling until the total is known, and evicting older datagrams to stay
   * under `maxBytes`. False, with `r` removed, when `r` alone cannot fit.
   */
  private reserve(r: Reassembly, end: number, extra: number): boolean {
    const cap = r.buf.length;
    if (end <= cap && extra === 0) return true;
    const c = this.counters;
    const max = this.limits.maxBytes;
    const need = Math.max(cap, r.total >= 0 ? r.total : end);
    while (c.bytes + need - cap + extra > max) {
      const victim = this.table.oldest === r ? r.newer : this.table.oldest;
      if (victim === undefined) {
        this.remove(r);
        return false;
      }
      this.remove(victim);
      c.evicted++;
    }
    if (need === cap) return true;
    const room = max - c.bytes - extra + cap;
    const grown = r.total >= 0 ? need : Math.min(IPV6_MAX_PAYLOAD_LEN, Math.max(need, cap * 2), room);
    const buf = new Uint8Array(grown);
    buf.set(r.buf.subarray(0, cap));
    r.buf = buf;
    c.bytes += grown - cap;
    return true;
  }

  /** Copy `data` into `r` at `off` and merge its range; refuse any overlap but an identical contained one. */
  private place(r: Reassembly, off: number, data: Uint8Array): "placed" | "duplicate" | "overlap" {
    const p = placeRange(r.ranges, r.buf, off, data, false);
    return p === "conflict" ? "overlap" : p;
  }

  private remove(r: Reassembly): void {
    this.table.remove(r);
    const c = this.counters;
    c.bytes -= r.size;
    c.datagrams--;
  }
}

/** The packet without its Fragment header (RFC 6946 §4 for an atomic fragment). New, owned. */
function stripFragmentHeader(packet: Uint8Array, fragAt: number, fieldAt: number, nextHeader: number, end: number): Uint8Array {
  const out = new Uint8Array(end - FRAGMENT_HEADER_LEN);
  out.set(packet.subarray(0, fragAt));
  out.set(packet.subarray(fragAt + FRAGMENT_HEADER_LEN, end), fragAt);
  out[fieldAt] = nextHeader;
  setU16(out, Ipv6Field.PayloadLength, out.length - IPV6_HEADER_LEN);
  return out;
}

/** The offset-0 fragment rebuilt from what was kept, cut to the ICMPv6 quote limit. */
function firstFragmentOf(r: Reassembly): Uint8Array {
  const u = r.unfrag!;
  const data = r.ranges.length > 0 && r.ranges[0] === 0 ? r.ranges[1] : 0;
  const whole = u.length + FRAGMENT_HEADER_LEN + data;
  const out = new Uint8Array(Math.min(whole, MAX_QUOTE));
  const tmp = new Uint8Array(whole);
  tmp.set(u);
  emitFragmentHeader({ nextHeader: r.nextHeader, fragmentOffset: 0, moreFragments: true, id: r.id }, tmp, u.length);
  tmp.set(r.buf.subarray(0, data), u.length + FRAGMENT_HEADER_LEN);
  tmp[r.fieldAt] = NextHeader.Fragment; // the original field named the Fragment header
  setU16(tmp, Ipv6Field.PayloadLength, whole - IPV6_HEADER_LEN);
  out.set(tmp.subarray(0, out.length));
  return out;
}
