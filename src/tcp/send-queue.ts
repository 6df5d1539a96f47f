/**
 * Byte queues with lazy memory for a TCP connection: `ChunkedBytes` (the shared storage) and
 * `SendQueue` (the sender's buffer, RFC 9293 §3.3.1 "Send Sequence Space": bytes from SND.UNA
 * on, acknowledged ones dropped from the head). The receive side is `RecvQueue` in
 * `recv-queue.ts`, on the same storage.
 *
 * Read first: RFC 9293 §3.3.1 (send sequence space), §3.8.6 (windows and buffers).
 *
 * An idle connection must cost about nothing (DESIGN.md "Nothing a guest sends can ... grow
 * memory without bound"; thousands of idle guest flows): there is no preallocated ring. Bytes
 * live in chunks allocated when data is written (at least `CHUNK_SIZE` bytes of capacity, or
 * the write's size rounded up to 8 KiB when larger, and 64 KiB pieces beyond that) and released
 * as soon as they are consumed; an empty queue holds no chunk and no scratch buffer.
 *
 * The queues count bytes only; they know nothing of sequence numbers (the engine maps
 * `offset 0` to SND.UNA, or to RCV.NXT minus what is unread).
 */

/** Capacity of a chunk allocated for small writes (16 KiB). */
export const CHUNK_SIZE = 16 * 1024;
/** Smallest buffer `adopt` takes over instead of copying (unless the queue is empty). */
const ADOPT_MIN = 4 * 1024;
/** The first chunk of an empty queue is the write's size rounded up to this. */
const FIRST_CHUNK_ROUND = 2 * 1024;
/**
 * A write larger than CHUNK_SIZE gets a chunk of its own, its size rounded up to this, up to
 * LARGE_CHUNK_MAX (a TCP super-segment's payload, below 64 KiB, fits): reusable too.
 */
const LARGE_CHUNK_ROUND = 8 * 1024;
/** The largest chunk (64 KiB); larger writes are stored in pieces of this size. */
export const LARGE_CHUNK_MAX = 64 * 1024;

/**
 * Chunk storage, not zero-filled: Node's pooled allocation for small chunks (a slice of a shared
 * 8 KiB slab: far cheaper than a new ArrayBuffer per message), unpooled for larger ones.
 */
const allocChunk: (n: number) => Uint8Array =
  typeof Buffer === "function" ? (n) => (n < 4096 ? Buffer.allocUnsafe(n) : Buffer.allocUnsafeSlow(n)) : (n) => new Uint8Array(n);

/**
 * Released chunks are reused (process-wide free lists, one per size class: multiples of
 * FIRST_CHUNK_ROUND up to CHUNK_SIZE, then of LARGE_CHUNK_ROUND up to LARGE_CHUNK_MAX, at most
 * FREE_MAX bytes in all). Without it every request/response allocates fresh chunk memory, and
 * at tens of thousands of requests a second that external memory drives V8 into a full
 * mark-compact several times a second. Bulk transfers need the large classes: a guest's TCP
 * super-segments (up to 64 KiB each) were once copied into a new ArrayBuffer each, and at
 * 10 Gbit/s that allocation led V8 into 15-40 full mark-compacts per GB moved (a quarter of
 * skiff's CPU, and how many depended on how long the buffers lived: more when the host side
 * drained them later).
 *
 * A chunk is reused only if no view of it ever left the queue: `RECYCLABLE` holds the chunks
 * allocated here, and a chunk is taken out of it when a view escapes (`RecvQueue.readHead`).
 * Views that stay borrowed (`SendQueue.slice`, `RecvQueue.peekHead`) are used before the bytes
 * are dropped, so dropping is the point where the chunk is free.
 */
const FREE_MAX = 4 * 1024 * 1024;
const RECYCLABLE = new WeakSet<Uint8Array>();
const freeLists: Uint8Array[][] = Array.from({ length: LARGE_CHUNK_MAX / FIRST_CHUNK_ROUND + 1 }, () => []);
let freeBytes = 0;

/** The chunk size for a write of `n` bytes (CHUNK_SIZE < n <= LARGE_CHUNK_MAX) that gets a chunk of its own. */
function largeChunkSize(n: number): number {
  return (n + LARGE_CHUNK_ROUND - 1) & ~(LARGE_CHUNK_ROUND - 1);
}

function takeChunk(size: number): Uint8Array {
  if (size > LARGE_CHUNK_MAX || size % FIRST_CHUNK_ROUND !== 0 || (size > CHUNK_SIZE && size % LARGE_CHUNK_ROUND !== 0)) return allocChunk(size);
  const reused = freeLists[size / FIRST_CHUNK_ROUND].pop();
  if (reused !== undefined) {
    freeBytes -= size;
    return reused;
  }
  const chunk = allocChunk(size);
  RECYCLABLE.add(chunk);
  return chunk;
}

function giveBack(chunk: Uint8Array): void {
  if (freeBytes + chunk.length > FREE_MAX || !RECYCLABLE.has(chunk)) return;
  freeLists[chunk.length / FIRST_CHUNK_ROUND].push(chunk);
  freeBytes += chunk.length;
}

/** Bytes held in the free lists (for tests). */
export function freeChunkBytes(): number {
  return freeBytes;
}

const EMPTY = new Uint8Array(0);

/**
 * A FIFO of bytes stored in a list of chunks. Data is copied in (`append`), read from any
 * offset (`copyOut`, `locate`) and dropped from the head (`drop`). Memory follows the content:
 * chunks are allocated on write and released once every byte in them is dropped.
 */
export class ChunkedBytes {
  /** Chunk buffers, oldest first; the live bytes are [head, ...) of chunks[0] and [0, tailEnd) of the last. */
  private chunks: Uint8Array[] = [];
  /**
   * End (exclusive) of the live bytes of each chunk before the last (the last one's is
   * `tailEnd`): a chunk may be left with room at its end when a large write or an adopted buffer
   * starts the next one, and it stays whole so that it can be reused.
   */
  private ends: number[] = [];
  /** Offset of the first live byte in chunks[0]. */
  private head = 0;
  /** Bytes written into the last chunk. */
  private tailEnd = 0;
  private len = 0;

  /** Bytes held. */
  get length(): number {
    return this.len;
  }

  /** Chunks currently allocated (0 when empty): for tests and memory accounting. */
  get chunkCount(): number {
    return this.chunks.length;
  }

  /** Bytes of chunk capacity currently allocated. */
  get capacity(): number {
    let n = 0;
    for (const c of this.chunks) n += c.length;
    return n;
  }

  /** Copy `data` to the tail: into the tail chunk's free room, then one new chunk for the rest. */
  protected append(data: Uint8Array): void {
    let n = data.length;
    if (n === 0) return;
    let src = 0;
    const last = this.chunks.length - 1;
    if (last >= 0) {
      const tail = this.chunks[last];
      const room = tail.length - this.tailEnd;
      // A large write (a super-segment) is not split over the tail's room and a new chunk: it
      // stays one run, so a reader gets it whole (one host write, not a sliver and the rest).
      if (room > 0 && (n <= CHUNK_SIZE || n <= room)) {
        const k = room < n ? room : n;
        tail.set(k === n ? data : data.subarray(0, k), this.tailEnd);
        this.tailEnd += k;
        src = k;
        n -= k;
      }
    }
    // A write larger than the largest reusable chunk (a host socket's read of up to 512 KiB)
    // goes into reusable 64 KiB pieces, not one chunk of its own size that nothing reuses.
    while (n > LARGE_CHUNK_MAX) {
      const chunk = takeChunk(LARGE_CHUNK_MAX);
      chunk.set(data.subarray(src, src + LARGE_CHUNK_MAX), 0);
      this.pushChunk(chunk, LARGE_CHUNK_MAX);
      src += LARGE_CHUNK_MAX;
      n -= LARGE_CHUNK_MAX;
    }
    if (n > 0) {
      // Not zero-filled: every byte is written before it is read (bytes past tailEnd never are).
      // The first chunk of an empty queue is sized to the write (request/response traffic
      // then allocates little); later ones leave CHUNK_SIZE of room for more small writes.
      const size = n > CHUNK_SIZE ? largeChunkSize(n) : this.len === 0 && src === 0 ? Math.min(CHUNK_SIZE, (n + FIRST_CHUNK_ROUND - 1) & ~(FIRST_CHUNK_ROUND - 1)) : CHUNK_SIZE;
      const chunk = takeChunk(size);
      chunk.set(src === 0 ? data : data.subarray(src), 0);
      this.pushChunk(chunk, n);
    }
    this.len += data.length;
  }

  /**
   * Take `data` as the new tail chunk without copying (the caller gives up the buffer and never
   * writes to it again). Small pieces behind other data are copied instead, so many tiny
   * buffers do not pin memory or lengthen the chunk list.
   */
  protected adopt(data: Uint8Array): void {
    if (data.length === 0) return;
    if (data.length < ADOPT_MIN && this.len > 0) return this.append(data);
    this.pushChunk(data, data.length);
    this.len += data.length;
  }

  /** Make `chunk`, holding `used` bytes, the new tail (the old tail keeps its end in `ends`). */
  private pushChunk(chunk: Uint8Array, used: number): void {
    const last = this.chunks.length - 1;
    if (last >= 0) this.ends[last] = this.tailEnd;
    this.chunks.push(chunk);
    this.ends.push(0);
    if (last < 0) this.head = 0;
    this.tailEnd = used;
  }

  /** Live bytes in the first chunk (a run readable without copying); 0 when empty. */
  protected headRun(): number {
    return this.chunks.length === 0 ? 0 : this.endOf(0) - this.head;
  }

  /**
   * The first `n` live bytes as a view of the first chunk; `n` must be at most `headRun()`.
   * `escapes`: the caller may keep the view, so the chunk is never reused.
   */
  protected headView(n: number, escapes: boolean): Uint8Array {
    const chunk = this.chunks[0];
    if (escapes) RECYCLABLE.delete(chunk);
    return chunk.subarray(this.head, this.head + n);
  }

  /** End (exclusive) of the live bytes in chunk `i`. */
  private endOf(i: number): number {
    return i === this.chunks.length - 1 ? this.tailEnd : this.ends[i];
  }

  /**
   * The live bytes of the chunk holding byte `offset`, as a subarray starting at that byte
   * (borrowed: valid until the queue is next changed). `offset` must be below `length`.
   */
  protected locate(offset: number): Uint8Array {
    let at = this.head + offset; // position counted from the start of chunks[i]
    for (let i = 0; ; i++) {
      const end = this.endOf(i);
      if (at < end) return this.chunks[i].subarray(at, end);
      at -= end;
    }
  }

  /** Copy bytes [offset, offset + dst.length) into `dst`. The range must be held. */
  protected copyOut(offset: number, dst: Uint8Array): void {
    let at = this.head + offset;
    let w = 0;
    for (let i = 0; w < dst.length; i++) {
      const end = this.endOf(i);
      if (at < end) {
        const k = Math.min(end - at, dst.length - w);
        dst.set(this.chunks[i].subarray(at, at + k), w);
        w += k;
        at = end;
      }
      at -= end;
    }
  }

  /** Drop `n` bytes from the head (n <= length), releasing chunks that empty. */
  protected drop(n: number): void {
    this.len -= n;
    if (this.len === 0) {
      this.release();
      return;
    }
    let at = this.head + n;
    while (at >= this.endOf(0)) {
      at -= this.endOf(0);
      giveBack(this.chunks.shift()!);
      this.ends.shift();
    }
    this.head = at;
  }

  /** Drop everything and release all memory. */
  protected release(): void {
    for (const c of this.chunks) giveBack(c);
    this.chunks = [];
    this.ends = [];
    this.head = 0;
    this.tailEnd = 0;
    this.len = 0;
  }
}

/**
 * The send buffer: bytes written by the application and not yet acknowledged (both the
 * unacknowledged bytes in flight and the unsent ones), offset 0 being SND.UNA.
 */
export class SendQueue extends ChunkedBytes {
  /** Reused buffer for slices that cross a chunk boundary; released when the queue empties. */
  private scratch: Uint8Array | undefined;

  /** Copy `data` (borrowed) onto the tail. */
  push(data: Uint8Array): void {
    this.append(data);
  }

  /** Put `data` on the tail without copying it: the caller hands the buffer over for good. */
  pushOwned(data: Uint8Array): void {
    this.adopt(data);
  }

  /**
   * Bytes [offset, offset + len) counted from the head. A subarray of a chunk when the range is
   * inside one chunk (no copy), otherwise a copy in a reused scratch buffer. Either way the
   * result is borrowed: valid until the next `slice` call or change of the queue (`push` only
   * writes past the held bytes; a chunk let go by `consume` or `clear` may be reused).
   * Throws RangeError (a programmer error) when the range is not held.
   */
  slice(offset: number, len: number): Uint8Array {
    if (!(offset >= 0 && len >= 0 && offset + len <= this.length)) {
      throw new RangeError(`SendQueue.slice(${offset}, ${len}) outside 0..${this.length}`);
    }
    if (len === 0) return EMPTY;
    const first = this.locate(offset);
    if (first.length >= len) return first.subarray(0, len);
    let s = this.scratch;
    if (s === undefined || s.length < len) {
      s = new Uint8Array(Math.max(len, s === undefined ? 0 : s.length * 2));
      this.scratch = s;
    }
    const out = s.subarray(0, len);
    this.copyOut(offset, out);
    return out;
  }

  /** Drop `n` acknowledged bytes from the head (RFC 9293 §3.10.7.4: SND.UNA advanced). */
  consume(n: number): void {
    if (!(n >= 0 && n <= this.length)) throw new RangeError(`SendQueue.consume(${n}) with ${this.length} held`);
    this.drop(n);
    if (this.length === 0) this.scratch = undefined;
  }

  /** Drop everything (reset or abort) and release memory. */
  clear(): void {
    this.release();
    this.scratch = undefined;
  }
}
