/**
 * Mode bits the guest asked for that the host file does not carry, remembered and reported back
 * the osxfs way (like ownership.ts does for chown): set-user-ID/set-group-ID bits on non-directories
 * (never put on host files unless the share keeps them: a set-user-ID root program in a shared
 * directory would be the host's problem) and device nodes (POSIX mknod(2) S_IFCHR/S_IFBLK: the host
 * holds a plain empty file of the same permissions; the guest kernel opens its own device for
 * them, as it does for any device node, so nothing reaches the host).
 *
 * Stored in the extended attribute `user.skiff.mode` of the host file: "<type|setid in octal>
 * <rdev>" in ASCII; hidden from the guest with the rest of `user.skiff.*`. The permission bits
 * always come from the host file. Where the attribute cannot be set (symlinks, file systems
 * without user xattrs) nothing is remembered: set-id bits are dropped as before, and device
 * nodes are refused (EPERM).
 */

import { Errno, S_IFMT, S_IFREG, check, fsAddon, type Stat } from "./host-fs.js";

export const MODE_XATTR = new TextEncoder().encode("user.skiff.mode");
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
const SETID = 0o6000;

export interface RememberedMode {
  /** S_IFCHR or S_IFBLK for a device node the host file stands for; 0: the host file's own type. */
  type: number;
  /** Set-user-ID/set-group-ID bits asked for and not applied on the host. */
  setid: number;
  /** The device number as the 9P client reads it (glibc/Linux dev_t encoding). */
  rdev: bigint;
}

const dec = new TextDecoder();
const enc = new TextEncoder();
const buf = new Uint8Array(64);

/** What is remembered for the file held by `fd`, if anything. */
export function rememberedMode(fd: number): RememberedMode | undefined {
  const n = fsAddon().fsGetXattr(fd, MODE_XATTR, buf);
  if (n <= 0) return undefined;
  const m = /^([0-7]{1,7}) (\d{1,20})$/.exec(dec.decode(buf.subarray(0, n)));
  if (m === null) return undefined;
  const bits = parseInt(m[1], 8);
  const type = bits & S_IFMT;
  return { type: type === S_IFCHR || type === S_IFBLK ? type : 0, setid: bits & SETID, rdev: BigInt(m[2]) };
}

/**
 * Remember `r` for the file held by `fd` (nothing left to remember: the attribute is removed).
 * Returns false when the host file cannot hold the attribute.
 */
export function rememberMode(fd: number, r: RememberedMode): boolean {
  const a = fsAddon();
  if (r.type === 0 && r.setid === 0) {
    const e = a.fsRemoveXattr(fd, MODE_XATTR);
    if (e < 0 && e !== -Errno.ENODATA) check(e);
    return true;
  }
  const e = a.fsSetXattr(fd, MODE_XATTR, enc.encode(`${(r.type | r.setid).toString(8)} ${r.rdev}`), 0);
  if (e === -Errno.EPERM || e === -Errno.EOPNOTSUPP || e === -Errno.ENOTSUP || e === -Errno.EACCES) return false;
  check(e);
  return true;
}

/** The mode and rdev the guest sees for host file `st` with `r` remembered. */
export function reportedMode(st: Stat, r: RememberedMode | undefined): { mode: number; rdev: bigint } {
  if (r === undefined || (st.mode & S_IFMT) !== S_IFREG) return { mode: st.mode, rdev: st.rdev };
  return { mode: (r.type || S_IFREG) | r.setid | (st.mode & 0o1777), rdev: r.type ? r.rdev : st.rdev };
}

/** dev_t from major and minor, glibc's encoding (what Linux's new_decode_dev reads). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}
