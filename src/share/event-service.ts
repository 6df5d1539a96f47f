/**
 * The gateway's file-event service: guest agents subscribe to a share's host-side events over
 * TCP (port 5640 of the gateway, next to 9P on 564) and replay them through their 9P mount
 * (events.ts describes the whole path; the agent is native/guest-agent.c).
 *
 * Protocol (skiff's own, little-endian):
 *   agent → server: the share's name (its 9P aname) and "\n", once (at most 128 bytes); then one
 *                   byte per event frame, in order, once it has replayed it: 0 done, else
 *                   failed (the server then stops expecting that injection: inject.ts)
 *   server → agent: frames  len[4] kind[1] isdir[1] pathlen[2] tolen[2] path[pathlen] to[tolen]
 *                   (len counts the bytes after itself). kind: 1 create, 2 modify, 3 attrib,
 *                   4 delete, 5 rename (path → to), 6 rescan ("something changed": the agent
 *                   looks again), 7 ready (the share is being watched: the agent may start),
 *                   8 pin (a guest made this directory: hold it, events.ts), 9 unpin (a
 *                   guest removed it: let it go), 10 pin-walk (a guest is looking this
 *                   directory up: acknowledge, then hold it; inject.ts pinWalked).
 *                   Paths are relative to the share's root, '/'-separated, no leading '/'.
 * An unknown share closes the connection. The host tree is watched while at least one agent is
 * subscribed to the share (one inotify instance per share). Bounded: `maxSubscribers`
 * connections, each with one queue (events.ts: overflow → one rescan frame) and at most one
 * partly written batch of frames.
 */

import { TcpEvent, type TcpFlow, type TcpLayer } from "../stack/tcp.js";

/** What the service uses of a TCP flow (tests pass their own). */
export type EventFlow = Pick<TcpFlow, "accept" | "refuse" | "read" | "write" | "shutdownWrite" | "onEvents">;
import { EventKind, type EventQueue, type ShareEvent } from "./events.js";
import { Counters } from "../common/counters.js";
import { HostWatcher, type HostWatchOptions } from "./host-watch.js";
import type { Share, ShareRegistry } from "./registry.js";

/** The event service's port on the gateway. */
export const P9_EVENTS_PORT = 5640;
/** Frame kind sent once the share is watched. */
export const FRAME_READY = 7;
const HELLO_MAX = 128;

export interface EventServiceOptions extends HostWatchOptions {
  port?: number;
  /** Agent connections at once (default 32). */
  maxSubscribers?: number;
  /** Events sent to one agent and not yet acknowledged, at most (default 8192; past it the oldest are given up). */
  maxUnacked?: number;
}

export class EventServiceCounters extends Counters {
  subscribers = 0;
  refused = 0;
  framesSent = 0;
  /** Events the agent reported it could not replay. */
  failedInjections = 0;
}

/** Encode events as frames. */
export function encodeFrames(events: ShareEvent[]): Uint8Array {
  let n = 0;
  for (const e of events) n += 10 + e.path.length + (e.toPath?.length ?? 0);
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const e of events) {
    const to = e.toPath ?? new Uint8Array(0);
    dv.setUint32(o, 6 + e.path.length + to.length, true);
    out[o + 4] = e.kind;
    out[o + 5] = e.isDir ? 1 : 0;
    dv.setUint16(o + 6, e.path.length, true);
    dv.setUint16(o + 8, to.length, true);
    out.set(e.path, o + 10);
    out.set(to, o + 10 + e.path.length);
    o += 10 + e.path.length + to.length;
  }
  return out;
}

/** Parse frames (the agent's side, for tests): the events and the bytes used. */
export function decodeFrames(buf: Uint8Array): { events: { kind: number; isDir: boolean; path: string; toPath: string }[]; used: number } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const events: { kind: number; isDir: boolean; path: string; toPath: string }[] = [];
  let o = 0;
  while (o + 10 <= buf.length) {
    const len = dv.getUint32(o, true);
    if (o + 4 + len > buf.length) break;
    const pl = dv.getUint16(o + 6, true);
    const tl = dv.getUint16(o + 8, true);
    const dec = (a: number, b: number) => Buffer.from(buf.subarray(a, b)).toString();
    events.push({ kind: buf[o + 4], isDir: buf[o + 5] === 1, path: dec(o + 10, o + 10 + pl), toPath: dec(o + 10 + pl, o + 10 + pl + tl) });
    o += 4 + len;
  }
  return { events, used: o };
}

class Subscriber {
  share: Share | undefined;
  queue: EventQueue | undefined;
  hello: number[] = [];
  out: Uint8Array | undefined;
  /** Events sent and not yet acknowledged, oldest first (bounded: the oldest are given up). */
  sent: ShareEvent[] = [];
  constructor(readonly flow: EventFlow) {}
}

export class EventService {
  readonly counters = new EventServiceCounters();
  readonly port: number;
  private readonly maxSubscribers: number;
  private readonly maxUnacked: number;
  private readonly subs = new Set<Subscriber>();
  private readonly watchers = new Map<Share, { watcher: HostWatcher; refs: number }>();
  private readonly byQueue = new Map<EventQueue, Subscriber>();

  constructor(
    private readonly registry: ShareRegistry,
    private readonly opts: EventServiceOptions = {},
  ) {
    this.port = opts.port ?? P9_EVENTS_PORT;
    this.maxSubscribers = opts.maxSubscribers ?? 32;
    this.maxUnacked = Math.max(1, opts.maxUnacked ?? 8192);
  }

  bindTcp(layer: TcpLayer): void {
    layer.bindLocal(this.port, (flow) => this.serve(flow));
  }

  /** Agents subscribed now. */
  get subscribers(): number {
    return this.byQueue.size;
  }

  /** The host watcher of a share, while agents are subscribed (for counters and tests). */
  watcherOf(share: Share): HostWatcher | undefined {
    return this.watchers.get(share)?.watcher;
  }

  close(): void {
    for (const s of [...this.subs]) this.drop(s, true);
    for (const w of this.watchers.values()) w.watcher.close();
    this.watchers.clear();
  }

  /** A new connection (a held SYN): accepted, or refused past maxSubscribers. */
  serve(flow: EventFlow): void {
    if (this.subs.size >= this.maxSubscribers) {
      this.counters.refused++;
      return flow.refuse();
    }
    const s = new Subscriber(flow);
    this.subs.add(s);
    flow.onEvents = (_f, ev) => {
      if (ev & (TcpEvent.Reset | TcpEvent.Closed)) return this.drop(s, false);
      if (ev & TcpEvent.Readable) this.onReadable(s);
      if (ev & TcpEvent.Writable) this.flush(s);
      if (ev & TcpEvent.PeerFin) this.drop(s, true);
    };
    flow.accept();
  }

  private onReadable(s: Subscriber): void {
    for (let d = s.flow.read(HELLO_MAX); d.length > 0; d = s.flow.read(HELLO_MAX)) {
      if (s.share !== undefined) {
        for (const b of d) this.ack(s, b !== 0);
        continue;
      }
      for (const b of d) {
        if (b !== 0x0a) {
          s.hello.push(b);
          if (s.hello.length > HELLO_MAX) return this.drop(s, true);
          continue;
        }
        return this.subscribe(s, Buffer.from(s.hello).toString());
      }
    }
  }

  /** The agent replayed its oldest unacknowledged event (or failed to). */
  private ack(s: Subscriber, failed: boolean): void {
    const e = s.sent.shift();
    if (e === undefined) return;
    if (!failed) return e.settled?.();
    this.counters.failedInjections++;
    s.share?.events.giveUp(e);
  }

  private subscribe(s: Subscriber, name: string): void {
    const share = this.registry.lookup(name);
    if (share === undefined) return this.drop(s, true);
    s.share = share;
    const events = share.events;
    s.queue = events.subscribe();
    this.byQueue.set(s.queue, s);
    events.onQueued = (q) => {
      const sub = this.byQueue.get(q);
      if (sub !== undefined) this.flush(sub);
    };
    let w = this.watchers.get(share);
    if (w === undefined) {
      try {
        w = { watcher: new HostWatcher(share, events, this.opts), refs: 0 };
      } catch {
        return this.drop(s, true);
      }
      this.watchers.set(share, w);
    }
    w.refs++;
    this.counters.subscribers++;
    s.out = encodeFrames([{ kind: FRAME_READY as typeof EventKind.Rescan, isDir: false, path: new Uint8Array(0) }]);
    this.flush(s);
  }

  private flush(s: Subscriber): void {
    for (;;) {
      if (s.out === undefined || s.out.length === 0) {
        const items = s.queue?.take() ?? [];
        if (items.length === 0) return;
        s.out = encodeFrames(items);
        this.counters.framesSent += items.length;
        s.sent.push(...items);
        while (s.sent.length > this.maxUnacked) s.share?.events.giveUp(s.sent.shift()!);
      }
      const n = s.flow.write(s.out);
      s.out = s.out.subarray(n);
      if (s.out.length > 0) return; // the rest when the flow is writable again
    }
  }

  private drop(s: Subscriber, graceful: boolean): void {
    if (!this.subs.delete(s)) return;
    if (s.queue !== undefined && s.share !== undefined) {
      for (const e of [...s.sent, ...s.queue.take()]) s.share.events.giveUp(e);
      this.byQueue.delete(s.queue);
      s.share.events.unsubscribe(s.queue);
      const w = this.watchers.get(s.share);
      if (w !== undefined && --w.refs === 0) {
        w.watcher.close();
        this.watchers.delete(s.share);
      }
    }
    if (graceful) s.flow.shutdownWrite();
  }
}
