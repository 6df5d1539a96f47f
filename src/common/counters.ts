/**
 * Counters and the stats tree: one base for every component's counters, and the tree that
 * `Network.stats()` and the control API's GET /stats walk (no RFC; skiff's own observability).
 *
 * A component's counters are a class of plain numeric fields extending `Counters`; the hot path
 * increments them directly (`c.rxFrames++`: no lookup, no string). `snapshot()` gives a plain
 * object copy for JSON. Components that refuse input extend `DropCounters`, which adds drops
 * counted by reason (fixed strings, so counting builds no strings).
 *
 * A `StatsTree` names groups (counters, with gauges beside them, nested trees, or a function
 * for lists such as the attachments) as the owner assembles its components; its snapshot walks
 * them in the order they were added.
 */

/** The data fields of counters `C` (its methods left out): what `snapshot()` gives. */
export type CounterValues<C> = { [K in keyof C as C[K] extends (...args: never[]) => unknown ? never : K]: C[K] };

/** Base of every component's counters: plain numeric fields, and a plain copy of them. */
export class Counters {
  /** The fields as a plain object (nested objects, such as drops, copied one level). */
  snapshot(): CounterValues<this> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) out[k] = v !== null && typeof v === "object" ? { ...v } : v;
    return out as CounterValues<this>;
  }
}

/**
 * Counted drops by reason: the shape every component that refuses input shares (the stack,
 * the DHCP server, socket translation).
 */
export class DropCounters<R extends string> extends Counters {
  drops: Partial<Record<R, number>> = {};

  /** Count one drop; returns undefined so `return counters.drop(...)` reads naturally. */
  drop(reason: R): undefined {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    return undefined;
  }

  dropped(reason: R): number {
    return this.drops[reason] ?? 0;
  }
}

/** Gauges reported beside a group's counters (open flows, sizes): read at snapshot time. */
export type Gauges = () => Record<string, unknown>;

type StatsNode = { kind: "counters"; counters: Counters; gauges?: Gauges } | { kind: "tree"; tree: StatsTree } | { kind: "value"; read: () => unknown };

/** Named groups of counters, walked in the order they were added (`snapshot()`). */
export class StatsTree {
  private readonly nodes = new Map<string, StatsNode>();

  /** A tree with this tree's groups and room for more (the parent's later groups show too). */
  extend(): StatsTree {
    const t = new StatsTree();
    t.nodes.set("", { kind: "tree", tree: this });
    return t;
  }

  /** `counters` under `name`, with `gauges` merged in at snapshot time. */
  counters(name: string, counters: Counters, gauges?: Gauges): this {
    return this.set(name, { kind: "counters", counters, gauges });
  }

  /** A subtree under `name`. */
  tree(name: string, tree: StatsTree): this {
    return this.set(name, { kind: "tree", tree });
  }

  /** Whatever `read()` gives (a list of attachments, a status); left out when undefined. */
  value(name: string, read: () => unknown): this {
    return this.set(name, { kind: "value", read });
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.fill(out);
    return out;
  }

  private fill(out: Record<string, unknown>): void {
    for (const [name, n] of this.nodes) {
      if (n.kind === "tree" && name === "") n.tree.fill(out);
      else if (n.kind === "tree") out[name] = n.tree.snapshot();
      else if (n.kind === "counters") out[name] = n.gauges === undefined ? n.counters.snapshot() : { ...n.counters.snapshot(), ...n.gauges() };
      else {
        const v = n.read();
        if (v !== undefined) out[name] = v;
      }
    }
  }

  private set(name: string, node: StatsNode): this {
    if (name === "" || this.nodes.has(name)) throw new Error(`stats: ${name === "" ? "an empty group name" : `a second group named ${JSON.stringify(name)}`}`);
    this.nodes.set(name, node);
    return this;
  }
}
