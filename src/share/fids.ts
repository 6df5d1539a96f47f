/**
 * Per-connection fid table of the 9P server (intro(5): a fid is the client's handle on a file).
 *
 * A fid holds a `PathNode` — an O_PATH descriptor of its file, shared (reference-counted)
 * between fids cloned by a zero-length walk — plus the node of the directory it was reached
 * from and the name it had there (what Tremove/Trename need). After Tlopen/Tlcreate it also
 * holds an `OpenFile`: a real descriptor used for data. An OpenFile is closed only when no
 * read/write/fsync is still running on it, so a descriptor number can never be reused under a
 * thread-pool operation. After Txattrwalk/Txattrcreate a fid holds an attribute buffer instead.
 * Because everything is a descriptor, a file unlinked while open stays usable through its fid.
 *
 * Bounded: at most `maxFids` fids per connection, and at most `budget.max` across every
 * connection sharing one `FidBudget` (EMFILE beyond either), so guests cannot use up skiff's
 * descriptors (each fid holds at least one). Attribute buffers (up to 64 KiB each) are bounded
 * too: at most `maxXattrBytes` per connection (ENOSPC beyond), else a guest could make the
 * server hold maxFids × 64 KiB (1 GiB with the defaults) by opening attribute fids.
 */

import { closeQuietly, Errno, FsError } from "./host-fs.js";
import { release, retain, type Share } from "./registry.js";
import type { Qid } from "./wire.js";

export class PathNode {
  private refs = 1;
  constructor(readonly fd: number) {}
  ref(): PathNode {
    this.refs++;
    return this;
  }
  unref(): void {
    if (--this.refs === 0) closeQuietly(this.fd);
  }
}

export class OpenFile {
  busy = 0;
  private closing = false;
  constructor(
    readonly fd: number,
    readonly isDir: boolean,
  ) {}
  /** Mark the start of an asynchronous operation on the descriptor. */
  begin(): number {
    this.busy++;
    return this.fd;
  }
  /** Its end; closes the descriptor if it was released meanwhile. */
  end(): void {
    if (--this.busy === 0 && this.closing) closeQuietly(this.fd);
  }
  release(): void {
    if (this.closing) return;
    this.closing = true;
    if (this.busy === 0) closeQuietly(this.fd);
  }
}

/** An attribute fid: the value or name list to read (xattrwalk), or the value being written (xattrcreate). */
export interface XattrState {
  write: boolean;
  name: Uint8Array;
  data: Uint8Array;
  /** Bytes written so far (xattrcreate). */
  filled: number;
  flags: number;
}

export class Fid {
  open: OpenFile | undefined;
  xattr: XattrState | undefined;
  /**
   * Set for an injector's phantom (inject.ts: an entry gone from the host that its lookup must
   * still see; true for a directory). Only getattr, walk (clone) and clunk reach a phantom.
   */
  phantom: boolean | undefined;
  /** The entry's event key (inject.ts), computed once. */
  eventKey: string | undefined;
  constructor(
    readonly share: Share,
    public node: PathNode,
    public qid: Qid,
    /** The directory this file was reached from and its name there (undefined for the root and after ".."). */
    public parent: PathNode | undefined,
    public name: Uint8Array | undefined,
    /** The attaching user (n_uname). */
    readonly uid: number,
  ) {}

  /** Re-point the fid at a file (its old node, parent and share references are the caller's to drop). */
  moveTo(node: PathNode, qid: Qid, parent: PathNode | undefined, name: Uint8Array | undefined): void {
    this.node = node;
    this.qid = qid;
    this.parent = parent;
    this.name = name === undefined ? undefined : Uint8Array.from(name);
    this.eventKey = undefined;
  }
}

/** Fids in use across connections (one per share service). */
export class FidBudget {
  used = 0;
  constructor(readonly max: number) {}
}

export class FidTable {
  private readonly fids = new Map<number, Fid>();
  /** Bytes held by attribute fids of this table. */
  xattrBytes = 0;
  constructor(
    readonly maxFids: number,
    private readonly budget: FidBudget = new FidBudget(maxFids),
    readonly maxXattrBytes = 1 << 20,
  ) {}

  /** Make `f` an attribute fid holding `x` (FsError ENOSPC when the table's attribute bytes would pass the bound). */
  setXattr(f: Fid, x: XattrState): void {
    if (this.xattrBytes + x.data.length > this.maxXattrBytes) throw new FsError(Errno.ENOSPC);
    this.xattrBytes += x.data.length;
    f.xattr = x;
  }

  get size(): number {
    return this.fids.size;
  }

  /** The fid, or FsError(EBADF); ENOENT for a phantom (inject.ts), which only `getAny` callers handle. */
  get(fid: number): Fid {
    const f = this.getAny(fid);
    if (f.phantom !== undefined) throw new FsError(Errno.ENOENT);
    return f;
  }

  /** The fid, phantom or not, or FsError(EBADF). */
  getAny(fid: number): Fid {
    const f = this.fids.get(fid);
    if (f === undefined) throw new FsError(Errno.EBADF);
    return f;
  }

  has(fid: number): boolean {
    return this.fids.has(fid);
  }

  /** Check that `fid` may be created (unused, under the bound). */
  checkFree(fid: number): void {
    if (this.fids.has(fid)) throw new FsError(Errno.EBADF);
    if (this.fids.size >= this.maxFids || this.budget.used >= this.budget.max) throw new FsError(Errno.EMFILE);
  }

  /** Add a fid; its node, parent and share references are handed over. */
  add(id: number, share: Share, node: PathNode, qid: Qid, parent: PathNode | undefined, name: Uint8Array | undefined, uid: number): Fid {
    this.checkFree(id);
    const f = new Fid(retain(share), node, qid, parent, name === undefined ? undefined : Uint8Array.from(name), uid);
    this.fids.set(id, f);
    this.budget.used++;
    return f;
  }

  /** Remove a fid and drop what it holds. Returns the fid (for Tclunk's attribute commit, done before). */
  remove(id: number): Fid {
    const f = this.getAny(id);
    this.fids.delete(id);
    this.budget.used--;
    this.dropFid(f);
    return f;
  }

  /** Clunk everything (a new Tversion or the end of the connection). */
  clear(): void {
    for (const f of this.fids.values()) this.dropFid(f);
    this.budget.used -= this.fids.size;
    this.fids.clear();
  }

  private dropFid(f: Fid): void {
    if (f.xattr !== undefined) this.xattrBytes -= f.xattr.data.length;
    f.xattr = undefined;
    f.open?.release();
    f.open = undefined;
    f.node.unref();
    f.parent?.unref();
    release(f.share);
  }
}
