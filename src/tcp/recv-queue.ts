/**
 * The receive buffer of a TCP connection: in-order bytes (up to RCV.NXT) that the application
 * has not read yet. Its free space is the window offered to the peer (RFC 9293 §3.8.6.2.2 and
 * §3.3.1 "Receive Sequence Space": RCV.WND is what the buffer can still take).
 *
 * Read first: RFC 9293 §3.3.1, §3.8.6.2.2 (receiver's window management).
 *
 * Same lazy storage as the send queue (`ChunkedBytes` in `send-queue.ts`): chunks are allocated
 * when segments arrive and released as the application reads, so an idle connection holds no
 * buffer. Segment payloads are borrowed from a frame and always copied in; reads hand out views
 * of the chunks where they can, so bytes are copied once on their way from the frame to the
 * application: `readHead` views may be kept (their chunk is then never reused), `peekHead`
 * views are borrowed until `consume` (their chunk goes back to the free list).
 */

import { ChunkedBytes } from "./send-queue.js";

const EMPTY = new Uint8Array(0);

/** In-order received bytes waiting for the application. */
export class RecvQueue extends ChunkedBytes {
  /** Copy `data` (borrowed from a frame) onto the tail. */
  push(data: Uint8Array): void {
    this.append(data);
  }

  /**
   * Remove and return up to `max` bytes (all of them by default) as one new Uint8Array owned by
   * the caller. Empty when nothing is held.
   */
  read(max: number = Infinity): Uint8Array {
    const n = Math.min(this.length, Math.max(0, Math.floor(max)));
    if (n === 0) return EMPTY;
    if (n <= this.headRun()) return this.readHead(n);
    const out = new Uint8Array(n);
    this.copyOut(0, out);
    this.drop(n);
    return out;
  }

  /**
   * Remove and return up to `max` bytes from the first chunk only, without copying: a view the
   * caller may keep (chunk bytes are never rewritten once written). Fewer than `max` bytes when
   * the first chunk holds fewer; empty when nothing is held.
   */
  readHead(max: number = Infinity): Uint8Array {
    const n = Math.min(this.headRun(), Math.max(0, Math.floor(max)));
    if (n === 0) return EMPTY;
    const out = this.headView(n, true);
    this.drop(n);
    return out;
  }

  /**
   * Up to `max` bytes from the first chunk, without copying and without removing them: a
   * borrowed view, to be used (copied or written out) before `consume` — whose chunk memory may
   * then be reused. Empty when nothing is held.
   */
  peekHead(max: number = Infinity): Uint8Array {
    const n = Math.min(this.headRun(), Math.max(0, Math.floor(max)));
    return n === 0 ? EMPTY : this.headView(n, false);
  }

  /** Remove `n` bytes (at most `length`) from the head, after `peekHead`. */
  consume(n: number): void {
    if (!(n >= 0 && n <= this.length)) throw new RangeError(`RecvQueue.consume(${n}) with ${this.length} held`);
    if (n > 0) this.drop(n);
  }

  /** Remove up to `dst.length` bytes into `dst`; returns how many were written. */
  readInto(dst: Uint8Array): number {
    const n = Math.min(this.length, dst.length);
    if (n === 0) return 0;
    this.copyOut(0, n === dst.length ? dst : dst.subarray(0, n));
    this.drop(n);
    return n;
  }

  /** Drop everything (reset or abort) and release memory. */
  clear(): void {
    this.release();
  }
}
