/**
 * `skiff docker start | stop | status` as functions: start the daemon (src/desktop/daemon.ts)
 * as a detached process and wait until dockerd answers `GET /_ping` through `docker.sock`; stop
 * it with SIGTERM and wait until its pid file and sockets are gone; report its state.
 *
 * `start` with a daemon already running for the state directory reports it (no second
 * instance); a stale state (the daemon died) is cleaned first.
 */

import { spawn } from "node:child_process";
import { closeSync, existsSync } from "node:fs";
import { request } from "node:http";
import { cleanStale, ensureStateDir, isAlive, openPrivate, runningDaemon, type StatePaths } from "./state.js";

/** `GET /_ping` on dockerd's socket: true when it answers 200 "OK" within `timeoutMs`. */
export function pingDocker(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d.slice(0, 64)));
      res.on("end", () => resolve(res.statusCode === 200 && body.trim() === "OK"));
      res.on("error", () => resolve(false));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

export interface StartOptions {
  stateDir: string;
  /** The command that runs `skiff docker daemon` (argv[0] is the executable); its options are appended. */
  daemonCommand: string[];
  /** Options passed to the daemon (--cpus …). */
  daemonArgs: string[];
  /** Give up waiting for dockerd after this long (ms). */
  timeoutMs: number;
  /** Progress lines (waiting…). */
  progress?: (s: string) => void;
}

export type StartResult =
  | { kind: "started"; paths: StatePaths; pid: number; ms: number }
  | { kind: "running"; paths: StatePaths; pid: number };

/** Start the daemon and wait for dockerd; throws with the daemon's last log lines if it fails. */
export async function startDocker(opts: StartOptions): Promise<StartResult> {
  const paths = ensureStateDir(opts.stateDir);
  const running = runningDaemon(paths);
  if (running) return { kind: "running", paths, pid: running.pid };
  const stale = cleanStale(paths);
  if (stale) opts.progress?.(`cleaned ${stale}`);
  const t0 = Date.now();
  const logFd = openPrivate(paths.daemonLog);
  const [cmd, ...pre] = opts.daemonCommand;
  const child = spawn(cmd, [...pre, "docker", "daemon", "--state-dir", paths.dir, ...opts.daemonArgs], {
    detached: true,
    stdio: ["ignore", logFd, logFd],
  });
  closeSync(logFd);
  let exited: number | null | undefined;
  child.once("exit", (code) => (exited = code));
  child.unref();
  const pid = child.pid ?? 0;
  let lastNote = t0;
  for (;;) {
    if (exited !== undefined) throw new Error(`the daemon exited (status ${exited}) before dockerd answered; see ${paths.daemonLog} and ${paths.consoleLog}`);
    if (existsSync(paths.dockerSock) && (await pingDocker(paths.dockerSock))) return { kind: "started", paths, pid, ms: Date.now() - t0 };
    if (Date.now() - t0 > opts.timeoutMs) {
      await stopDocker(paths, 30_000);
      throw new Error(`dockerd did not answer within ${Math.round(opts.timeoutMs / 1000)} s (stopped again); see ${paths.consoleLog}`);
    }
    if (Date.now() - lastNote >= 10_000) {
      lastNote = Date.now();
      opts.progress?.(`waiting for dockerd (${Math.round((lastNote - t0) / 1000)} s)`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Stop the daemon of `paths` (SIGTERM: it powers the guest off cleanly), waiting up to
 * `timeoutMs` for it to exit, then SIGKILL it and clean its state. False when none was running.
 */
export async function stopDocker(paths: StatePaths, timeoutMs = 60_000): Promise<boolean> {
  const info = runningDaemon(paths);
  if (!info) {
    cleanStale(paths);
    return false;
  }
  process.kill(info.pid, "SIGTERM");
  const t0 = Date.now();
  while (isAlive(info.pid) && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(info.pid)) {
    process.kill(info.pid, "SIGKILL");
    while (isAlive(info.pid)) await new Promise((r) => setTimeout(r, 50));
  }
  // A daemon killed before its cleanup leaves its QEMU and files: cleaned like a stale state.
  cleanStale(paths);
  return true;
}

export interface DockerStatus {
  running: boolean;
  pid?: number;
  qemuPid?: number;
  dockerSock: string;
  /** dockerd answered /_ping. */
  answering: boolean;
}

export async function dockerStatus(paths: StatePaths): Promise<DockerStatus> {
  const info = runningDaemon(paths);
  if (!info) return { running: false, dockerSock: paths.dockerSock, answering: false };
  return { running: true, pid: info.pid, qemuPid: info.qemuPid, dockerSock: paths.dockerSock, answering: await pingDocker(paths.dockerSock) };
}
