/**
 * Memory given back after a burst, for skiff's long-running commands (issue 20: RSS with idle
 * connections). V8 collects its old generation only when allocation pushes it past a limit, and
 * its own memory reducer is not started by Node's event loop: a skiff that goes idle after a
 * burst of short connections (each one's state outlives a young-generation cycle — its TIME-WAIT
 * alone holds it 2 s — so it is promoted, then dies) kept that garbage, and the RSS, for as long
 * as it stayed idle: 360 MB with 10,000 idle connections after 47k short ones, against 130 MB
 * without them (`npm run bench`, 2026-12-07); with this, 203–214 MB (what V8 and malloc keep of
 * freed memory makes the rest).
 *
 * Every `intervalMs` this looks at the event loop's utilisation over the interval and the V8
 * heap in use; when the loop was nearly idle (below `idleElu`) and the heap has grown by
 * `minGrowthBytes` and by `growthFactor` over what the last collection asked here left, it
 * asks V8 for one full collection (a pause of tens of milliseconds, taken only while idle).
 * The decision is a pure function (`shouldCollect`); the timer is unref'd.
 */

import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface MemoryReducerOptions {
  /** How often to look (ms, default 500). */
  intervalMs?: number;
  /** Event loop utilisation below which the interval counts as idle (default 0.05). */
  idleElu?: number;
  /** Heap growth over the last collection's result that is worth a collection (bytes, default 32 MiB)… */
  minGrowthBytes?: number;
  /** …and as a factor of it (default 1.5). */
  growthFactor?: number;
}

/** Whether to collect now: the loop was idle and the heap grew past both thresholds over `baseline` (the heap in use after the last collection). */
export function shouldCollect(elu: number, heapUsed: number, baseline: number, o: Required<MemoryReducerOptions>): boolean {
  return elu < o.idleElu && heapUsed - baseline >= o.minGrowthBytes && heapUsed >= baseline * o.growthFactor;
}

/** V8's full collection, or undefined when it cannot be had (the flag refused). */
function fullCollection(): (() => void) | undefined {
  try {
    setFlagsFromString("--expose-gc");
    const gc: unknown = runInNewContext("gc");
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

export class MemoryReducer {
  /** Collections asked for so far. */
  collections = 0;
  private readonly o: Required<MemoryReducerOptions>;
  /** Heap in use after the last collection asked for (or at start, or after V8's own). */
  private baseline: number;
  private readonly timer: NodeJS.Timeout | undefined;
  private last: EventLoopUtilization;

  constructor(opts: MemoryReducerOptions = {}, private readonly gc = fullCollection()) {
    this.o = { intervalMs: opts.intervalMs ?? 500, idleElu: opts.idleElu ?? 0.05, minGrowthBytes: opts.minGrowthBytes ?? 32 << 20, growthFactor: opts.growthFactor ?? 1.5 };
    this.baseline = getHeapStatistics().used_heap_size;
    this.last = performance.eventLoopUtilization();
    if (this.gc === undefined) return;
    this.timer = setInterval(() => this.check(), this.o.intervalMs);
    this.timer.unref();
  }

  /** One look (the timer's; tests call it). */
  check(): void {
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, this.last).utilization;
    this.last = now;
    const used = getHeapStatistics().used_heap_size;
    if (this.gc === undefined || !shouldCollect(elu, used, this.baseline, this.o)) {
      // The heap shrank on its own (V8's own collection): that is the new starting point.
      if (used < this.baseline) this.baseline = used;
      return;
    }
    this.gc();
    this.collections++;
    this.baseline = getHeapStatistics().used_heap_size;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}
