/**
 * The share registry: name → host directory (and read-only flag), chosen by a 9P attach's
 * `aname`. One registry serves every connection; its owner adds and removes shares at run time.
 * Each share holds an O_PATH descriptor of its root, opened when added: the root is fixed then
 * (a later rename or symlink swap of the host path does not move the share). Removing a share
 * stops new attaches; connections already attached keep their descriptors until they detach.
 */

import { resolve } from "node:path";
import { closeQuietly, fsAddon, statFd, S_IFDIR, S_IFMT, type Stat } from "./host-fs.js";
import { OwnerStore } from "./ownership.js";
import { ShareEvents, type ShareEventOptions } from "./events.js";

export interface ShareSpec {
  name: string;
  /** Host directory. */
  path: string;
  readOnly?: boolean;
}

export class Share {
  /** Descriptors still using the root (attached fids); closed at zero after removal. */
  refs = 1;
  readonly owners = new OwnerStore();
  /** File events: subscribed agents' queues, expected injections, echo marks (events.ts). */
  readonly events: ShareEvents;
  constructor(
    readonly name: string,
    readonly path: string,
    readonly readOnly: boolean,
    readonly rootFd: number,
    readonly rootStat: Stat,
    eventOptions: ShareEventOptions = {},
  ) {
    this.events = new ShareEvents(eventOptions);
  }
}

const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** Parse `NAME=HOSTDIR[:ro]` (the `skiff serve --share` form). */
export function parseShareArg(arg: string): ShareSpec {
  const eq = arg.indexOf("=");
  if (eq <= 0) throw new Error(`share "${arg}": expected NAME=HOSTDIR[:ro]`);
  let path = arg.slice(eq + 1);
  let readOnly = false;
  if (path.endsWith(":ro")) (readOnly = true), (path = path.slice(0, -3));
  else if (path.endsWith(":rw")) path = path.slice(0, -3);
  if (path === "") throw new Error(`share "${arg}": no host directory`);
  return { name: arg.slice(0, eq), path, readOnly };
}

export class ShareRegistry {
  private readonly shares = new Map<string, Share>();
  /** Bounds of each share's file events (events.ts). */
  constructor(private readonly eventOptions: ShareEventOptions = {}) {}

  /** Add a share; throws when the name is taken or invalid, or the path is not a directory. */
  add(spec: ShareSpec): Share {
    if (!NAME_RE.test(spec.name)) throw new Error(`share name "${spec.name}": use 1-64 of A-Z a-z 0-9 . _ -`);
    if (this.shares.has(spec.name)) throw new Error(`share "${spec.name}" already exists`);
    const path = resolve(spec.path);
    const fd = fsAddon().fsOpenRoot(new TextEncoder().encode(path));
    if (fd < 0) throw new Error(`share "${spec.name}": cannot open ${path} as a directory (errno ${-fd})`);
    const st = statFd(fd);
    if ((st.mode & S_IFMT) !== S_IFDIR) throw new Error(`share "${spec.name}": ${path} is not a directory`);
    const share = new Share(spec.name, path, spec.readOnly === true, fd, st, this.eventOptions);
    this.shares.set(spec.name, share);
    return share;
  }

  /** Remove a share by name; false when there is none. */
  remove(name: string): boolean {
    const share = this.shares.get(name);
    if (share === undefined) return false;
    this.shares.delete(name);
    release(share);
    return true;
  }

  /** The share an attach with this aname selects (the only share when aname is empty). */
  lookup(aname: string): Share | undefined {
    if (aname === "" && this.shares.size === 1) return this.shares.values().next().value;
    return this.shares.get(aname);
  }

  list(): ShareSpec[] {
    return [...this.shares.values()].map((s) => ({ name: s.name, path: s.path, readOnly: s.readOnly }));
  }

  /** Remove every share. */
  close(): void {
    for (const name of [...this.shares.keys()]) this.remove(name);
  }
}

/** Take a reference to a share's root for an attach. */
export function retain(share: Share): Share {
  share.refs++;
  return share;
}

/** Drop a reference; the root descriptor is closed with the last one. */
export function release(share: Share): void {
  if (--share.refs === 0) closeQuietly(share.rootFd);
}
