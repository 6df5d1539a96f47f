/**
 * One 9P2000.L session (a connection's protocol state): version negotiation, dispatch of each
 * request to its operation, replies, flush, and the bounds.
 *
 * Spec: version(5) — Tversion resets the session (every fid clunked, pending replies dropped)
 * and fixes msize as the smaller of the client's and ours; only "9P2000.L" is spoken, anything
 * else gets version "unknown". flush(5) — a Tflush for a request still running is answered after
 * that request's own reply (so the client sees the outcome of work that did happen); for a tag
 * not in flight, at once. error: Rlerror with a Linux errno (9P2000.L). Tauth: Rlerror
 * EOPNOTSUPP (no authentication; the transport is the guest's own network).
 *
 * Bounds: messages at most msize (the transport closes the connection on a larger size field),
 * at most `maxFids` fids and `maxInFlight` asynchronous requests (the transport stops reading
 * while the session is `busy`). A message that fails to parse gets Rlerror EINVAL with its tag.
 */

import { isWireError } from "../common/wire-error.js";
import { P9, encodeMessage, parseMessage, messageTag, s, text, type P9Message } from "./wire.js";
import { Errno, FsError } from "./host-fs.js";
import { FidTable, type FidBudget } from "./fids.js";
import type { ShareRegistry } from "./registry.js";
import * as meta from "./ops-meta.js";
import * as io from "./ops-io.js";
import type { OpsContext, OpsOptions } from "./ops-meta.js";
import { Counters } from "../common/counters.js";

export interface SessionOptions {
  /** Largest msize agreed to (bytes; default 1 MiB, at least 8192). */
  maxMsize?: number;
  /** Fids per connection (default 4096). */
  maxFids?: number;
  /** Fids of all connections sharing this budget (the share service passes one; default: maxFids). */
  fidBudget?: FidBudget;
  /** Bytes of extended-attribute values buffered by attribute fids per connection (default 1 MiB). */
  maxXattrBytes?: number;
  /** Asynchronous requests of all connections sharing this budget, closed ones included (the share service passes one). */
  requestBudget?: RequestBudget;
  /** Requests answered asynchronously (read, write, fsync) at once per connection (default 16). */
  maxInFlight?: number;
  /** gid reported for files with no remembered owner (default 0). */
  defaultGid?: number;
  /** Keep set-user/group-ID bits on host files (default false: dropped). */
  keepSetid?: boolean;
}

/**
 * Asynchronous requests running for every connection of one service, counted until they finish
 * even when their connection is gone (attack: a guest closing and reopening connections while
 * reads of a hung or slow file system ran started maxInFlight more each time, without bound).
 */
export class RequestBudget {
  used = 0;
  constructor(readonly max: number) {}
}

export const DEFAULT_MAX_MSIZE = 1 << 20;
const MIN_MSIZE = 8192;

/** Where a session's replies go. */
export interface SessionSink {
  send(reply: Uint8Array): void;
  /** End the connection (a protocol violation the session cannot answer). */
  close(reason: string): void;
}

export class SessionCounters extends Counters {
  requests = 0;
  errors = 0;
  malformed = 0;
  flushes = 0;
}

type Op = (ctx: OpsContext, m: P9Message) => P9Message | Uint8Array | Promise<P9Message | Uint8Array>;

const OPS = new Map<number, Op>([
  [P9.Tattach, meta.attach], [P9.Twalk, meta.walk], [P9.Tgetattr, meta.getattr], [P9.Tsetattr, meta.setattr],
  [P9.Tstatfs, meta.statfs], [P9.Treadlink, meta.readlink], [P9.Tmkdir, meta.mkdir], [P9.Tsymlink, meta.symlink],
  [P9.Tmknod, meta.mknod], [P9.Tlink, meta.link], [P9.Trename, meta.rename], [P9.Trenameat, meta.renameat],
  [P9.Tunlinkat, meta.unlinkat], [P9.Tremove, meta.remove],
  [P9.Tlopen, io.lopen], [P9.Tlcreate, io.lcreate], [P9.Tread, io.read], [P9.Twrite, io.write], [P9.Treaddir, io.readdir],
  [P9.Tfsync, io.fsync], [P9.Tlock, io.lock], [P9.Tgetlock, io.getlock], [P9.Txattrwalk, io.xattrwalk],
  [P9.Txattrcreate, io.xattrcreate], [P9.Tclunk, io.clunk],
]);

export class P9Session implements OpsContext {
  readonly counters = new SessionCounters();
  readonly fids: FidTable;
  readonly opts: OpsOptions;
  readonly maxMsize: number;
  readonly maxInFlight: number;
  msize: number;
  /** Called when an asynchronous request finishes (the transport may read again). */
  onSettled: (() => void) | undefined;
  private versioned = false;
  private generation = 0;
  /** Requests in flight: tag → tags of Tflush messages waiting for it. */
  private readonly pending = new Map<number, number[]>();
  /**
   * Asynchronous requests still running on the thread pool, of this session and of earlier ones
   * (before a Tversion or close). `pending` forgets those; this does not, so a guest cannot pile
   * up reads (and their msize buffers) by sending Tversion between bursts.
   */
  private running = 0;
  /** Tflush messages waiting for their request's reply (each bounded like a request in flight). */
  private flushesWaiting = 0;
  private readonly requestBudget: RequestBudget;
  private closed = false;

  constructor(
    readonly registry: ShareRegistry,
    private readonly sink: SessionSink,
    opts: SessionOptions = {},
  ) {
    this.maxMsize = Math.max(MIN_MSIZE, opts.maxMsize ?? DEFAULT_MAX_MSIZE);
    this.msize = this.maxMsize;
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 16);
    this.requestBudget = opts.requestBudget ?? new RequestBudget(this.maxInFlight);
    this.fids = new FidTable(Math.max(1, opts.maxFids ?? 4096), opts.fidBudget, Math.max(65536, opts.maxXattrBytes ?? 1 << 20));
    this.opts = { defaultGid: opts.defaultGid ?? 0, keepSetid: opts.keepSetid ?? false };
  }

  /** Largest message the transport should accept now. */
  get frameLimit(): number {
    return this.msize;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Too many requests running: stop reading until `onSettled`. */
  get busy(): boolean {
    // Waiting flushes count too (attack: thousands of Tflush for one slow read each held memory
    // and a queued Rflush until it finished; now the transport stops reading instead).
    return this.running >= this.maxInFlight || this.flushesWaiting >= this.maxInFlight || this.requestBudget.used >= this.requestBudget.max;
  }

  /** Handle one whole message (size[4] first); the session owns `frame` from now on. */
  handle(frame: Uint8Array): void {
    if (this.closed) return;
    this.counters.requests++;
    const m = parseMessage(frame);
    if (isWireError(m)) {
      this.counters.malformed++;
      return this.sendError(messageTag(frame), Errno.EINVAL);
    }
    if (m.type === P9.Tversion) return this.version(m);
    if (!this.versioned) return this.sendError(m.tag, Errno.EPROTO);
    if (m.type === P9.Tflush) return this.flush(m);
    if (m.type === P9.Tauth) return this.sendError(m.tag, Errno.EOPNOTSUPP);
    const op = OPS.get(m.type);
    if (op === undefined) return this.sendError(m.tag, Errno.EOPNOTSUPP);
    if (this.pending.has(m.tag)) return this.sendError(m.tag, Errno.EINVAL); // a tag already in use
    let r: P9Message | Uint8Array | Promise<P9Message | Uint8Array>;
    try {
      r = op(this, m);
    } catch (e) {
      return this.sendError(m.tag, errnoOf(e));
    }
    if (!(r instanceof Promise)) return this.sendReply(r);
    const tag = m.tag;
    const gen = this.generation;
    this.pending.set(tag, []);
    this.running++;
    this.requestBudget.used++;
    r.then(
      (reply) => this.settle(gen, tag, reply),
      (e: unknown) => this.settle(gen, tag, errorReply(tag, errnoOf(e))),
    );
  }

  /** End the session: clunk every fid; replies still running are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.pending.clear();
    this.flushesWaiting = 0;
    this.fids.clear();
  }

  private settle(gen: number, tag: number, reply: P9Message | Uint8Array): void {
    this.running--;
    this.requestBudget.used--;
    if (this.closed) return;
    if (gen !== this.generation) return void this.onSettled?.(); // room again for the new session

    const flushes = this.pending.get(tag) ?? [];
    this.pending.delete(tag);
    this.flushesWaiting -= flushes.length;
    this.sendReply(reply);
    for (const f of flushes) this.sendReply({ type: P9.Rflush, tag: f });
    this.onSettled?.();
  }

  private version(m: P9Message): void {
    const msize = m.msize as number;
    if (msize < 256) return this.sink.close(`Tversion msize ${msize} too small`);
    this.generation++;
    this.pending.clear();
    this.flushesWaiting = 0;
    this.fids.clear();
    const ok = text(m.version).startsWith("9P2000.L");
    this.versioned = ok;
    this.msize = Math.min(msize, this.maxMsize);
    this.sendReply({ type: P9.Rversion, tag: m.tag, msize: this.msize, version: s(ok ? "9P2000.L" : "unknown") });
  }

  private flush(m: P9Message): void {
    this.counters.flushes++;
    const waiting = this.pending.get(m.oldtag as number);
    if (waiting === undefined) return this.sendReply({ type: P9.Rflush, tag: m.tag });
    waiting.push(m.tag);
    this.flushesWaiting++;
  }

  private sendError(tag: number, errno: number): void {
    this.sendReply(errorReply(tag, errno));
  }

  private sendReply(r: P9Message | Uint8Array): void {
    if (this.closed) return;
    if (!(r instanceof Uint8Array) && r.type === P9.Rlerror) this.counters.errors++;
    this.sink.send(r instanceof Uint8Array ? r : encodeMessage(r));
  }
}

function errorReply(tag: number, errno: number): P9Message {
  return { type: P9.Rlerror, tag, ecode: errno };
}

/** The errno for a failure inside an operation: FsError's, Node's (negative), else EIO. */
function errnoOf(e: unknown): number {
  if (e instanceof FsError) return e.errno;
  const n = (e as { errno?: unknown } | undefined)?.errno;
  if (typeof n === "number" && n !== 0) return Math.abs(n);
  return Errno.EIO;
}
