/**
 * Neighbour table (RFC 826 ARP cache, RFC 1122 §2.3.2.1): which guest MAC, on which attached
 * port, owns an IPv4 address of the guest network. Learned from ARP packets and from the
 * source of IPv4 packets that guests send. Bounded: past `max` entries the least recently
 * refreshed entry is evicted (a `Map` keeps insertion order; refreshing re-inserts).
 */

export interface Neighbor<P> {
  mac: number;
  port: P;
}

export class NeighborTable<P> {
  private readonly entries = new Map<number, Neighbor<P>>();
  /** Callbacks waiting for an address to be learned (`whenLearned`). */
  private readonly waiters = new Map<number, Set<() => void>>();
  evictions = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(ip: number): Neighbor<P> | undefined {
    return this.entries.get(ip);
  }

  /** Record that `ip` is at `mac` behind `port`. Cheap when nothing changed. */
  learn(ip: number, mac: number, port: P): void {
    const e = this.entries.get(ip);
    if (e !== undefined) {
      if (e.mac === mac && e.port === port) return;
      this.entries.delete(ip);
    } else if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value as number;
      this.entries.delete(oldest);
      this.evictions++;
    }
    this.entries.set(ip, { mac, port });
    const w = this.waiters.size > 0 ? this.waiters.get(ip) : undefined;
    if (w !== undefined) {
      this.waiters.delete(ip);
      for (const cb of w) cb();
    }
  }

  /**
   * Call `cb` once when `ip` is next learned (new or moved); returns a function that cancels
   * the wait. No polling: the receive path that learns the address calls back.
   */
  whenLearned(ip: number, cb: () => void): () => void {
    let w = this.waiters.get(ip);
    if (w === undefined) {
      w = new Set();
      this.waiters.set(ip, w);
    }
    w.add(cb);
    return () => {
      const ws = this.waiters.get(ip);
      if (ws?.delete(cb) && ws.size === 0) this.waiters.delete(ip);
    };
  }

  /** Forget every entry behind `port` (the port was detached). */
  forgetPort(port: P): void {
    for (const [ip, e] of this.entries) if (e.port === port) this.entries.delete(ip);
  }

  list(): Array<{ ip: number } & Neighbor<P>> {
    return [...this.entries].map(([ip, e]) => ({ ip, ...e }));
  }
}
