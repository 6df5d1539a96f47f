/**
 * The server's side of event injection (events.ts explains the whole path): how the 9P
 * operations of the injector — the guest agent, attached as `INJECTOR_UID` (the Linux client
 * attaches once per guest uid, so its fids are recognisable) — are answered, and how the
 * server's own operations for guests are marked so their host events are not sent back.
 *
 * The Linux client looks a name up before it creates, removes or renames it, so the injector's
 * lookups must see what the guest should see before the event: an entry with a pending create
 * (or the target of a pending rename) is absent; one with a pending delete, rename, modify or
 * attribute change is present — as a phantom when it is gone from the host (getattr answers a
 * plain file or directory; nothing else works on it). Then the operation itself (mknod/mkdir/
 * symlink, unlinkat, renameat/rename, setattr) is answered with success and changes nothing,
 * when it matches the oldest pending injection at that entry; every other change from the
 * injector is refused with EPERM, so the injector can do nothing on the host — not even what a
 * normal client could.
 */

import { readlinkSync } from "node:fs";
import { Errno, FsError, qidOf, statFd } from "./host-fs.js";
import { EventKind, ROOT_KEY, Role, Seen, entryKey } from "./events.js";
import type { Fid } from "./fids.js";
import type { Share } from "./registry.js";
import { QidType, type Qid } from "./wire.js";

/** The guest uid the agent uses for its operations through the mount. */
export const INJECTOR_UID = 0x7ffffff0;

const now = (): number => performance.now();

export function isInjector(f: Fid): boolean {
  return f.uid === INJECTOR_UID;
}

/** Refuse a change from the injector (its only changes are the no-op injections). */
export function refuseInjector(f: Fid): void {
  if (isInjector(f)) {
    f.share.events.counters.refused++;
    throw new FsError(Errno.EPERM);
  }
}

/** `dev:ino` of the directory held by `fd` (events.ts keys). */
export function dirKeyOf(fd: number): string {
  const st = statFd(fd);
  return `${st.dev}:${st.ino}`;
}

/** The key of `name` in the directory held by `dirFd`. */
export function keyIn(dirFd: number, name: Uint8Array): string {
  return entryKey(dirKeyOf(dirFd), name);
}

/** The entry a fid was reached by, or undefined (the root, or after ".."). */
export function keyOfFid(f: Fid): string | undefined {
  if (f.parent === undefined || f.name === undefined) return undefined;
  f.eventKey ??= keyIn(f.parent.fd, f.name);
  return f.eventKey;
}

/** The server changed `name` in `dirFd` for a guest: host events on it are echoes for a while. */
export function markOwn(share: Share, dirFd: number, name: Uint8Array): void {
  if (share.events.active) share.events.markOwn(keyIn(dirFd, name), now());
}

/** A guest made directory `name` in `dirFd`: the agents pin it before the guest hears back (events.ts). */
export function pinHint(share: Share, dirFd: number, name: Uint8Array): void {
  if (share.events.active) share.events.pin(dirKeyOf(dirFd), name);
}

/** A guest removed directory `name` from `dirFd`: the agents let their pin of it go. */
export function unpinHint(share: Share, dirFd: number, name: Uint8Array): void {
  if (share.events.active) share.events.pin(dirKeyOf(dirFd), name, EventKind.Unpin);
}

/**
 * A guest user (not the injector) walked to a directory, held by `fd`: ask the agents to pin it,
 * and hold the walk's answer until they have acknowledged (at most `pinWaitMs`); undefined when
 * there is nothing to wait for.
 *
 * Why the wait: with cache=none the guest kernel frees a directory's dentry and makes a new inode
 * at its next lookup unless something holds it, and an inotify watch stays on the inode it was
 * added to. A watcher's `inotify_add_watch` is often the first lookup of its directory: if the
 * agent opened the directory only after that lookup ended, it would get a new inode, and the
 * replays would never reach the watch. The agent acknowledges first and then opens; the guest's
 * lookup cannot finish before the answer to this walk arrives, so the agent's lookup of the
 * same name finds the one in progress and waits for it (the dcache allows one lookup of a name
 * at a time), and both end with the same dentry and inode, which the agent then holds.
 */
export function pinWalked(share: Share, fd: number): Promise<void> | undefined {
  const events = share.events;
  if (!events.active) return undefined;
  let done!: () => void;
  const answered = new Promise<void>((resolve) => (done = resolve));
  const timer = setTimeout(() => {
    events.counters.pinWaitTimeouts++;
    done();
  }, events.pinWaitMs);
  const asked = events.pinWalked(
    dirKeyOf(fd),
    () => {
      clearTimeout(timer);
      done();
    },
    () => pathInShare(share, fd),
  );
  if (asked) return answered;
  clearTimeout(timer);
  return undefined;
}

/**
 * The path from the share's root of the directory held by `fd`, from the kernel's name of the
 * descriptor (/proc/self/fd); undefined when it is not below the root (moved out, or deleted).
 */
export function pathInShare(share: Share, fd: number): Uint8Array | undefined {
  let at: string;
  let root: string;
  try {
    at = readlinkSync(`/proc/self/fd/${fd}`, { encoding: "buffer" }).toString("latin1");
    root = readlinkSync(`/proc/self/fd/${share.rootFd}`, { encoding: "buffer" }).toString("latin1");
  } catch {
    return undefined;
  }
  const prefix = root.endsWith("/") ? root : root + "/";
  if (at.endsWith(" (deleted)") || !at.startsWith(prefix) || at.length === prefix.length) return undefined;
  return Uint8Array.from(Buffer.from(at.slice(prefix.length), "latin1"));
}

/** The same for the entry a fid was reached by. */
export function markOwnFid(f: Fid): void {
  if (!f.share.events.active) return;
  const key = keyOfFid(f);
  if (key !== undefined) f.share.events.markOwn(key, now());
}

/**
 * The injector's lookup of one name: `walk` is the host walk (fd or -errno). Returns the fd, a
 * negative errno, or `{ phantom }` for an entry that must look present but is gone.
 */
export function injectorLookup(share: Share, dirFd: number, name: Uint8Array, walk: () => number): number | { phantom: boolean } {
  const s = share.events.seen(keyIn(dirFd, name), now());
  if (s.seen === Seen.Absent) return -Errno.ENOENT;
  const fd = walk();
  if (fd >= 0 || s.seen === Seen.Host) return fd;
  return { phantom: s.isDir };
}

let phantomSerial = 0n;
/** A qid for a phantom (a path no host inode has: the top bit set). */
export function phantomQid(isDir: boolean): Qid {
  phantomSerial = (phantomSerial + 1n) & 0xffffffffn;
  return { type: isDir ? QidType.DIR : QidType.FILE, version: 0, path: (1n << 63n) | phantomSerial };
}

/** Rgetattr fields of a phantom: an empty file or directory, times now. */
export function phantomAttrs(isDir: boolean): { mode: number; size: bigint; nlink: bigint; sec: bigint } {
  return { mode: isDir ? 0o40755 : 0o100644, size: 0n, nlink: isDir ? 2n : 1n, sec: BigInt(Math.floor(Date.now() / 1000)) };
}

function injected(ok: boolean): void {
  if (!ok) throw new FsError(Errno.EPERM);
}

/** The injector's setattr: a pending modify or attribute change of the fid's entry. */
export function injectSetattr(f: Fid): void {
  const key = keyOfFid(f) ?? (f.parent === undefined ? ROOT_KEY : undefined);
  injected(key !== undefined && f.share.events.consume(key, [Role.Modify, Role.Attrib], now()));
}

/** The injector's mkdir/mknod/symlink of `name` in `dir`: a pending create; the qid of what is there. */
export function injectCreate(share: Share, dirFd: number, name: Uint8Array, walk: () => number, release: (fd: number) => void): Qid {
  injected(share.events.consume(keyIn(dirFd, name), [Role.Create], now()));
  const fd = walk();
  if (fd < 0) return phantomQid(false);
  try {
    return qidOf(statFd(fd));
  } finally {
    release(fd);
  }
}

/** The injector's unlinkat: a pending delete. */
export function injectDelete(share: Share, dirFd: number, name: Uint8Array): void {
  injected(share.events.consume(keyIn(dirFd, name), [Role.Delete], now()));
}

/** The injector's rename: a pending rename from one entry to the other. */
export function injectRename(share: Share, fromKey: string, toDirFd: number, toName: Uint8Array): void {
  injected(share.events.consumeRename(fromKey, keyIn(toDirFd, toName), now()));
}
