/**
 * The stack's one timer: a binary min-heap of deadlines and a single `setTimeout` set to the
 * earliest (ARCHITECTURE.md: "One driver in src/stack/ owns a single timer set to the earliest
 * deadline"). Sans-I/O engines report when they next want to be polled; their owners
 * `schedule(item, at)` here and get `fire(item)` back at or after that time.
 *
 * Each `NetworkStack` has one `SharedTimers` on its clock, and every owner of deadlines on that
 * stack (the TCP layer's flows, the UDP and ICMP translators' idle flows, the forwards' UDP
 * clients) schedules on it through `ownTimers`: an item records its owner's callback, so one
 * heap and one `setTimeout` serve them all. One-shot time limits (a dial, a DNS query, a
 * request) take `after(ms, fn)`, the `NetworkClock` of common/clock.ts. Tests that drive time
 * by hand give an owner a `TimerHost` of their own instead, and it gets a driver of its own on
 * that host.
 *
 * Rescheduling an item replaces its deadline without a search. A later deadline costs nothing
 * at all: the item's live heap entry stays, and when it comes due the driver finds the item
 * wants a later time and queues it again (a TCP connection moves its retransmission deadline
 * later on every ACK: one heap push per RTO period, not one per segment). An earlier deadline
 * pushes a new entry; the old one is skipped lazily when it reaches the top.
 */

import type { NetworkClock, Timeout } from "../common/clock.js";

export interface TimerTarget {
  /** Set and read by the driver only: the deadline wanted, */
  timerAt: number;
  /** the sequence number of the item's live heap entry, */
  timerSeq: number;
  /** and that entry's time (Infinity: no live entry). */
  timerQueuedAt: number;
  /** On a shared driver: the owner's callback (set by `ownTimers`'s schedule). */
  timerOwner?: TimerOwner;
}

/** An owner's callback for its items that came due. */
export type TimerOwner = (item: never, now: number) => void;

/** What an owner of deadlines uses: its share of the stack's driver, or a driver of its own. */
export interface Timers<T extends TimerTarget> {
  /** Call the owner back for `item` at `at` (ms on the stack's clock); Infinity cancels. */
  schedule(item: T, at: number): void;
  cancel(item: T): void;
  /** Stop a driver of its own; on a shared driver nothing (the owner cancels its items). */
  stop(): void;
}

interface Entry<T> {
  at: number;
  seq: number;
  item: T;
}

/** Scheduling primitives; tests inject a manual clock. */
export interface TimerHost {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimerHost: TimerHost = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Below this many heap entries stale ones are never compacted away (they are popped in time). */
const COMPACT_MIN = 64;

export class TimerDriver<T extends TimerTarget> implements Timers<T> {
  private heap: Entry<T>[] = [];
  /** Items with a live heap entry; the rest of the heap is stale entries. */
  private live = 0;
  private handle: unknown;
  private armedAt = Infinity;
  private seq = 0;

  constructor(
    private readonly host: TimerHost,
    private readonly fire: (item: T, now: number) => void,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** The driver's clock (ms): the time its deadlines are on. */
  now(): number {
    return this.host.now();
  }

  /** Call `fire(item)` at `at` (ms on the host clock); Infinity cancels. */
  schedule(item: T, at: number): void {
    if (item.timerAt === at) return;
    item.timerAt = at;
    // A live entry at or before `at` will come due first and queue the item again.
    if (item.timerQueuedAt <= at) return;
    this.queue(item, at);
  }

  cancel(item: T): void {
    item.timerAt = Infinity;
    item.timerSeq = ++this.seq;
    if (item.timerQueuedAt !== Infinity) {
      item.timerQueuedAt = Infinity;
      this.live--;
      this.compactIfStale();
    }
  }

  /** Items with a live deadline (tests and stats). */
  get pending(): number {
    return this.live;
  }

  private queue(item: T, at: number): void {
    this.heapOnly(item, at);
    if (at < this.armedAt) this.arm();
  }

  /** Fire everything due; called by the timer (and usable directly by tests). */
  run(): void {
    const now = this.host.now();
    this.armedAt = Infinity;
    this.handle = undefined;
    let guard = 0;
    while (this.heap.length > 0 && this.heap[0].at <= now && guard++ < 1_000_000) {
      const e = this.pop()!;
      const item = e.item;
      if (e.seq !== item.timerSeq) continue; // replaced by an earlier entry, or cancelled
      item.timerQueuedAt = Infinity;
      this.live--;
      if (item.timerAt === Infinity) continue; // cancelled by schedule(item, Infinity)
      if (item.timerAt > now) {
        // Moved later since this entry was queued: queue it for then.
        this.heapOnly(item, item.timerAt);
        continue;
      }
      item.timerAt = Infinity;
      this.fire(item, now);
    }
    // Drop stale entries at the top so the next arm is for a live deadline.
    while (this.heap.length > 0 && this.heap[0].seq !== this.heap[0].item.timerSeq) this.pop();
    if (this.heap.length > 0) this.arm();
  }

  stop(): void {
    if (this.handle !== undefined) this.host.clearTimeout(this.handle);
    this.handle = undefined;
    this.armedAt = Infinity;
    for (const e of this.heap) e.item.timerQueuedAt = Infinity;
    this.heap = [];
    this.live = 0;
  }

  /** Queue without arming (run() arms once at the end). */
  private heapOnly(item: T, at: number): void {
    // An item with a live entry that is queued earlier leaves that entry stale.
    if (item.timerQueuedAt === Infinity) this.live++;
    item.timerSeq = ++this.seq;
    item.timerQueuedAt = at;
    this.push({ at, seq: item.timerSeq, item });
    this.compactIfStale();
  }

  /**
   * Stale entries (cancelled items, deadlines moved earlier) are skipped when they reach the
   * top, but until then they hold their items: under churn (a flood evicting flows from a full
   * table) that is every flow of the last idle period. Once more than half the heap is stale,
   * rebuild it from the live entries, so the heap never holds more than twice the live items
   * (plus COMPACT_MIN). A sorted array is a valid min-heap.
   */
  private compactIfStale(): void {
    const h = this.heap;
    if (h.length < COMPACT_MIN || h.length - this.live <= h.length >> 1) return;
    const keep = h.filter((e) => e.seq === e.item.timerSeq);
    keep.sort((a, b) => a.at - b.at);
    this.heap = keep;
  }

  private arm(): void {
    const at = this.heap[0].at;
    if (this.handle !== undefined) this.host.clearTimeout(this.handle);
    this.armedAt = at;
    const delay = Math.max(0, at - this.host.now());
    this.handle = this.host.setTimeout(() => this.run(), Math.ceil(delay));
  }

  private push(e: Entry<T>): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p].at <= e.at) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  private pop(): Entry<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r].at < h[l].at ? r : l;
      if (h[c].at >= last.at) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
    return top;
  }
}

/**
 * A one-shot callback on a shared driver (`SharedTimers.after`): what a per-connection or
 * per-query time limit uses instead of its own `setTimeout`.
 */
class Deadline implements TimerTarget, Timeout {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner?: TimerOwner = fireDeadline as TimerOwner;

  constructor(
    private readonly driver: SharedTimers,
    readonly fn: () => void,
  ) {}

  cancel(): void {
    this.driver.cancel(this);
  }
}

function fireDeadline(d: Deadline): void {
  d.fn();
}

/** The stack's one driver: each item carries its owner's callback (`timerOwner`). */
export class SharedTimers extends TimerDriver<TimerTarget> implements NetworkClock {
  constructor(host: TimerHost) {
    super(host, (item, now) => (item.timerOwner as (item: TimerTarget, now: number) => void)(item, now));
  }

  /** Call `fn` once, `ms` from now on the driver's clock, unless cancelled first. */
  after(ms: number, fn: () => void): Timeout {
    const d = new Deadline(this, fn);
    this.schedule(d, this.now() + ms);
    return d;
  }

  /** An owner's share: its items call `fire` back. */
  forOwner<T extends TimerTarget>(fire: (item: T, now: number) => void): Timers<T> {
    const owner = fire as TimerOwner;
    return {
      schedule: (item, at) => {
        item.timerOwner = owner;
        this.schedule(item, at);
      },
      cancel: (item) => this.cancel(item),
      stop: () => {},
    };
  }
}

/** Where an owner's deadlines go: the stack's shared driver, or (tests) a host of its own. */
export type TimerSource = SharedTimers | TimerHost;

/** `fire(item, now)` for each of the owner's items that comes due, on `source`. */
export function ownTimers<T extends TimerTarget>(source: TimerSource, fire: (item: T, now: number) => void): Timers<T> {
  return source instanceof SharedTimers ? source.forOwner(fire) : new TimerDriver<T>(source, fire);
}
