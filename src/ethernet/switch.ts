/**
 * A learning Ethernet switch (IEEE 802.1D §7.7–7.9 "transparent bridge", reduced to one
 * broadcast domain without VLANs or spanning tree): several guests on one network.
 *
 * - Learning (802.1D §7.8): the source MAC of every accepted frame is recorded against the
 *   port it came in on. Group (multicast/broadcast) source addresses are invalid and dropped.
 * - Forwarding (802.1D §7.7): a frame to a unicast MAC the table knows goes out of that port
 *   only; broadcast, multicast and unknown unicast are flooded to every port except the one it
 *   came from. A frame is never sent back out of its ingress port ("no hair-pinning"): a known
 *   destination behind the ingress port is filtered (counted).
 * - Ageing (802.1D §7.9.2, default 300 s): an entry not refreshed for `agingMs` is stale; it
 *   is ignored (and removed) at lookup and by `expire(now)`. The table is bounded at `maxMacs`
 *   entries: when full, the entry learned first is evicted (O(1), insertion order of a Map).
 * - Static entries (`addPort(link, { staticMacs })`) never age, are never evicted, and cannot
 *   be moved by a frame from another port claiming that source address (counted as spoofed).
 *   The gateway's MAC on the stack's port is one.
 * - Port security (issue 19): at most `maxMacsPerPort` learned MACs behind a port at once (a
 *   frame from a further new MAC is dropped, counted), so a guest sending from ever new MACs
 *   cannot push the other guests out of the table; and an optional `ingressFilter` that every
 *   frame from an untrusted port passes before it is switched (the stack installs one that
 *   refuses spoofed IPv4 and ARP sender addresses: src/stack/switched.ts).
 *
 * Sans-I/O as far as a switch can be: no timers and no clock of its own; time comes from the
 * injected `now()` (milliseconds). Ports are any objects shaped like a FrameChannel
 * (`SwitchLink`; every FrameChannel is one): the switch sets their receiver, forwards borrowed
 * frames with `send` (channels copy what they queue), and forgets a port when it closes.
 * `send` never blocks: a channel whose peer does not read drops beyond its own bound, and
 * those drops are counted on that port (from the channel's `stats.txDrops`), so one stalled
 * guest never holds up the others.
 */

import { isMulticastMac } from "../common/addr.js";
import { getMac } from "../common/bytes.js";
import { Counters, DropCounters } from "../common/counters.js";
import { ETH_HEADER_LEN } from "./ethernet.js";

/** What the switch needs of a port's channel; every `FrameChannel` satisfies it. */
export interface SwitchLink {
  readonly name: string;
  readonly closed: boolean;
  readonly stats: { readonly txDrops: number };
  setReceiver(receiver: (frame: Uint8Array) => void): void;
  send(frame: Uint8Array): boolean;
  once(event: "closed", listener: () => void): unknown;
}

/** Counters of one port (read them; do not write). */
export class SwitchPortCounters extends Counters {
  /** Frames received from the port's link (accepted or not). */
  rxFrames = 0;
  rxBytes = 0;
  /** Frames handed to the port's link. */
  txFrames = 0;
  txBytes = 0;
  /** Frames the link refused or dropped (its queue was full, or it was closed). */
  txDrops = 0;
  /** `send` returned false (the link is above its high-water mark; the frame may be queued). */
  txBackpressure = 0;
}

export class SwitchPort {
  readonly counters = new SwitchPortCounters();
  /** MACs pinned to this port (never aged, never moved). */
  readonly staticMacs: readonly number[];
  /** Dynamic MAC table entries behind this port (bounded by `maxMacsPerPort`). */
  learnedMacs = 0;

  constructor(
    readonly id: number,
    readonly link: SwitchLink,
    staticMacs: readonly number[],
    /** Frames from this port skip the ingress filter (the stack's own port). */
    readonly trusted: boolean,
  ) {
    this.staticMacs = staticMacs;
  }

  get name(): string {
    return this.link.name;
  }
}

export type SwitchDropReason =
  /** Shorter than an Ethernet header. */
  | "malformed"
  /** Source MAC is a group address (802.1D §7.8: not learned, not forwarded). */
  | "group-source"
  /** Source MAC is pinned (static) to another port. */
  | "spoofed-source"
  /** Destination is known to be behind the ingress port (no hair-pinning). */
  | "same-port"
  /** Frame from a port that is no longer attached. */
  | "detached"
  /** A new source MAC on a port that already has `maxMacsPerPort` learned entries. */
  | "port-mac-limit"
  /** Refused by the ingress filter (a guest's spoofed IPv4 or ARP sender address). */
  | "filtered"
  /** Source MAC is behind another attached port and `sourceClaim` refused the move. */
  | "held-source";

export class SwitchCounters extends DropCounters<SwitchDropReason> {
  /** Frames forwarded to exactly one port (known unicast). */
  unicast = 0;
  /** Frames flooded (broadcast, multicast, unknown unicast). */
  flooded = 0;
  /** New table entries. */
  learned = 0;
  /** Entries that moved to another port (a guest reattached). */
  moves = 0;
  /** Entries evicted because the table was full. */
  evictions = 0;
  /** Entries removed because they aged out. */
  expired = 0;
}

/**
 * Decides whether a frame from an untrusted port may reach other untrusted ports (called after
 * the source MAC is learned, at most once per frame); false keeps it from them, counted as
 * "filtered". Trusted ports (the stack's) still get it: they check what they take themselves.
 */
export type IngressFilter = (port: SwitchPort, frame: Uint8Array) => boolean;

export interface SwitchOptions {
  /** Most MAC table entries (static ones included); default 1024. */
  maxMacs?: number;
  /**
   * Most MACs learned behind one port at a time (port security); default 64. A guest sending
   * from ever new MACs cannot push the others' entries out of the table.
   */
  maxMacsPerPort?: number;
  /** Age after which an unrefreshed entry is forgotten, ms; default 300 000 (802.1D). */
  agingMs?: number;
  /** Milliseconds clock; injected so tests control time. Defaults to performance.now(). */
  now?: () => number;
}

export interface AddPortOptions {
  /** MACs that live behind this port for good (e.g. the gateway's on the stack's port). */
  staticMacs?: readonly number[];
  /** Frames from this port are not passed through `ingressFilter` (the stack's own port). */
  trusted?: boolean;
}

interface MacEntry {
  port: SwitchPort;
  seen: number;
  isStatic: boolean;
}

export interface MacTableEntry {
  mac: number;
  port: SwitchPort;
  /** When the entry was last refreshed (ms). */
  seen: number;
  isStatic: boolean;
}

export class EthernetSwitch {
  readonly counters = new SwitchCounters();
  readonly maxMacs: number;
  readonly maxMacsPerPort: number;
  readonly agingMs: number;
  /** Checked for every frame from an untrusted port (see IngressFilter); none: all pass. */
  ingressFilter: IngressFilter | undefined;
  /**
   * Asked before a MAC learned behind another (attached) port moves to an untrusted port: true
   * when the frame proves the sender owns it. None: any frame moves it (802.1D). The stack
   * installs one (attack: a guest sending anything from another guest's MAC took that guest's
   * entry, and with it the frames the gateway sent to that guest).
   */
  sourceClaim: IngressFilter | undefined;
  readonly now: () => number;
  private readonly table = new Map<number, MacEntry>();
  /** Copy-on-write: forwarding iterates a snapshot, so ports may come and go meanwhile. */
  private portList: readonly SwitchPort[] = [];
  private nextPortId = 1;

  constructor(opts: SwitchOptions = {}) {
    this.maxMacs = opts.maxMacs ?? 1024;
    this.maxMacsPerPort = opts.maxMacsPerPort ?? 64;
    this.agingMs = opts.agingMs ?? 300_000;
    this.now = opts.now ?? (() => performance.now());
    if (!(this.maxMacs >= 1)) throw new Error("maxMacs must be at least 1");
    if (!(this.maxMacsPerPort >= 1)) throw new Error("maxMacsPerPort must be at least 1");
  }

  get ports(): readonly SwitchPort[] {
    return this.portList;
  }

  /** Number of MAC table entries (stale ones not yet swept included). */
  get macCount(): number {
    return this.table.size;
  }

  /**
   * Attach a link as a new port: its received frames are switched from now on, and the port
   * is removed when the link closes.
   */
  addPort(link: SwitchLink, opts: AddPortOptions = {}): SwitchPort {
    const port = new SwitchPort(this.nextPortId++, link, [...(opts.staticMacs ?? [])], opts.trusted ?? false);
    this.portList = [...this.portList, port];
    const now = this.now();
    for (const mac of port.staticMacs) {
      const old = this.table.get(mac);
      if (old !== undefined) this.forget(mac, old);
      this.makeRoom();
      this.table.set(mac, { port, seen: now, isStatic: true });
    }
    link.setReceiver((frame) => this.input(port, frame));
    link.once("closed", () => this.removePort(port));
    if (link.closed) this.removePort(port);
    return port;
  }

  /** Detach a port and forget every MAC learned (or pinned) behind it. Idempotent. */
  removePort(port: SwitchPort): void {
    const i = this.portList.indexOf(port);
    if (i < 0) return;
    this.portList = this.portList.filter((p) => p !== port);
    for (const [mac, e] of this.table) if (e.port === port) this.forget(mac, e);
  }

  /** The port behind `mac`, if known and fresh. */
  lookup(mac: number): SwitchPort | undefined {
    return this.fresh(mac, this.now())?.port;
  }

  /** Remove every stale entry; returns how many went. Call now and then (optional). */
  expire(now: number = this.now()): number {
    let n = 0;
    for (const [mac, e] of this.table) {
      if (!e.isStatic && now - e.seen >= this.agingMs) {
        this.forget(mac, e);
        n++;
      }
    }
    this.counters.expired += n;
    return n;
  }

  /** A copy of the MAC table, for the control API and tests. */
  entries(): MacTableEntry[] {
    return [...this.table].map(([mac, e]) => ({ mac, port: e.port, seen: e.seen, isStatic: e.isStatic }));
  }

  /** Switch one frame received on `port` (borrowed for the call). Never throws on any bytes. */
  input(port: SwitchPort, frame: Uint8Array): void {
    const c = this.counters;
    const pc = port.counters;
    pc.rxFrames++;
    pc.rxBytes += frame.length;
    if (!this.portList.includes(port)) return c.drop("detached");
    if (frame.length < ETH_HEADER_LEN) return c.drop("malformed");
    const dst = getMac(frame, 0);
    const src = getMac(frame, 6);
    if (isMulticastMac(src)) return c.drop("group-source");
    const now = this.now();
    const learned = this.learn(src, port, now, frame);
    if (learned !== undefined) return c.drop(learned);
    // The ingress filter guards the other guests; a trusted port (the stack) checks what it
    // takes itself, with reasons, so frames to it are not filtered here.
    const filter = port.trusted ? undefined : this.ingressFilter;
    if (!isMulticastMac(dst)) {
      const e = this.fresh(dst, now);
      if (e !== undefined) {
        if (e.port === port) return c.drop("same-port");
        if (filter !== undefined && !e.port.trusted && !filter(port, frame)) return c.drop("filtered");
        c.unicast++;
        this.transmit(e.port, frame);
        return;
      }
    }
    c.flooded++;
    const ports = this.portList;
    let refused: boolean | undefined;
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i];
      if (p === port) continue;
      if (filter !== undefined && !p.trusted) {
        refused ??= !filter(port, frame);
        if (refused) continue;
      }
      this.transmit(p, frame);
    }
    if (refused) c.drop("filtered");
  }

  /**
   * 802.1D §7.8: record `mac` behind `port`. The drop reason when it may not be: a static entry
   * elsewhere owns it, or the port has its most learned MACs (and this one is new to it).
   */
  private learn(mac: number, port: SwitchPort, now: number, frame: Uint8Array): SwitchDropReason | undefined {
    const t = this.table;
    const e = this.fresh(mac, now);
    if (e !== undefined && e.port === port) {
      if (!e.isStatic) e.seen = now;
      return undefined;
    }
    if (e !== undefined && e.isStatic) return "spoofed-source";
    if (e !== undefined && !port.trusted && this.sourceClaim !== undefined && !this.sourceClaim(port, frame)) return "held-source";
    if (port.learnedMacs >= this.maxMacsPerPort) return "port-mac-limit";
    if (e !== undefined) {
      // The address moved (a guest reattached on another port): re-learn it.
      this.forget(mac, e);
      this.counters.moves++;
    } else {
      this.counters.learned++;
      this.makeRoom();
    }
    t.set(mac, { port, seen: now, isStatic: false });
    port.learnedMacs++;
    return undefined;
  }

  /** Remove a table entry, keeping its port's count of learned MACs. */
  private forget(mac: number, e: MacEntry): void {
    this.table.delete(mac);
    if (!e.isStatic) e.port.learnedMacs--;
  }

  /** Evict the oldest-learned dynamic entry while the table is full. */
  private makeRoom(): void {
    const t = this.table;
    if (t.size < this.maxMacs) return;
    for (const [mac, e] of t) {
      if (e.isStatic) continue;
      this.forget(mac, e);
      this.counters.evictions++;
      if (t.size < this.maxMacs) return;
    }
    // Only static entries left: let the table exceed the bound by the static ones alone.
  }

  /** The entry for `mac` unless it has aged out (802.1D §7.9.2); stale ones are removed. */
  private fresh(mac: number, now: number): MacEntry | undefined {
    const e = this.table.get(mac);
    if (e === undefined) return undefined;
    if (!e.isStatic && now - e.seen >= this.agingMs) {
      this.forget(mac, e);
      this.counters.expired++;
      return undefined;
    }
    return e;
  }

  private transmit(port: SwitchPort, frame: Uint8Array): void {
    const link = port.link;
    const pc = port.counters;
    const before = link.stats.txDrops;
    const ok = link.send(frame);
    const dropped = link.stats.txDrops - before;
    if (dropped > 0) {
      pc.txDrops += dropped;
      return;
    }
    pc.txFrames++;
    pc.txBytes += frame.length;
    if (!ok) pc.txBackpressure++;
  }
}
