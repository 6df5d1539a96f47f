/**
 * The docker CLI context `skiff docker start` creates (issue 16), besides `DOCKER_HOST`: a
 * context named `skiff` (or `--context NAME`) whose docker endpoint is the state directory's
 * docker.sock, so `docker --context skiff …` or `docker context use skiff` reach skiff's dockerd.
 * Made and removed through the docker CLI itself (`docker context create|update|rm`, so it lands
 * wherever the user's CLI keeps its configuration: DOCKER_CONFIG or ~/.docker), never by writing
 * the CLI's files. The names are recorded in the state directory's `context` file (one a line) so
 * `stop` removes the ones made for this instance that still point at it — unless one is the CLI's
 * current context (removing it would leave the CLI pointing at nothing; kept, it says dockerd is
 * not reachable until the next `start`).
 */

import { execFileSync } from "node:child_process";
import { closeSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { openPrivate, type StatePaths } from "./state.js";

export interface ContextOptions {
  /** The docker CLI (default `docker` from PATH). */
  docker?: string;
  env?: NodeJS.ProcessEnv;
}

function cli(args: string[], opts: ContextOptions): { ok: boolean; out: string } {
  try {
    const out = execFileSync(opts.docker ?? "docker", args, { env: opts.env ?? process.env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
    return { ok: true, out };
  } catch (e) {
    const err = e as { code?: string; stderr?: string; message: string };
    return { ok: false, out: err.code === "ENOENT" ? "the docker CLI is not installed" : (err.stderr || err.message).trim() };
  }
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$/;

export function checkContextName(name: string): string {
  if (!NAME.test(name) || name === "default") throw new Error(`--context ${name}: a context name is two or more letters, digits and _.+- (not "default")`);
  return name;
}

function contextFile(paths: StatePaths): string {
  return join(paths.dir, "context");
}

/** The docker endpoint a context points at, or undefined when there is no such context. */
export function contextHost(name: string, opts: ContextOptions = {}): string | undefined {
  const r = cli(["context", "inspect", "--format", "{{.Endpoints.docker.Host}}", name], opts);
  return r.ok ? r.out.trim() : undefined;
}

/**
 * Create (or point again) context `name` at `paths.dockerSock` and record it. Returns a line
 * for the user, or throws with the CLI's message.
 */
export function ensureContext(paths: StatePaths, name: string, opts: ContextOptions = {}): string {
  const host = `unix://${paths.dockerSock}`;
  const have = contextHost(name, opts);
  if (have !== host) {
    const verb = have === undefined ? "create" : "update";
    const r = cli(["context", verb, "--description", `skiff docker (${paths.dir})`, "--docker", `host=${host}`, name], opts);
    if (!r.ok) throw new Error(`docker context ${verb} ${name}: ${r.out}`);
  }
  const names = [...new Set([...recorded(paths), name])];
  const fd = openPrivate(contextFile(paths));
  try {
    writeSync(fd, names.map((n) => n + "\n").join(""));
  } finally {
    closeSync(fd);
  }
  return `docker context ${name} points at ${host} (docker --context ${name} …, or docker context use ${name})`;
}

function recorded(paths: StatePaths): string[] {
  try {
    return readFileSync(contextFile(paths), "utf8").split("\n").filter((n) => NAME.test(n));
  } catch {
    return [];
  }
}

/**
 * Remove the contexts recorded for this state directory that still point at its socket, except
 * the CLI's current one. Returns lines for the user (none when there was nothing to do).
 */
export function removeContexts(paths: StatePaths, opts: ContextOptions = {}): string[] {
  const names = recorded(paths);
  rmSync(contextFile(paths), { force: true });
  const lines: string[] = [];
  let current: string | undefined;
  for (const name of names) {
    if (contextHost(name, opts) !== `unix://${paths.dockerSock}`) continue;
    current ??= cli(["context", "show"], opts).out.trim();
    if (current === name) {
      lines.push(`docker context ${name} kept: it is the current context (docker context use default, then docker context rm ${name})`);
      continue;
    }
    const r = cli(["context", "rm", name], opts);
    lines.push(r.ok ? `docker context ${name} removed` : `docker context rm ${name}: ${r.out}`);
  }
  return lines;
}
