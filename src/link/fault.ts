/**
 * Fault-injection wrapper: a FrameChannel around any other channel that drops, duplicates,
 * reorders and corrupts frames with given probabilities, driven by a seeded PRNG so a failing
 * run can be replayed exactly. Used by tests of loss recovery and of robustness against bad
 * input (smoltcp's `FaultInjector` is the model).
 *
 * Each direction ("rx" = toward the wrapper's receiver, "tx" = toward the inner channel) has
 * its own settings. Reordering holds one frame back and releases it after the next frame in
 * the same direction, or after `reorderHoldMs` if none comes, so nothing is lost by it.
 * Corruption flips one random bit of a copy; the caller's buffer is never modified.
 */

import { BaseFrameChannel, type FrameChannel } from "../common/frame-channel.js";
import { Counters } from "../common/counters.js";

export interface FaultSettings {
  /** Probability (0..1) that a frame is dropped. */
  drop?: number;
  /** Probability that a frame is sent twice. */
  duplicate?: number;
  /** Probability that a frame is held back and sent after the next one. */
  reorder?: number;
  /** Probability that one bit of the frame is flipped. */
  corrupt?: number;
}

export interface FaultOptions {
  seed?: number;
  rx?: FaultSettings;
  tx?: FaultSettings;
  reorderHoldMs?: number;
}

export class FaultCounters extends Counters {
  dropped = 0;
  duplicated = 0;
  reordered = 0;
  corrupted = 0;
}

/** mulberry32: a small, fast, seedable PRNG (not for cryptography). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Direction {
  held: Uint8Array | undefined;
  timer: NodeJS.Timeout | undefined;
  constructor(
    readonly settings: FaultSettings,
    readonly out: (frame: Uint8Array) => void,
  ) {}
}

export class FaultChannel extends BaseFrameChannel {
  readonly faults = { rx: new FaultCounters(), tx: new FaultCounters() };
  private readonly random: () => number;
  private readonly rx: Direction;
  private readonly tx: Direction;
  private readonly holdMs: number;
  private lastTxOk = true;

  constructor(
    private readonly inner: FrameChannel,
    opts: FaultOptions = {},
  ) {
    super(`fault(${inner.name})`, inner.mtu);
    this.random = seededRandom(opts.seed ?? 1);
    this.holdMs = opts.reorderHoldMs ?? 5;
    this.rx = new Direction(opts.rx ?? {}, (f) => this.deliver(f));
    this.tx = new Direction(opts.tx ?? {}, (f) => {
      this.stats.txFrames++;
      this.stats.txBytes += f.length;
      this.lastTxOk = this.inner.send(f);
    });
    inner.setReceiver((frame) => this.apply(this.rx, this.faults.rx, frame));
    inner.on("drain", () => this.emit("drain"));
    inner.once("closed", (err) => this.finish(err));
  }

  private chance(p: number | undefined): boolean {
    return p !== undefined && p > 0 && this.random() < p;
  }

  private apply(d: Direction, c: FaultCounters, frame: Uint8Array): void {
    const s = d.settings;
    if (this.chance(s.drop)) {
      c.dropped++;
      return;
    }
    let f = frame;
    if (this.chance(s.corrupt) && f.length > 0) {
      f = Uint8Array.from(f);
      const bit = Math.floor(this.random() * f.length * 8);
      f[bit >>> 3] ^= 1 << (bit & 7);
      c.corrupted++;
    }
    const dup = this.chance(s.duplicate);
    if (this.chance(s.reorder) && d.held === undefined) {
      // Hold this frame (a copy: the caller's bytes are borrowed) until the next one passes.
      d.held = f === frame ? Uint8Array.from(f) : f;
      c.reordered++;
      d.timer = setTimeout(() => this.release(d), this.holdMs);
      d.timer.unref?.();
      if (dup) {
        c.duplicated++;
        d.out(d.held);
      }
      return;
    }
    d.out(f);
    if (dup) {
      c.duplicated++;
      d.out(f);
    }
    this.release(d);
  }

  private release(d: Direction): void {
    const h = d.held;
    if (h === undefined) return;
    d.held = undefined;
    if (d.timer !== undefined) clearTimeout(d.timer);
    d.timer = undefined;
    if (!this.closed) d.out(h);
  }

  protected transmit(frame: Uint8Array): boolean {
    this.apply(this.tx, this.faults.tx, frame);
    return this.lastTxOk;
  }

  protected shutdown(): void {
    for (const d of [this.rx, this.tx]) {
      if (d.timer !== undefined) clearTimeout(d.timer);
      d.held = undefined;
    }
    this.inner.close();
  }
}
