/**
 * A writer (and a reader, for tests) of the cpio "newc" format the Linux kernel unpacks as an
 * initramfs (Documentation/driver-api/early-userspace/buffer-format.rst): each entry is a
 * 110-byte ASCII header (magic 070701 and thirteen 8-digit hex fields), the NUL-terminated name
 * padded to 4 bytes, then the data padded to 4 bytes; the archive ends with `TRAILER!!!`.
 *
 * Reproducible by construction: entries are written sorted by name, with fixed mtimes, owners
 * and inode numbers, so the same inputs always give the same bytes.
 */

import { gzipSync } from "node:zlib";

export type CpioEntry =
  | { kind: "dir"; name: string; mode?: number }
  | { kind: "file"; name: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; name: string; target: string }
  | { kind: "chardev"; name: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const MAGIC = "070701";
const HEADER_LEN = 110;
const TRAILER = "TRAILER!!!";

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");

function header(ino: number, mode: number, nlink: number, size: number, nameLen: number, mtime: number, rdev: [number, number]): string {
  // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  return MAGIC + [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev[0], rdev[1], nameLen, 0].map(hex8).join("");
}

/** The archive of `entries` (sorted by name; names are relative, without a leading "/"). */
export function writeCpio(entries: CpioEntry[], mtime = 0): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  const push = (ino: number, mode: number, nlink: number, name: string, data: Uint8Array, rdev: [number, number] = [0, 0]) => {
    const nameBytes = enc.encode(name + "\0");
    parts.push(enc.encode(header(ino, mode, nlink, data.length, nameBytes.length, mtime, rdev)));
    parts.push(nameBytes, new Uint8Array(pad4(HEADER_LEN + nameBytes.length)));
    parts.push(data, new Uint8Array(pad4(data.length)));
  };
  let ino = 1;
  for (const e of sorted) {
    const name = e.name.replace(/^\/+/, "");
    if (e.kind === "dir") push(ino++, S_IFDIR | (e.mode ?? 0o755), 2, name, new Uint8Array(0));
    else if (e.kind === "file") push(ino++, S_IFREG | (e.mode ?? 0o644), 1, name, e.data);
    else if (e.kind === "symlink") push(ino++, S_IFLNK | 0o777, 1, name, enc.encode(e.target));
    else push(ino++, S_IFCHR | (e.mode ?? 0o600), 1, name, new Uint8Array(0), [e.major, e.minor]);
  }
  push(0, 0, 1, TRAILER, new Uint8Array(0));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** gzip of `writeCpio(entries)` (Node's gzip header has mtime 0: still reproducible). */
export function writeInitramfs(entries: CpioEntry[]): Uint8Array {
  return gzipSync(writeCpio(entries), { level: 9 });
}

export interface CpioRecord {
  name: string;
  mode: number;
  mtime: number;
  data: Uint8Array;
}

/** Parse a newc archive up to its trailer; throws on malformed input (a test helper). */
export function readCpio(b: Uint8Array): CpioRecord[] {
  const dec = new TextDecoder();
  const out: CpioRecord[] = [];
  let off = 0;
  for (;;) {
    if (off + HEADER_LEN > b.length) throw new Error("cpio: truncated header");
    const h = dec.decode(b.subarray(off, off + HEADER_LEN));
    if (!h.startsWith(MAGIC)) throw new Error(`cpio: bad magic at ${off}`);
    const field = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const mtime = field(5);
    const size = field(6);
    const nameLen = field(11);
    const nameStart = off + HEADER_LEN;
    const name = dec.decode(b.subarray(nameStart, nameStart + nameLen - 1));
    const dataStart = nameStart + nameLen + pad4(HEADER_LEN + nameLen);
    if (dataStart + size > b.length) throw new Error("cpio: truncated data");
    if (name === TRAILER) return out;
    out.push({ name, mode, mtime, data: b.slice(dataStart, dataStart + size) });
    off = dataStart + size + pad4(size);
  }
}
