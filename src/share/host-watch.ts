/**
 * The host side of a share's file events: the share's tree watched with inotify(7) through the
 * addon (native/watch.c), each change turned into a `ShareEvent` for the guests' agents
 * (events.ts explains the whole path).
 *
 * Every watched directory is reached the contained way (fs.c's one-component walk from the
 * share's root descriptor; the watch is added on the descriptor's inode through
 * /proc/self/fd/N), so nothing outside the share is ever watched, and a directory moved out of
 * the share stops being watched. The tree of watched directories (watch descriptor → name and
 * parent) gives each event its path from the root; a rename moves a node, so paths follow.
 *
 * inotify(7) facts used: a directory watch reports events on its entries with their name
 * (IN_CREATE, IN_MODIFY, IN_ATTRIB, IN_DELETE, IN_MOVED_FROM/IN_MOVED_TO paired by cookie,
 * IN_ISDIR for directories); IN_IGNORED when the watch is gone (directory removed);
 * IN_Q_OVERFLOW when the kernel's queue overflowed. A directory created on the host may get
 * entries before its watch exists: they are read once the watch is in place and reported as
 * creations. A move out of the share (no IN_MOVED_TO in the same read) is a delete; a move in, a
 * create.
 *
 * Bounded: at most `maxWatches` directories (default 65 536; past it a counted refusal and one
 * RESCAN event), the kernel's own queue (its overflow → RESCAN), one read buffer.
 */

import { readdirSync } from "node:fs";
import { loadAddon, type SkiffAddon } from "../native/addon.js";
import { Counters } from "../common/counters.js";
import { closeQuietly, fsAddon, statFd, S_IFDIR, S_IFMT } from "./host-fs.js";
import { EventKind, entryKey, type ShareEvents } from "./events.js";
import type { Share } from "./registry.js";

/** inotify(7) mask bits. */
/**
 * Directories one share's host watcher watches by default: a developer's home holds tens of
 * thousands (this machine's /root: 18,562). Each watch costs the kernel about 1 KiB while it
 * exists; the kernel's own per-user bound (fs.inotify.max_user_watches) applies on top.
 */
export const DEFAULT_HOST_WATCH_DIRS = 65536;

export const IN = {
  MODIFY: 0x2, ATTRIB: 0x4, MOVED_FROM: 0x40, MOVED_TO: 0x80, CREATE: 0x100, DELETE: 0x200, DELETE_SELF: 0x400,
  MOVE_SELF: 0x800, Q_OVERFLOW: 0x4000, IGNORED: 0x8000, EXCL_UNLINK: 0x4000000, ISDIR: 0x40000000,
} as const;
const WATCH_MASK = IN.MODIFY | IN.ATTRIB | IN.MOVED_FROM | IN.MOVED_TO | IN.CREATE | IN.DELETE | IN.EXCL_UNLINK;
const READ_BUF = 65536;

export interface HostWatchOptions {
  /** Directories watched at most (default DEFAULT_HOST_WATCH_DIRS); the kernel's fs.inotify.max_user_watches also bounds it. */
  maxWatches?: number;
  /** The clock (ms); tests pass their own. */
  now?: () => number;
}

export class HostWatchCounters extends Counters {
  watches = 0;
  /** Directories not watched because of maxWatches or the kernel's limit. */
  refused = 0;
  /** IN_Q_OVERFLOW from the kernel. */
  kernelOverflows = 0;
}

/** A watched directory. */
class DirNode {
  readonly children = new Map<string, DirNode>();
  constructor(
    readonly wd: number,
    public parent: DirNode | undefined,
    public name: Uint8Array,
    /** `dev:ino` (events.ts keys). */
    readonly key: string,
  ) {}
}

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");

/** One inotify record parsed from a read. */
export interface InotifyRecord {
  wd: number;
  mask: number;
  cookie: number;
  name: Uint8Array;
}

/** Parse the records of one read of an inotify descriptor (struct inotify_event, host byte order). */
export function parseInotify(buf: Uint8Array, len: number): InotifyRecord[] {
  const dv = new DataView(buf.buffer, buf.byteOffset, len);
  const out: InotifyRecord[] = [];
  for (let o = 0; o + 16 <= len; ) {
    const nameLen = dv.getUint32(o + 12, true);
    if (o + 16 + nameLen > len) break;
    let end = o + 16;
    while (end < o + 16 + nameLen && buf[end] !== 0) end++;
    out.push({ wd: dv.getInt32(o, true), mask: dv.getUint32(o + 4, true), cookie: dv.getUint32(o + 8, true), name: buf.slice(o + 16, end) });
    o += 16 + nameLen;
  }
  return out;
}

export class HostWatcher {
  readonly counters = new HostWatchCounters();
  private readonly addon: SkiffAddon;
  private readonly ifd: number;
  private readonly nodes = new Map<number, DirNode>();
  private readonly byKey = new Map<string, DirNode>();
  private readonly maxWatches: number;
  private readonly now: () => number;
  private readonly ring = new ArrayBuffer(READ_BUF * 4);
  private readonly lengths = new Uint32Array(4);
  private refusedSinceRescan = false;
  private closed = false;

  constructor(
    private readonly share: Share,
    private readonly events: ShareEvents,
    opts: HostWatchOptions = {},
  ) {
    this.addon = loadAddon("file events of shares");
    this.maxWatches = Math.max(1, opts.maxWatches ?? DEFAULT_HOST_WATCH_DIRS);
    this.now = opts.now ?? (() => performance.now());
    const fd = this.addon.watchInit();
    if (fd < 0) throw new Error(`inotify_init1 failed (errno ${-fd})`);
    this.ifd = fd;
    events.pathOf = (key) => {
      const node = this.byKey.get(key);
      return node === undefined ? undefined : this.pathOf(node);
    };
    const root = fsAddon().fsDup(share.rootFd);
    if (root >= 0) this.addTree(undefined, new Uint8Array(0), root, false);
    this.addon.startRead(fd, this.ring, READ_BUF, this.lengths, (n) => this.onRead(n));
  }

  get watches(): number {
    return this.nodes.size;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.ifd);
    this.nodes.clear();
    this.byKey.clear();
    this.events.pathOf = undefined;
  }

  /** Path from the share's root of `node` (empty for the root). */
  private pathOf(node: DirNode): Uint8Array {
    const parts: Uint8Array[] = [];
    for (let n: DirNode | undefined = node; n?.parent !== undefined; n = n.parent) parts.unshift(n.name);
    return joinPath(parts);
  }

  /** O_PATH descriptor of `node`, walked from the root (or a negative errno). */
  private openNode(node: DirNode): number {
    const names: Uint8Array[] = [];
    for (let n: DirNode | undefined = node; n?.parent !== undefined; n = n.parent) names.unshift(n.name);
    const a = fsAddon();
    let fd = a.fsDup(this.share.rootFd);
    for (const name of names) {
      if (fd < 0) return fd;
      const next = a.fsWalk(fd, name);
      closeQuietly(fd);
      fd = next;
    }
    return fd;
  }

  /**
   * Watch the directory `fd` (taken over: closed here) named `name` in `parent`, and its
   * subdirectories; with `announce`, entries found in it are reported as created (they appeared
   * before the watch could see them).
   */
  private addTree(parent: DirNode | undefined, name: Uint8Array, fd: number, announce: boolean): void {
    const queue: { parent: DirNode | undefined; name: Uint8Array; fd: number }[] = [{ parent, name, fd }];
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      const node = this.watchOne(item.parent, item.name, item.fd);
      if (node === undefined) {
        closeQuietly(item.fd);
        for (const rest of queue) closeQuietly(rest.fd);
        return;
      }
      let entries: { name: Buffer; isDirectory(): boolean }[] = [];
      try {
        entries = readdirSync(`/proc/self/fd/${item.fd}`, { withFileTypes: true, encoding: "buffer" });
      } catch {
        // Gone or unreadable: nothing below it to watch.
      }
      for (const e of entries) {
        const isDir = e.isDirectory();
        if (announce) this.publish(EventKind.Create, isDir, node, e.name);
        if (!isDir) continue;
        const child = fsAddon().fsWalk(item.fd, e.name);
        if (child >= 0) queue.push({ parent: node, name: Uint8Array.from(e.name), fd: child });
      }
      closeQuietly(item.fd);
    }
  }

  private watchOne(parent: DirNode | undefined, name: Uint8Array, fd: number): DirNode | undefined {
    if (this.nodes.size >= this.maxWatches) return this.refuse();
    let st;
    try {
      st = statFd(fd);
    } catch {
      return undefined;
    }
    if ((st.mode & S_IFMT) !== S_IFDIR) return undefined;
    const wd = this.addon.watchAdd(this.ifd, fd, WATCH_MASK);
    if (wd < 0) return this.refuse();
    const existing = this.nodes.get(wd);
    if (existing !== undefined) return existing; // a hard-linked or already watched directory
    const node = new DirNode(wd, parent, Uint8Array.from(name), `${st.dev}:${st.ino}`);
    this.nodes.set(wd, node);
    this.byKey.set(node.key, node);
    parent?.children.set(latin1(name), node);
    this.counters.watches++;
    return node;
  }

  private refuse(): undefined {
    this.counters.refused++;
    if (!this.refusedSinceRescan) {
      this.refusedSinceRescan = true;
      this.events.rescan(this.now());
    }
    return undefined;
  }

  private publish(kind: (typeof EventKind)[keyof typeof EventKind], isDir: boolean, dir: DirNode, name: Uint8Array, to?: { dir: DirNode; name: Uint8Array }): void {
    const now = this.now();
    const key = entryKey(dir.key, name);
    const toKey = to === undefined ? undefined : entryKey(to.dir.key, to.name);
    if (this.events.isEcho(key, now) || (toKey !== undefined && this.events.isEcho(toKey, now))) return;
    const path = joinPath([this.pathOf(dir), name]);
    const toPath = to === undefined ? undefined : joinPath([this.pathOf(to.dir), to.name]);
    this.events.publish({ kind, isDir, path, toPath }, key, now, toKey);
  }

  private onRead(n: number): void {
    if (this.closed || n < 0) return;
    const moves = new Map<number, InotifyRecord & { dir: DirNode }>();
    for (let i = 0; i < n; i++) {
      const buf = new Uint8Array(this.ring, i * READ_BUF, READ_BUF);
      for (const r of parseInotify(buf, this.lengths[i])) this.handle(r, moves);
    }
    // A move whose other half did not come in the same read left the share: a delete.
    for (const m of moves.values()) this.movedOut(m.dir, m.name, (m.mask & IN.ISDIR) !== 0);
  }

  private handle(r: InotifyRecord, moves: Map<number, InotifyRecord & { dir: DirNode }>): void {
    if (r.mask & IN.Q_OVERFLOW) {
      this.counters.kernelOverflows++;
      return this.events.rescan(this.now());
    }
    const dir = this.nodes.get(r.wd);
    if (dir === undefined) return;
    if (r.mask & IN.IGNORED) {
      this.forget(dir);
      if (dir.parent?.children.get(latin1(dir.name)) === dir) dir.parent.children.delete(latin1(dir.name));
      return;
    }
    if (r.name.length === 0) return; // events on the watched directory itself come again from its parent
    const isDir = (r.mask & IN.ISDIR) !== 0;
    if (r.mask & IN.CREATE) {
      this.publish(EventKind.Create, isDir, dir, r.name);
      if (isDir) this.watchNew(dir, r.name, true);
    }
    if (r.mask & IN.MODIFY && !isDir) this.publish(EventKind.Modify, false, dir, r.name);
    if (r.mask & IN.ATTRIB) this.publish(EventKind.Attrib, isDir, dir, r.name);
    if (r.mask & IN.DELETE) this.publish(EventKind.Delete, isDir, dir, r.name);
    if (r.mask & IN.MOVED_FROM) moves.set(r.cookie, { ...r, dir });
    if (r.mask & IN.MOVED_TO) {
      const from = moves.get(r.cookie);
      if (from === undefined) {
        this.publish(EventKind.Create, isDir, dir, r.name);
        if (isDir) this.watchNew(dir, r.name, false);
        return;
      }
      moves.delete(r.cookie);
      this.publish(EventKind.Rename, isDir, from.dir, from.name, { dir, name: r.name });
      const node = from.dir.children.get(latin1(from.name));
      if (node !== undefined) {
        from.dir.children.delete(latin1(from.name));
        node.parent = dir;
        node.name = Uint8Array.from(r.name);
        dir.children.set(latin1(r.name), node);
      }
    }
  }

  private forget(node: DirNode): void {
    this.nodes.delete(node.wd);
    if (this.byKey.get(node.key) === node) this.byKey.delete(node.key);
  }

  private watchNew(dir: DirNode, name: Uint8Array, announce: boolean): void {
    const parentFd = this.openNode(dir);
    if (parentFd < 0) return;
    const fd = fsAddon().fsWalk(parentFd, name);
    closeQuietly(parentFd);
    if (fd >= 0) this.addTree(dir, name, fd, announce);
  }

  /** An entry moved out of the share: a delete, and its watches (if a directory) removed. */
  private movedOut(dir: DirNode, name: Uint8Array, isDir: boolean): void {
    this.publish(EventKind.Delete, isDir, dir, name);
    const node = dir.children.get(latin1(name));
    if (node === undefined) return;
    dir.children.delete(latin1(name));
    const stack = [node];
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      this.addon.watchRemove(this.ifd, n.wd);
      this.forget(n);
      stack.push(...n.children.values());
    }
  }
}

/** Components joined with '/', empty ones skipped. */
export function joinPath(parts: Uint8Array[]): Uint8Array {
  const keep = parts.filter((p) => p.length > 0);
  const out = new Uint8Array(keep.reduce((n, p) => n + p.length, 0) + Math.max(0, keep.length - 1));
  let o = 0;
  keep.forEach((p, i) => {
    if (i > 0) out[o++] = 0x2f;
    out.set(p, o);
    o += p.length;
  });
  return out;
}
