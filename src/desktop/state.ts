/**
 * The state directory of one `skiff docker` instance ($XDG_STATE_HOME/skiff/docker, or
 * `--state-dir`): who owns it, what is in it, and whether the instance recorded there is alive.
 *
 *   daemon.pid    "PID QEMU_PID": written by the daemon (O_EXCL, 0600) once it owns the state;
 *                 QEMU_PID is 0 until QEMU runs
 *   docker.sock   dockerd's API (0600), forwarded to the guest's TCP port 2375
 *   api.sock      skiff's control API for this network (0600)
 *   net.sock      QEMU's -netdev stream connection to skiff
 *   data.img      the persistent disk (/var/lib/docker), sparse, made on first start
 *   console.log   the guest's serial console, dockerd's log included
 *   daemon.log    the background skiff process's own output
 *
 * One instance per directory: the pid file is created exclusively; a pid file whose process is
 * gone (or is no longer skiff: the pid was reused) is stale, and `cleanStale` removes it with
 * the sockets and kills a QEMU the dead daemon left running (only if its command line names
 * this directory's disk). The directory is created 0700 and must belong to the user; a
 * symlink in its place is refused, and files are never written through planted links.
 */

import { closeSync, constants, lstatSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface StatePaths {
  dir: string;
  pid: string;
  dockerSock: string;
  apiSock: string;
  netSock: string;
  dataDisk: string;
  consoleLog: string;
  daemonLog: string;
}

export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), ".local", "state");
  return join(base, "skiff", "docker");
}

export function statePaths(dir: string): StatePaths {
  return {
    dir,
    pid: join(dir, "daemon.pid"),
    dockerSock: join(dir, "docker.sock"),
    apiSock: join(dir, "api.sock"),
    netSock: join(dir, "net.sock"),
    dataDisk: join(dir, "data.img"),
    consoleLog: join(dir, "console.log"),
    daemonLog: join(dir, "daemon.log"),
  };
}

/** Create the state directory (0700) if needed; refuse a symlink or another user's directory. */
export function ensureStateDir(dir: string): StatePaths {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`state directory ${dir} is not a directory (a symlink is refused)`);
  if (process.getuid && st.uid !== process.getuid()) throw new Error(`state directory ${dir} belongs to another user`);
  return statePaths(dir);
}

/** Open `path` for writing, private and never through a link: O_NOFOLLOW, 0600; `exclusive` adds O_EXCL. */
export function openPrivate(path: string, opts: { exclusive?: boolean; append?: boolean } = {}): number {
  let flags = constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW;
  if (opts.exclusive) flags |= constants.O_EXCL;
  flags |= opts.append ? constants.O_APPEND : constants.O_TRUNC;
  return openSync(path, flags, 0o600);
}

export interface PidInfo {
  pid: number;
  qemuPid: number;
}

export function readPid(paths: StatePaths): PidInfo | undefined {
  let s: string;
  try {
    s = readFileSync(paths.pid, "utf8");
  } catch {
    return undefined;
  }
  const m = /^(\d+)(?: (\d+))?/.exec(s.trim());
  if (!m) return { pid: 0, qemuPid: 0 };
  return { pid: Number(m[1]), qemuPid: Number(m[2] ?? 0) };
}

/** Write the pid file; `exclusive` fails with EEXIST when another daemon holds it. */
export function writePid(paths: StatePaths, info: PidInfo, exclusive: boolean): void {
  if (!exclusive) rmSync(paths.pid, { force: true });
  const fd = openPrivate(paths.pid, { exclusive: true });
  try {
    writeSync(fd, `${info.pid} ${info.qemuPid}\n`);
  } finally {
    closeSync(fd);
  }
}

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The daemon's pid when one is running for this directory. A process is taken as ours when it
 * is alive and (where /proc exists) its command line is `… docker daemon … DIR …`.
 */
export function runningDaemon(paths: StatePaths): PidInfo | undefined {
  const info = readPid(paths);
  if (!info || !alive(info.pid)) return undefined;
  const cl = cmdline(info.pid);
  if (cl !== undefined && !(cl.includes(" docker daemon ") && cl.includes(paths.dir))) return undefined;
  return info;
}

/**
 * Remove what a dead daemon left (pid file, sockets) and stop its QEMU if still running.
 * Returns a line describing what was cleaned, or undefined when there was nothing.
 */
export function cleanStale(paths: StatePaths): string | undefined {
  const info = readPid(paths);
  if (info === undefined) {
    for (const s of [paths.dockerSock, paths.apiSock, paths.netSock]) rmSync(s, { force: true });
    return undefined;
  }
  if (runningDaemon(paths)) return undefined;
  let what = `stale state of daemon ${info.pid}`;
  if (info.qemuPid > 0 && alive(info.qemuPid) && (cmdline(info.qemuPid) ?? "").includes(paths.dataDisk)) {
    try {
      process.kill(info.qemuPid, "SIGKILL");
      what += `, its QEMU ${info.qemuPid} killed`;
    } catch {
      /* gone meanwhile */
    }
    // Until it is gone, it holds the disk's lock and a new QEMU could not open the disk.
    waitGone(info.qemuPid, 5000);
  }
  for (const s of [paths.pid, paths.dockerSock, paths.apiSock, paths.netSock]) rmSync(s, { force: true });
  return what;
}

/** A zombie (exited, not yet reaped) counts as gone. */
function zombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Wait (blocking, at most `ms`) until `pid` has exited. */
function waitGone(pid: number, ms: number): void {
  const t0 = Date.now();
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (alive(pid) && !zombie(pid) && Date.now() - t0 < ms) Atomics.wait(cell, 0, 0, 20);
}

export function isAlive(pid: number): boolean {
  return alive(pid);
}
