/**
 * Paths a Unix socket is about to be bound to (QEMU stream and dgram, vmnet, vfkit, the control
 * API): one check that says what is wrong in words a user can act on, instead of the errno
 * bind() would give (a missing directory comes back as EACCES or ENOENT, a directory as
 * EADDRINUSE), and that replaces only a stale socket file, never a live one.
 */

import { connect } from "node:net";
import { lstatSync, statSync, unlinkSync, type Stats } from "node:fs";
import { dirname } from "node:path";

function stat(path: string, follow: boolean): Stats | undefined {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * The checks that need no I/O beyond stat: the directory exists and is one, and `path` is not a
 * directory or another kind of file. Returns true when a socket file is there already. Throws
 * an Error whose message starts with `label` (the option, say) and `path`.
 */
export function checkSocketPath(path: string, label?: string): boolean {
  const what = label === undefined ? path : `${label} ${path}`;
  const dir = dirname(path);
  const d = stat(dir, true);
  if (d === undefined) throw new Error(`${what}: directory ${dir} does not exist`);
  if (!d.isDirectory()) throw new Error(`${what}: ${dir} is not a directory`);
  const s = stat(path, false);
  if (s === undefined) return false;
  if (s.isDirectory()) throw new Error(`${what} is a directory (give the path of a socket file to create)`);
  if (!s.isSocket()) throw new Error(`${what} exists and is not a socket (skiff will not replace it)`);
  return true;
}

/**
 * Whether a process listens on (or, for a datagram socket, is bound to) the socket file `path`:
 * a stream connect succeeds, or fails with EPROTOTYPE (a live socket of another type) or EAGAIN
 * (a listener whose backlog is full); a file nobody holds gives ECONNREFUSED. Any other failure
 * (EACCES, say) rejects: skiff cannot tell, so it must not remove the file.
 */
export function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPROTOTYPE" || e.code === "EAGAIN") resolve(true);
      else if (e.code === "ECONNREFUSED" || e.code === "ENOENT") resolve(false);
      else reject(new Error(`${path}: cannot tell whether a running process holds it (${e.code ?? e.message})`));
    });
  });
}

/**
 * Make `path` ready for bind(): `checkSocketPath`, then a socket file that a running process
 * still holds is refused ("in use by a running process") and a stale one is removed.
 */
export async function prepareSocketPath(path: string, label?: string): Promise<void> {
  if (!checkSocketPath(path, label)) return;
  if (await socketInUse(path)) throw new Error(`${label === undefined ? path : `${label} ${path}`} is in use by a running process`);
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}
