/**
 * Adaptive busy polling of the event loop — the idea of Linux's `net.core.busy_poll` /
 * SO_BUSY_POLL, applied to a userspace stack: for a short window after the last frame in or
 * out, keep Node's loop from sleeping in epoll, so the guest's next frame or the host socket's
 * answer is picked up at once instead of after a scheduler wakeup.
 *
 * Why: a request/response through skiff crosses two extra processes' wakeups (guest → skiff →
 * host server → skiff → guest); on a virtual machine each wakeup of a sleeping process costs
 * about 10 µs, which doubles a TCP ping-pong's latency compared with a kernel veth pair.
 * While the window is open a chain of `setImmediate` callbacks makes libuv poll with a zero
 * timeout. The cost is CPU time only while traffic flows (at most `windowUs` per burst); an
 * idle stack sleeps as before. `windowUs` 0 turns it off.
 *
 * Spinning only pays on a spare core. When the rest of the machine (the guest, the host
 * servers, the kernel) keeps every other core busy, each spin iteration takes CPU from the
 * processes that produce our next frame: `wrk -c50` through skiff went from 36k to 40k
 * requests/s with spinning off, while a single ping-pong gains ~10 µs per round trip with it on.
 * So a `headroom()` check (by default `CpuHeadroom` below, from /proc/stat) gates each window,
 * and a loop that is busy anyway does not spin: when one spin iteration finds more than
 * `BUSY_FRAMES` frames moved (many connections at once, not a lone ping-pong), spinning stops
 * for `BUSY_BACKOFF_MS` — the loop's own events keep it awake, and the spin's empty iterations
 * would only take CPU from the processes that produce the next frames. Measured with
 * `wrk -c50` through skiff on 2 cores: ~33k requests/s with a plain spin, ~40k with this rule
 * or with spinning off; sockperf ping-pong keeps its gain (about 32 µs against 69 µs).
 */

/** Frames moved in one spin iteration above which the loop counts as busy. */
export const BUSY_FRAMES = 4;
/** How long a busy loop does not spin. */
export const BUSY_BACKOFF_MS = 2;

import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

export class BusyPoller {
  private spinning = false;
  private stopped = false;
  private seen = -1;
  private lastActivityMs = 0;
  private quietUntilMs = -Infinity;
  private readonly windowMs: number;

  /**
   * `activity()` returns a number that changes whenever a frame moves (e.g. frames in + out);
   * the window restarts at each change.
   */
  constructor(
    windowUs: number,
    private readonly activity: () => number,
    private readonly now: () => number = () => performance.now(),
    private readonly headroom: () => boolean = () => true,
  ) {
    this.windowMs = Math.max(0, windowUs) / 1000;
  }

  /** Busy polling in progress (for tests and stats). */
  get active(): boolean {
    return this.spinning;
  }

  /** A frame moved: open the window if it is closed (cheap when already open). */
  kick(): void {
    if (this.spinning || this.stopped || this.windowMs === 0) return;
    const t = this.now();
    if (t < this.quietUntilMs || !this.headroom()) return;
    this.spinning = true;
    this.seen = this.activity();
    this.lastActivityMs = t;
    setImmediate(this.spin);
  }

  /** Stop for good (the stack is closing). */
  stop(): void {
    this.stopped = true;
  }

  private readonly spin = (): void => {
    const n = this.activity();
    const t = this.now();
    if (n !== this.seen) {
      if (n - this.seen > BUSY_FRAMES) {
        // Busy anyway: stop spinning for a while (see the file comment).
        this.quietUntilMs = t + BUSY_BACKOFF_MS;
        this.spinning = false;
        return;
      }
      this.seen = n;
      this.lastActivityMs = t;
    }
    if (!this.stopped && t - this.lastActivityMs < this.windowMs) setImmediate(this.spin);
    else this.spinning = false;
  };
}

/**
 * Whether another core is free for busy polling: every `periodMs` it reads the machine's CPU
 * time (/proc/stat) and this process's (process.cpuUsage), and answers true while the other
 * processes used at most (cores − 1) − `margin` cores over the last period. Off Linux (no
 * /proc/stat) it always answers true.
 */
export class CpuHeadroom {
  private lastAt = -Infinity;
  private lastBusyTicks = -1;
  private lastOwnUs = 0;
  private ok = true;
  private readonly cores = availableParallelism();

  constructor(
    private readonly periodMs = 200,
    private readonly margin = 0.2,
    private readonly now: () => number = () => performance.now(),
  ) {}

  readonly check = (): boolean => {
    const t = this.now();
    if (t - this.lastAt < this.periodMs) return this.ok;
    const busy = machineBusyTicks();
    const own = process.cpuUsage();
    const ownUs = own.user + own.system;
    if (busy >= 0 && this.lastBusyTicks >= 0) {
      const secs = (t - this.lastAt) / 1000;
      // /proc/stat counts USER_HZ ticks: 100 per second on Linux.
      const others = ((busy - this.lastBusyTicks) / 100 - (ownUs - this.lastOwnUs) / 1e6) / secs;
      this.ok = others <= this.cores - 1 - this.margin;
    }
    this.lastAt = t;
    this.lastBusyTicks = busy;
    this.lastOwnUs = ownUs;
    return this.ok;
  };
}

/** Busy CPU ticks of the whole machine (all but idle and iowait), or -1 without /proc/stat. */
function machineBusyTicks(): number {
  let text: string;
  try {
    text = readFileSync("/proc/stat", "latin1");
  } catch {
    return -1;
  }
  const line = text.slice(0, text.indexOf("\n"));
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 5 || f.some((x) => !Number.isFinite(x))) return -1;
  const total = f.reduce((a, b) => a + b, 0);
  return total - f[3] - f[4];
}
