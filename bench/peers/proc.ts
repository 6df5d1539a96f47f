// Process helpers of the peers benchmark: run a command with a time limit, background processes with a log file, /proc figures (CPU ticks, RSS), polling, and a list of synchronous clean-ups run at exit and on SIGINT/SIGTERM.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { parseCpuTicks, parseVmRssKb } from "./parse.js";

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run argv to completion (SIGKILL after timeoutMs); never throws for a failing command. */
export function run(argv: string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      p.kill("SIGKILL");
    }, timeoutMs);
    p.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + e.message, timedOut });
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Run argv and return its stdout; throws with the command and its stderr when it fails. */
export async function runOk(argv: string[], timeoutMs = 60_000): Promise<string> {
  const r = await run(argv, timeoutMs);
  if (r.code !== 0 || r.timedOut) {
    const why = r.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit ${r.code}`;
    throw new Error(`\`${argv.join(" ")}\` ${why}: ${(r.stderr || r.stdout).trim().slice(-400)}`);
  }
  return r.stdout;
}

/** Synchronous command for set-up and clean-up; returns stdout, throws on failure. */
export function sh(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${argv[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`\`${argv.join(" ")}\` exit ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** stdout of a command, or "" when it fails (polling for something that may not exist yet). */
export function shTry(argv: string[]): string {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8", maxBuffer: 64 << 20 });
  return r.status === 0 ? r.stdout : "";
}

/** Like sh() but ignores failure (clean-up of things that may already be gone). */
export function shQuiet(argv: string[]): void {
  spawnSync(argv[0], argv.slice(1), { stdio: "ignore" });
}

export function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" }).status === 0;
}

/** argv run with the open-files limit raised to the hard limit (the PID stays the same: sh execs). */
export function withNofile(argv: string[]): string[] {
  return ["sh", "-c", 'ulimit -n "$(ulimit -Hn)"; exec "$@"', "sh", ...argv];
}

/** A background process whose output goes to a log file. */
export class Bg {
  readonly proc: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;

  constructor(
    readonly argv: string[],
    readonly logPath: string,
    cwd?: string,
  ) {
    const fd = openSync(logPath, "a");
    this.proc = spawn(argv[0], argv.slice(1), { stdio: ["ignore", fd, fd], cwd });
    closeSync(fd);
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      this.proc.on("error", (e) => {
        this.exit ??= { code: 127, signal: null };
        resolve();
        void e;
      });
    });
    const pid = this.proc.pid;
    // Only while it runs: a PID that has exited may be reused by someone else's process.
    if (pid !== undefined) onCleanup(() => this.alive && killQuiet(pid, "SIGKILL"));
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** How it ended and the tail of its log. */
  describe(): string {
    const how = this.exit ? (this.exit.signal ? `killed by ${this.exit.signal}` : `exited with status ${this.exit.code}`) : "running";
    return `${how}; log tail: ${logTail(this.logPath)}`;
  }

  /** Signal, wait up to graceMs, then SIGKILL. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 8000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill(signal);
    if (await within(this.exited, graceMs)) return;
    this.proc.kill("SIGKILL");
    await within(this.exited, 3000);
  }

  waitExit(ms: number): Promise<boolean> {
    return within(this.exited, ms);
  }
}

export function logTail(path: string, chars = 600): string {
  try {
    const t = readFileSync(path, "utf8").trim();
    return t ? t.slice(-chars) : "(empty)";
  } catch {
    return "(no log)";
  }
}

function within(p: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

export function killQuiet(pid: number, sig: NodeJS.Signals = "SIGTERM"): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll until fn returns a value other than undefined; throws after timeoutMs naming what was awaited. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

export const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** CPU seconds (user + system, all threads) a process has used so far. */
export function cpuSeconds(pid: number): number {
  return parseCpuTicks(readFileSync(`/proc/${pid}/stat`, "utf8")) / CLK_TCK;
}

export function rssMb(pid: number): number {
  return parseVmRssKb(readFileSync(`/proc/${pid}/status`, "utf8")) / 1024;
}

/** Child PIDs of a process (all its threads' children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of sh(["ls", `/proc/${pid}/task`]).split(/\s+/).filter(Boolean)) {
      const c = readFileSync(`/proc/${pid}/task/${t}/children`, "utf8");
      out.push(...c.split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    /* process gone */
  }
  return out;
}

const cleanups: (() => void)[] = [];

/** Register a synchronous clean-up; they run last-first at exit, on SIGINT/SIGTERM, or by runCleanups(). */
export function onCleanup(fn: () => void): void {
  cleanups.push(fn);
}

export function runCleanups(): void {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

export function installSignalCleanup(): void {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: cleaning up\n`);
      runCleanups();
      process.exit(128 + (sig === "SIGINT" ? 2 : 15));
    });
  }
  process.on("exit", runCleanups);
}
