/**
 * The control API: HTTP/1.1 with JSON bodies on a Unix socket that only its owner can use
 * (mode 0600, set through the umask while the socket file is created, then checked with chmod).
 *
 *   GET    /forwards                 list             POST /forwards {proto, hostAddr, hostPort, guestAddr, guestPort} → 201 {id, …}
 *   DELETE /forwards/{id}
 *   GET    /leases                   DHCP leases
 *   GET    /dns/records              POST /dns/records {name, ip} → 201     DELETE /dns/records/{name}
 *   GET    /stats                    counters per attachment and per protocol
 *   POST   /capture {path}           start a pcap capture                   DELETE /capture   stop it
 *   GET    /shares                   shared host directories                POST /shares {name, path, mode?: "ro"|"rw"} → 201
 *   DELETE /shares/{name}            stop sharing (guests already attached keep their open files)
 *
 * Malformed JSON, unknown fields, bad addresses or ports → 400 `{error}` naming the problem,
 * and nothing changes; unknown paths → 404; a known path with another method → 405.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import type { Logger } from "pino";
import type { ForwardManager } from "./manager.js";
import { validateForward } from "./spec.js";

/** The run-time state the API reads and changes; every part but `forwards` is optional. */
export interface ApiContext {
  forwards: ForwardManager;
  /** Guest address used when a POST /forwards body has none. */
  defaultGuest?: string;
  leases?: () => unknown[];
  dns?: {
    add(name: string, ip: string): void;
    remove(name: string): number;
    list(): unknown[];
  };
  stats?: () => unknown;
  capture?: {
    /** Start capturing to `path`; throws with a message when the file cannot be opened. */
    start(path: string): void;
    /** Stop; false when no capture was running. */
    stop(): boolean;
  };
  /** Host directories served to guests over 9P (src/share/). */
  shares?: {
    /** Throws with a message when the name is taken or the path is not a directory. */
    add(spec: { name: string; path: string; readOnly: boolean }): void;
    remove(name: string): boolean;
    list(): unknown[];
  };
  log?: Logger;
}

/** Largest request body accepted. */
const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const bad = (msg: string) => new HttpError(400, msg);

/** Parse a JSON body; 400 naming the problem when it is not JSON. */
function parseJson(text: string): unknown {
  if (text.trim() === "") throw bad("request body: expected JSON, got nothing");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw bad(`malformed JSON: ${(e as Error).message}`);
  }
}

/** A JSON object with exactly the allowed string fields. */
function stringFields(body: unknown, required: string[], optional: string[] = []): Record<string, string> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("expected a JSON object");
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) throw bad(`unknown field ${JSON.stringify(k)}`);
  for (const k of required) if (!(k in o)) throw bad(`${k}: missing`);
  for (const [k, v] of Object.entries(o)) if (typeof v !== "string" || v === "") throw bad(`${k}: expected a non-empty string`);
  return o as Record<string, string>;
}

export class ApiServer {
  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listen on the Unix socket `path` (mode 0600). A stale socket file left by a dead skiff is replaced. */
  static async listen(path: string, ctx: ApiContext): Promise<ApiServer> {
    await removeStaleSocket(path);
    const server = createServer((req, res) => void handle(ctx, req, res));
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) => reject(new Error(`--api-socket ${path}: ${e.code === "EADDRINUSE" ? "in use by a running process" : e.message}`)));
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
    return new ApiServer(server, path);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Unlink `path` if it is a socket nobody answers on; leave anything else for listen to refuse. */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
  if (!alive) unlinkSync(path);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on("data", (d: Buffer) => {
      n += d.length;
      if (n > MAX_BODY) {
        reject(new HttpError(413, `request body larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(d);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function handle(ctx: ApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? "/", "http://skiff");
    const [status, body] = await route(ctx, req.method ?? "GET", url.pathname, req);
    send(res, status, body);
  } catch (e) {
    if (e instanceof HttpError) return send(res, e.status, { error: e.message });
    ctx.log?.error({ err: (e as Error).message }, "api: internal error");
    send(res, 500, { error: (e as Error).message });
  }
}

type Result = [number, unknown];

async function route(ctx: ApiContext, method: string, path: string, req: IncomingMessage): Promise<Result> {
  const parts = path.split("/").filter((p) => p !== "").map(decodeURIComponent);
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) throw new HttpError(405, `${method} is not allowed on ${path} (allowed: ${methods.join(", ")})`);
  };
  const json = async () => parseJson(await readBody(req));
  const missing = (what: string) => new HttpError(404, `${what} is not available here`);

  if (parts[0] === "forwards" && parts.length === 1) {
    allow("GET", "POST");
    if (method === "GET") return [200, ctx.forwards.list()];
    const spec = validateForward(await json(), ctx.defaultGuest);
    if (typeof spec === "string") throw bad(spec);
    const why = ctx.forwards.checkGuest(spec.guestAddr);
    if (why !== undefined) throw bad(why);
    try {
      const [info] = await ctx.forwards.add([spec]);
      return [201, info];
    } catch (e) {
      throw bad((e as Error).message);
    }
  }
  if (parts[0] === "forwards" && parts.length === 2) {
    allow("DELETE");
    if (!(await ctx.forwards.remove(parts[1]))) throw new HttpError(404, `no forward with id ${JSON.stringify(parts[1])}`);
    return [200, { id: parts[1], removed: true }];
  }
  if (parts[0] === "leases" && parts.length === 1) {
    allow("GET");
    if (!ctx.leases) throw missing("DHCP");
    return [200, ctx.leases()];
  }
  if (parts[0] === "dns" && parts[1] === "records" && parts.length <= 3) {
    const dns = ctx.dns;
    if (!dns) throw missing("DNS");
    if (parts.length === 2) {
      allow("GET", "POST");
      if (method === "GET") return [200, dns.list()];
      const { name, ip } = stringFields(await json(), ["name", "ip"]);
      try {
        dns.add(name, ip);
      } catch (e) {
        throw bad((e as Error).message);
      }
      return [201, { name, ip }];
    }
    allow("DELETE");
    const n = dns.remove(parts[2]);
    if (n === 0) throw new HttpError(404, `no run-time DNS record named ${JSON.stringify(parts[2])}`);
    return [200, { name: parts[2], removed: n }];
  }
  if (parts[0] === "stats" && parts.length === 1) {
    allow("GET");
    return [200, ctx.stats ? ctx.stats() : { forwards: ctx.forwards.stats() }];
  }
  if (parts[0] === "capture" && parts.length === 1) {
    allow("POST", "DELETE");
    const cap = ctx.capture;
    if (!cap) throw missing("capture");
    if (method === "DELETE") {
      if (!cap.stop()) throw new HttpError(404, "no capture is running");
      return [200, { stopped: true }];
    }
    const { path: file } = stringFields(await json(), ["path"]);
    if (!file.startsWith("/")) throw bad(`path: expected an absolute path, got ${JSON.stringify(file)}`);
    try {
      cap.start(file);
    } catch (e) {
      throw bad(`path: ${(e as Error).message}`);
    }
    return [201, { path: file }];
  }
  if (parts[0] === "shares" && parts.length <= 2) {
    const shares = ctx.shares;
    if (!shares) throw missing("sharing");
    if (parts.length === 1) {
      allow("GET", "POST");
      if (method === "GET") return [200, shares.list()];
      const { name, path: dir, mode = "rw" } = stringFields(await json(), ["name", "path"], ["mode"]);
      if (mode !== "ro" && mode !== "rw") throw bad(`mode: expected "ro" or "rw", got ${JSON.stringify(mode)}`);
      if (!dir.startsWith("/")) throw bad(`path: expected an absolute path, got ${JSON.stringify(dir)}`);
      try {
        shares.add({ name, path: dir, readOnly: mode === "ro" });
      } catch (e) {
        throw bad((e as Error).message);
      }
      return [201, { name, path: dir, mode }];
    }
    allow("DELETE");
    if (!shares.remove(parts[1])) throw new HttpError(404, `no share named ${JSON.stringify(parts[1])}`);
    return [200, { name: parts[1], removed: true }];
  }
  throw new HttpError(404, `no such endpoint: ${path}`);
}
