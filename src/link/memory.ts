/**
 * In-memory channel pair: two FrameChannels wired back to back, for tests and for embedding
 * skiff next to an in-process emulator. A frame sent on one end is copied and delivered to
 * the other end on a later turn of the event loop (never re-entrantly), in order.
 *
 * The queue toward each end is bounded (`highWater` frames signals backpressure,
 * `limit` frames is the hard cap beyond which frames are dropped and counted).
 */

import { BaseFrameChannel } from "../common/frame-channel.js";

export interface MemoryPairOptions {
  mtu?: number;
  highWater?: number;
  limit?: number;
}

class MemoryEnd extends BaseFrameChannel {
  peer!: MemoryEnd;
  private queue: Uint8Array[] = [];
  private scheduled = false;
  private needDrain = false;

  constructor(
    name: string,
    mtu: number,
    private readonly highWater: number,
    private readonly limit: number,
  ) {
    super(name, mtu);
  }

  protected transmit(frame: Uint8Array): boolean {
    const q = this.peer.queue;
    if (this.peer.closed || q.length >= this.limit) {
      this.stats.txDrops++;
      this.needDrain = true;
      return false;
    }
    q.push(Uint8Array.from(frame));
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    this.peer.schedule();
    if (q.length >= this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const q = this.queue;
    this.queue = [];
    for (const f of q) this.deliver(f);
    const sender = this.peer;
    if (sender.needDrain && !sender.closed) {
      sender.needDrain = false;
      sender.emit("drain");
    }
  }

  protected shutdown(): void {
    this.queue = [];
    // Closing one end closes the link: the other end sees `closed` too.
    queueMicrotask(() => this.peer.close());
  }
}

/** Create two connected channels `[a, b]`. */
export function memoryPair(opts: MemoryPairOptions = {}): [BaseFrameChannel, BaseFrameChannel] {
  const mtu = opts.mtu ?? 1500;
  const hw = opts.highWater ?? 256;
  const limit = opts.limit ?? 1024;
  const a = new MemoryEnd("memory:a", mtu, hw, limit);
  const b = new MemoryEnd("memory:b", mtu, hw, limit);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
