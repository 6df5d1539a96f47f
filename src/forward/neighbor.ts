/**
 * Finding a guest's MAC before skiff opens a flow toward it (RFC 826): a guest that has not
 * sent anything yet is not in the neighbour table, so ask with ARP requests (a few, spaced)
 * and wait for the answer. Concurrent lookups of one address share one round of requests.
 * Nothing polls: the neighbour table calls back when it learns the address, and the retries
 * and the time limit are deadlines on the stack's one timer driver, on its clock.
 */

import type { NetworkStack } from "../stack/stack.js";
import { ownTimers, type TimerOwner, type TimerTarget, type Timers } from "../stack/timers.js";

/** One address being resolved: its next ARP request and its time limit, on the stack's timers. */
class Lookup implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  stopWaiting: () => void = () => {};

  constructor(
    readonly ip: number,
    readonly deadline: number,
    readonly done: (found: boolean) => void,
  ) {}
}

export class NeighborResolver {
  private readonly pending = new Map<number, Promise<boolean>>();
  private readonly timers: Timers<Lookup>;

  constructor(
    private readonly stack: NetworkStack,
    private readonly timeoutMs = 1000,
    private readonly retryMs = 200,
  ) {
    this.timers = ownTimers<Lookup>(stack.timers, (l, now) => this.onTimer(l, now));
  }

  /** True once `ip` is in the neighbour table; false when it never answered. */
  resolve(ip: number): Promise<boolean> {
    if (this.stack.neighbors.lookup(ip) !== undefined) return Promise.resolve(true);
    let p = this.pending.get(ip);
    if (p === undefined) {
      p = new Promise<boolean>((resolve) => {
        const l = new Lookup(ip, this.stack.now() + this.timeoutMs, (found) => {
          this.timers.cancel(l);
          l.stopWaiting();
          this.pending.delete(ip);
          resolve(found);
        });
        l.stopWaiting = this.stack.neighbors.whenLearned(ip, () => l.done(true));
        this.stack.requestArp(ip);
        this.timers.schedule(l, Math.min(l.deadline, this.stack.now() + this.retryMs));
      });
      this.pending.set(ip, p);
    }
    return p;
  }

  private onTimer(l: Lookup, now: number): void {
    if (now >= l.deadline) return l.done(this.stack.neighbors.lookup(l.ip) !== undefined);
    this.stack.requestArp(l.ip);
    this.timers.schedule(l, Math.min(l.deadline, now + this.retryMs));
  }
}
