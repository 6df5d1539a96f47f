/**
 * Ownership the osxfs way (Docker for Mac's file sharing, 2016): the host file's owner never
 * changes — everything the guest creates belongs to the user running skiff, and a chown from
 * the guest is only remembered and reported back.
 *
 * The remembered owner lives in the extended attribute `user.skiff.owner` ("uid:gid" in ASCII)
 * of the host file, so it survives restarts and follows renames and hard links. Where that
 * attribute cannot be written (symlinks, file systems without user xattrs) it goes in a side
 * table keyed by (device, inode), bounded (oldest entries dropped first). A file with nothing
 * remembered reports the attaching user's uid (the 9P `n_uname`; "no uid" counts as root) and
 * the share's default gid. The Linux client attaches once per guest user (its default
 * access=client mode keys fids by fsuid) and checks permissions itself against what getattr
 * reports, so every guest user is the owner of such files — the osxfs rule — while a remembered
 * chown is reported to all of them and checked against the real mode bits.
 * The guest can neither read, list nor set `user.skiff.*` attributes.
 */

import { Errno, check, fsAddon, type Stat } from "./host-fs.js";

export const OWNER_XATTR = new TextEncoder().encode("user.skiff.owner");
/** Attribute names under this prefix are the server's, hidden from the guest. */
export const PRIVATE_XATTR_PREFIX = "user.skiff.";

export interface Owner {
  uid: number;
  gid: number;
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export class OwnerStore {
  private readonly side = new Map<string, Owner>();
  private readonly buf = new Uint8Array(32);

  constructor(private readonly maxSideEntries = 65536) {}

  /** The remembered owner of the inode held by `fd` (stat'ed as `st`), if any. */
  get(fd: number, st: Stat): Owner | undefined {
    const n = fsAddon().fsGetXattr(fd, OWNER_XATTR, this.buf);
    if (n > 0) {
      const m = /^(\d+):(\d+)$/.exec(dec.decode(this.buf.subarray(0, n)));
      if (m !== null) return { uid: Number(m[1]) >>> 0, gid: Number(m[2]) >>> 0 };
    }
    return this.side.get(key(st));
  }

  /** Remember `owner` for the inode held by `fd`; the host owner is untouched. */
  set(fd: number, st: Stat, owner: Owner): void {
    const value = enc.encode(`${owner.uid >>> 0}:${owner.gid >>> 0}`);
    const r = fsAddon().fsSetXattr(fd, OWNER_XATTR, value, 0);
    if (r === 0) return void this.side.delete(key(st));
    if (r !== -Errno.EPERM && r !== -Errno.EOPNOTSUPP && r !== -Errno.ENOTSUP && r !== -Errno.EACCES) check(r);
    const k = key(st);
    this.side.delete(k);
    this.side.set(k, owner);
    if (this.side.size > this.maxSideEntries) this.side.delete(this.side.keys().next().value as string);
  }

  get sideEntries(): number {
    return this.side.size;
  }
}

function key(st: Stat): string {
  return `${st.dev}:${st.ino}`;
}
