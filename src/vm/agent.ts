/**
 * The guest's file-event agent (`native/guest-agent.c`, src/share/events.ts explains its part):
 * its source, found from this module up to the package root (the package ships `native/*.c`),
 * and its static build for the guest image with the host's C compiler (`cc -static -Os`; Debian:
 * gcc and libc6-dev, which scripts/setup.sh installs with g++). Without a compiler the image is
 * built without the agent and shares work without file events.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the image puts the agent, and the port it subscribes on (src/share/event-service.ts). */
export const AGENT_PATH = "sbin/skiff-agent";
export const AGENT_SOURCE = join("native", "guest-agent.c");

/** The agent's source file, or undefined when this installation has none. */
export function agentSourcePath(start = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    const p = join(dir, AGENT_SOURCE);
    if (existsSync(p)) return p;
    if (existsSync(join(dir, "package.json")) || dirname(dir) === dir) return undefined;
  }
}

/** A hash of the agent's source (part of the image builder's hash: a changed agent means a new image). */
export function agentSourceHash(): string {
  const p = agentSourcePath();
  return p === undefined ? "none" : createHash("sha256").update(readFileSync(p)).digest("hex");
}

/** Compile the agent statically into `out`; the reason when it cannot be built. */
export function buildAgent(out: string): string | undefined {
  const src = agentSourcePath();
  if (src === undefined) return `${AGENT_SOURCE} is not in this installation`;
  try {
    execFileSync(process.env.CC ?? "cc", ["-static", "-Os", "-s", "-o", out, src], { stdio: ["ignore", "ignore", "pipe"] });
    return undefined;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    return err.code === "ENOENT" ? "no C compiler (cc): install gcc and libc6-dev" : `cc failed: ${(err.stderr?.toString() ?? err.message).trim().split("\n").pop()}`;
  }
}
