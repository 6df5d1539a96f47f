/**
 * The 9P2000.L operations on open files and attributes (diod protocol.md): lopen, lcreate,
 * read, write, readdir, fsync, lock, getlock, xattrwalk, xattrcreate, clunk.
 *
 * Data moves asynchronously: read, write and fsync use Node's fs on the fid's open descriptor
 * (the libuv thread pool), bracketed by OpenFile.begin/end so the descriptor outlives them.
 * Rread and Rreaddir are built in place: the reply buffer is allocated at its largest and the
 * file's bytes are read straight into it. Everything else is synchronous (native/fs.c).
 * Only regular files and directories are opened, so no FIFO or device read can ever wait.
 */

import { fdatasync, fsync as fsFsync, read as fsRead, write as fsWrite } from "node:fs";
import { IOHDRSZ, P9, text, type P9Message } from "./wire.js";
import { Errno, FsError, check, checkName, dotlWrites, fsAddon, hostOpenFlags, qidOf, statFd } from "./host-fs.js";
import { OpenFile, PathNode, type Fid } from "./fids.js";
import { dropSetidForWrite, hostMode, type OpsContext } from "./ops-meta.js";
import { PRIVATE_XATTR_PREFIX } from "./ownership.js";
import { markOwn, markOwnFid, refuseInjector } from "./inject.js";

const num = (v: unknown): number => v as number;
const bytes = (v: unknown): Uint8Array => v as Uint8Array;

/** Largest extended attribute value (Linux XATTR_SIZE_MAX) and name list (XATTR_LIST_MAX). */
const XATTR_MAX = 65536;
/** Rread/Rreaddir header: size[4] type[1] tag[2] count[4]. */
const RDATA_HDR = 11;
/** Tlock/Tgetlock types and Rlock statuses (diod protocol.md). */
const LOCK_UNLCK = 2;
const LOCK_SUCCESS = 0;
const LOCK_BLOCKED = 1;

function iounit(ctx: OpsContext): number {
  return ctx.msize - IOHDRSZ;
}

export function lopen(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  if (f.open !== undefined || f.xattr !== undefined) throw new FsError(Errno.EBADF);
  const flags = num(m.flags);
  if (dotlWrites(flags)) refuseInjector(f);
  if (f.share.readOnly && dotlWrites(flags)) throw new FsError(Errno.EROFS);
  if (dotlWrites(flags)) markOwnFid(f);
  const isDir = (f.qid.type & 0x80) !== 0;
  const fd = check(fsAddon().fsReopen(f.node.fd, isDir ? 0 : hostOpenFlags(flags)));
  if (!isDir && dotlWrites(flags)) {
    try {
      dropSetidForWrite(ctx, fd);
    } catch (e) {
      new OpenFile(fd, false).release();
      throw e;
    }
  }
  f.open = new OpenFile(fd, isDir);
  f.qid = qidOf(statFd(fd));
  return { type: P9.Rlopen, tag: m.tag, qid: f.qid, iounit: iounit(ctx) };
}

/** lcreate: create and open `name` in the directory fid, which then stands for the new file. */
export function lcreate(ctx: OpsContext, m: P9Message): P9Message {
  const d = ctx.fids.get(num(m.fid));
  refuseInjector(d);
  if (d.share.readOnly) throw new FsError(Errno.EROFS);
  if (d.open !== undefined || d.xattr !== undefined) throw new FsError(Errno.EBADF);
  const name = checkName(bytes(m.name));
  markOwn(d.share, d.node.fd, name);
  const a = fsAddon();
  const fd = check(a.fsCreate(d.node.fd, name, hostOpenFlags(num(m.flags)), hostMode(ctx, num(m.mode), false)));
  const node = new PathNode(a.fsDup(fd));
  if (node.fd < 0) {
    new OpenFile(fd, false).release();
    throw new FsError(-node.fd);
  }
  const st = statFd(fd);
  const gid = num(m.gid);
  if (gid !== ctx.opts.defaultGid) d.share.owners.set(fd, st, { uid: d.uid, gid });
  const qid = qidOf(st);
  d.parent?.unref();
  d.moveTo(node, qid, d.node, name); // the directory's node becomes the new file's parent
  d.open = new OpenFile(fd, false);
  return { type: P9.Rlcreate, tag: m.tag, qid, iounit: iounit(ctx) };
}

/** A data reply (Rread/Rreaddir) of up to `count` bytes, its data area to be filled in place. */
function dataReply(type: number, tag: number, count: number): Uint8Array {
  const out = new Uint8Array(RDATA_HDR + count);
  out[4] = type;
  out[5] = tag & 0xff;
  out[6] = tag >>> 8;
  return out;
}

/** Trim a data reply to the `n` bytes filled and write its size and count. */
function finishData(out: Uint8Array, n: number): Uint8Array {
  const dv = new DataView(out.buffer, out.byteOffset);
  dv.setUint32(0, RDATA_HDR + n, true);
  dv.setUint32(7, n, true);
  return out.subarray(0, RDATA_HDR + n);
}

/** A file offset as Node's fs takes it (exact below 2^53, i.e. 8 PiB; beyond that EFBIG). */
function position(offset: bigint): number {
  if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw new FsError(Errno.EFBIG);
  return Number(offset);
}

export function read(ctx: OpsContext, m: P9Message): Uint8Array | Promise<Uint8Array> {
  const f = ctx.fids.get(num(m.fid));
  const count = Math.min(num(m.count), ctx.msize - RDATA_HDR);
  const offset = m.offset as bigint;
  if (f.xattr !== undefined) {
    if (f.xattr.write) throw new FsError(Errno.EBADF);
    const data = f.xattr.data;
    const start = offset > BigInt(data.length) ? data.length : Number(offset);
    const chunk = data.subarray(start, start + count);
    const out = dataReply(P9.Rread, m.tag, chunk.length);
    out.set(chunk, RDATA_HDR);
    return finishData(out, chunk.length);
  }
  const open = f.open;
  if (open === undefined || open.isDir) throw new FsError(open === undefined ? Errno.EBADF : Errno.EISDIR);
  const pos = position(offset);
  const out = dataReply(P9.Rread, m.tag, count);
  const fd = open.begin();
  return new Promise((resolve, reject) => {
    fsRead(fd, out, RDATA_HDR, count, pos, (err, n) => {
      open.end();
      if (err) reject(new FsError(-(err.errno ?? -Errno.EIO)));
      else resolve(finishData(out, n));
    });
  });
}

export function write(ctx: OpsContext, m: P9Message): P9Message | Promise<P9Message> {
  const f = ctx.fids.get(num(m.fid));
  const data = bytes(m.data);
  const offset = m.offset as bigint;
  if (f.xattr !== undefined) {
    const x = f.xattr;
    if (!x.write || offset !== BigInt(x.filled) || x.filled + data.length > x.data.length) throw new FsError(Errno.EINVAL);
    x.data.set(data, x.filled);
    x.filled += data.length;
    return { type: P9.Rwrite, tag: m.tag, count: data.length };
  }
  const open = f.open;
  if (open === undefined || open.isDir) throw new FsError(open === undefined ? Errno.EBADF : Errno.EISDIR);
  const pos = position(offset);
  markOwnFid(f);
  const fd = open.begin();
  return new Promise((resolve, reject) => {
    fsWrite(fd, data, 0, data.length, pos, (err, n) => {
      open.end();
      if (err) reject(new FsError(-(err.errno ?? -Errno.EIO)));
      else resolve({ type: P9.Rwrite, tag: m.tag, count: n });
    });
  });
}

export function readdir(ctx: OpsContext, m: P9Message): Uint8Array {
  const f = ctx.fids.get(num(m.fid));
  if (f.open === undefined || !f.open.isDir) throw new FsError(f.open === undefined ? Errno.EBADF : Errno.ENOTDIR);
  const count = Math.min(num(m.count), ctx.msize - RDATA_HDR);
  const out = dataReply(P9.Rreaddir, m.tag, count);
  const n = check(fsAddon().fsReaddir(f.open.fd, m.offset as bigint, out.subarray(RDATA_HDR)));
  return finishData(out, n);
}

export function fsync(ctx: OpsContext, m: P9Message): Promise<P9Message> | P9Message {
  const f = ctx.fids.get(num(m.fid));
  const open = f.open;
  if (open === undefined) return { type: P9.Rfsync, tag: m.tag };
  const fd = open.begin();
  const call = num(m.datasync) !== 0 ? fdatasync : fsFsync;
  return new Promise((resolve, reject) => {
    call(fd, (err) => {
      open.end();
      if (err) reject(new FsError(-(err.errno ?? -Errno.EIO)));
      else resolve({ type: P9.Rfsync, tag: m.tag });
    });
  });
}

const lockOut = new BigUint64Array(3);

/** lock: POSIX record locks as open-file-description locks, never waiting (BLOCKED → the client retries). */
export function lock(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  if (f.open === undefined) throw new FsError(Errno.EBADF);
  const r = fsAddon().fsLock(f.open.fd, num(m.locktype), m.start as bigint, m.length as bigint, false, lockOut);
  if (r < 0) throw new FsError(-r);
  return { type: P9.Rlock, tag: m.tag, status: r === 1 ? LOCK_BLOCKED : LOCK_SUCCESS };
}

export function getlock(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  if (f.open === undefined) throw new FsError(Errno.EBADF);
  check(fsAddon().fsLock(f.open.fd, num(m.locktype), m.start as bigint, m.length as bigint, true, lockOut));
  const type = Number(lockOut[0]);
  return type === LOCK_UNLCK
    ? { type: P9.Rgetlock, tag: m.tag, locktype: LOCK_UNLCK, start: m.start, length: m.length, proc_id: m.proc_id, client_id: m.client_id }
    : { type: P9.Rgetlock, tag: m.tag, locktype: type, start: lockOut[1], length: lockOut[2], proc_id: 0, client_id: new Uint8Array(0) };
}

/** Only the user namespace is passed through, minus the server's own `user.skiff.*`. */
function guestXattrName(name: Uint8Array): boolean {
  const t = text(name);
  return t.startsWith("user.") && !t.startsWith(PRIVATE_XATTR_PREFIX) && t.length <= 255;
}

/** xattrwalk: newfid holds the value of `name`, or the list of names when `name` is empty. */
export function xattrwalk(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  const newfid = num(m.newfid);
  ctx.fids.checkFree(newfid);
  const name = bytes(m.name);
  const a = fsAddon();
  let data: Uint8Array;
  if (name.length === 0) {
    const size = check(a.fsListXattr(f.node.fd, null));
    const buf = new Uint8Array(Math.min(size, XATTR_MAX));
    const n = size === 0 ? 0 : check(a.fsListXattr(f.node.fd, buf));
    const keep = text(buf.subarray(0, n)).split("\0").filter((x) => x !== "" && guestXattrName(new TextEncoder().encode(x)));
    data = new TextEncoder().encode(keep.map((x) => x + "\0").join(""));
  } else {
    if (!guestXattrName(name)) throw new FsError(Errno.ENODATA);
    const size = check(a.fsGetXattr(f.node.fd, name, null));
    const buf = new Uint8Array(Math.min(size, XATTR_MAX));
    data = buf.subarray(0, size === 0 ? 0 : check(a.fsGetXattr(f.node.fd, name, buf)));
  }
  const state = { write: false, name: Uint8Array.from(name), data, filled: data.length, flags: 0 };
  if (ctx.fids.xattrBytes + data.length > ctx.fids.maxXattrBytes) throw new FsError(Errno.ENOSPC); // before the fid exists
  ctx.fids.setXattr(ctx.fids.add(newfid, f.share, f.node.ref(), f.qid, f.parent?.ref(), f.name, f.uid), state);
  return { type: P9.Rxattrwalk, tag: m.tag, size: BigInt(data.length) };
}

/** xattrcreate: the fid becomes a buffer for the value, set on the file when it is clunked. */
export function xattrcreate(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  refuseInjector(f);
  if (f.share.readOnly) throw new FsError(Errno.EROFS);
  if (f.open !== undefined || f.xattr !== undefined) throw new FsError(Errno.EBADF);
  const name = bytes(m.name);
  if (!guestXattrName(name)) throw new FsError(Errno.EOPNOTSUPP);
  const size = m.attr_size as bigint;
  if (size > BigInt(XATTR_MAX)) throw new FsError(Errno.E2BIG);
  if (ctx.fids.xattrBytes + Number(size) > ctx.fids.maxXattrBytes) throw new FsError(Errno.ENOSPC); // before allocating
  ctx.fids.setXattr(f, { write: true, name: Uint8Array.from(name), data: new Uint8Array(Number(size)), filled: 0, flags: num(m.flags) });
  return { type: P9.Rxattrcreate, tag: m.tag };
}

/** setxattr(2)'s flag: the name must exist. */
const XATTR_REPLACE = 2;

/** clunk(5); an attribute being written is set now (size 0 with XATTR_REPLACE: removed), its error reported. */
export function clunk(ctx: OpsContext, m: P9Message): P9Message {
  const id = num(m.fid);
  const f: Fid = ctx.fids.getAny(id);
  try {
    const x = f.xattr;
    if (x !== undefined && x.write) {
      markOwnFid(f);
      if (x.filled !== x.data.length) throw new FsError(Errno.EINVAL);
      const a = fsAddon();
      // Linux's removexattr(2) arrives as an empty value with XATTR_REPLACE; without that flag an
      // empty value is a value (setxattr(2) with size 0).
      if (x.data.length === 0 && (x.flags & XATTR_REPLACE) !== 0) {
        check(a.fsRemoveXattr(f.node.fd, x.name));
      } else {
        check(a.fsSetXattr(f.node.fd, x.name, x.data, x.flags));
      }
    }
  } finally {
    ctx.fids.remove(id);
  }
  return { type: P9.Rclunk, tag: m.tag };
}
