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
 */

export class BusyPoller {
  private spinning = false;
  private stopped = false;
  private seen = -1;
  private lastActivityMs = 0;
  private readonly windowMs: number;

  /**
   * `activity()` returns a number that changes whenever a frame moves (e.g. frames in + out);
   * the window restarts at each change.
   */
  constructor(
    windowUs: number,
    private readonly activity: () => number,
    private readonly now: () => number = () => performance.now(),
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
    this.spinning = true;
    this.seen = this.activity();
    this.lastActivityMs = this.now();
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
      this.seen = n;
      this.lastActivityMs = t;
    }
    if (!this.stopped && t - this.lastActivityMs < this.windowMs) setImmediate(this.spin);
    else this.spinning = false;
  };
}
