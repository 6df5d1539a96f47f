/**
 * Finding a guest's MAC before skiff opens a flow toward it: a guest that has not sent anything
 * yet is not in the neighbour table, so ask — ARP requests for an IPv4 address (RFC 826),
 * Neighbor Solicitations to its solicited-node group for an IPv6 one (RFC 4861 §7.2.2) — a few,
 * spaced, and wait for the answer. Concurrent lookups of one address share one round of
 * requests. Nothing polls: the neighbour table calls back when it learns the address, and the
 * retries and the time limit are deadlines on the stack's one timer driver, on its clock.
 */

import type { NetworkStack } from "../stack/stack.js";
import { formatIpv6, type Ipv6Address } from "../stack/config6.js";
import { ownTimers, type TimerOwner, type TimerTarget, type Timers } from "../stack/timers.js";

/** A guest address a forward connects to: IPv4 as a uint32, or IPv6. */
export type GuestAddr = number | Ipv6Address;

/** One address being resolved: its next request and its time limit, on the stack's timers. */
class Lookup implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  timerOwner: TimerOwner | undefined = undefined;
  stopWaiting: () => void = () => {};

  constructor(
    readonly ip: GuestAddr,
    readonly deadline: number,
    readonly done: (found: boolean) => void,
  ) {}
}

export class NeighborResolver {
  /** Lookups in flight, by IPv4 address or IPv6 address text (one per connection attempt, not per packet). */
  private readonly pending = new Map<number | string, Promise<boolean>>();
  private readonly timers: Timers<Lookup>;

  constructor(
    private readonly stack: NetworkStack,
    private readonly timeoutMs = 1000,
    private readonly retryMs = 200,
  ) {
    this.timers = ownTimers<Lookup>(stack.timers, (l, now) => this.onTimer(l, now));
  }

  /** The address is in the neighbour table (IPv4) or cache (IPv6) now. */
  known(ip: GuestAddr): boolean {
    if (typeof ip === "number") return this.stack.neighbors.lookup(ip) !== undefined;
    return this.stack.ipv6?.neighbors.lookup(ip) !== undefined;
  }

  /** True once `ip` is in the neighbour table; false when it never answered (or IPv6 is off). */
  resolve(ip: GuestAddr): Promise<boolean> {
    if (this.known(ip)) return Promise.resolve(true);
    const gw6 = this.stack.ipv6;
    if (typeof ip !== "number" && gw6 === undefined) return Promise.resolve(false);
    const key = typeof ip === "number" ? ip : formatIpv6(ip);
    let p = this.pending.get(key);
    if (p === undefined) {
      p = new Promise<boolean>((resolve) => {
        const l = new Lookup(ip, this.stack.now() + this.timeoutMs, (found) => {
          this.timers.cancel(l);
          l.stopWaiting();
          this.pending.delete(key);
          resolve(found);
        });
        l.stopWaiting = typeof ip === "number" ? this.stack.neighbors.whenLearned(ip, () => l.done(true)) : gw6!.neighbors.whenLearned(ip, () => l.done(true));
        this.ask(ip);
        this.timers.schedule(l, Math.min(l.deadline, this.stack.now() + this.retryMs));
      });
      this.pending.set(key, p);
    }
    return p;
  }

  private ask(ip: GuestAddr): void {
    if (typeof ip === "number") this.stack.requestArp(ip);
    else this.stack.ipv6?.ndp.solicit(ip);
  }

  private onTimer(l: Lookup, now: number): void {
    if (now >= l.deadline) return l.done(this.known(l.ip));
    this.ask(l.ip);
    this.timers.schedule(l, Math.min(l.deadline, now + this.retryMs));
  }
}
