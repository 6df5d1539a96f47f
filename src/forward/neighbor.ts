/**
 * Finding a guest's MAC before skiff opens a flow toward it (RFC 826): a guest that has not
 * sent anything yet is not in the neighbour table, so ask with ARP requests (a few, spaced)
 * and wait for the answer. Concurrent lookups of one address share one round of requests.
 */

import type { NetworkStack } from "../stack/stack.js";

export class NeighborResolver {
  private readonly pending = new Map<number, Promise<boolean>>();

  constructor(
    private readonly stack: NetworkStack,
    private readonly timeoutMs = 1000,
    private readonly retryMs = 200,
  ) {}

  /** True once `ip` is in the neighbour table; false when it never answered. */
  resolve(ip: number): Promise<boolean> {
    if (this.stack.neighbors.lookup(ip) !== undefined) return Promise.resolve(true);
    let p = this.pending.get(ip);
    if (p === undefined) {
      p = this.ask(ip).finally(() => this.pending.delete(ip));
      this.pending.set(ip, p);
    }
    return p;
  }

  private async ask(ip: number): Promise<boolean> {
    const t0 = Date.now();
    let lastAsk = -Infinity;
    while (Date.now() - t0 < this.timeoutMs) {
      if (this.stack.neighbors.lookup(ip) !== undefined) return true;
      if (Date.now() - lastAsk >= this.retryMs) {
        lastAsk = Date.now();
        this.stack.requestArp(ip);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.stack.neighbors.lookup(ip) !== undefined;
  }
}
