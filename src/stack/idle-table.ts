/**
 * A bounded table of flows that expire when idle: the shape UDP and ICMP socket translation
 * share. Entries are kept in least-recently-used order (a `Map` keeps insertion order;
 * `touch` re-inserts), so at the cap the oldest is evicted; each entry has one deadline on the
 * stack's one timer heap, pushed back lazily (an entry used since is rescheduled when its timer
 * fires, not on every packet).
 */
import { ownTimers, type TimerSource, type TimerTarget, type Timers } from "./timers.js";

export interface IdleEntry extends TimerTarget {
  readonly key: number;
  lastActive: number;
}

export type IdleEnd = "expired" | "evicted";

export class IdleTable<F extends IdleEntry> {
  private readonly map = new Map<number, F>();
  private readonly timers: Timers<F>;

  constructor(
    /** The stack's timers (`stack.timers`), or a host of its own (tests). */
    source: TimerSource,
    readonly idleMs: number,
    readonly maxEntries: number,
    /** Called after an entry left the table on its own (idle, or evicted for room). */
    private readonly onEnd: (entry: F, why: IdleEnd) => void,
  ) {
    this.timers = ownTimers<F>(source, (f, now) => this.onTimer(f, now));
  }

  get size(): number {
    return this.map.size;
  }

  /** At the cap: the next `add` needs `makeRoom` (or another eviction) first. */
  get full(): boolean {
    return this.map.size >= this.maxEntries;
  }

  get(key: number): F | undefined {
    return this.map.get(key);
  }

  has(entry: F): boolean {
    return this.map.get(entry.key) === entry;
  }

  values(): IterableIterator<F> {
    return this.map.values();
  }

  /** The entry was used at `now`: it becomes the most recently used. */
  touch(entry: F, now: number): void {
    this.map.delete(entry.key);
    this.map.set(entry.key, entry);
    entry.lastActive = now;
  }

  /** Make room for one more entry, evicting the least recently used at the cap. */
  makeRoom(): void {
    if (this.map.size < this.maxEntries) return;
    const oldest = this.map.values().next().value as F;
    this.delete(oldest);
    this.onEnd(oldest, "evicted");
  }

  /**
   * Evict the least recently used entry `mine` selects (a guest at its share of the table,
   * guests.ts, loses its own oldest flow rather than another guest's). Scans from the oldest:
   * at most the table's size. False when none matched.
   */
  evictOldest(mine: (entry: F) => boolean): boolean {
    for (const e of this.map.values()) {
      if (!mine(e)) continue;
      this.delete(e);
      this.onEnd(e, "evicted");
      return true;
    }
    return false;
  }

  add(entry: F, now: number): void {
    this.map.set(entry.key, entry);
    entry.lastActive = now;
    this.timers.schedule(entry, now + this.idleMs);
  }

  /** Remove `entry`; false when it was not (or no longer) in the table. */
  delete(entry: F): boolean {
    if (!this.has(entry)) return false;
    this.map.delete(entry.key);
    this.timers.cancel(entry);
    return true;
  }

  /** Stop the timer (shutting down; remove the entries first). */
  stop(): void {
    this.timers.stop();
  }

  private onTimer(entry: F, now: number): void {
    if (!this.has(entry)) return;
    if (now - entry.lastActive >= this.idleMs) {
      this.delete(entry);
      this.onEnd(entry, "expired");
    } else this.timers.schedule(entry, entry.lastActive + this.idleMs);
  }
}
