/**
 * The share's view of the host file system: the addon's containment functions (native/fs.c)
 * with typed results, the errno values the 9P server answers with, the 9P2000.L open-flag
 * translation, and stat → qid.
 *
 * Every handle is a descriptor; names are single components checked here (for a clear EINVAL
 * before any syscall) and again in C (authoritative). Nothing in this file builds a host path.
 */

import { constants } from "node:os";
import { closeSync, constants as fsc } from "node:fs";
import { loadAddon, type FsAddon } from "../native/addon.js";
import { QidType, type Qid } from "./wire.js";

const E = constants.errno;
/** Linux errno values (Rlerror carries Linux numbers; the server only runs on Linux). */
export const Errno = {
  EPERM: E.EPERM, ENOENT: E.ENOENT, EIO: E.EIO, EBADF: E.EBADF, EAGAIN: E.EAGAIN, ENOMEM: E.ENOMEM, EACCES: E.EACCES,
  EEXIST: E.EEXIST, EXDEV: E.EXDEV, ENOTDIR: E.ENOTDIR, EISDIR: E.EISDIR, EINVAL: E.EINVAL, EMFILE: E.EMFILE,
  EFBIG: E.EFBIG, EROFS: E.EROFS, ERANGE: E.ERANGE, ENAMETOOLONG: E.ENAMETOOLONG, ENOSYS: E.ENOSYS,
  ENOTEMPTY: E.ENOTEMPTY, ELOOP: E.ELOOP, ENODATA: E.ENODATA ?? 61, EPROTO: E.EPROTO, EOPNOTSUPP: E.EOPNOTSUPP ?? 95,
  E2BIG: E.E2BIG, ENOTSUP: E.ENOTSUP, ENOSPC: E.ENOSPC,
} as const;

/** An errno as a thrown value inside the server's operations (turned into Rlerror). */
export class FsError extends Error {
  constructor(readonly errno: number) {
    super(`errno ${errno}`);
  }
}

/** `r` when non-negative, else throw FsError(-r): the addon returns -errno. */
export function check(r: number): number {
  if (r < 0) throw new FsError(-r);
  return r;
}

let addon: FsAddon | undefined;
/** The addon's fs functions (loaded once). */
export function fsAddon(): FsAddon {
  addon ??= loadAddon("host-directory sharing (9P)");
  return addon;
}

/**
 * A name the guest may use as one path component: 1..255 bytes, no '/' or NUL, not "." or "..".
 * Throws FsError(EINVAL) (ENAMETOOLONG above 255).
 */
export function checkName(name: Uint8Array): Uint8Array {
  if (name.length > 255) throw new FsError(Errno.ENAMETOOLONG);
  if (name.length === 0 || name.includes(0) || name.includes(0x2f)) throw new FsError(Errno.EINVAL);
  if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) throw new FsError(Errno.EINVAL);
  return name;
}

export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** statx fields in the addon's order. */
export interface Stat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: bigint;
  uid: number;
  gid: number;
  rdev: bigint;
  size: bigint;
  blksize: bigint;
  blocks: bigint;
  atimeSec: bigint;
  atimeNsec: bigint;
  mtimeSec: bigint;
  mtimeNsec: bigint;
  ctimeSec: bigint;
  ctimeNsec: bigint;
  btimeSec: bigint;
  btimeNsec: bigint;
}

const statBuf = new BigUint64Array(18);

/** statx of the inode held by `fd` (throws FsError). */
export function statFd(fd: number): Stat {
  check(fsAddon().fsStat(fd, statBuf));
  const b = statBuf;
  return {
    dev: b[0], ino: b[1], mode: Number(b[2]), nlink: b[3], uid: Number(b[4]), gid: Number(b[5]), rdev: b[6], size: b[7],
    blksize: b[8], blocks: b[9], atimeSec: b[10], atimeNsec: b[11], mtimeSec: b[12], mtimeNsec: b[13],
    ctimeSec: b[14], ctimeNsec: b[15], btimeSec: b[16], btimeNsec: b[17],
  };
}

/**
 * The qid of a file (intro(5)): type from the mode, path = inode number, version from the
 * modification time and size so that a client caching by qid (cache=loose/fscache) sees changes.
 */
export function qidOf(st: Stat): Qid {
  const fmt = st.mode & S_IFMT;
  const type = fmt === S_IFDIR ? QidType.DIR : fmt === S_IFLNK ? QidType.SYMLINK : QidType.FILE;
  const version = Number(BigInt.asUintN(32, st.mtimeSec ^ st.mtimeNsec ^ st.size));
  return { type, version, path: st.ino };
}

/** 9P2000.L open flags (the Linux client sends P9_DOTL_* values, generic Linux numbering). */
const DOTL = {
  WRONLY: 0o1, RDWR: 0o2, CREATE: 0o100, EXCL: 0o200, TRUNC: 0o1000, APPEND: 0o2000, NONBLOCK: 0o4000,
  DSYNC: 0o10000, DIRECTORY: 0o200000, SYNC: 0o4000000,
} as const;

/** Host open(2) flags for a Tlopen/Tlcreate's flags: access mode, TRUNC, APPEND, DSYNC/SYNC. Others are dropped. */
export function hostOpenFlags(dotl: number): number {
  let f = (dotl & 3) === DOTL.RDWR ? fsc.O_RDWR : (dotl & 3) === DOTL.WRONLY ? fsc.O_WRONLY : fsc.O_RDONLY;
  if (dotl & DOTL.TRUNC) f |= fsc.O_TRUNC;
  if (dotl & DOTL.APPEND) f |= fsc.O_APPEND;
  if ((dotl & DOTL.SYNC) === DOTL.SYNC) f |= fsc.O_SYNC;
  else if (dotl & DOTL.DSYNC) f |= fsc.O_DSYNC;
  return f;
}

/** Does a Tlopen with these flags change the file (refused on read-only shares)? */
export function dotlWrites(dotl: number): boolean {
  return (dotl & 3) !== 0 || (dotl & (DOTL.TRUNC | DOTL.CREATE)) !== 0;
}

/** utimensat's "now" and "leave alone" nanosecond values. */
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;

/** Close a descriptor the server owns (errors ignored: nothing useful to do with them). */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // EBADF/EIO on close: the descriptor is gone either way.
  }
}
