/**
 * File events of a share, the sans-I/O part (no clock, no descriptors: time is passed in): what a
 * host change is, the bounded queue of events waiting for a guest's agent, the injections the
 * server expects its agent to perform, and the echo filter for the server's own operations.
 *
 * How events reach guest watchers (inotify(7) semantics; README "how events work"): the host tree
 * is watched with inotify (host-watch.ts); each change becomes a `ShareEvent`, queued for every
 * agent subscribed to the share (event-service.ts) and remembered here as a pending injection.
 * The agent, in the guest, performs the matching operation through the 9P mount as the injector
 * uid (mknod or mkdir for a create, utimensat of mtime for a modify, utimensat of both times for
 * an attribute change, unlink or rmdir for a delete, rename for a rename), so the guest kernel's
 * own VFS emits the inotify event to every watcher of that mount. The server answers such an
 * operation as a no-op success only when it matches the oldest pending injection for that name
 * (inject.ts); anything else from the injector is refused, so the injector can change nothing on
 * the host.
 *
 * Keys: a directory entry is `dev:ino` of its directory plus its name, so a renamed or deeply
 * nested directory needs no path bookkeeping on the server's side.
 *
 * Echo suppression: each operation the server performs for a guest marks its entry for
 * `echoWindowMs`; host events on a marked entry are dropped (the guest's kernel already told its
 * watchers), counted in `suppressed`. Bounds: `maxQueued` events per subscriber (past it the
 * queue is dropped, counted, and one RESCAN event sent instead: "something changed, look
 * again"), `maxPending` expected injections (oldest dropped), `maxEchoEntries` marks (oldest dropped).
 */

import { Counters } from "../common/counters.js";

/**
 * What happened (the five kinds, and "look again" after an overflow), or PIN: a guest just made
 * this directory — the agent holds it at once, so the guest's watchers and later injections meet
 * the same inode (native/guest-agent.c explains why); UNPIN: a guest removed this directory —
 * the agent lets it go (else the removed directory would stay held, on both sides); PIN_WALK: a
 * guest user is looking this directory up right now (its walk's answer waits for the agent's
 * acknowledgement, which the agent sends before it opens the directory, so its lookup joins the
 * guest's lookup still in progress and both get the same inode: inject.ts `pinWalked`).
 */
export const EventKind = { Create: 1, Modify: 2, Attrib: 3, Delete: 4, Rename: 5, Rescan: 6, Pin: 8, Unpin: 9, PinWalk: 10 } as const;
export type EventKindValue = (typeof EventKind)[keyof typeof EventKind];

export interface ShareEvent {
  kind: EventKindValue;
  isDir: boolean;
  /** Path from the share's root of the entry (the old one for a rename); empty for RESCAN. */
  path: Uint8Array;
  /** A rename's new path. */
  toPath?: Uint8Array;
  /** The injections it is expected to cause (given up when the agent reports failure, or the event is dropped). */
  expects?: [string, RoleValue][];
  /** Called once per agent it was queued for, when that agent acknowledges it or it is given up (PIN_WALK). */
  settled?: () => void;
}

/** The key of the share's root itself (a rescan's attribute change). */
export const ROOT_KEY = "root";

/** An entry: its directory's `dev:ino` and its name. */
export function entryKey(dirKey: string, name: Uint8Array): string {
  return `${dirKey}/${Buffer.from(name.buffer, name.byteOffset, name.length).toString("latin1")}`;
}

export interface ShareEventOptions {
  /** Events queued per subscriber before the queue is dropped for one RESCAN (default 4096). */
  maxQueued?: number;
  /** Injections expected at once (default 8192). */
  maxPending?: number;
  /** How long an expected injection is honoured (ms, default 10,000). */
  pendingTtlMs?: number;
  /** How long after a guest's operation host events on its entry are echoes (ms, default 1,000). */
  echoWindowMs?: number;
  /** Entries marked by guest operations at once (default 16384). */
  maxEchoEntries?: number;
  /** How long a guest's walk to a directory waits for the agents to acknowledge its pin request (ms, default 500). */
  pinWaitMs?: number;
}

/** What the injector's lookup of an entry should see: as on the host, there (even if gone), or absent. */
export const Seen = { Host: 0, Present: 1, Absent: 2 } as const;

/** The role of a pending injection at its entry. */
export const Role = { Create: 1, Modify: 2, Attrib: 3, Delete: 4, RenameFrom: 5, RenameTo: 6 } as const;
export type RoleValue = (typeof Role)[keyof typeof Role];

interface Pending {
  role: RoleValue;
  isDir: boolean;
  /** Injections still expected (one per subscribed agent). */
  count: number;
  expires: number;
}

export class ShareEventCounters extends Counters {
  /** Host events turned into guest events. */
  events = 0;
  /** Host events dropped as echoes of the server's own operations. */
  suppressed = 0;
  /** Queues dropped for a RESCAN (a subscriber too slow, or the host watcher's own overflow). */
  overflows = 0;
  /** Injections performed (no-op answers). */
  injected = 0;
  /** Injector operations refused (nothing pending matched). */
  refused = 0;
  /** Expected injections dropped (expired or past maxPending). */
  expired = 0;
  /** Modify/attribute events folded into one still waiting for its injection. */
  coalesced = 0;
  /** Expected injections given up (the agent reported failure, or the event was dropped). */
  abandoned = 0;
  /** Pin requests for directories guest users walked to (PIN_WALK). */
  pinRequests = 0;
  /** Walks answered before every agent acknowledged their pin request (pinWaitMs passed). */
  pinWaitTimeouts = 0;
}

/** One subscriber's bounded queue. */
export class EventQueue {
  readonly items: ShareEvent[] = [];
  overflowed = false;
  constructor(
    private readonly max: number,
    private readonly counters: ShareEventCounters,
  ) {}

  /** Queue `e`; returns the events dropped instead (the queue's, or `e`, when it overflows). */
  push(e: ShareEvent): ShareEvent[] {
    if (this.overflowed && e.kind !== EventKind.Rescan) return [e];
    if (e.kind !== EventKind.Rescan && this.items.length < this.max) {
      this.items.push(e);
      return [];
    }
    const dropped = this.items.splice(0);
    if (e.kind !== EventKind.Rescan) {
      this.counters.overflows++;
      dropped.push(e);
    }
    this.items.push(e.kind === EventKind.Rescan ? e : { kind: EventKind.Rescan, isDir: true, path: new Uint8Array(0) });
    this.overflowed = true;
    return dropped;
  }

  /** Take the queued events (the RESCAN state ends once it has been taken). */
  take(): ShareEvent[] {
    const out = this.items.splice(0);
    this.overflowed = false;
    return out;
  }
}

/** A share's event state: subscribers' queues, expected injections, echo marks. */
export class ShareEvents {
  readonly counters = new ShareEventCounters();
  readonly subscribers = new Set<EventQueue>();
  private readonly pending = new Map<string, Pending[]>();
  private pendingCount = 0;
  private readonly echo = new Map<string, number>();
  private readonly maxQueued: number;
  private readonly maxPending: number;
  private readonly ttl: number;
  readonly echoWindowMs: number;
  private readonly maxEcho: number;
  readonly pinWaitMs: number;
  /** Called when a subscriber has something to send. */
  onQueued: ((q: EventQueue) => void) | undefined;

  constructor(opts: ShareEventOptions = {}) {
    this.maxQueued = Math.max(1, opts.maxQueued ?? 4096);
    this.maxPending = Math.max(1, opts.maxPending ?? 8192);
    this.ttl = opts.pendingTtlMs ?? 10_000;
    this.echoWindowMs = opts.echoWindowMs ?? 1000;
    this.maxEcho = Math.max(1, opts.maxEchoEntries ?? 16384);
    this.pinWaitMs = Math.max(0, opts.pinWaitMs ?? 500);
  }

  get active(): boolean {
    return this.subscribers.size > 0;
  }

  subscribe(): EventQueue {
    const q = new EventQueue(this.maxQueued, this.counters);
    this.subscribers.add(q);
    return q;
  }

  unsubscribe(q: EventQueue): void {
    this.subscribers.delete(q);
    if (this.subscribers.size === 0) {
      this.pending.clear();
      this.pendingCount = 0;
    }
  }

  /** The server performed an operation on `key` for a guest: host events on it are echoes for a while. */
  markOwn(key: string, now: number): void {
    if (!this.active) return;
    this.echo.delete(key);
    this.echo.set(key, now + this.echoWindowMs);
    if (this.echo.size > this.maxEcho) this.echo.delete(this.echo.keys().next().value as string);
  }

  /** Is a host event on `key` an echo of the server's own operation? (counted when it is) */
  isEcho(key: string, now: number): boolean {
    const until = this.echo.get(key);
    if (until === undefined) return false;
    if (until < now) {
      this.echo.delete(key);
      return false;
    }
    this.counters.suppressed++;
    return true;
  }

  /**
   * A host change: queue `event` for every subscriber and expect its injection at the entries
   * (`key`, and `toKey` for a rename). Echoes must have been filtered by the caller.
   */
  publish(event: ShareEvent, key: string, now: number, toKey?: string): void {
    if (!this.active) return;
    this.counters.events++;
    const n = this.subscribers.size;
    const isDir = event.isDir;
    event.expects = [];
    // A create, modify or attribute change not injected yet covers the next one of the same kind
    // (a directory's entries found when its watch is added may also come as events).
    if ((event.kind === EventKind.Create || event.kind === EventKind.Modify || event.kind === EventKind.Attrib) && this.tailRole(key) === event.kind) {
      this.counters.coalesced++;
      return;
    }
    switch (event.kind) {
      case EventKind.Create: this.expect(key, Role.Create, isDir, n, now, event); break;
      case EventKind.Modify: this.expect(key, Role.Modify, isDir, n, now, event); break;
      case EventKind.Attrib: this.expect(key, Role.Attrib, isDir, n, now, event); break;
      case EventKind.Delete: this.expect(key, Role.Delete, isDir, n, now, event); break;
      case EventKind.Rename:
        this.expect(key, Role.RenameFrom, isDir, n, now, event);
        if (toKey !== undefined) this.expect(toKey, Role.RenameTo, isDir, n, now, event);
        break;
    }
    this.broadcast(event);
  }

  /** Path from the share's root of a watched directory, by `dev:ino` (the host watcher provides it). */
  pathOf: ((dirKey: string) => Uint8Array | undefined) | undefined;

  /** A guest made (`pin`) or removed (`unpin`) directory `name` in the directory `dirKey`: tell the agents (before the guest hears back). */
  pin(dirKey: string, name: Uint8Array, kind: typeof EventKind.Pin | typeof EventKind.Unpin = EventKind.Pin): void {
    const dir = this.active ? this.pathOf?.(dirKey) : undefined;
    if (dir === undefined) return;
    const path = new Uint8Array(dir.length + (dir.length > 0 ? 1 : 0) + name.length);
    path.set(dir);
    if (dir.length > 0) path[dir.length] = 0x2f;
    path.set(name, path.length - name.length);
    this.broadcast({ kind, isDir: true, path });
  }

  /**
   * A guest user (not the injector) walked to the directory `dirKey`: ask every agent to pin it
   * (PIN_WALK). `settled` is called once each agent has acknowledged the request or it was given
   * up. False when nothing was asked (no agent, or a directory neither the host watcher nor
   * `fallbackPath` can name).
   */
  pinWalked(dirKey: string, settled: () => void, fallbackPath?: () => Uint8Array | undefined): boolean {
    if (!this.active) return false;
    // A directory the guest made a moment ago may not be in the host watcher's tree yet (its
    // IN_CREATE is still on the way): then the caller's own path of it serves.
    const path = this.pathOf?.(dirKey) ?? (this.pathOf !== undefined ? fallbackPath?.() : undefined);
    if (path === undefined) return false;
    this.counters.pinRequests++;
    let left = this.subscribers.size;
    this.broadcast({ kind: EventKind.PinWalk, isDir: true, path, settled: () => void (--left === 0 && settled()) });
    return true;
  }

  /** Tell every subscriber to look again (the host watcher lost events); the agents touch the share's root. */
  rescan(now: number): void {
    if (!this.active) return;
    const event: ShareEvent = { kind: EventKind.Rescan, isDir: true, path: new Uint8Array(0), expects: [] };
    this.expect(ROOT_KEY, Role.Attrib, true, this.subscribers.size, now, event);
    this.broadcast(event);
  }

  private broadcast(event: ShareEvent): void {
    for (const q of this.subscribers) {
      for (const d of q.push(event)) this.giveUp(d);
      this.onQueued?.(q);
    }
  }

  /** Forget the injections an event was expected to cause (one agent will not perform them). */
  giveUp(event: ShareEvent): void {
    for (const [key, role] of event.expects ?? []) this.abandon(key, role);
    event.settled?.();
  }

  private tailRole(key: string): number | undefined {
    const list = this.pending.get(key);
    return list === undefined ? undefined : list[list.length - 1].role;
  }

  /** An injection will not happen (the agent failed it, or its event was dropped): forget one expectation of it. */
  abandon(key: string, role: RoleValue): void {
    const list = this.pending.get(key);
    const i = list?.findIndex((p) => p.role === role) ?? -1;
    if (list === undefined || i < 0) return;
    this.counters.abandoned++;
    if (--list[i].count > 0) return;
    list.splice(i, 1);
    this.pendingCount--;
    if (list.length === 0) this.pending.delete(key);
  }

  private expect(key: string, role: RoleValue, isDir: boolean, count: number, now: number, event?: ShareEvent): void {
    while (this.pendingCount >= this.maxPending) this.dropOldest();
    let list = this.pending.get(key);
    if (list === undefined) this.pending.set(key, (list = []));
    list.push({ role, isDir, count, expires: now + this.ttl });
    this.pendingCount++;
    event?.expects?.push([key, role]);
  }

  private dropOldest(): void {
    const [k, list] = this.pending.entries().next().value as [string, Pending[]];
    list.shift();
    this.pendingCount--;
    this.counters.expired++;
    if (list.length === 0) this.pending.delete(k);
  }

  /** The oldest live expectation at `key` (expired ones dropped). */
  private head(key: string, now: number): Pending | undefined {
    const list = this.pending.get(key);
    if (list === undefined) return undefined;
    while (list.length > 0 && list[0].expires < now) {
      list.shift();
      this.pendingCount--;
      this.counters.expired++;
    }
    if (list.length === 0) {
      this.pending.delete(key);
      return undefined;
    }
    return list[0];
  }

  /** What the injector's lookup of `key` should see, and whether the entry is a directory. */
  seen(key: string, now: number): { seen: (typeof Seen)[keyof typeof Seen]; isDir: boolean } {
    const h = this.head(key, now);
    if (h === undefined) return { seen: Seen.Host, isDir: false };
    if (h.role === Role.Create || h.role === Role.RenameTo) return { seen: Seen.Absent, isDir: h.isDir };
    return { seen: Seen.Present, isDir: h.isDir };
  }

  /**
   * The injector performs an operation of one of `roles` on `key`: true (and the expectation is
   * used up) when the oldest expectation there is of one of those roles, else false (counted).
   */
  consume(key: string, roles: readonly RoleValue[], now: number): boolean {
    const h = this.head(key, now);
    if (h === undefined || !roles.includes(h.role)) {
      this.counters.refused++;
      return false;
    }
    this.use(key, h);
    this.counters.injected++;
    return true;
  }

  /** A rename: both ends must be expected (RenameFrom at `from`, RenameTo at `to`). */
  consumeRename(from: string, to: string, now: number): boolean {
    const a = this.head(from, now);
    const b = this.head(to, now);
    if (a?.role !== Role.RenameFrom || b?.role !== Role.RenameTo) {
      this.counters.refused++;
      return false;
    }
    this.use(from, a);
    this.use(to, b);
    this.counters.injected++;
    return true;
  }

  private use(key: string, p: Pending): void {
    if (--p.count > 0) return;
    const list = this.pending.get(key)!;
    list.shift();
    this.pendingCount--;
    if (list.length === 0) this.pending.delete(key);
  }

  get pendingSize(): number {
    return this.pendingCount;
  }

  get echoSize(): number {
    return this.echo.size;
  }
}
