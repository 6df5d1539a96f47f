/**
 * 9P2000.L wire codec: every T- and R-message the Linux v9fs client exchanges with a server.
 *
 * Spec: the 9P2000.L protocol description (diod's protocol.md, the Linux kernel's
 * Documentation/filesystems/9p.rst and the 9P2000.L message definitions), on top of Plan 9's
 * intro(5) for the common 9P2000 messages (version, flush, walk, read, write, clunk, remove) and
 * the 9P2000.u attach/auth with n_uname. Integers are little-endian; a string is length[2]
 * followed by that many bytes (no NUL, not necessarily UTF-8: names are kept as bytes); a qid is
 * type[1] version[4] path[8]. Every message is size[4] type[1] tag[2] body, `size` counting
 * itself.
 *
 * Two levels, like the project's other codecs: `parseMessage` reads one whole message (a view
 * over the bytes, checked against its own length) into a plain `P9Message` and never throws —
 * bad input is a `WireError`; `emitMessage` writes a message into a caller-supplied buffer
 * after `messageLen` says how long it is. Each message is described once, as a list of fields
 * (`SCHEMAS`), and both directions are driven by that list. A message's `data` field (Twrite,
 * Rread, Rreaddir) and its strings are borrowed views into the parsed buffer.
 */

import { WireError, type Parsed } from "../common/wire-error.js";

/** Message type numbers (9P2000 and 9P2000.L). */
export const P9 = {
  Tlerror: 6, Rlerror: 7, Tstatfs: 8, Rstatfs: 9, Tlopen: 12, Rlopen: 13, Tlcreate: 14, Rlcreate: 15,
  Tsymlink: 16, Rsymlink: 17, Tmknod: 18, Rmknod: 19, Trename: 20, Rrename: 21, Treadlink: 22, Rreadlink: 23,
  Tgetattr: 24, Rgetattr: 25, Tsetattr: 26, Rsetattr: 27, Txattrwalk: 30, Rxattrwalk: 31,
  Txattrcreate: 32, Rxattrcreate: 33, Treaddir: 40, Rreaddir: 41, Tfsync: 50, Rfsync: 51,
  Tlock: 52, Rlock: 53, Tgetlock: 54, Rgetlock: 55, Tlink: 70, Rlink: 71, Tmkdir: 72, Rmkdir: 73,
  Trenameat: 74, Rrenameat: 75, Tunlinkat: 76, Runlinkat: 77,
  Tversion: 100, Rversion: 101, Tauth: 102, Rauth: 103, Tattach: 104, Rattach: 105, Rerror: 107,
  Tflush: 108, Rflush: 109, Twalk: 110, Rwalk: 111, Tread: 116, Rread: 117, Twrite: 118, Rwrite: 119,
  Tclunk: 120, Rclunk: 121, Tremove: 122, Rremove: 123,
} as const;

/** size[4] type[1] tag[2]. */
export const HEADER_LEN = 7;
/** The tag of Tversion (intro(5)). */
export const NOTAG = 0xffff;
/** "No fid" (afid of an unauthenticated attach) and "no uid" (n_uname). */
export const NOFID = 0xffffffff;
export const NONUNAME = 0xffffffff;
/** Twalk carries at most this many names (walk(5)). */
export const MAXWELEM = 16;
/** Header bytes of Rread/Twrite before the data: the iounit is msize minus this (P9_IOHDRSZ). */
export const IOHDRSZ = 24;
/** Bytes of one qid on the wire. */
export const QID_LEN = 13;

/** Qid type bits: the high byte of a Plan 9 mode (intro(5)). */
export const QidType = { DIR: 0x80, APPEND: 0x40, EXCL: 0x20, MOUNT: 0x10, AUTH: 0x08, TMP: 0x04, SYMLINK: 0x02, LINK: 0x01, FILE: 0 } as const;

export interface Qid {
  type: number;
  version: number;
  path: bigint;
}

/** Field kinds: fixed integers (u64 as bigint), a string, a qid, Twalk's names, Rwalk's qids, count[4] data. */
export type FieldKind = "u8" | "u16" | "u32" | "u64" | "str" | "qid" | "strs" | "qids" | "data";
export type FieldValue = number | bigint | Uint8Array | Qid | Uint8Array[] | Qid[];

/** A parsed or to-be-emitted message: `type`, `tag` and the fields its schema names. */
export interface P9Message {
  type: number;
  tag: number;
  [field: string]: FieldValue;
}

type Schema = readonly (readonly [string, FieldKind])[];

const U64_TIMES: Schema = ["atime_sec", "atime_nsec", "mtime_sec", "mtime_nsec"].map((n) => [n, "u64"] as const);
const STAT_U64 = ["nlink", "rdev", "size", "blksize", "blocks", "atime_sec", "atime_nsec", "mtime_sec", "mtime_nsec",
  "ctime_sec", "ctime_nsec", "btime_sec", "btime_nsec", "gen", "data_version"];

/** The body of each message, field by field, in wire order. */
export const SCHEMAS: ReadonlyMap<number, Schema> = new Map<number, Schema>([
  [P9.Rlerror, [["ecode", "u32"]]],
  [P9.Tstatfs, [["fid", "u32"]]],
  [P9.Rstatfs, [["fstype", "u32"], ["bsize", "u32"], ["blocks", "u64"], ["bfree", "u64"], ["bavail", "u64"],
    ["files", "u64"], ["ffree", "u64"], ["fsid", "u64"], ["namelen", "u32"]]],
  [P9.Tlopen, [["fid", "u32"], ["flags", "u32"]]],
  [P9.Rlopen, [["qid", "qid"], ["iounit", "u32"]]],
  [P9.Tlcreate, [["fid", "u32"], ["name", "str"], ["flags", "u32"], ["mode", "u32"], ["gid", "u32"]]],
  [P9.Rlcreate, [["qid", "qid"], ["iounit", "u32"]]],
  [P9.Tsymlink, [["fid", "u32"], ["name", "str"], ["symtgt", "str"], ["gid", "u32"]]],
  [P9.Rsymlink, [["qid", "qid"]]],
  [P9.Tmknod, [["dfid", "u32"], ["name", "str"], ["mode", "u32"], ["major", "u32"], ["minor", "u32"], ["gid", "u32"]]],
  [P9.Rmknod, [["qid", "qid"]]],
  [P9.Trename, [["fid", "u32"], ["dfid", "u32"], ["name", "str"]]],
  [P9.Rrename, []],
  [P9.Treadlink, [["fid", "u32"]]],
  [P9.Rreadlink, [["target", "str"]]],
  [P9.Tgetattr, [["fid", "u32"], ["request_mask", "u64"]]],
  [P9.Rgetattr, [["valid", "u64"], ["qid", "qid"], ["mode", "u32"], ["uid", "u32"], ["gid", "u32"], ...STAT_U64.map((n) => [n, "u64"] as const)]],
  [P9.Tsetattr, [["fid", "u32"], ["valid", "u32"], ["mode", "u32"], ["uid", "u32"], ["gid", "u32"], ["size", "u64"], ...U64_TIMES]],
  [P9.Rsetattr, []],
  [P9.Txattrwalk, [["fid", "u32"], ["newfid", "u32"], ["name", "str"]]],
  [P9.Rxattrwalk, [["size", "u64"]]],
  [P9.Txattrcreate, [["fid", "u32"], ["name", "str"], ["attr_size", "u64"], ["flags", "u32"]]],
  [P9.Rxattrcreate, []],
  [P9.Treaddir, [["fid", "u32"], ["offset", "u64"], ["count", "u32"]]],
  [P9.Rreaddir, [["data", "data"]]],
  [P9.Tfsync, [["fid", "u32"], ["datasync", "u32"]]],
  [P9.Rfsync, []],
  [P9.Tlock, [["fid", "u32"], ["locktype", "u8"], ["flags", "u32"], ["start", "u64"], ["length", "u64"], ["proc_id", "u32"], ["client_id", "str"]]],
  [P9.Rlock, [["status", "u8"]]],
  [P9.Tgetlock, [["fid", "u32"], ["locktype", "u8"], ["start", "u64"], ["length", "u64"], ["proc_id", "u32"], ["client_id", "str"]]],
  [P9.Rgetlock, [["locktype", "u8"], ["start", "u64"], ["length", "u64"], ["proc_id", "u32"], ["client_id", "str"]]],
  [P9.Tlink, [["dfid", "u32"], ["fid", "u32"], ["name", "str"]]],
  [P9.Rlink, []],
  [P9.Tmkdir, [["dfid", "u32"], ["name", "str"], ["mode", "u32"], ["gid", "u32"]]],
  [P9.Rmkdir, [["qid", "qid"]]],
  [P9.Trenameat, [["olddirfid", "u32"], ["oldname", "str"], ["newdirfid", "u32"], ["newname", "str"]]],
  [P9.Rrenameat, []],
  [P9.Tunlinkat, [["dirfid", "u32"], ["name", "str"], ["flags", "u32"]]],
  [P9.Runlinkat, []],
  [P9.Tversion, [["msize", "u32"], ["version", "str"]]],
  [P9.Rversion, [["msize", "u32"], ["version", "str"]]],
  [P9.Tauth, [["afid", "u32"], ["uname", "str"], ["aname", "str"], ["n_uname", "u32"]]],
  [P9.Rauth, [["aqid", "qid"]]],
  [P9.Tattach, [["fid", "u32"], ["afid", "u32"], ["uname", "str"], ["aname", "str"], ["n_uname", "u32"]]],
  [P9.Rattach, [["qid", "qid"]]],
  [P9.Rerror, [["ename", "str"]]],
  [P9.Tflush, [["oldtag", "u16"]]],
  [P9.Rflush, []],
  [P9.Twalk, [["fid", "u32"], ["newfid", "u32"], ["wnames", "strs"]]],
  [P9.Rwalk, [["wqids", "qids"]]],
  [P9.Tread, [["fid", "u32"], ["offset", "u64"], ["count", "u32"]]],
  [P9.Rread, [["data", "data"]]],
  [P9.Twrite, [["fid", "u32"], ["offset", "u64"], ["data", "data"]]],
  [P9.Rwrite, [["count", "u32"]]],
  [P9.Tclunk, [["fid", "u32"]]],
  [P9.Rclunk, []],
  [P9.Tremove, [["fid", "u32"]]],
  [P9.Rremove, []],
]);

const FIXED: Partial<Record<FieldKind, number>> = { u8: 1, u16: 2, u32: 4, u64: 8, qid: QID_LEN };

/** The size[4] field of a message starting at `o` (the caller checked 4 bytes are there). */
export function messageSize(b: Uint8Array, o = 0): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** The tag of a message whose header is present (for answering one that fails to parse). */
export function messageTag(b: Uint8Array): number {
  return b[5] | (b[6] << 8);
}

function fail(reason: string): WireError {
  return new WireError("9p", reason);
}

/**
 * Parse one whole message (`b` holds exactly it: size[4] first). Returns the message or a
 * WireError ("truncated", "size mismatch", "unknown type N", "trailing bytes", "too many names").
 */
export function parseMessage(b: Uint8Array): Parsed<P9Message> {
  if (b.length < HEADER_LEN) return fail("truncated");
  if (messageSize(b) !== b.length) return fail("size mismatch");
  const type = b[4];
  const schema = SCHEMAS.get(type);
  if (schema === undefined) return fail(`unknown type ${type}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const msg: P9Message = { type, tag: dv.getUint16(5, true) };
  let o = HEADER_LEN;
  const end = b.length;
  const str = (): Uint8Array | undefined => {
    if (o + 2 > end) return undefined;
    const n = dv.getUint16(o, true);
    if (o + 2 + n > end) return undefined;
    const s = b.subarray(o + 2, o + 2 + n);
    o += 2 + n;
    return s;
  };
  for (const [name, kind] of schema) {
    const fixed = FIXED[kind];
    if (fixed !== undefined && o + fixed > end) return fail("truncated");
    switch (kind) {
      case "u8": msg[name] = b[o]; o += 1; break;
      case "u16": msg[name] = dv.getUint16(o, true); o += 2; break;
      case "u32": msg[name] = dv.getUint32(o, true); o += 4; break;
      case "u64": msg[name] = dv.getBigUint64(o, true); o += 8; break;
      case "qid": msg[name] = readQid(dv, o); o += QID_LEN; break;
      case "str": {
        const s = str();
        if (s === undefined) return fail("truncated");
        msg[name] = s;
        break;
      }
      case "strs": {
        if (o + 2 > end) return fail("truncated");
        const n = dv.getUint16(o, true);
        o += 2;
        if (n > MAXWELEM) return fail("too many names");
        const names: Uint8Array[] = [];
        for (let i = 0; i < n; i++) {
          const s = str();
          if (s === undefined) return fail("truncated");
          names.push(s);
        }
        msg[name] = names;
        break;
      }
      case "qids": {
        if (o + 2 > end) return fail("truncated");
        const n = dv.getUint16(o, true);
        o += 2;
        if (n > MAXWELEM) return fail("too many qids");
        if (o + n * QID_LEN > end) return fail("truncated");
        const qids: Qid[] = [];
        for (let i = 0; i < n; i++, o += QID_LEN) qids.push(readQid(dv, o));
        msg[name] = qids;
        break;
      }
      case "data": {
        if (o + 4 > end) return fail("truncated");
        const n = dv.getUint32(o, true);
        if (o + 4 + n > end) return fail("truncated");
        msg[name] = b.subarray(o + 4, o + 4 + n);
        o += 4 + n;
        break;
      }
    }
  }
  if (o !== end) return fail("trailing bytes");
  return msg;
}

function readQid(dv: DataView, o: number): Qid {
  return { type: dv.getUint8(o), version: dv.getUint32(o + 1, true), path: dv.getBigUint64(o + 5, true) };
}

function schemaOf(type: number): Schema {
  const s = SCHEMAS.get(type);
  if (s === undefined) throw new RangeError(`9p: no message type ${type}`);
  return s;
}

function bytesOf(v: FieldValue | undefined): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(0);
}

/** Bytes `emitMessage` writes for `msg` (size[4] included). Throws for an unknown type (a programming error). */
export function messageLen(msg: P9Message): number {
  let n = HEADER_LEN;
  for (const [name, kind] of schemaOf(msg.type)) {
    const v = msg[name];
    const fixed = FIXED[kind];
    if (fixed !== undefined) n += fixed;
    else if (kind === "str") n += 2 + bytesOf(v).length;
    else if (kind === "data") n += 4 + bytesOf(v).length;
    else if (kind === "strs") n += 2 + (v as Uint8Array[]).reduce((a, s) => a + 2 + s.length, 0);
    else n += 2 + (v as Qid[]).length * QID_LEN;
  }
  return n;
}

function toBig(v: FieldValue | undefined): bigint {
  return typeof v === "bigint" ? BigInt.asUintN(64, v) : BigInt.asUintN(64, BigInt(typeof v === "number" ? Math.trunc(v) : 0));
}

/**
 * Write `msg` into `out` at `offset` (room for `messageLen(msg)` bytes is the caller's job);
 * returns the bytes written. Numbers are truncated to their field's width; a missing field is 0
 * or empty. u64 fields take a bigint or a safe integer.
 */
export function emitMessage(msg: P9Message, out: Uint8Array, offset = 0): number {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let o = offset + HEADER_LEN;
  const putStr = (s: Uint8Array): void => {
    dv.setUint16(o, s.length, true);
    out.set(s, o + 2);
    o += 2 + s.length;
  };
  for (const [name, kind] of schemaOf(msg.type)) {
    const v = msg[name];
    switch (kind) {
      case "u8": out[o] = Number(v ?? 0); o += 1; break;
      case "u16": dv.setUint16(o, Number(v ?? 0) & 0xffff, true); o += 2; break;
      case "u32": dv.setUint32(o, Number(v ?? 0) >>> 0, true); o += 4; break;
      case "u64": dv.setBigUint64(o, toBig(v), true); o += 8; break;
      case "qid": writeQid(dv, o, v as Qid); o += QID_LEN; break;
      case "str": putStr(bytesOf(v)); break;
      case "strs": {
        const names = v as Uint8Array[];
        dv.setUint16(o, names.length, true);
        o += 2;
        for (const s of names) putStr(s);
        break;
      }
      case "qids": {
        const qids = v as Qid[];
        dv.setUint16(o, qids.length, true);
        o += 2;
        for (const q of qids) writeQid(dv, o, q), (o += QID_LEN);
        break;
      }
      case "data": {
        const d = bytesOf(v);
        dv.setUint32(o, d.length, true);
        out.set(d, o + 4);
        o += 4 + d.length;
        break;
      }
    }
  }
  const len = o - offset;
  dv.setUint32(offset, len, true);
  out[offset + 4] = msg.type;
  dv.setUint16(offset + 5, msg.tag, true);
  return len;
}

function writeQid(dv: DataView, o: number, q: Qid | undefined): void {
  dv.setUint8(o, q?.type ?? 0);
  dv.setUint32(o + 1, (q?.version ?? 0) >>> 0, true);
  dv.setBigUint64(o + 5, BigInt.asUintN(64, q?.path ?? 0n), true);
}

/** A fresh buffer holding `msg` (for replies and tests; the server's hot replies use the same path). */
export function encodeMessage(msg: P9Message): Uint8Array {
  const out = new Uint8Array(messageLen(msg));
  emitMessage(msg, out);
  return out;
}

/** Bytes of a Rreaddir entry for a name of `nameLen` bytes: qid[13] offset[8] type[1] name[s]. */
export function direntLen(nameLen: number): number {
  return QID_LEN + 8 + 1 + 2 + nameLen;
}

const utf8 = new TextEncoder();
const utf8d = new TextDecoder();
/** A string field from text. */
export function s(text: string): Uint8Array {
  return utf8.encode(text);
}
/** Text of a string field (invalid UTF-8 replaced: for names shown to people, not for paths). */
export function text(v: FieldValue | undefined): string {
  return v instanceof Uint8Array ? utf8d.decode(v) : "";
}

export interface Dirent {
  qid: Qid;
  offset: bigint;
  type: number;
  name: Uint8Array;
}

/** Entries of a Rreaddir's data (qid[13] offset[8] type[1] name[s] each), or a WireError. */
export function parseDirents(data: Uint8Array): Parsed<Dirent[]> {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: Dirent[] = [];
  for (let o = 0; o < data.length; ) {
    if (o + direntLen(0) > data.length) return fail("truncated dirent");
    const n = dv.getUint16(o + 22, true);
    if (o + direntLen(n) > data.length) return fail("truncated dirent");
    out.push({ qid: readQid(dv, o), offset: dv.getBigUint64(o + 13, true), type: data[o + 21], name: data.subarray(o + 24, o + 24 + n) });
    o += direntLen(n);
  }
  return out;
}
