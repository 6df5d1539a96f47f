/**
 * Chunk reuse in the TCP byte queues (`src/tcp/send-queue.ts`, the comment above FREE_MAX):
 * chunks up to 64 KiB (a super-segment's payload) let go by `SendQueue.consume`/`clear` and `RecvQueue.peekHead`+`consume`/`read`/
 * `readInto`/`clear` go to process-wide free lists (at most 4 MiB) and are taken by later
 * pushes; a chunk a view escaped from (`RecvQueue.readHead`) is never reused, so such views
 * keep their bytes for good.
 *
 * The free lists are shared by the whole process (other test files fill them too): tests that
 * count bytes start by emptying them (`drainFreeLists`).
 */
import { expect } from "chai";
import fc from "fast-check";
import { CHUNK_SIZE, freeChunkBytes, LARGE_CHUNK_MAX, SendQueue } from "../../src/tcp/send-queue.js";
import { RecvQueue } from "../../src/tcp/recv-queue.js";
import { xorshiftBytes } from "../support/arbitraries.js";

/** Size classes of reusable chunks: multiples of this up to CHUNK_SIZE (FIRST_CHUNK_ROUND). */
const CLASS = 2 * 1024;
/** ...then multiples of this up to LARGE_CHUNK_MAX (LARGE_CHUNK_ROUND). */
const LARGE_CLASS = 8 * 1024;
/** Every reusable chunk size. */
const CLASSES = [
  ...Array.from({ length: CHUNK_SIZE / CLASS }, (_, i) => (i + 1) * CLASS),
  ...Array.from({ length: (LARGE_CHUNK_MAX - CHUNK_SIZE) / LARGE_CLASS }, (_, i) => CHUNK_SIZE + (i + 1) * LARGE_CLASS),
];
const FREE_MAX = 4 * 1024 * 1024;

/** Pseudo-random bytes, different for each seed (xorshift32). */
function pattern(len: number, seed: number): Uint8Array {
  return xorshiftBytes(len, (seed * 2654435761 + 0x9e3779b9) >>> 0);
}

/** Bytes equal, with a short failure message (no array diff). */
function expectBytes(got: Uint8Array, want: Uint8Array, what = "bytes"): void {
  expect(got.length, `${what}: length`).to.equal(want.length);
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) expect.fail(`${what}: byte ${i} is ${got[i]}, not ${want[i]}`);
}

/**
 * Empty the free lists: for each size class, push into new queues until a push no longer takes
 * from the list. Returns the queues (kept alive by the caller until it is done counting).
 */
function drainFreeLists(): SendQueue[] {
  const held: SendQueue[] = [];
  for (const size of CLASSES) {
    for (; freeChunkBytes() > 0; ) {
      const before = freeChunkBytes();
      const q = new SendQueue();
      q.push(new Uint8Array(size));
      held.push(q);
      if (freeChunkBytes() === before) break;
      expect(freeChunkBytes()).to.equal(before - size);
    }
  }
  expect(freeChunkBytes(), "free lists emptied").to.equal(0);
  return held;
}

/** Churn the free lists: many queues of both kinds, pushed, read and dropped in every way. */
function churn(rounds: number, fill: number): { reused: number } {
  let reused = 0;
  for (let r = 0; r < rounds; r++) {
    const len = 1 + ((r * 5279) % (2 * CHUNK_SIZE));
    const bytes = new Uint8Array(len).fill(fill);
    const before = freeChunkBytes();
    const s = new SendQueue();
    s.push(bytes);
    s.push(bytes.subarray(0, len >> 1));
    if (freeChunkBytes() < before) reused++;
    const q = new RecvQueue();
    q.push(bytes);
    q.push(bytes.subarray(0, len >> 2));
    switch (r % 4) {
      case 0:
        s.consume(s.length);
        q.consume(q.peekHead().length);
        q.clear();
        break;
      case 1:
        s.clear();
        q.readInto(new Uint8Array(q.length));
        break;
      case 2:
        s.consume(s.length >> 1);
        s.clear();
        q.read(q.length); // a copy when it spans chunks
        q.clear();
        break;
      default:
        s.consume(1);
        s.consume(s.length - 1);
        for (let v = q.peekHead(100); v.length > 0; v = q.peekHead(100)) q.consume(v.length);
    }
  }
  return { reused };
}

describe("tcp/chunk-recycling: chunks reused through the free lists", () => {
  it("a SendQueue's consumed chunk goes to the free list; the next queue's push takes it and reads back its own bytes", () => {
    const held = drainFreeLists();
    const a = new SendQueue();
    const first = pattern(10_000, 1);
    a.push(first);
    expect(freeChunkBytes()).to.equal(0);
    a.consume(4000);
    expect(freeChunkBytes(), "chunk still holds live bytes").to.equal(0);
    a.consume(6000);
    expect(freeChunkBytes(), "10 000 bytes live in a 10 KiB chunk").to.equal(10 * 1024);

    const b = new SendQueue();
    const second = pattern(9000, 2);
    b.push(second);
    expect(freeChunkBytes(), "the push took the free chunk").to.equal(0);
    expectBytes(b.slice(0, 9000), second, "slice of the reused chunk");
    expectBytes(b.slice(8000, 1000), second.subarray(8000), "tail slice");
    const more = pattern(1240, 3); // exactly the reused chunk's room
    b.push(more);
    expect(b.chunkCount).to.equal(1);
    expectBytes(b.slice(9000, 1240), more, "bytes in the room after");
    b.clear();
    expect(freeChunkBytes(), "clear gives the chunk back").to.equal(10 * 1024);
    void held;
  });

  it("a chunk goes back when its last byte is consumed, not before; large writes' chunks too; adopted buffers never do", () => {
    const held = drainFreeLists();
    const q = new SendQueue();
    const x = pattern(1000, 4);
    const y = pattern(2000, 5);
    q.push(x); // a 2 KiB chunk
    q.push(y); // 1048 bytes fill it, 952 go to a new 16 KiB chunk
    expect(q.chunkCount).to.equal(2);
    q.consume(2047);
    expect(freeChunkBytes()).to.equal(0);
    q.consume(1);
    expect(freeChunkBytes()).to.equal(CLASS);
    expectBytes(q.slice(0, 952), y.subarray(1048), "the rest after the first chunk went back");
    q.consume(952);
    expect(freeChunkBytes()).to.equal(CLASS + CHUNK_SIZE);

    const big = drainFreeLists();
    const r = new SendQueue();
    r.push(pattern(CHUNK_SIZE + 1, 6)); // a chunk of its own, rounded up to 8 KiB: reusable
    r.consume(r.length);
    expect(freeChunkBytes(), "a chunk over CHUNK_SIZE, rounded up").to.equal(CHUNK_SIZE + LARGE_CLASS);
    const huge = drainFreeLists();
    const h = new SendQueue();
    h.push(pattern(LARGE_CHUNK_MAX + 1, 6)); // a 64 KiB piece, then the last byte in a CHUNK_SIZE chunk (room for more)
    expect(h.chunkCount).to.equal(2);
    h.consume(h.length);
    expect(freeChunkBytes(), "a write over LARGE_CHUNK_MAX, in pieces").to.equal(LARGE_CHUNK_MAX + CHUNK_SIZE);
    const none = drainFreeLists();
    const owned = new SendQueue();
    owned.pushOwned(new Uint8Array(8 * 1024));
    owned.consume(owned.length);
    expect(freeChunkBytes(), "an adopted buffer").to.equal(0);
    void held, big, huge, none;
  });

  it("super-segments (a guest's 64 KiB TSO payloads) reuse their chunks and are read back one run each", () => {
    const held = drainFreeLists();
    const q = new RecvQueue();
    const sizes = [65_495, 65_483, 62_780, 65_495, 17_000, 65_495];
    // Two in flight at a time: each arrives before the one ahead of it is read.
    let prev = pattern(sizes[0], 20);
    q.push(prev);
    expect(q.capacity, "one 64 KiB chunk").to.equal(LARGE_CHUNK_MAX);
    for (let i = 1; i < sizes.length; i++) {
      const seg = pattern(sizes[i], 20 + i);
      const free = freeChunkBytes();
      q.push(seg);
      // From the third 64 KiB one on, the chunk given back by the one read before is taken.
      if (i >= 2 && sizes[i] > LARGE_CHUNK_MAX - LARGE_CLASS) expect(freeChunkBytes(), `segment ${i} took a free chunk`).to.equal(free - LARGE_CHUNK_MAX);
      // The segment ahead is one run (not split over the room left in the chunk before it).
      const v = q.peekHead();
      expectBytes(v, prev, `segment ${i - 1} read as one run`);
      q.consume(v.length);
      prev = seg;
    }
    expectBytes(q.peekHead(), prev, "the last segment");
    q.consume(prev.length);
    expect(q.chunkCount).to.equal(0);
    expect(freeChunkBytes(), "every chunk went back").to.be.greaterThan(0);
    // Small writes after a super-segment still fill the room at the end of its chunk.
    const d = drainFreeLists();
    const s = new SendQueue();
    s.push(pattern(60_000, 30)); // a 64 KiB chunk
    s.push(pattern(5000, 31)); // fits in its 5,536 bytes of room
    expect(s.chunkCount).to.equal(1);
    s.push(pattern(20_000, 32)); // large and does not fit: a chunk of its own, the room stays unused
    expect(s.chunkCount).to.equal(2);
    s.push(pattern(100, 33)); // into the new tail's room (24 KiB chunk)
    expect(s.chunkCount).to.equal(2);
    expect(s.capacity).to.equal(LARGE_CHUNK_MAX + 3 * LARGE_CLASS);
    expectBytes(s.slice(64_990, 20), new Uint8Array([...pattern(5000, 31).subarray(4990), ...pattern(20_000, 32).subarray(0, 10)]), "across the gap");
    s.consume(65_000);
    expect(freeChunkBytes(), "the 64 KiB chunk went back whole").to.equal(LARGE_CHUNK_MAX);
    void held, d;
  });

  it("RecvQueue peekHead + consume: the bytes pushed, and the chunk is reusable once consumed", () => {
    const held = drainFreeLists();
    const q = new RecvQueue();
    const data = pattern(7000, 7); // an 8 KiB chunk
    q.push(data);
    const p = q.peekHead(3000);
    expectBytes(p, data.subarray(0, 3000), "peek");
    expect(q.length, "peek removes nothing").to.equal(7000);
    expectBytes(q.peekHead(3000), data.subarray(0, 3000), "peek again");
    q.consume(3000);
    expectBytes(q.peekHead(), data.subarray(3000), "peek after consume");
    expect(freeChunkBytes()).to.equal(0);
    q.consume(4000);
    expect(q.length).to.equal(0);
    expect(freeChunkBytes(), "the consumed chunk is free").to.equal(8 * 1024);

    const r = new RecvQueue();
    const next = pattern(8000, 8);
    r.push(next);
    expect(freeChunkBytes(), "reused").to.equal(0);
    expectBytes(r.peekHead(), next, "peek of the reused chunk");
    r.consume(8000);
    expect(freeChunkBytes()).to.equal(8 * 1024);

    // read (a copy across chunks), readInto and clear give chunks back too.
    for (const drop of [(s: RecvQueue) => s.read(), (s: RecvQueue) => s.readInto(new Uint8Array(s.length)), (s: RecvQueue) => s.clear()]) {
      const d = drainFreeLists();
      const s = new RecvQueue();
      s.push(pattern(3000, 9)); // 4 KiB chunk
      s.push(pattern(3000, 10)); // 1096 there, 1904 in a 16 KiB chunk
      drop(s);
      expect(s.length).to.equal(0);
      expect(freeChunkBytes()).to.equal(4 * 1024 + CHUNK_SIZE);
      void d;
    }
    void held;
  });

  it("a view from RecvQueue.readHead keeps its bytes through any traffic on other queues", () => {
    const held = drainFreeLists();
    const a = new RecvQueue();
    const x = pattern(5000, 11);
    a.push(x);
    const whole = a.readHead();
    expectBytes(whole, x, "readHead");
    expect(a.length).to.equal(0);
    expect(freeChunkBytes(), "an escaped chunk is not given back").to.equal(0);

    const b = new RecvQueue();
    const y = pattern(6000, 12); // a 6 KiB chunk
    b.push(y);
    const part = b.readHead(1000);
    const z = pattern(100, 13);
    b.push(z); // into the same chunk's room, after the kept bytes
    const owned = b.read(2000); // inside the first chunk: a view too
    expectBytes(part, y.subarray(0, 1000), "partial readHead");
    expectBytes(owned, y.subarray(1000, 3000), "read inside one chunk");
    b.consume(b.peekHead().length);
    b.readInto(new Uint8Array(b.length));
    expect(b.length).to.equal(0);
    expect(freeChunkBytes(), "a chunk a view escaped from, emptied another way").to.equal(0);

    const { reused } = churn(400, 0xa5);
    expect(reused, "the churn reused chunks").to.be.greaterThan(100);
    churn(400, 0x5a);
    expectBytes(whole, x, "kept view after traffic");
    expectBytes(part, y.subarray(0, 1000), "kept partial view after traffic");
    expectBytes(owned, y.subarray(1000, 3000), "kept read() result after traffic");
    void held;
  });

  it("the free lists never hold more than 4 MiB", () => {
    const held = drainFreeLists();
    const queues = Array.from({ length: 600 }, (_, i) => {
      const q = new SendQueue();
      q.push(pattern(CHUNK_SIZE, i));
      return q;
    });
    for (const q of queues) {
      q.clear();
      expect(freeChunkBytes()).to.be.at.most(FREE_MAX);
    }
    expect(freeChunkBytes(), "filled up to the cap").to.be.greaterThan(FREE_MAX - CHUNK_SIZE);
    // Full: more released chunks are dropped, whatever their class.
    const at = freeChunkBytes();
    for (let i = 0; i < 2000; i++) {
      const r = new RecvQueue();
      r.push(new Uint8Array(1 + (i % 3) * 1500));
      r.consume(r.peekHead().length);
      r.clear();
    }
    expect(freeChunkBytes()).to.be.at.most(FREE_MAX);
    expect(freeChunkBytes()).to.be.at.least(at - CHUNK_SIZE);
    void held;
  });

  describe("property: random traffic over several queues agrees with reference arrays", () => {
    type Op =
      | { op: "push"; q: number; len: number }
      | { op: "readHead"; q: number; max: number }
      | { op: "peekConsume"; q: number; max: number; keep: number }
      | { op: "read"; q: number; max: number }
      | { op: "readInto"; q: number; n: number }
      | { op: "slice"; q: number; a: number; b: number }
      | { op: "consume"; q: number; a: number }
      | { op: "clear"; q: number };

    const SENDS = 3;
    const RECVS = 3;
    /** Sizes that hit every class, the chunk boundary and more than a chunk. */
    const len = fc.oneof(
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 1400, max: 1500 }),
      fc.integer({ min: 1, max: 8 }).map((k) => k * CLASS),
      fc.integer({ min: CHUNK_SIZE - 3, max: CHUNK_SIZE + 3 }),
      fc.integer({ min: 0, max: 3 * CHUNK_SIZE }),
    );
    const max = fc.integer({ min: 0, max: 3 * CHUNK_SIZE });
    const frac = fc.double({ min: 0, max: 1, noNaN: true });
    const recvQ = fc.integer({ min: SENDS, max: SENDS + RECVS - 1 });
    const sendQ = fc.integer({ min: 0, max: SENDS - 1 });
    const anyQ = fc.integer({ min: 0, max: SENDS + RECVS - 1 });
    const ops = fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fc.record({ op: fc.constant("push" as const), q: anyQ, len }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant("readHead" as const), q: recvQ, max }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant("peekConsume" as const), q: recvQ, max, keep: frac }) },
        { weight: 1, arbitrary: fc.record({ op: fc.constant("read" as const), q: recvQ, max }) },
        { weight: 1, arbitrary: fc.record({ op: fc.constant("readInto" as const), q: recvQ, n: max }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant("slice" as const), q: sendQ, a: frac, b: frac }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant("consume" as const), q: sendQ, a: frac }) },
        { weight: 1, arbitrary: fc.record({ op: fc.constant("clear" as const), q: anyQ }) },
      ) as fc.Arbitrary<Op>,
      { minLength: 5, maxLength: 80, size: "max" },
    );

    it("every read agrees, every kept readHead view keeps its bytes, and the free lists stay within 4 MiB", () => {
      let seed = 1000;
      /** Views kept across runs too (checked once all runs are over), up to a bound. */
      const keptAcrossRuns: Array<{ view: Uint8Array; want: Uint8Array }> = [];
      fc.assert(
        fc.property(ops, (list) => {
          const sends = Array.from({ length: SENDS }, () => new SendQueue());
          const recvs = Array.from({ length: RECVS }, () => new RecvQueue());
          const ref: Uint8Array[] = Array.from({ length: SENDS + RECVS }, () => new Uint8Array(0));
          const kept: Array<{ view: Uint8Array; want: Uint8Array }> = [];
          const recv = (q: number) => recvs[q - SENDS];
          const take = (q: number, n: number): Uint8Array => {
            const out = ref[q].subarray(0, n);
            ref[q] = ref[q].subarray(n);
            return out;
          };
          for (const o of list) {
            switch (o.op) {
              case "push": {
                const d = pattern(o.len, seed++);
                const joined = new Uint8Array(ref[o.q].length + d.length);
                joined.set(ref[o.q]);
                joined.set(d, ref[o.q].length);
                ref[o.q] = joined;
                if (o.q < SENDS) sends[o.q].push(d);
                else recv(o.q).push(d);
                d.fill(0xcc); // the queue copied it
                break;
              }
              case "readHead": {
                const v = recv(o.q).readHead(o.max);
                expect(v.length).to.be.at.most(Math.min(o.max, ref[o.q].length));
                if (ref[o.q].length > 0 && o.max > 0) expect(v.length, "readHead gives something").to.be.greaterThan(0);
                const want = take(o.q, v.length);
                expectBytes(v, want, "readHead");
                kept.push({ view: v, want });
                break;
              }
              case "peekConsume": {
                const q = recv(o.q);
                const v = q.peekHead(o.max);
                expect(v.length).to.be.at.most(Math.min(o.max, ref[o.q].length));
                expectBytes(v, ref[o.q].subarray(0, v.length), "peekHead");
                const n = Math.floor(o.keep * v.length);
                q.consume(n);
                take(o.q, n);
                break;
              }
              case "read": {
                const v = recv(o.q).read(o.max);
                const want = take(o.q, Math.min(o.max, ref[o.q].length));
                expectBytes(v, want, "read");
                kept.push({ view: v, want });
                break;
              }
              case "readInto": {
                const dst = new Uint8Array(o.n);
                const n = recv(o.q).readInto(dst);
                expect(n).to.equal(Math.min(o.n, ref[o.q].length));
                expectBytes(dst.subarray(0, n), take(o.q, n), "readInto");
                break;
              }
              case "slice": {
                const l = ref[o.q].length;
                const a = Math.floor(Math.min(o.a, o.b) * l);
                const b = Math.floor(Math.max(o.a, o.b) * l);
                expectBytes(sends[o.q].slice(a, b - a), ref[o.q].subarray(a, b), "slice");
                break;
              }
              case "consume": {
                const n = Math.floor(o.a * ref[o.q].length);
                sends[o.q].consume(n);
                take(o.q, n);
                break;
              }
              case "clear":
                if (o.q < SENDS) sends[o.q].clear();
                else recv(o.q).clear();
                ref[o.q] = new Uint8Array(0);
                break;
            }
            for (let q = 0; q < SENDS + RECVS; q++) {
              const held = q < SENDS ? sends[q] : recv(q);
              expect(held.length, `queue ${q} length`).to.equal(ref[q].length);
              if (held.length === 0) expect(held.chunkCount, `empty queue ${q} holds no chunk`).to.equal(0);
            }
            expect(freeChunkBytes()).to.be.at.most(FREE_MAX);
          }
          for (let q = 0; q < SENDS; q++) expectBytes(sends[q].slice(0, sends[q].length), ref[q], `send queue ${q} at the end`);
          for (let q = SENDS; q < SENDS + RECVS; q++) expectBytes(recv(q).read(), ref[q], `recv queue ${q} at the end`);
          kept.forEach((k, i) => expectBytes(k.view, k.want, `kept view ${i}`));
          for (const k of kept) if (keptAcrossRuns.length < 2000 && k.view.length > 0) keptAcrossRuns.push(k);
          for (const s of sends) s.clear();
        }),
        { numRuns: 150 },
      );
      expect(keptAcrossRuns.length).to.be.greaterThan(100);
      keptAcrossRuns.forEach((k, i) => expectBytes(k.view, k.want, `view ${i} kept across runs`));
    });
  });
});
