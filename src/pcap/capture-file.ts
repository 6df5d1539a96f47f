/**
 * Opening a capture file on the user's behalf (`--pcap FILE`, the control API's
 * `POST /capture {path}`), when skiff often runs as root and the path may lie in a directory
 * other users can write (/tmp).
 *
 * The rule, checked in this order:
 *  1. Directories. The directory part is resolved one component at a time (symbolic links
 *     followed by hand): every directory passed through, from / down to the parent, must be
 *     owned by root or by the effective user and not writable by group or others unless it is
 *     sticky (/tmp); every symbolic link followed must be owned by root or the effective user
 *     (a link another user planted in /tmp is refused). Then no other user can rename or
 *     replace any component between this check and the open below: the open resolves to the
 *     same directory (a writable-by-others, non-sticky directory would let them swap a
 *     component for a link, so such a path is refused instead).
 *  2. The last component is opened with O_NOFOLLOW | O_NONBLOCK and never with O_TRUNC:
 *     - a new file is created with O_CREAT | O_EXCL and mode 0600 (private: the guest's
 *       traffic is readable by its owner only);
 *     - an existing name is opened without O_CREAT, on Linux first as an O_PATH handle that
 *       opens nothing: a symbolic link, FIFO, device, directory or socket is refused from its
 *       fstat before any real open (opening a device can act by itself); a regular file is
 *       then reopened for writing through /proc/self/fd. Elsewhere O_NOFOLLOW | O_NONBLOCK: a
 *       symbolic link fails (ELOOP), a FIFO without a reader fails at once (ENXIO) instead of
 *       blocking the process, and step 3 refuses the rest.
 *  3. The opened descriptor is checked with fstat: anything but a regular file (FIFO,
 *     character or block device, directory, socket) is refused; an existing file must be
 *     owned by the effective user and have a single link (a hard link planted to another
 *     file, e.g. /etc/shadow, has two). Only then is it truncated (ftruncate) and set to 0600.
 *     Its (dev, inode) must still be what the path names (a swap during the open is refused).
 * Every refusal throws a `CaptureFileError` naming the path and the reason, and leaves the
 * file as it was.
 *
 * What this does not protect against: the effective user's own directories being changed by
 * the effective user (or root) at the same moment. Stricter than needed in one case: a
 * group-writable directory is refused even when the group holds only the user (user private
 * groups); capture to a directory only its owner can write.
 */

import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, lstatSync, openSync, readlinkSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";

/** Why a capture file was refused; `message` names the path and the reason. */
export class CaptureFileError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
  }
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_CLOEXEC } = constants as typeof constants & { O_CLOEXEC?: number };
const OPEN_FLAGS = O_WRONLY | O_NOFOLLOW | O_NONBLOCK | (O_CLOEXEC ?? 0);

const euid = (): number => (process.geteuid ? process.geteuid() : 0);

/** What kind of file a stat describes, for error messages. */
export function fileKind(st: Stats): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  if (st.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? String(e);

/** Step 1 for one directory: owned by root or `uid`, not writable by others unless sticky. */
function checkDirectory(path: string, at: string, st: Stats, uid: number): void {
  if (st.uid !== 0 && st.uid !== uid) {
    throw new CaptureFileError(path, `directory ${at} belongs to another user (uid ${st.uid}); refusing to write there`);
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new CaptureFileError(path, `directory ${at} is writable by other users and not sticky; refusing to write there`);
  }
}

/** Most symbolic links followed while resolving the directory part (Linux's MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Step 1: resolve the directory part of `path` one component at a time (lstat, readlink),
 * checking every directory passed through and refusing a symbolic link owned by another user.
 */
function resolveDirectory(path: string, uid: number): string {
  const queue = resolve(dirname(path)).split(sep).filter((p) => p !== "");
  let cur: string = sep;
  let links = 0;
  const stat = (at: string): Stats => {
    try {
      return lstatSync(at);
    } catch (e) {
      throw new CaptureFileError(path, `cannot examine ${at}: ${code(e)}`);
    }
  };
  checkDirectory(path, cur, stat(cur), uid);
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      cur = dirname(cur);
      continue;
    }
    const next = join(cur, c);
    const st = stat(next);
    if (st.isSymbolicLink()) {
      if (st.uid !== 0 && st.uid !== uid) {
        throw new CaptureFileError(path, `symbolic link ${next} belongs to another user (uid ${st.uid}); refusing to follow it`);
      }
      if (++links > MAX_LINKS) throw new CaptureFileError(path, "too many symbolic links in the directory part");
      const target = readlinkSync(next);
      if (target.startsWith(sep)) cur = sep;
      queue.unshift(...target.split(sep).filter((p) => p !== ""));
      continue;
    }
    if (!st.isDirectory()) throw new CaptureFileError(path, `${next} is ${fileKind(st)}, not a directory`);
    checkDirectory(path, next, st, uid);
    cur = next;
  }
  return cur;
}

/** O_PATH (Linux): a handle on the inode that opens nothing (node's fs.constants lacks it). */
const O_PATH = 0o10000000;

/**
 * Open the existing `file` for writing without ever opening anything but a regular file
 * (attack: `--pcap /dev/watchdog` or a FIFO with a reader; opening a device can act — start a
 * watchdog, rewind a tape — before fstat could refuse it). On Linux the name is first taken as
 * an O_PATH|O_NOFOLLOW handle, checked with fstat, and only then reopened for writing through
 * /proc/self/fd (the same inode: a swap of the name in between cannot change what is opened).
 * Elsewhere the plain O_NOFOLLOW|O_NONBLOCK open stays (step 3 refuses the rest).
 */
function openExisting(path: string, file: string): number {
  if (process.platform !== "linux") return openSync(file, OPEN_FLAGS);
  const handle = openSync(file, O_PATH | O_NOFOLLOW | (O_CLOEXEC ?? 0));
  try {
    const st = fstatSync(handle);
    if (st.isSymbolicLink()) throw new CaptureFileError(path, "is a symbolic link; refusing to follow it");
    if (!st.isFile()) throw new CaptureFileError(path, `is ${fileKind(st)}; only a new or regular file can hold a capture`);
    return openSync(`/proc/self/fd/${handle}`, OPEN_FLAGS & ~O_NOFOLLOW);
  } finally {
    closeSync(handle);
  }
}

/**
 * Open `path` for a capture (see the file comment); returns a descriptor positioned at 0 of an
 * empty regular file with mode 0600. Throws `CaptureFileError` on any refusal.
 */
export function openCaptureFile(path: string): number {
  const uid = euid();
  const name = basename(path);
  if (name === "" || name === "." || name === ".." || path.endsWith(sep)) throw new CaptureFileError(path, "does not name a file");
  const dir = resolveDirectory(path, uid);
  const file = join(dir, name);
  let fd: number;
  let created = true;
  try {
    fd = openSync(file, OPEN_FLAGS | O_CREAT | O_EXCL, 0o600);
  } catch (e) {
    if (code(e) !== "EEXIST") throw new CaptureFileError(path, `cannot create: ${code(e)}`);
    created = false;
    try {
      fd = openExisting(path, file);
    } catch (e2) {
      if (e2 instanceof CaptureFileError) throw e2;
      const c = code(e2);
      if (c === "ELOOP") throw new CaptureFileError(path, "is a symbolic link; refusing to follow it");
      if (c === "ENXIO") throw new CaptureFileError(path, "is a FIFO (no reader); refusing to write to it");
      if (c === "EISDIR") throw new CaptureFileError(path, "is a directory");
      throw new CaptureFileError(path, `cannot open: ${c}`);
    }
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new CaptureFileError(path, `is ${fileKind(st)}; only a new or regular file can hold a capture`);
    if (!created) {
      if (st.uid !== uid) throw new CaptureFileError(path, `exists and belongs to another user (uid ${st.uid}); refusing to overwrite it`);
      if (st.nlink !== 1) throw new CaptureFileError(path, `exists with ${st.nlink} hard links; refusing to overwrite it`);
    }
    let now: Stats;
    try {
      now = lstatSync(file);
    } catch (e) {
      throw new CaptureFileError(path, `changed while being opened: ${code(e)}`);
    }
    if (now.dev !== st.dev || now.ino !== st.ino) throw new CaptureFileError(path, "was replaced while being opened; refusing it");
    if (!created) {
      ftruncateSync(fd, 0);
      fchmodSync(fd, 0o600);
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    if (e instanceof CaptureFileError) throw e;
    throw new CaptureFileError(path, `cannot prepare: ${code(e)}`);
  }
}
