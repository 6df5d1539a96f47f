/**
 * Running the built `skiff` command (bin/skiff.js, as `npx skiff` runs it) from tests: with a
 * timeout that kills it (a hang is reported as `signal: "SIGKILL"`), its output, how long it
 * took, and the namespaces a `skiff run` process created (named skiff-PID-N).
 */
import { spawn, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const bin = join(root, "bin", "skiff.js");

export interface SkiffResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  pid: number | undefined;
  ms: number;
}

export function skiff(args: string[], timeoutMs = 20_000): Promise<SkiffResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr, pid: p.pid, ms: Date.now() - t0 });
    });
  });
}

/** Namespaces of skiff processes; with `pid`, only that process's (names are skiff-PID-N). */
export function skiffNamespaces(pid?: number): string[] {
  return execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0])
    .filter((l) => l.startsWith(pid === undefined ? "skiff-" : `skiff-${pid}-`));
}
