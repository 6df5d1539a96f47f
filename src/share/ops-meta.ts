/**
 * The 9P2000.L metadata operations (diod protocol.md): attach, walk, getattr, setattr, statfs,
 * readlink, mkdir, symlink, mknod, link, rename, renameat, unlinkat, remove.
 *
 * Each takes the session's context and a parsed T-message and returns the R-message, or throws
 * FsError (→ Rlerror). All are synchronous: one or a few metadata syscalls on descriptors the
 * fid table holds (native/fs.c explains why that is safe and short); only a guest user's walk to
 * a directory of a share with file events may answer later, once the agents have taken the
 * directory (inject.ts pinWalked). Names are checked as single
 * components; every change on a read-only share answers EROFS. Ownership follows ownership.ts:
 * the host owner never changes.
 */

import { NONUNAME, P9, QidType, text, type P9Message, type Qid } from "./wire.js";
import {
  Errno, FsError, S_IFDIR, S_IFMT, S_IFREG, UTIME_NOW, UTIME_OMIT, check, checkName, fsAddon, qidOf, statFd, type Stat,
} from "./host-fs.js";
import { PathNode, type Fid, type FidTable } from "./fids.js";
import type { Share, ShareRegistry } from "./registry.js";
import { S_IFBLK, S_IFCHR, makedev, rememberMode, rememberedMode, reportedMode } from "./remembered-mode.js";
import {
  injectCreate, injectDelete, keyIn, injectRename, injectSetattr, injectorLookup, isInjector, keyOfFid, markOwn, markOwnFid, phantomAttrs, phantomQid, pinHint, pinWalked, unpinHint,
  refuseInjector,
} from "./inject.js";

export interface OpsOptions {
  /** gid reported for files with no remembered owner. */
  defaultGid: number;
  /** Keep set-user-ID/set-group-ID bits the guest asks for on host files (off: they are dropped). */
  keepSetid: boolean;
}

export interface OpsContext {
  readonly fids: FidTable;
  readonly registry: ShareRegistry;
  readonly opts: OpsOptions;
  /** Negotiated message size. */
  msize: number;
}

/** Rgetattr "valid" bits: the basic fields (mode … blocks) and btime. */
const GETATTR_BASIC = 0x7ffn;
const GETATTR_BTIME = 0x800n;
/** Tsetattr "valid" bits (diod protocol.md). */
const SET = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 0x10, MTIME: 0x20, ATIME_SET: 0x80, MTIME_SET: 0x100 } as const;
const AT_REMOVEDIR = 0x200;

const num = (v: unknown): number => v as number;
const bytes = (v: unknown): Uint8Array => v as Uint8Array;

function writable(share: Share): void {
  if (share.readOnly) throw new FsError(Errno.EROFS);
}

/** Mode bits applied on the host: permissions and sticky, set-id bits only when allowed. */
export function hostMode(ctx: OpsContext, mode: number, isDir: boolean): number {
  return mode & (ctx.opts.keepSetid || isDir ? 0o7777 : 0o1777);
}

/**
 * A 64-bit wire value as an exact JS number, else FsError(`errno`). The addon converts doubles to
 * off_t/time_t, where a value out of range is undefined behaviour in C; and times are signed on
 * the wire (attack/bug: a pre-1970 time, tv_sec -86400 sent as a u64, reached utimensat as
 * about 1.8e19 and was stored as the file system's most negative time).
 */
function exactNumber(v: bigint, errno: number): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new FsError(errno);
  return Number(v);
}

/**
 * Before a guest writes or truncates a regular file: drop its set-user-ID bit, and its
 * set-group-ID bit when group-executable, as the kernel does for a writer without CAP_FSETID
 * (unless keepSetid). Attack: skiff running as root keeps them on write, so a guest (whose
 * users all see themselves as owners of such files) could put its code into a set-user-ID
 * root program that lies in the shared directory.
 */
export function dropSetidForWrite(ctx: OpsContext, fd: number): void {
  if (ctx.opts.keepSetid) return;
  const mode = statFd(fd).mode;
  if ((mode & S_IFMT) !== S_IFREG) return;
  const kept = rememberedMode(fd);
  if (kept !== undefined && kept.setid !== 0) rememberMode(fd, { ...kept, setid: 0 });
  const clear = (mode & 0o4000) | ((mode & 0o2010) === 0o2010 ? 0o2000 : 0);
  if (clear === 0) return;
  // EPERM: not the owner, so not root either, and the kernel drops the bits on write itself.
  const r = fsAddon().fsChmod(fd, mode & 0o7777 & ~clear);
  if (r < 0 && r !== -Errno.EPERM) throw new FsError(-r);
}

export function attach(ctx: OpsContext, m: P9Message): P9Message {
  const share = ctx.registry.lookup(text(m.aname));
  if (share === undefined) throw new FsError(Errno.ENOENT);
  ctx.fids.checkFree(num(m.fid));
  const fd = check(fsAddon().fsDup(share.rootFd));
  const qid = qidOf(statFd(fd));
  const uid = num(m.n_uname) === NONUNAME ? 0 : num(m.n_uname);
  ctx.fids.add(num(m.fid), share, new PathNode(fd), qid, undefined, undefined, uid);
  return { type: P9.Rattach, tag: m.tag, qid };
}

/**
 * walk(5): from `fid` through each name; newfid is made only when every name was walked. A
 * failure at the first name is an Rlerror; later, the qids walked so far. ".." never leaves the
 * share (fsParent climbs to check); the server never follows a symlink (the walk opens the link
 * itself, and walking through it fails with ENOTDIR). A guest user's walk that ends at a directory
 * asks the event agents to pin it first (inject.ts pinWalked).
 */
export function walk(ctx: OpsContext, m: P9Message): P9Message | Promise<P9Message> {
  const from = ctx.fids.getAny(num(m.fid));
  const newfid = num(m.newfid);
  if (newfid !== num(m.fid)) ctx.fids.checkFree(newfid);
  if (from.open !== undefined || from.xattr !== undefined) throw new FsError(Errno.EBADF);
  const names = m.wnames as Uint8Array[];
  if (from.phantom !== undefined && names.length > 0) throw new FsError(Errno.ENOENT);
  const a = fsAddon();
  const injector = isInjector(from);
  let phantom = from.phantom;
  let node = from.node.ref();
  let parent = from.parent?.ref();
  let name = from.name;
  let qid = from.qid;
  const qids: Qid[] = [];
  try {
    for (const w of names) {
      const dotdot = w.length === 2 && w[0] === 0x2e && w[1] === 0x2e;
      let fd: number;
      if (dotdot) fd = a.fsParent(node.fd, from.share.rootFd);
      else if (!injector) fd = a.fsWalk(node.fd, checkName(w));
      else {
        // The injector sees the entry as the guest should before the event (inject.ts).
        const dirFd = node.fd;
        const r = injectorLookup(from.share, dirFd, checkName(w), () => a.fsWalk(dirFd, w));
        if (typeof r === "number") fd = r;
        else if (qids.length !== names.length - 1) fd = -Errno.ENOENT;
        else ((phantom = r.phantom), (fd = a.fsDup(dirFd)));
      }
      if (fd < 0) {
        if (qids.length === 0) throw new FsError(-fd);
        break;
      }
      const next = new PathNode(fd);
      qid = phantom !== undefined && !dotdot ? phantomQid(phantom) : qidOf(statFd(fd));
      parent?.unref();
      if (dotdot) {
        parent = undefined;
        name = undefined;
        node.unref();
      } else {
        parent = node;
        name = w;
      }
      node = next;
      qids.push(qid);
    }
  } catch (e) {
    node.unref();
    parent?.unref();
    throw e;
  }
  if (qids.length < names.length) {
    node.unref();
    parent?.unref();
    return { type: P9.Rwalk, tag: m.tag, wqids: qids };
  }
  if (newfid === num(m.fid)) {
    from.node.unref();
    from.parent?.unref();
    from.moveTo(node, qid, parent, name);
    from.phantom = phantom;
  } else {
    ctx.fids.add(newfid, from.share, node, qid, parent, name, from.uid).phantom = phantom;
  }
  const reply: P9Message = { type: P9.Rwalk, tag: m.tag, wqids: qids };
  const pinned = !injector && name !== undefined && qids.length > 0 && (qid.type & QidType.DIR) !== 0 ? pinWalked(from.share, node.fd) : undefined;
  return pinned === undefined ? reply : pinned.then(() => reply);
}

export function getattr(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.getAny(num(m.fid));
  if (f.phantom !== undefined) {
    const p = phantomAttrs(f.phantom);
    return {
      type: P9.Rgetattr, tag: m.tag, valid: GETATTR_BASIC, qid: f.qid, mode: p.mode, uid: 0, gid: ctx.opts.defaultGid, nlink: p.nlink, rdev: 0n,
      size: p.size, blksize: 4096n, blocks: 0n, atime_sec: p.sec, atime_nsec: 0n, mtime_sec: p.sec, mtime_nsec: 0n, ctime_sec: p.sec, ctime_nsec: 0n,
      btime_sec: 0n, btime_nsec: 0n, gen: 0n, data_version: 0n,
    };
  }
  const st = statFd(f.node.fd);
  f.qid = qidOf(st);
  const remembered = f.share.owners.get(f.node.fd, st);
  const owner = remembered ?? { uid: isInjector(f) ? 0 : f.uid, gid: ctx.opts.defaultGid };
  const reported = reportedMode(st, (st.mode & S_IFMT) === S_IFREG ? rememberedMode(f.node.fd) : undefined);
  // The injector's lookups make the inodes of the directories the agent pins, which every guest
  // user then shares (the guest kernel checks permissions against them until someone's stat
  // refreshes them): so that every user is treated as the owner there too (the osxfs rule), they
  // show the owner's permission bits for group and others.
  const mode = isInjector(f) && remembered === undefined ? reported.mode | ((reported.mode & 0o700) >> 3) | ((reported.mode & 0o700) >> 6) : reported.mode;
  return {
    type: P9.Rgetattr, tag: m.tag, valid: GETATTR_BASIC | (st.btimeSec !== 0n ? GETATTR_BTIME : 0n), qid: f.qid,
    mode, uid: owner.uid, gid: owner.gid, nlink: st.nlink, rdev: reported.rdev, size: st.size, blksize: st.blksize,
    blocks: st.blocks, atime_sec: st.atimeSec, atime_nsec: st.atimeNsec, mtime_sec: st.mtimeSec, mtime_nsec: st.mtimeNsec,
    ctime_sec: st.ctimeSec, ctime_nsec: st.ctimeNsec, btime_sec: st.btimeSec, btime_nsec: st.btimeNsec, gen: 0n, data_version: 0n,
  };
}

export function setattr(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.getAny(num(m.fid));
  if (isInjector(f)) {
    injectSetattr(f);
    return { type: P9.Rsetattr, tag: m.tag };
  }
  writable(f.share);
  markOwnFid(f);
  const valid = num(m.valid);
  const a = fsAddon();
  const fd = f.node.fd;
  let st: Stat | undefined;
  if (valid & SET.MODE) {
    st = statFd(fd);
    const mode = num(m.mode);
    check(a.fsChmod(fd, hostMode(ctx, mode, (st.mode & S_IFMT) === S_IFDIR)));
    // set-id bits the host file did not get are remembered (remembered-mode.ts)
    if (!ctx.opts.keepSetid && (st.mode & S_IFMT) === S_IFREG) {
      const r = rememberedMode(fd);
      if ((mode & 0o6000) !== 0 || (r !== undefined && r.setid !== 0)) rememberMode(fd, { type: r?.type ?? 0, rdev: r?.rdev ?? 0n, setid: mode & 0o6000 });
    }
  }
  if (valid & (SET.UID | SET.GID)) {
    st = statFd(fd);
    const cur = f.share.owners.get(fd, st) ?? { uid: f.uid, gid: ctx.opts.defaultGid };
    f.share.owners.set(fd, st, { uid: valid & SET.UID ? num(m.uid) : cur.uid, gid: valid & SET.GID ? num(m.gid) : cur.gid });
  }
  if (valid & SET.SIZE) {
    const size = exactNumber(m.size as bigint, Errno.EFBIG);
    dropSetidForWrite(ctx, fd);
    check(a.fsTruncate(fd, size));
  }
  if (valid & (SET.ATIME | SET.MTIME)) {
    const time = (bit: number, setBit: number, sec: unknown, nsec: unknown): [number, number] =>
      !(valid & bit) ? [0, UTIME_OMIT] : valid & setBit ? [exactNumber(BigInt.asIntN(64, sec as bigint), Errno.EINVAL), Number(nsec as bigint) % 1e9] : [0, UTIME_NOW];
    const [as, ans] = time(SET.ATIME, SET.ATIME_SET, m.atime_sec, m.atime_nsec);
    const [ms, mns] = time(SET.MTIME, SET.MTIME_SET, m.mtime_sec, m.mtime_nsec);
    check(a.fsUtimens(fd, as, ans, ms, mns));
  }
  return { type: P9.Rsetattr, tag: m.tag };
}

const statfsBuf = new BigUint64Array(9);
export function statfs(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  check(fsAddon().fsStatfs(f.node.fd, statfsBuf));
  const b = statfsBuf;
  return {
    type: P9.Rstatfs, tag: m.tag, fstype: Number(b[0] & 0xffffffffn), bsize: Number(b[1]), blocks: b[2], bfree: b[3], bavail: b[4],
    files: b[5], ffree: b[6], fsid: b[7], namelen: Number(b[8]),
  };
}

const linkBuf = new Uint8Array(4096);
export function readlink(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.get(num(m.fid));
  const n = check(fsAddon().fsReadlink(f.node.fd, linkBuf));
  return { type: P9.Rreadlink, tag: m.tag, target: linkBuf.slice(0, n) };
}

/** The directory fid a create-type message names (it must be a directory on a writable share). */
function dirFid(ctx: OpsContext, id: number): Fid {
  const d = ctx.fids.get(id);
  writable(d.share);
  if (d.open !== undefined || d.xattr !== undefined) throw new FsError(Errno.EBADF);
  return d;
}

/** After creating `name` in `dir`: its qid, and remember a gid differing from the default. */
function created(ctx: OpsContext, dir: Fid, name: Uint8Array, gid: number): Qid {
  const fd = check(fsAddon().fsWalk(dir.node.fd, name));
  try {
    const st = statFd(fd);
    if (gid !== ctx.opts.defaultGid && (st.mode & S_IFMT) !== 0o120000) dir.share.owners.set(fd, st, { uid: dir.uid, gid });
    return qidOf(st);
  } finally {
    new PathNode(fd).unref();
  }
}

/** The injector's create of `name` in `dfid`: a pending create answered with what is there (inject.ts). */
function injectedCreate(ctx: OpsContext, dfid: number, name: Uint8Array): Qid {
  const d = ctx.fids.get(dfid);
  return injectCreate(d.share, d.node.fd, checkName(name), () => fsAddon().fsWalk(d.node.fd, name), (fd) => new PathNode(fd).unref());
}

/** The injector's request, or undefined for anyone else's. */
function injectorDir(ctx: OpsContext, id: number): Fid | undefined {
  const d = ctx.fids.get(id);
  return isInjector(d) ? d : undefined;
}

export function mkdir(ctx: OpsContext, m: P9Message): P9Message {
  if (injectorDir(ctx, num(m.dfid))) return { type: P9.Rmkdir, tag: m.tag, qid: injectedCreate(ctx, num(m.dfid), bytes(m.name)) };
  const d = dirFid(ctx, num(m.dfid));
  const name = checkName(bytes(m.name));
  markOwn(d.share, d.node.fd, name);
  check(fsAddon().fsMkdir(d.node.fd, name, hostMode(ctx, num(m.mode), true)));
  pinHint(d.share, d.node.fd, name);
  return { type: P9.Rmkdir, tag: m.tag, qid: created(ctx, d, name, num(m.gid)) };
}

export function symlink(ctx: OpsContext, m: P9Message): P9Message {
  if (injectorDir(ctx, num(m.fid))) return { type: P9.Rsymlink, tag: m.tag, qid: injectedCreate(ctx, num(m.fid), bytes(m.name)) };
  const d = dirFid(ctx, num(m.fid));
  const name = checkName(bytes(m.name));
  markOwn(d.share, d.node.fd, name);
  check(fsAddon().fsSymlink(bytes(m.symtgt), d.node.fd, name));
  return { type: P9.Rsymlink, tag: m.tag, qid: created(ctx, d, name, num(m.gid)) };
}

export function mknod(ctx: OpsContext, m: P9Message): P9Message {
  if (injectorDir(ctx, num(m.dfid))) return { type: P9.Rmknod, tag: m.tag, qid: injectedCreate(ctx, num(m.dfid), bytes(m.name)) };
  const d = dirFid(ctx, num(m.dfid));
  const name = checkName(bytes(m.name));
  markOwn(d.share, d.node.fd, name);
  const mode = num(m.mode);
  const perm = hostMode(ctx, mode, false);
  const type = mode & S_IFMT;
  const device = type === S_IFCHR || type === S_IFBLK;
  // A device node is a plain empty host file with the device remembered (remembered-mode.ts).
  check(fsAddon().fsMknod(d.node.fd, name, device ? S_IFREG | perm : (type || S_IFREG) | perm, 0));
  if (device) rememberDevice(d, name, { type, setid: 0, rdev: makedev(num(m.major), num(m.minor)) });
  return { type: P9.Rmknod, tag: m.tag, qid: created(ctx, d, name, num(m.gid)) };
}

/** Remember what the new host file `name` in `dir` stands for; where that cannot be kept, undo the create: EPERM. */
function rememberDevice(dir: Fid, name: Uint8Array, r: { type: number; setid: number; rdev: bigint }): void {
  const a = fsAddon();
  const fd = check(a.fsWalk(dir.node.fd, name));
  let kept = false;
  try {
    kept = rememberMode(fd, r);
  } finally {
    new PathNode(fd).unref();
    if (!kept) a.fsUnlink(dir.node.fd, name, 0);
  }
  if (!kept) throw new FsError(Errno.EPERM);
}

export function link(ctx: OpsContext, m: P9Message): P9Message {
  const d = dirFid(ctx, num(m.dfid));
  refuseInjector(d);
  const f = ctx.fids.get(num(m.fid));
  if (f.share !== d.share) throw new FsError(Errno.EXDEV);
  markOwn(d.share, d.node.fd, checkName(bytes(m.name)));
  check(fsAddon().fsLink(f.node.fd, d.node.fd, checkName(bytes(m.name))));
  return { type: P9.Rlink, tag: m.tag };
}

export function renameat(ctx: OpsContext, m: P9Message): P9Message {
  const io = injectorDir(ctx, num(m.olddirfid));
  if (io !== undefined) {
    const nd = ctx.fids.get(num(m.newdirfid));
    injectRename(io.share, keyIn(io.node.fd, checkName(bytes(m.oldname))), nd.node.fd, checkName(bytes(m.newname)));
    return { type: P9.Rrenameat, tag: m.tag };
  }
  const od = dirFid(ctx, num(m.olddirfid));
  const nd = dirFid(ctx, num(m.newdirfid));
  if (od.share !== nd.share) throw new FsError(Errno.EXDEV);
  markOwn(od.share, od.node.fd, checkName(bytes(m.oldname)));
  markOwn(nd.share, nd.node.fd, checkName(bytes(m.newname)));
  check(fsAddon().fsRename(od.node.fd, checkName(bytes(m.oldname)), nd.node.fd, checkName(bytes(m.newname))));
  return { type: P9.Rrenameat, tag: m.tag };
}

/** The (parent, name) a fid was reached by, checked to still name the same inode. */
function placeOf(f: Fid): [PathNode, Uint8Array] {
  if (f.parent === undefined || f.name === undefined) throw new FsError(Errno.EINVAL);
  const fd = check(fsAddon().fsWalk(f.parent.fd, f.name));
  try {
    const now = statFd(fd);
    const held = statFd(f.node.fd);
    if (now.dev !== held.dev || now.ino !== held.ino) throw new FsError(Errno.ENOENT);
  } finally {
    new PathNode(fd).unref();
  }
  return [f.parent, f.name];
}

export function rename(ctx: OpsContext, m: P9Message): P9Message {
  const f = ctx.fids.getAny(num(m.fid));
  if (isInjector(f)) {
    const key = keyOfFid(f);
    if (key === undefined) throw new FsError(Errno.EPERM);
    injectRename(f.share, key, ctx.fids.get(num(m.dfid)).node.fd, checkName(bytes(m.name)));
    return { type: P9.Rrename, tag: m.tag };
  }
  if (f.phantom !== undefined) throw new FsError(Errno.ENOENT);
  const nd = dirFid(ctx, num(m.dfid));
  if (f.share !== nd.share) throw new FsError(Errno.EXDEV);
  const [parent, name] = placeOf(f);
  const newName = checkName(bytes(m.name));
  markOwn(f.share, parent.fd, name);
  markOwn(f.share, nd.node.fd, newName);
  check(fsAddon().fsRename(parent.fd, name, nd.node.fd, newName));
  parent.unref();
  f.parent = nd.node.ref();
  f.name = Uint8Array.from(newName);
  return { type: P9.Rrename, tag: m.tag };
}

export function unlinkat(ctx: OpsContext, m: P9Message): P9Message {
  const i = injectorDir(ctx, num(m.dirfid));
  if (i !== undefined) {
    injectDelete(i.share, i.node.fd, checkName(bytes(m.name)));
    return { type: P9.Runlinkat, tag: m.tag };
  }
  const d = dirFid(ctx, num(m.dirfid));
  markOwn(d.share, d.node.fd, checkName(bytes(m.name)));
  check(fsAddon().fsUnlink(d.node.fd, checkName(bytes(m.name)), num(m.flags) & AT_REMOVEDIR));
  if (num(m.flags) & AT_REMOVEDIR) unpinHint(d.share, d.node.fd, bytes(m.name));
  return { type: P9.Runlinkat, tag: m.tag };
}

/** remove(5): unlink the fid's file, and clunk the fid whatever the outcome. */
export function remove(ctx: OpsContext, m: P9Message): P9Message {
  const id = num(m.fid);
  const f = ctx.fids.getAny(id);
  try {
    refuseInjector(f);
    if (f.phantom !== undefined) throw new FsError(Errno.ENOENT);
    writable(f.share);
    const [parent, name] = placeOf(f);
    markOwn(f.share, parent.fd, name);
    check(fsAddon().fsUnlink(parent.fd, name, (f.qid.type & 0x80) !== 0 ? AT_REMOVEDIR : 0));
    if ((f.qid.type & 0x80) !== 0) unpinHint(f.share, parent.fd, name);
  } finally {
    ctx.fids.remove(id);
  }
  return { type: P9.Rremove, tag: m.tag };
}
