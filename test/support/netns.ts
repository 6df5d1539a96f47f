/**
 * Test helpers for Linux network namespaces: make a uniquely named namespace (`ip netns add`),
 * run commands in it, and delete it again — in `after`, and as a last resort when the
 * process exits, so a failing test does not leave namespaces behind.
 *
 * `requireNetns()` registers a `before` hook that skips the whole suite, printing why, when
 * the process is not root or `ip netns` does not work.
 */

import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Netns {
  /** Name as `ip netns` knows it. */
  name: string;
  /** Path of the namespace file: /run/netns/<name>. */
  path: string;
  /** Run `cmd` inside the namespace; resolves with its exit code (never rejects on a non-zero code). */
  exec(cmd: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Delete the namespace (idempotent). */
  destroy(): Promise<void>;
}

/** Run a command; resolve with exit code and output (code -1 when it could not run or timed out). */
export function run(cmd: string[], timeoutMs = 10_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd[0], cmd.slice(1), { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      resolve({ code, stdout, stderr: stderr || (err && code === -1 ? String(err.message) : "") });
    });
  });
}

const live = new Set<string>();
let counter = 0;
let exitHookInstalled = false;

function deleteSync(name: string): void {
  try {
    execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
  } catch {
    // already gone
  }
}

/** Create a namespace named `<prefix>-<pid>-<n>` with its loopback up. */
export async function createNetns(prefix: string): Promise<Netns> {
  const name = `${prefix}-${process.pid}-${counter++}`;
  const added = await run(["ip", "netns", "add", name]);
  if (added.code !== 0) throw new Error(`ip netns add ${name} failed: ${added.stderr.trim()}`);
  live.add(name);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const n of live) deleteSync(n);
    });
  }
  await run(["ip", "-n", name, "link", "set", "lo", "up"]);
  return {
    name,
    path: `/run/netns/${name}`,
    exec: (cmd, timeoutMs) => run(["ip", "netns", "exec", name, ...cmd], timeoutMs),
    destroy: async () => {
      if (!live.delete(name)) return;
      const r = await run(["ip", "netns", "del", name]);
      if (r.code !== 0) throw new Error(`ip netns del ${name} failed: ${r.stderr.trim()}`);
    },
  };
}

/** Delete every namespace this process created and has not deleted yet. */
export async function destroyAllNetns(): Promise<void> {
  for (const name of [...live]) {
    live.delete(name);
    await run(["ip", "netns", "del", name]);
  }
}

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable(devices: string[] = []): string | undefined {
  if (process.platform !== "linux") return `needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "needs root (network namespaces)";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "`ip netns` is not available (install iproute2)";
  }
  for (const d of devices) if (!existsSync(d)) return `${d} is missing`;
  return undefined;
}

/**
 * Call inside a `describe`: skips the whole suite, printing the reason, when namespaces (and
 * the given device files) are unavailable; deletes leftover namespaces in `after`.
 */
export function requireNetns(devices: string[] = []): void {
  before(function () {
    const reason = netnsUnavailable(devices);
    if (reason !== undefined) {
      console.log(`    skipped: ${this.test?.parent?.fullTitle() ?? "suite"}: ${reason}`);
      this.skip();
    }
  });
  after(destroyAllNetns);
}
