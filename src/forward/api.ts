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
 *   GET    /capture                  the capture's state: running, path, packets written and dropped, error
 *   GET    /shares                   shared host directories                POST /shares {name, path, mode?: "ro"|"rw"} → 201
 *   DELETE /shares/{name}            stop sharing (guests already attached keep their open files)
 *
 * Malformed JSON, unknown fields, bad addresses or ports, a malformed percent-encoding in the
 * path → 400 `{error}` naming the problem, and nothing changes; unknown paths → 404; a known
 * path with another method → 405; a body over 64 KiB → 413, then the connection is closed (the
 * rest of the body is read and discarded, so the client sees the answer, not a reset). A
 * capture path that is refused (a link, a FIFO, a device, another user's file: see
 * src/pcap/capture-file.ts) → 400 with the reason.
 *
 * Resources (RFC 9112 §9.8 lets a server close idle connections): at most `maxConnections`
 * connections at once (default 64). At the cap a new connection takes the place of the oldest
 * one with no request in progress (api-connections.ts), so slow or idle clients cannot lock the
 * API out; only when all have a request in progress is the new one closed. Both are counted
 * (`connectionsEvicted`, `connectionsRefused` in GET /stats's `api`). A
 * connection that has not sent its request headers within `headersTimeoutMs` (default 10 s),
 * or stays idle for `idleTimeoutMs` (default 30 s), is closed, so slow or silent clients
 * cannot hold the slots.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { chmodSync } from "node:fs";
import { prepareSocketPath } from "../common/socket-path.js";
import { ApiConnections, ApiCounters } from "./api-connections.js";

export type { ApiCounters } from "./api-connections.js";
import type { Logger } from "pino";
import type { ForwardManager } from "./manager.js";
import { validateForward } from "./spec.js";

/** The run-time state the API reads and changes; every part but `forwards` is optional. */
export interface ApiContext {
  forwards: ForwardManager;
  /** Guest address used when a POST /forwards body has none. */
  defaultGuest?: string;
  /** The default guest's IPv6 address: TCP forwards on an IPv6 host address go there (spec.ts `defaultGuestFor`). */
  defaultGuest6?: string;
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
    /** The capture's state (GET /capture). */
    status?(): unknown;
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

/** Bounds of the API server's resources (see the file comment). */
export interface ApiLimits {
  /** Connections open at once; default 64. */
  maxConnections?: number;
  /** Time allowed for a request's headers, in ms; default 10 000. */
  headersTimeoutMs?: number;
  /** Time a connection may stay idle (no byte either way), in ms; default 30 000. */
  idleTimeoutMs?: number;
}

export const DEFAULT_API_LIMITS: Required<ApiLimits> = { maxConnections: 64, headersTimeoutMs: 10_000, idleTimeoutMs: 30_000 };

/** Largest request body accepted. */
const MAX_BODY = 64 * 1024;
/** How long the rest of a too-large body is read (and discarded) after the 413. */
const DISCARD_MS = 2_000;

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
    readonly counters: ApiCounters,
  ) {}

  /** Listen on the Unix socket `path` (mode 0600). A stale socket file left by a dead skiff is replaced. */
  static async listen(path: string, ctx: ApiContext, limits: ApiLimits = {}): Promise<ApiServer> {
    const lim = { ...DEFAULT_API_LIMITS, ...limits };
    for (const [k, v] of Object.entries(lim)) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`api ${k} must be a positive integer, got ${v}`);
    }
    await prepareSocketPath(path, "--api-socket");
    const counters = new ApiCounters();
    const slots = new ApiConnections(lim.maxConnections, counters);
    const server = createServer(
      {
        headersTimeout: lim.headersTimeoutMs,
        requestTimeout: lim.headersTimeoutMs + lim.idleTimeoutMs,
        keepAliveTimeout: Math.min(5_000, lim.idleTimeoutMs),
        // How often Node checks the two timeouts above.
        connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(lim.headersTimeoutMs / 4))),
      },
      (req, res) => {
        const done = slots.requestStarted(req.socket);
        res.once("close", done);
        void handle(ctx, counters, req, res);
      },
    );
    server.on("connection", (sock) => slots.admit(sock));
    server.setTimeout(lim.idleTimeoutMs, (sock) => sock.destroy());
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
    server.on("error", (e) => ctx.log?.warn({ err: e.message }, "control API: server error"));
    return new ApiServer(server, path, counters);
  }

  /** Be told of the server's errors after it listens (without a handler they are ignored, never thrown). */
  onError(handler: (err: Error) => void): void {
    this.server.on("error", handler);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** A body over MAX_BODY: 413 is answered, then the connection closes (`handle`). */
class TooLarge extends HttpError {}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const declared = Number(req.headers["content-length"]);
    if (declared > MAX_BODY) return reject(new TooLarge(413, `request body larger than ${MAX_BODY} bytes`));
    req.on("data", (d: Buffer) => {
      if (n > MAX_BODY) return;
      n += d.length;
      if (n > MAX_BODY) {
        chunks.length = 0;
        reject(new TooLarge(413, `request body larger than ${MAX_BODY} bytes`));
      } else chunks.push(d);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body) + "\n";
  const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(text) };
  if (close) headers.connection = "close";
  res.writeHead(status, headers);
  res.end(text);
}

/**
 * After a 413: answer, half-close, and read (discarding) what the client still sends for a
 * while, so it sees the answer rather than a reset; then close.
 */
function refuseBody(req: IncomingMessage, res: ServerResponse, e: HttpError): void {
  const sock = req.socket;
  // Node destroys a "connection: close" socket once the answer is out; unread bytes of the
  // body would then reach the client as ECONNRESET. End our side only; the timer destroys.
  (sock as { destroySoon?: () => void }).destroySoon = () => sock.end();
  send(res, e.status, { error: e.message }, true);
  req.removeAllListeners("data");
  req.resume();
  const timer = setTimeout(() => sock.destroy(), DISCARD_MS);
  timer.unref();
  sock.once("close", () => clearTimeout(timer));
}

async function handle(ctx: ApiContext, counters: ApiCounters, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? "/", "http://skiff");
    const [status, body] = await route(ctx, counters, req.method ?? "GET", url.pathname, req);
    send(res, status, body);
  } catch (e) {
    if (e instanceof TooLarge) return refuseBody(req, res, e);
    if (e instanceof HttpError) return send(res, e.status, { error: e.message });
    ctx.log?.error({ err: (e as Error).message }, "api: internal error");
    send(res, 500, { error: (e as Error).message });
  }
}

type Result = [number, unknown];

/** One path segment, percent-decoded (RFC 3986 §2.1); 400 when the encoding is malformed. */
function decodeSegment(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw bad(`malformed percent-encoding in the path segment ${JSON.stringify(p)}`);
  }
}

async function route(ctx: ApiContext, counters: ApiCounters, method: string, path: string, req: IncomingMessage): Promise<Result> {
  const parts = path.split("/").filter((p) => p !== "").map(decodeSegment);
  const allow = (...methods: string[]) => {
    if (!methods.includes(method)) throw new HttpError(405, `${method} is not allowed on ${path} (allowed: ${methods.join(", ")})`);
  };
  const json = async () => parseJson(await readBody(req));
  const missing = (what: string) => new HttpError(404, `${what} is not available here`);

  if (parts[0] === "forwards" && parts.length === 1) {
    allow("GET", "POST");
    if (method === "GET") return [200, ctx.forwards.list()];
    const spec = validateForward(await json(), ctx.defaultGuest, ctx.defaultGuest6);
    if (typeof spec === "string") throw bad(spec);
    const why = ctx.forwards.checkGuest(spec.guestAddr, spec.guestAddrFallback);
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
    const stats = ctx.stats ? ctx.stats() : { forwards: ctx.forwards.stats() };
    return [200, { ...(stats as object), api: counters.snapshot() }];
  }
  if (parts[0] === "capture" && parts.length === 1) {
    allow("GET", "POST", "DELETE");
    const cap = ctx.capture;
    if (!cap) throw missing("capture");
    if (method === "GET") return [200, cap.status ? cap.status() : {}];
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
