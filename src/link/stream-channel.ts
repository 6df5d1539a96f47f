/**
 * A FrameChannel over a byte stream (Unix or TCP socket) where each frame is preceded by a
 * length prefix. QEMU's `-netdev stream` (and the older `-netdev socket`) uses a 4-byte
 * big-endian length; VPNKit/hyperkit's vmnet protocol uses a 2-byte little-endian length
 * after its handshake. Both are this class with a different `LengthPrefix`.
 *
 * Receive: frames that lie whole inside one chunk are delivered as views into that chunk
 * (no copy); a frame split across chunks is assembled in one reusable buffer. A length of 0
 * or above the channel's largest frame means the framing is lost: the channel closes with an
 * error (there is no way to resynchronise a length-prefixed stream) and counts an rxDrop.
 *
 * Send: frames are batched per event-loop turn (issue 20: one `write` per frame was the
 * channel's main cost on the VM path). Each frame's prefix and bytes are copied into a staging
 * buffer (the caller's bytes are never retained); the batch goes out in one socket `write` from
 * a microtask queued by the batch's first frame — after the receive batch or timer that
 * produced it, so a lone ACK is not delayed past the current turn — or at once when the next
 * frame would not fit. A large batch hands the staging buffer itself to the socket (no second
 * copy); the socket's write callback (writes complete in order) returns it to a small pool of
 * free staging buffers, so a steady download allocates none (a new one per batch made V8 run a
 * mark-compact every few MB, issue 20). A small batch (a few ACKs) is copied out and the
 * staging buffer is kept. `send` returns false above `highWaterBytes` of data the socket has not
 * flushed; above `limitBytes` frames are dropped and counted (the batch itself is bounded by
 * `batchBytes`, and always written by the end of the turn).
 */

import type { Socket } from "node:net";
import { BaseFrameChannel, maxFrameLen } from "../common/frame-channel.js";

export interface LengthPrefix {
  /** Bytes in the prefix: 2 or 4. */
  size: 2 | 4;
  littleEndian: boolean;
}

export const QEMU_PREFIX: LengthPrefix = { size: 4, littleEndian: false };
export const VMNET_PREFIX: LengthPrefix = { size: 2, littleEndian: true };

/** Bytes of frames (with prefixes) batched before a write; a batch also ends with the loop turn. */
export const STREAM_BATCH_BYTES = 256 * 1024;
/** A batch up to this size is copied out (the staging buffer stays); a larger one takes it. */
const SMALL_BATCH_BYTES = 8 * 1024;
/** Free staging buffers kept for reuse (more in flight than this are left to the GC). */
const FREE_STAGING = 2;

export interface StreamChannelOptions {
  mtu?: number;
  /** Bytes batched per write (default STREAM_BATCH_BYTES; at least one largest frame). */
  batchBytes?: number;
  highWaterBytes?: number;
  limitBytes?: number;
}

export class StreamFrameChannel extends BaseFrameChannel {
  private readonly maxFrame: number;
  private readonly highWater: number;
  private readonly limit: number;
  /** Reassembly of a frame (or prefix) split across chunks. */
  private partial: Uint8Array;
  private partialLen = 0;
  private needDrain = false;
  /** The batch being filled: `out[0, outLen)`, prefixes and frames. */
  private out: Buffer;
  private outLen = 0;
  private readonly batchBytes: number;
  /** Staging buffers handed to the socket, oldest first; free ones ready for reuse. */
  private readonly inFlight: Buffer[] = [];
  private readonly free: Buffer[] = [];
  private readonly flushBatch = (): void => this.flush();
  private readonly written = (): void => {
    const b = this.inFlight.shift();
    if (b !== undefined && this.free.length < FREE_STAGING) this.free.push(b);
  };

  constructor(
    name: string,
    private readonly socket: Socket,
    private readonly prefix: LengthPrefix,
    opts: StreamChannelOptions = {},
  ) {
    super(name, opts.mtu ?? 1500);
    this.maxFrame = maxFrameLen(this.mtu);
    this.highWater = opts.highWaterBytes ?? 1 << 20;
    this.limit = opts.limitBytes ?? 8 << 20;
    this.partial = new Uint8Array(this.maxFrame + prefix.size);
    this.batchBytes = Math.max(opts.batchBytes ?? STREAM_BATCH_BYTES, this.maxFrame + prefix.size);
    this.out = Buffer.allocUnsafeSlow(this.batchBytes);
    socket.setNoDelay?.(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => {
      if (this.needDrain) {
        this.needDrain = false;
        this.emit("drain");
      }
    });
    socket.on("error", (err) => this.finish(err));
    socket.on("close", () => this.finish());
  }

  private readLength(b: Uint8Array, o: number): number {
    if (this.prefix.size === 4) {
      return this.prefix.littleEndian
        ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
        : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
    }
    return this.prefix.littleEndian ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1];
  }

  private writeLength(b: Uint8Array, o: number, len: number): void {
    const n = this.prefix.size;
    for (let i = 0; i < n; i++) {
      const shift = this.prefix.littleEndian ? 8 * i : 8 * (n - 1 - i);
      b[o + i] = (len >>> shift) & 0xff;
    }
  }

  private framingLost(len: number): void {
    this.stats.rxDrops++;
    this.socket.destroy();
    this.finish(new Error(`${this.name}: frame length ${len} outside 1..${this.maxFrame}; framing lost`));
  }

  private onData(chunk: Uint8Array): void {
    const p = this.prefix.size;
    let o = 0;
    // Finish a frame (or prefix) left over from the previous chunk.
    if (this.partialLen > 0) {
      if (this.partialLen < p) {
        const take = Math.min(p - this.partialLen, chunk.length);
        this.partial.set(chunk.subarray(0, take), this.partialLen);
        this.partialLen += take;
        o = take;
        if (this.partialLen < p) return;
      }
      const len = this.readLength(this.partial, 0);
      if (len === 0 || len > this.maxFrame) return this.framingLost(len);
      const need = p + len - this.partialLen;
      const take = Math.min(need, chunk.length - o);
      this.partial.set(chunk.subarray(o, o + take), this.partialLen);
      this.partialLen += take;
      o += take;
      if (take < need) return;
      this.partialLen = 0;
      this.deliver(this.partial.subarray(p, p + len));
      if (this.closed) return;
    }
    // Whole frames inside this chunk: delivered as views, no copy.
    while (chunk.length - o >= p) {
      const len = this.readLength(chunk, o);
      if (len === 0 || len > this.maxFrame) return this.framingLost(len);
      if (chunk.length - o - p < len) break;
      this.deliver(chunk.subarray(o + p, o + p + len));
      if (this.closed) return;
      o += p + len;
    }
    if (o < chunk.length) {
      this.partial.set(chunk.subarray(o), 0);
      this.partialLen = chunk.length - o;
    }
  }

  protected transmit(frame: Uint8Array): boolean {
    const s = this.socket;
    if (s.writableLength > this.limit || s.destroyed) {
      this.stats.txDrops++;
      this.needDrain = true;
      return false;
    }
    const need = this.prefix.size + frame.length;
    if (this.outLen + need > this.out.length) this.flush();
    if (this.outLen === 0) queueMicrotask(this.flushBatch);
    const o = this.outLen;
    this.writeLength(this.out, o, frame.length);
    this.out.set(frame, o + this.prefix.size);
    this.outLen = o + need;
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    if (s.writableLength > this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  /** Write the batch: one socket write (`drain` comes from the socket's, see `send`). */
  private flush(): void {
    const len = this.outLen;
    if (len === 0) return;
    this.outLen = 0;
    const s = this.socket;
    if (s.destroyed) return;
    if (len <= SMALL_BATCH_BYTES) {
      const copy = Buffer.allocUnsafe(len);
      this.out.copy(copy, 0, 0, len);
      s.write(copy);
      return;
    }
    const batch = this.out;
    this.inFlight.push(batch);
    this.out = this.free.pop() ?? Buffer.allocUnsafeSlow(this.batchBytes);
    s.write(batch.subarray(0, len), this.written);
  }

  protected shutdown(): void {
    this.flush();
    this.socket.end();
    this.socket.destroySoon?.();
  }
}
