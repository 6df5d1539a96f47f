/**
 * Counted drops by reason: the shape every component that refuses input shares (the stack,
 * the DHCP server, socket translation). Reasons are fixed strings, so counting builds no
 * strings; `snapshot()` gives a plain object for the control API and tests.
 */
export class DropCounters<R extends string> {
  drops: Partial<Record<R, number>> = {};

  /** Count one drop; returns undefined so `return counters.drop(...)` reads naturally. */
  drop(reason: R): undefined {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    return undefined;
  }

  dropped(reason: R): number {
    return this.drops[reason] ?? 0;
  }

  snapshot(): Record<string, unknown> {
    return { ...this, drops: { ...this.drops } } as unknown as Record<string, unknown>;
  }
}
