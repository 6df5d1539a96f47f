/**
 * Seeded fuzz of the IPv6 receive path (issue 18 "Fuzz of IPv6 extension headers and
 * fragments: no crash, bounded memory"): random extension-header chains, whole and damaged, go
 * through parse → walk → reassembly → walk again → ICMPv6/ND parse; random fragment sequences
 * (overlaps, duplicates, atomic fragments, inconsistent ends, many identifications) go through a
 * reassembler with small bounds while time advances. Nothing may throw; the reassembler's
 * buffered bytes and datagrams stay within their bounds at every step. Deterministic: a fixed
 * xorshift seed, so a failure names the case that reproduces it.
 */
import { expect } from "chai";
import { WireError } from "../../src/common/wire-error.js";
import { DEFAULT_EXT_LIMITS, emitFragmentHeader, walkExtensionHeaders } from "../../src/ipv6/ext.js";
import { Ipv6Reassembler } from "../../src/ipv6/fragments.js";
import { parseIcmpv6 } from "../../src/ipv6/icmpv6.js";
import { emitIpv6, parseIpv6 } from "../../src/ipv6/ipv6.js";
import { parseNdp } from "../../src/ipv6/ndp.js";
import { damaged } from "../support/arbitraries.js";
import { GATEWAY, GUEST } from "./helpers.js";
import { fragmentPacket, offer } from "./frag-support.js";

/** A 32-bit xorshift generator: `next(n)` is uniform-ish in 0..n-1. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % Math.max(1, n);
  };
}

const EXT_TYPES = [0, 43, 44, 60, 51, 135, 139, 140, 253, 254];
const UPPER = [6, 17, 58, 50, 59, 41, 255];

/** A random chain of extension headers (some well-formed, some not) and an upper layer. */
function randomChain(r: (n: number) => number): { nh: number; body: Uint8Array } {
  const parts: number[] = [];
  const count = r(12);
  const types = Array.from({ length: count }, () => EXT_TYPES[r(EXT_TYPES.length)]);
  const first = count > 0 ? types[0] : UPPER[r(UPPER.length)];
  for (let i = 0; i < count; i++) {
    const t = types[i];
    const next = i + 1 < count ? types[i + 1] : UPPER[r(UPPER.length)];
    if (t === 44) {
      const b = new Uint8Array(8);
      emitFragmentHeader({ nextHeader: next, fragmentOffset: r(4) === 0 ? 8 * r(200) : 0, moreFragments: r(2) === 0, id: r(4) }, b);
      parts.push(...b);
      continue;
    }
    const units = r(4);
    const len = t === 51 ? (units + 2) * 4 : (units + 1) * 8;
    const h = new Uint8Array(len);
    h[0] = next;
    h[1] = units;
    if (t === 0 || t === 60) {
      // Options: a random mix of Pad1, PadN, Router Alert and unknown types of every action.
      let i2 = 2;
      while (i2 < len) {
        const kind = r(5);
        if (kind === 0 || len - i2 < 2) h[i2++] = 0;
        else {
          const olen = Math.min(len - i2 - 2, r(6));
          h[i2] = [1, 5, 0x1e, 0x5e, 0x9e, 0xde][r(6)];
          h[i2 + 1] = r(8) === 0 ? olen + 3 : olen;
          i2 += 2 + olen;
        }
      }
    } else if (t === 43) {
      h[2] = r(5);
      h[3] = r(3) === 0 ? 1 : 0;
    }
    parts.push(...h);
  }
  for (let i = 0; i < r(64); i++) parts.push(r(256));
  return { nh: first, body: Uint8Array.from(parts) };
}

function packet(nh: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(40 + body.length);
  emitIpv6({ src: GUEST, dst: GATEWAY, nextHeader: nh, hopLimit: 255, trafficClass: 0, flowLabel: 0, payloadLength: body.length }, b);
  b.set(body, 40);
  return b;
}

/** The receive path up to the upper layer; returns how far it got. */
function receive(bytes: Uint8Array, reasm: Ipv6Reassembler, now: number): string {
  const h = parseIpv6(bytes);
  if (h instanceof WireError) return "ipv6";
  let pkt = bytes.subarray(0, 40 + h.payloadLength);
  let c = walkExtensionHeaders(pkt);
  if (c instanceof WireError) return "walk";
  expect(c.offset).to.be.at.most(c.end);
  expect(c.headers).to.be.at.most(DEFAULT_EXT_LIMITS.maxHeaders);
  if (c.fragmentAt >= 0) {
    const whole = reasm.add(pkt, c, now);
    if (whole === undefined) return "fragment";
    pkt = whole;
    c = walkExtensionHeaders(pkt);
    if (c instanceof WireError) return "walk";
  }
  if (c.protocol !== 58) return "upper";
  const m = parseIcmpv6(pkt.subarray(c.offset, c.end), h.src, h.dst, { verifyChecksum: false });
  const n = parseNdp(pkt.subarray(c.offset, c.end), h.src, h.dst, h.hopLimit, { verifyChecksum: false });
  return m instanceof WireError ? "icmpv6" : n instanceof WireError ? "icmpv6" : "ndp";
}

describe("ipv6 fuzz (seeded): extension-header chains and fragment sequences", () => {
  it("random and damaged extension-header chains never throw and stay within the walk's bounds", () => {
    const r = rng(0x5eed6);
    const reasm = new Ipv6Reassembler({ maxDatagrams: 8, maxBytes: 64 * 1024 });
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const { nh, body } = randomChain(r);
      const valid = packet(nh, body);
      const input = r(2) === 0 ? valid : damaged(valid, r(0x7fffffff));
      const got = receive(input, reasm, i);
      outcomes.set(got, (outcomes.get(got) ?? 0) + 1);
      expect(reasm.counters.bytes).to.be.at.most(64 * 1024);
    }
    // The generator reaches every stage (so the fuzz exercises more than the first check).
    for (const stage of ["ipv6", "walk", "fragment", "upper", "icmpv6"]) expect(outcomes.get(stage) ?? 0, stage).to.be.greaterThan(50);
  });

  it("random fragment sequences keep memory within the bounds and still reassemble clean datagrams", () => {
    const r = rng(0xf7a6);
    const limits = { maxDatagrams: 16, maxBytes: 96 * 1024, timeoutMs: 60_000 };
    const reasm = new Ipv6Reassembler(limits);
    let now = 0;
    let completed = 0;
    let peakBytes = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    let clean = 0;
    for (let i = 0; i < 60_000; i++) {
      now += r(50);
      if (r(10) === 0) {
        // A clean datagram under an identification of its own, its fragments shuffled with a duplicate.
        const size = 16 + r(3000);
        const data = new Uint8Array(size);
        for (let k = 0; k < size; k++) data[k] = r(256);
        const whole = new Uint8Array(40 + size);
        emitIpv6({ src: GUEST, dst: GATEWAY, nextHeader: 17, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: size }, whole);
        whole.set(data, 40);
        const cuts: number[] = [];
        for (let at = 8 * (1 + r(100)); at < size; at += 8 * (1 + r(100))) cuts.push(at);
        const frags = fragmentPacket(whole, 40, 6, cuts, 0x10000 + i);
        if (frags.length > 1) frags.splice(r(frags.length), 0, frags[r(frags.length)]);
        for (let k = frags.length - 1; k > 0; k--) {
          const j = r(k + 1);
          [frags[k], frags[j]] = [frags[j], frags[k]];
        }
        let out: Uint8Array | undefined;
        for (const f of frags) out = offer(reasm, f, now) ?? out;
        expect(out, `clean datagram ${i}`).to.deep.equal(whole);
        clean++;
        continue;
      }
      // Mostly well-formed pieces of a few datagrams, with overlaps, duplicates and junk mixed in.
      const id = r(40);
      const off = 8 * r(r(10) === 0 ? 8192 : 400);
      const len = r(8) === 0 ? 1 + r(64) : 8 * (1 + r(150));
      const more = r(3) !== 0;
      const b = new Uint8Array(48 + len);
      emitIpv6({ src: GUEST, dst: GATEWAY, nextHeader: 44, hopLimit: 64, trafficClass: 0, flowLabel: 0, payloadLength: 8 + len }, b);
      emitFragmentHeader({ nextHeader: 17, fragmentOffset: off, moreFragments: more, id }, b, 40);
      for (let k = 48; k < b.length; k++) b[k] = (off + k - 48) & 0xff; // same bytes for the same offsets
      if (r(20) === 0) b[48 + r(len)] ^= 0xff; // a conflicting copy now and then
      const c = walkExtensionHeaders(b);
      if (c instanceof WireError) continue;
      if (reasm.add(b, c, now) !== undefined) completed++;
      const cs = reasm.counters;
      expect(cs.bytes).to.be.at.most(limits.maxBytes);
      expect(cs.datagrams).to.be.at.most(limits.maxDatagrams);
      expect(cs.bytes).to.be.at.least(0);
      peakBytes = Math.max(peakBytes, cs.bytes);
    }
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    const c = reasm.counters;
    // Every kind of drop was exercised.
    expect(c.overlaps).to.be.greaterThan(0);
    expect(c.duplicates + c.poisoned).to.be.greaterThan(0);
    expect(c.invalid).to.be.greaterThan(0);
    expect(c.evicted).to.be.greaterThan(0);
    expect(c.atomic + completed).to.be.greaterThan(0);
    // Everything left expires after the timeout.
    reasm.expire(now + 60_000);
    expect([reasm.counters.bytes, reasm.counters.datagrams]).to.deep.equal([0, 0]);
    expect(clean).to.be.greaterThan(1000);
    console.log(`      fragments: ${clean} clean datagrams reassembled, ${completed} packets out of the random stream, ${c.atomic} atomic, ${c.overlaps} overlaps, ${c.evicted} evicted, peak ${peakBytes} bytes buffered, heap growth ${(heapGrowth / 1048576).toFixed(1)} MiB`);
  });
});
