/**
 * IPv4 reassembly (RFC 791 §3.2, RFC 815, the RFC 5722 overlap rule): fragments in any order,
 * duplicated or re-cut, give back the exact datagram; overlaps with different data, the ping of
 * death and invalid fragments drop what they should; the timer and the bounds hold with time
 * passed in by hand. The last part drives the stack with fragmented frames.
 */
import { expect } from "chai";
import fc from "fast-check";
import { FragmentReassembler, type FragmentDrop, type FragmentLimits } from "../../src/ipv4/fragments.js";
import { emitIpv4, parseIpv4, IpProtocol, type Ipv4Repr } from "../../src/ipv4/ipv4.js";
import { emitIcmp, icmpLen, parseIcmp } from "../../src/ipv4/icmp.js";
import { emitUdp } from "../../src/ipv4/udp.js";
import { emitEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { BaseFrameChannel } from "../../src/common/frame-channel.js";
import { NetworkStack, type Port } from "../../src/stack/stack.js";
import { isWireError } from "../../src/common/wire-error.js";
import { parseIpv4Address as ip4, parseMac } from "../../src/common/addr.js";

const SRC = ip4("192.168.65.3")!;
const DST = ip4("192.168.65.1")!;

/** Header of one fragment of datagram `id` (UDP unless told otherwise). */
function hdr(off: number, len: number, mf: boolean, over: Partial<Ipv4Repr> = {}): Ipv4Repr {
  return {
    src: SRC, dst: DST, protocol: IpProtocol.UDP, ttl: 64, id: 42, tos: 0, df: false, mf,
    fragmentOffset: off, payloadLength: len, options: new Uint8Array(0), ...over,
  };
}

interface Piece {
  off: number;
  data: Uint8Array;
  mf: boolean;
}

/** Cut `payload` into pieces of the given sizes (multiples of 8, cycled); the last takes the rest. */
function cut(payload: Uint8Array, sizes: number[]): Piece[] {
  const out: Piece[] = [];
  let off = 0;
  for (let i = 0; off < payload.length; i++) {
    const n = Math.min(sizes[i % sizes.length], payload.length - off);
    out.push({ off, data: payload.slice(off, off + n), mf: off + n < payload.length });
    off += n;
  }
  return out;
}

/** Deterministic shuffle from a seed (fast-check supplies the seed, so failures replay). */
function shuffle<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let s = seed >>> 0 || 1;
  for (let i = a.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function offer(r: FragmentReassembler, p: Piece, now = 0, over: Partial<Ipv4Repr> = {}): Uint8Array | undefined {
  return r.add(hdr(p.off, p.data.length, p.mf, over), p.data, now);
}

const sizes8 = () => fc.array(fc.integer({ min: 1, max: 185 }).map((n) => n * 8), { minLength: 1, maxLength: 6 });

describe("ipv4/fragments: reassembly (RFC 791 §3.2, RFC 815)", () => {
  it("gives back the exact datagram for in-order, reversed, shuffled and duplicated fragments", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 9000 }),
        sizes8(),
        fc.constantFrom("in order", "reversed", "shuffled"),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        (payload, sizes, order, dupPicks, seed) => {
          const pieces = cut(payload, sizes);
          let seq = order === "in order" ? [...pieces] : order === "reversed" ? [...pieces].reverse() : shuffle(pieces, seed);
          for (const d of dupPicks) seq.splice(d % (seq.length + 1), 0, pieces[d % pieces.length]);
          if (order === "shuffled") seq = shuffle(seq, seed ^ 0x5a5a);
          const r = new FragmentReassembler();
          // Model: a datagram completes when every piece has been seen since the last completion.
          let seen = new Set<Piece>();
          let completions = 0;
          for (const p of seq) {
            const copy = Uint8Array.from(p.data);
            const got = offer(r, { ...p, data: copy });
            copy.fill(0xee); // stored as a copy: scribbling on the input afterwards changes nothing
            seen.add(p);
            expect(r.lastDrop).to.equal(undefined);
            if (seen.size === pieces.length) {
              expect(got, "completes on the last missing piece").to.not.equal(undefined);
              expect(Buffer.from(got!).equals(Buffer.from(payload))).to.equal(true);
              expect(r.lastHeader).to.deep.include({ mf: false, fragmentOffset: 0, payloadLength: payload.length, id: 42 });
              seen = new Set();
              completions++;
            } else {
              expect(got).to.equal(undefined);
            }
          }
          expect(r.counters.reassembled).to.equal(completions);
          expect(r.counters.datagrams).to.equal(seen.size > 0 ? 1 : 0);
          if (seen.size === 0) expect(r.counters.bytes).to.equal(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("accepts overlapping fragments that carry the same bytes (the datagram cut two ways)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 6000 }), sizes8(), sizes8(), fc.nat(), (payload, a, b, seed) => {
        const cuts = [...cut(payload, a), ...cut(payload, b)];
        const r = new FragmentReassembler();
        const covered = new Uint8Array(payload.length);
        let result: Uint8Array | undefined;
        for (const p of shuffle(cuts, seed)) {
          const got = offer(r, p);
          expect(r.lastDrop).to.equal(undefined);
          covered.fill(1, p.off, p.off + p.data.length);
          if (result !== undefined) continue; // later pieces start a new datagram; not checked here
          if (covered.every((x) => x === 1)) {
            expect(got).to.not.equal(undefined);
            result = got;
          } else expect(got).to.equal(undefined);
        }
        expect(Buffer.from(result!).equals(Buffer.from(payload))).to.equal(true);
        expect(r.counters.overlaps).to.equal(0);
      }),
      { numRuns: 200 },
    );
  });

  it("returns an owned copy, and takes the header fields of the offset-0 fragment", () => {
    const r = new FragmentReassembler();
    const second = Uint8Array.from({ length: 8 }, (_, i) => 100 + i);
    expect(r.add(hdr(8, 8, false, { tos: 3, ttl: 9 }), second, 0)).to.equal(undefined);
    const first = Uint8Array.from({ length: 8 }, (_, i) => i);
    const got = r.add(hdr(0, 8, true, { tos: 0x10, ttl: 61, df: false }), first, 1)!;
    expect([...got]).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 104, 105, 106, 107]);
    expect(got.buffer).to.not.equal(first.buffer);
    expect(got.buffer).to.not.equal(second.buffer);
    expect(r.lastHeader).to.deep.equal({
      src: SRC, dst: DST, protocol: IpProtocol.UDP, id: 42, tos: 0x10, ttl: 61, df: false,
      mf: false, fragmentOffset: 0, payloadLength: 16, options: new Uint8Array(0),
    });
    expect(r.counters).to.deep.include({ reassembled: 1, bytes: 0, datagrams: 0 });
  });

  it("keys datagrams by (source, destination, protocol, identification)", () => {
    const r = new FragmentReassembler();
    const variants: Array<Partial<Ipv4Repr>> = [
      {}, { src: SRC + 1 }, { dst: DST + 1 }, { protocol: IpProtocol.ICMP }, { id: 43 }, { dst: DST + 2, protocol: 99 },
    ];
    // Same offsets, different bytes: if any two shared a reassembly they would overlap.
    variants.forEach((v, i) => expect(r.add(hdr(0, 8, true, v), new Uint8Array(8).fill(i), 0)).to.equal(undefined));
    expect(r.counters.datagrams).to.equal(variants.length);
    // Complete them from the middle of a (src, id) collision chain outwards.
    for (const i of [2, 5, 0, 3, 1, 4]) {
      const got = r.add(hdr(8, 1, false, variants[i]), Uint8Array.of(0x80 + i), 1);
      expect([...got!]).to.deep.equal([i, i, i, i, i, i, i, i, 0x80 + i]);
    }
    expect(r.counters).to.deep.include({ reassembled: 6, overlaps: 0, datagrams: 0, bytes: 0 });
  });
});

/**
 * A reference of the same policy, written the obvious way (one byte at a time, no limits),
 * for the model test below.
 */
class ModelReassembler {
  private readonly d = new Map<number, { bytes: Array<number | undefined>; total: number }>();
  lastDrop: FragmentDrop | undefined;

  add(id: number, off: number, data: Uint8Array, mf: boolean): Uint8Array | undefined {
    this.lastDrop = undefined;
    const end = off + data.length;
    if (data.length === 0 || (mf && data.length % 8 !== 0)) return this.drop("invalid");
    let r = this.d.get(id);
    if (r !== undefined) {
      const reached = r.bytes.length;
      if (!mf ? (r.total >= 0 && end !== r.total) || end < reached : r.total >= 0 && end > r.total) {
        this.d.delete(id);
        return this.drop("invalid");
      }
    } else {
      r = { bytes: [], total: -1 };
      this.d.set(id, r);
    }
    if (!mf) r.total = end;
    for (let i = off; i < end; i++) {
      const have = r.bytes[i];
      if (have !== undefined && have !== data[i - off]) {
        this.d.delete(id);
        return this.drop("overlap");
      }
    }
    for (let i = off; i < end; i++) r.bytes[i] = data[i - off];
    if (r.total < 0) return undefined;
    for (let i = 0; i < r.total; i++) if (r.bytes[i] === undefined) return undefined;
    this.d.delete(id);
    return Uint8Array.from(r.bytes as number[]);
  }

  private drop(why: FragmentDrop): undefined {
    this.lastDrop = why;
    return undefined;
  }
}

describe("ipv4/fragments: hostile fragments (RFC 5722 §4 overlaps, ping of death)", () => {
  it("matches a byte-by-byte model on random overlapping, inconsistent and invalid fragments", () => {
    // Few ids, small offsets and a two-letter alphabet: overlaps, identical overlaps, second
    // last fragments and completions all happen often.
    const op = fc.record({
      id: fc.integer({ min: 0, max: 2 }),
      off: fc.integer({ min: 0, max: 12 }).map((n) => n * 8),
      data: fc.uint8Array({ minLength: 0, maxLength: 40, min: 0, max: 1 }),
      mf: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const r = new FragmentReassembler();
        const m = new ModelReassembler();
        for (const o of ops) {
          const got = r.add(hdr(o.off, o.data.length, o.mf, { id: o.id }), o.data, 0);
          const want = m.add(o.id, o.off, o.data, o.mf);
          expect(r.lastDrop).to.equal(m.lastDrop);
          expect(got === undefined ? undefined : [...got]).to.deep.equal(want === undefined ? undefined : [...want]);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("drops the whole datagram on an overlap with different data, but not on an exact duplicate", () => {
    const r = new FragmentReassembler();
    const a = new Uint8Array(16).fill(1);
    expect(r.add(hdr(0, 16, true), a, 0)).to.equal(undefined);
    expect(r.add(hdr(0, 16, true), Uint8Array.from(a), 0)).to.equal(undefined);
    expect(r.lastDrop).to.equal(undefined);
    expect(r.counters.datagrams).to.equal(1);
    // 8..24 overlaps 8..16 with 2s instead of 1s (the classic IDS-evasion rewrite).
    expect(r.add(hdr(8, 16, true), new Uint8Array(16).fill(2), 0)).to.equal(undefined);
    expect(r.lastDrop).to.equal("overlap");
    expect(r.counters).to.deep.include({ overlaps: 1, datagrams: 0, bytes: 0 });
    // Nothing of it is left: the rest alone does not complete anything.
    expect(r.add(hdr(16, 4, false), new Uint8Array(4), 0)).to.equal(undefined);
    expect(r.counters.datagrams).to.equal(1);
  });

  it("drops a datagram reaching past 65535 bytes (ping of death) and keeps one of exactly 65535", () => {
    const r = new FragmentReassembler();
    // The classic: a last fragment at offset 65528 with more data than fits.
    expect(r.add(hdr(0, 1480, true), new Uint8Array(1480), 0)).to.equal(undefined);
    expect(r.add(hdr(65528, 16, false), new Uint8Array(16), 0)).to.equal(undefined);
    expect(r.lastDrop).to.equal("too-big");
    expect(r.counters).to.deep.include({ tooBig: 1, datagrams: 0, bytes: 0 });
    // 20-byte header + 65515 bytes of data = 65535 exactly: accepted; one byte more is not.
    const body = Uint8Array.from({ length: 65512 }, (_, i) => i & 0xff);
    expect(r.add(hdr(65512, 3, false, { id: 1 }), Uint8Array.of(7, 8, 9), 0)).to.equal(undefined);
    const got = r.add(hdr(0, 65512, true, { id: 1 }), body, 0)!;
    expect(got.length).to.equal(65515);
    expect([...got.subarray(65510)]).to.deep.equal([0xe6, 0xe7, 7, 8, 9]);
    expect(r.add(hdr(65512, 4, false, { id: 2 }), new Uint8Array(4), 0)).to.equal(undefined);
    expect(r.counters.tooBig).to.equal(2);
    // maxDatagramSize lowers the bound.
    const small = new FragmentReassembler({ maxDatagramSize: 1500 });
    expect(small.add(hdr(1480, 1, false), Uint8Array.of(1), 0)).to.equal(undefined);
    expect(small.lastDrop).to.equal("too-big");
    expect(small.add(hdr(1472, 8, false), new Uint8Array(8), 0)).to.equal(undefined);
    expect(small.lastDrop).to.equal(undefined);
  });

  it("drops invalid fragments alone: MF=1 with a length not a multiple of 8, and empty ones", () => {
    const r = new FragmentReassembler();
    expect(r.add(hdr(0, 16, true), new Uint8Array(16), 0)).to.equal(undefined);
    for (const [off, len, mf] of [[16, 12, true], [16, 0, true], [16, 0, false]] as const) {
      expect(r.add(hdr(off, len, mf), new Uint8Array(len), 0)).to.equal(undefined);
      expect(r.lastDrop).to.equal("invalid");
    }
    expect(r.counters).to.deep.include({ invalid: 3, datagrams: 1 });
    expect(r.add(hdr(16, 12, false), new Uint8Array(12), 0)!.length).to.equal(28);
  });

  it("drops the datagram when last fragments disagree about its end", () => {
    const r = new FragmentReassembler();
    r.add(hdr(16, 8, false), new Uint8Array(8), 0);
    r.add(hdr(24, 8, false), new Uint8Array(8), 0); // a second, different end
    expect([r.lastDrop, r.counters.datagrams]).to.deep.equal(["invalid", 0]);
    r.add(hdr(16, 8, true), new Uint8Array(8), 0);
    r.add(hdr(8, 8, false), new Uint8Array(8), 0); // an end before data already received
    expect([r.lastDrop, r.counters.datagrams]).to.deep.equal(["invalid", 0]);
    r.add(hdr(8, 8, false, { id: 5 }), new Uint8Array(8), 0);
    r.add(hdr(16, 8, true, { id: 5 }), new Uint8Array(8), 0); // data past the known end
    expect([r.lastDrop, r.counters.datagrams, r.counters.invalid]).to.deep.equal(["invalid", 0, 3]);
  });
});

describe("ipv4/fragments: timer and bounds", () => {
  it("expires a datagram timeoutMs after its first fragment, by the time passed in", () => {
    const r = new FragmentReassembler({ timeoutMs: 15_000 });
    expect(r.nextExpiry()).to.equal(Infinity);
    r.add(hdr(0, 8, true), new Uint8Array(8), 1000);
    r.add(hdr(0, 8, true, { id: 2 }), new Uint8Array(8), 5000);
    expect(r.nextExpiry()).to.equal(16_000);
    r.add(hdr(8, 8, true), new Uint8Array(8), 15_999); // more fragments do not restart the timer
    expect(r.expire(15_999)).to.equal(0);
    expect(r.expire(16_000)).to.equal(1);
    expect(r.nextExpiry()).to.equal(20_000);
    expect(r.counters).to.deep.include({ timedOut: 1, datagrams: 1 });
    // `add` expires first: the last fragment of id 2 arriving late starts afresh instead of completing.
    expect(r.add(hdr(8, 1, false, { id: 2 }), Uint8Array.of(1), 20_000)).to.equal(undefined);
    expect(r.counters).to.deep.include({ timedOut: 2, datagrams: 1, reassembled: 0 });
    expect(r.nextExpiry()).to.equal(35_000);
    expect(r.expire(Number.MAX_SAFE_INTEGER)).to.equal(1);
    expect(r.counters).to.deep.include({ bytes: 0, datagrams: 0 });
  });

  it("evicts the oldest datagram when maxDatagrams are under way", () => {
    const r = new FragmentReassembler({ maxDatagrams: 2 });
    for (const id of [1, 2, 3]) r.add(hdr(0, 8, true, { id }), new Uint8Array(8), id);
    expect(r.counters).to.deep.include({ evicted: 1, datagrams: 2 });
    expect(r.nextExpiry()).to.equal(2 + 30_000);
    // 1 is gone (its end starts a new datagram, evicting 2); 3 is intact.
    expect(r.add(hdr(8, 1, false, { id: 1 }), Uint8Array.of(1), 4)).to.equal(undefined);
    expect(r.add(hdr(8, 1, false, { id: 3 }), Uint8Array.of(1), 5)!.length).to.equal(9);
    expect(r.counters).to.deep.include({ evicted: 2, datagrams: 1, reassembled: 1 });
  });

  it("evicts the oldest datagrams to stay under maxBytes, and refuses one that cannot fit alone", () => {
    const r = new FragmentReassembler({ maxBytes: 3000 });
    // Last fragments first: each buffer is sized to the datagram's known total.
    r.add(hdr(1000, 1000, false, { id: 1 }), new Uint8Array(1000), 0); // 2000 bytes
    r.add(hdr(8, 992, false, { id: 2 }), new Uint8Array(992), 1); // 1000 bytes: 3000, at the bound
    expect(r.counters).to.deep.include({ bytes: 3000, evicted: 0 });
    r.add(hdr(8, 8, false, { id: 3 }), new Uint8Array(8), 2); // 16 more: 1 goes
    expect(r.counters).to.deep.include({ bytes: 1016, evicted: 1, datagrams: 2 });
    expect(r.add(hdr(0, 8, true, { id: 2 }), new Uint8Array(8), 3)!.length).to.equal(1000);
    // 3001 bytes of data cannot fit in 3000 even alone: evicts the others, then refuses it.
    r.add(hdr(2992, 9, false, { id: 4 }), new Uint8Array(9), 4);
    expect(r.lastDrop).to.equal("too-big");
    expect(r.counters).to.deep.include({ bytes: 0, datagrams: 0, tooBig: 1, evicted: 2 });
  });

  it("grows a datagram's buffer by doubling, and to the exact total once the last fragment is in", () => {
    const r = new FragmentReassembler();
    const held = [0, 1480, 2960, 4440].map((off) => {
      r.add(hdr(off, 1480, true), new Uint8Array(1480), 0);
      return r.counters.bytes;
    });
    expect(held).to.deep.equal([1480, 2960, 5920, 5920]);
    const other = new FragmentReassembler();
    other.add(hdr(4440, 100, false), new Uint8Array(100), 0);
    expect(other.counters.bytes).to.equal(4540);
  });

  it("never holds more than maxBytes or maxDatagrams, whatever arrives", () => {
    const op = fc.record({
      id: fc.integer({ min: 0, max: 20 }),
      src: fc.integer({ min: 0, max: 3 }),
      off: fc.integer({ min: 0, max: 2000 }).map((n) => n * 8),
      len: fc.integer({ min: 0, max: 3000 }),
      mf: fc.boolean(),
      dt: fc.integer({ min: 0, max: 3000 }),
    });
    const limits = fc.record({
      maxDatagrams: fc.integer({ min: 1, max: 8 }),
      maxBytes: fc.integer({ min: 1, max: 40_000 }),
      timeoutMs: fc.integer({ min: 1, max: 10_000 }),
    });
    fc.assert(
      fc.property(limits, fc.array(op, { maxLength: 80 }), (lim: FragmentLimits, ops) => {
        const r = new FragmentReassembler(lim);
        let now = 0;
        for (const o of ops) {
          now += o.dt;
          const data = new Uint8Array(o.len).fill(o.id);
          const got = r.add(hdr(o.off, o.len, o.mf, { id: o.id, src: SRC + o.src }), data, now);
          const c = r.counters;
          expect(c.bytes).to.be.at.most(lim.maxBytes).and.at.least(0);
          expect(c.datagrams).to.be.at.most(lim.maxDatagrams).and.at.least(0);
          if (c.datagrams === 0) expect(c.bytes).to.equal(0);
          expect(r.nextExpiry()).to.satisfy((t: number) => (c.datagrams === 0 ? t === Infinity : t > now && t <= now + lim.timeoutMs));
          if (got !== undefined) expect(got.every((b) => b === o.id)).to.equal(true);
        }
        r.expire(now + lim.timeoutMs);
        expect(r.counters).to.deep.include({ bytes: 0, datagrams: 0 });
      }),
      { numRuns: 300 },
    );
  });

  it("rejects nonsensical limits", () => {
    for (const bad of [{ maxDatagrams: 0 }, { maxBytes: 1.5 }, { timeoutMs: 0 }, { maxDatagramSize: 65536 }, { maxDatagramSize: 20 }]) {
      expect(() => new FragmentReassembler(bad), JSON.stringify(bad)).to.throw(RangeError);
    }
  });
});

// ---- the stack reassembles and dispatches ---------------------------------------------------

const GUEST_MAC = parseMac("52:54:00:12:34:56")!;
const GW_MAC = parseMac("02:50:00:00:00:01")!;

class Recorder extends BaseFrameChannel {
  sent: Uint8Array[] = [];
  constructor(mtu: number) {
    super("recorder", mtu);
  }
  protected transmit(frame: Uint8Array): boolean {
    this.sent.push(Uint8Array.from(frame));
    return true;
  }
  protected shutdown(): void {}
}

function stackWith(mtu: number): { stack: NetworkStack; ch: Recorder; port: Port } {
  const stack = new NetworkStack({ mtu, now: () => 0 });
  const ch = new Recorder(mtu);
  return { stack, ch, port: stack.attach(ch) };
}

/** One frame from the guest to the gateway carrying fragment `ip` with `data`. */
function fragmentFrame(ip: Ipv4Repr, data: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + 20 + data.length);
  const o = emitEthernet({ dst: GW_MAC, src: GUEST_MAC, ethertype: EtherType.IPv4 }, f);
  f.set(data, o + emitIpv4(ip, f, o));
  return f;
}

/** Frames carrying `l4` as fragments of at most `size` data bytes (a multiple of 8), as a sender would cut it. */
function fragmentFrames(l4: Uint8Array, protocol: number, size: number, id = 0x777): Uint8Array[] {
  return cut(l4, [size]).map((p) => fragmentFrame(hdr(p.off, p.data.length, p.mf, { protocol, id, ttl: 63 }), p.data));
}

function echoRequest(dataLen: number): { msg: Uint8Array; data: Uint8Array } {
  const data = Uint8Array.from({ length: dataLen }, (_, i) => (i * 7) & 0xff);
  const msg = new Uint8Array(icmpLen({ kind: "echo-request", id: 0x4242, seq: 1, data }));
  emitIcmp({ kind: "echo-request", id: 0x4242, seq: 1, data }, msg, 0);
  return { msg, data };
}

describe("stack: fragmented datagrams are reassembled and dispatched as if whole", () => {
  it("answers a 3000-byte echo request sent as 3 fragments with one reply carrying all the data (MTU 9000)", () => {
    const { stack, ch, port } = stackWith(9000);
    const { msg, data } = echoRequest(3000);
    const frames = fragmentFrames(msg, IpProtocol.ICMP, 1480);
    expect(frames).to.have.length(3);
    for (const f of [frames[2], frames[0], frames[1]]) stack.receive(port, f);
    expect(ch.sent).to.have.length(1);
    const ip = parseIpv4(ch.sent[0].subarray(14));
    if (isWireError(ip)) throw new Error(ip.reason);
    expect(ip).to.deep.include({ src: DST, dst: SRC, mf: false, fragmentOffset: 0, payloadLength: 3008 });
    const icmp = parseIcmp(ch.sent[0].subarray(34));
    if (isWireError(icmp) || icmp.kind !== "echo-reply") throw new Error("expected an echo reply");
    expect([icmp.id, icmp.seq]).to.deep.equal([0x4242, 1]);
    expect(Buffer.from(icmp.data).equals(Buffer.from(data))).to.equal(true);
    expect(stack.fragments.counters).to.deep.include({ reassembled: 1, datagrams: 0, bytes: 0 });
    expect(stack.counters.drops).to.deep.equal({});
  });

  it("at MTU 1500 reassembles the request and sends the 3028-byte reply in fragments of at most 1500 bytes", () => {
    // The gateway fragments what it sends without DF (src/stack/fragment-tx.ts; test/stack/fragment-tx.test.ts
    // reassembles them): 1480 + 1480 + 48 bytes of ICMP, MF on the first two.
    const { stack, ch, port } = stackWith(1500);
    for (const f of fragmentFrames(echoRequest(3000).msg, IpProtocol.ICMP, 1480)) stack.receive(port, f);
    const ips = ch.sent.map((f) => parseIpv4(f.subarray(14)));
    expect(ips.map((ip) => (isWireError(ip) ? ip.reason : [ip.fragmentOffset, ip.mf, ip.payloadLength]))).to.deep.equal([[0, true, 1480], [1480, true, 1480], [2960, false, 48]]);
    expect(stack.fragments.counters.reassembled).to.equal(1);
    expect(stack.counters.drops).to.deep.equal({});
  });

  it("hands UDP the rebuilt datagram: the port unreachable quotes a whole, unfragmented header", () => {
    const { stack, ch, port } = stackWith(1500);
    const payload = new Uint8Array(2000).fill(0x61);
    const u = new Uint8Array(8 + payload.length);
    emitUdp({ srcPort: 5000, dstPort: 9999, payload }, u, 0, SRC, DST);
    for (const f of fragmentFrames(u, IpProtocol.UDP, 1480).reverse()) stack.receive(port, f);
    expect(ch.sent).to.have.length(1);
    const icmp = parseIcmp(ch.sent[0].subarray(34));
    if (isWireError(icmp) || icmp.kind !== "dest-unreachable") throw new Error("expected dest-unreachable");
    const quoted = parseIpv4(icmp.original, { allowTruncated: true });
    if (isWireError(quoted)) throw new Error(quoted.reason);
    expect(quoted).to.deep.include({ id: 0x777, mf: false, fragmentOffset: 0, payloadLength: 2008, ttl: 63 });
    expect(stack.counters.dropped("udp-no-service")).to.equal(1);
  });

  it("counts dropped fragments by reason: invalid, too big, overlap", () => {
    const { stack, ch, port } = stackWith(1500);
    const [first, second] = fragmentFrames(new Uint8Array(24), IpProtocol.UDP, 16);
    const odd = fragmentFrame(hdr(0, 12, true, { id: 1 }), new Uint8Array(12)); // MF=1, 12 bytes
    stack.receive(port, odd);
    stack.receive(port, first);
    const clash = Uint8Array.from(first);
    clash[clash.length - 1] ^= 1; // same offset, different data
    stack.receive(port, clash);
    stack.receive(port, second); // starts anew: the first datagram is gone
    // Ping of death: a last fragment at offset 65528 carrying 16 bytes.
    stack.receive(port, fragmentFrame(hdr(65528, 16, false, { protocol: IpProtocol.ICMP, id: 2 }), new Uint8Array(16)));
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.drops).to.deep.equal({
      "ipv4-fragment-invalid": 1, "ipv4-fragment-overlap": 1, "ipv4-fragment-too-big": 1,
    });
    expect(stack.fragments.counters.datagrams).to.equal(1);
  });
});
