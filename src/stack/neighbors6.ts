/**
 * IPv6 neighbour cache of the gateway (RFC 4861 §5.1 "Neighbor Cache", reduced to what a
 * gateway serving guests needs): which guest MAC, behind which attached port, owns an IPv6
 * address. Learned from Neighbor Solicitations and Advertisements and from the source of every
 * IPv6 packet a guest sends (after source validation: link-local or inside the guest prefix).
 *
 * Keyed by a 32-bit hash of the address (no string building per packet); an entry keeps its
 * address and a lookup compares it, so a hash collision is a miss (and the newer address
 * replaces the older), never a wrong answer. Bounded: past `max` entries the least recently
 * refreshed goes (a `Map` keeps insertion order; a changed entry is re-inserted).
 */

import { hashIpv6, ipv6Equal, type Ipv6Addr } from "../ipv6/addr.js";

export interface Neighbor6<P> {
  addr: Ipv6Addr;
  mac: number;
  port: P;
}

export class NeighborCache6<P> {
  private readonly entries = new Map<number, Neighbor6<P>>();
  /** Callbacks waiting for an address to be learned (`whenLearned`), by address hash. */
  private readonly waiters = new Map<number, Set<{ addr: Ipv6Addr; cb: () => void }>>();
  evictions = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(addr: Ipv6Addr): Neighbor6<P> | undefined {
    const e = this.entries.get(hashIpv6(addr));
    return e !== undefined && ipv6Equal(e.addr, addr) ? e : undefined;
  }

  /** Record that `addr` is at `mac` behind `port`. Cheap when nothing changed. */
  learn(addr: Ipv6Addr, mac: number, port: P): void {
    const k = hashIpv6(addr);
    const e = this.entries.get(k);
    if (e !== undefined) {
      if (e.mac === mac && e.port === port && ipv6Equal(e.addr, addr)) return;
      this.entries.delete(k);
    } else if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
      this.evictions++;
    }
    this.entries.set(k, { addr, mac, port });
    const w = this.waiters.size > 0 ? this.waiters.get(k) : undefined;
    if (w !== undefined) {
      for (const x of [...w]) {
        if (!ipv6Equal(x.addr, addr)) continue;
        w.delete(x);
        x.cb();
      }
      if (w.size === 0) this.waiters.delete(k);
    }
  }

  /**
   * Call `cb` once when `addr` is next learned (new or moved); returns a function that cancels
   * the wait. No polling: the receive path that learns the address calls back.
   */
  whenLearned(addr: Ipv6Addr, cb: () => void): () => void {
    const k = hashIpv6(addr);
    let w = this.waiters.get(k);
    if (w === undefined) {
      w = new Set();
      this.waiters.set(k, w);
    }
    const x = { addr, cb };
    w.add(x);
    return () => {
      const ws = this.waiters.get(k);
      if (ws?.delete(x) && ws.size === 0) this.waiters.delete(k);
    };
  }

  /** Forget every entry behind `port` (the port was detached). */
  forgetPort(port: P): void {
    for (const [k, e] of this.entries) if (e.port === port) this.entries.delete(k);
  }

  list(): Neighbor6<P>[] {
    return [...this.entries.values()];
  }
}
