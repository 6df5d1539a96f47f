/**
 * slirp4netns's API socket (`--api-socket PATH`, slirp4netns(1) "API SOCKET"), served by
 * `skiff slirp4netns` for the tools that publish ports through it (RootlessKit's
 * `--port-driver=slirp4netns`, Podman's `port_handler=slirp4netns`).
 *
 * One request per connection: the client writes one JSON object and shuts down its write side;
 * we answer with one JSON object and close. Requests (QMP-like; as slirp4netns 1.2's api.c
 * answers them):
 *   {"execute":"add_hostfwd","arguments":{"proto":"tcp"|"udp","host_addr"?,"host_port","guest_addr"?,"guest_port"}}
 *       -> {"return":{"id":N}}   (ids from 1; host_addr defaults to 0.0.0.0, guest_addr to the
 *          guest's address that --configure uses)
 *   {"execute":"list_hostfwd"} -> {"entries":[{"id","proto","host_addr","host_port","guest_addr","guest_port"}]}
 *       (slirp4netns puts the entries at the top level, not under "return", whatever its man page says)
 *   {"execute":"remove_hostfwd","arguments":{"id":N}} -> {"return":{}}
 * Errors: {"error":{"desc":"bad request: ..."}} with slirp4netns's wording. A request of 4096
 * bytes or more is refused ("too large message"); connections are bounded in number and time.
 */

import { createServer, type Server, type Socket } from "node:net";
import { chmodSync } from "node:fs";
import type { Logger } from "pino";
import { parseIpv4Address } from "../common/addr.js";
import { prepareSocketPath } from "../common/socket-path.js";
import type { ForwardManager } from "./manager.js";
import type { ForwardProto } from "./spec.js";

/** slirp4netns's request buffer: a request must be shorter. */
export const MAX_REQUEST = 4096;
const MAX_CONNECTIONS = 16;
const REQUEST_TIMEOUT_MS = 10_000;

interface Entry {
  id: number;
  managerId: string;
  proto: ForwardProto;
  host_addr: string;
  host_port: number;
  guest_addr: string;
  guest_port: number;
}

function bad(desc: string): string {
  return JSON.stringify({ error: { desc: `bad request: ${desc}` } });
}

/** The request handler, apart from the socket (tests drive it directly). */
export class SlirpApi {
  private readonly entries = new Map<number, Entry>();
  private nextId = 1;

  constructor(
    private readonly forwards: ForwardManager,
    /** The guest address a request without guest_addr forwards to. */
    private readonly defaultGuest: string,
  ) {}

  /** Answer one request (its whole text). */
  async handle(text: string): Promise<string> {
    if (Buffer.byteLength(text) >= MAX_REQUEST) return bad("too large message");
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return bad("cannot parse JSON");
    }
    if (typeof req !== "object" || req === null || Array.isArray(req)) return bad("json_object() failed");
    const r = req as { execute?: unknown; arguments?: unknown };
    if (typeof r.execute !== "string") return bad("no execute found");
    const args = typeof r.arguments === "object" && r.arguments !== null ? (r.arguments as Record<string, unknown>) : {};
    switch (r.execute) {
      case "add_hostfwd":
        return this.add(args);
      case "list_hostfwd":
        return JSON.stringify({ entries: [...this.entries.values()].map(({ managerId: _m, ...e }) => e) });
      case "remove_hostfwd":
        return this.remove(args);
      default:
        return bad("unknown execute");
    }
  }

  private async add(a: Record<string, unknown>): Promise<string> {
    const proto = a.proto;
    if (proto !== "tcp" && proto !== "udp") return bad("add_hostfwd: bad arguments.proto");
    const hostAddr = a.host_addr === undefined || a.host_addr === "" ? "0.0.0.0" : a.host_addr;
    if (typeof hostAddr !== "string" || parseIpv4Address(hostAddr) === undefined) return bad("add_hostfwd: bad arguments.host_addr");
    const hostPort = a.host_port;
    if (!isPort(hostPort)) return bad("add_hostfwd: bad arguments.host_port");
    const guestAddr = a.guest_addr === undefined || a.guest_addr === "" ? this.defaultGuest : a.guest_addr;
    if (typeof guestAddr !== "string" || parseIpv4Address(guestAddr) === undefined) return bad("add_hostfwd: bad arguments.guest_addr");
    const guestPort = a.guest_port;
    if (!isPort(guestPort)) return bad("add_hostfwd: bad arguments.guest_port");
    let managerId: string;
    try {
      const [info] = await this.forwards.add([{ proto, hostAddr, hostPort, guestAddr, guestPort }]);
      managerId = info.id;
    } catch (e) {
      // slirp4netns says "slirp_add_hostfwd failed"; the reason is added for people reading it.
      return bad(`add_hostfwd: slirp_add_hostfwd failed (${(e as Error).message})`);
    }
    const id = this.nextId++;
    this.entries.set(id, { id, managerId, proto, host_addr: hostAddr, host_port: hostPort, guest_addr: guestAddr, guest_port: guestPort });
    return JSON.stringify({ return: { id } });
  }

  private async remove(a: Record<string, unknown>): Promise<string> {
    const e = typeof a.id === "number" ? this.entries.get(a.id) : undefined;
    if (e === undefined) return bad("remove_hostfwd: bad arguments.id");
    this.entries.delete(e.id);
    await this.forwards.remove(e.managerId);
    return JSON.stringify({ return: {} });
  }
}

function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/** sun_path holds 108 bytes with the terminating NUL (unix(7)); Node would truncate a longer path silently. */
export function checkApiSocketLength(path: string): void {
  const n = Buffer.byteLength(path);
  if (n >= 108) throw new Error(`--api-socket ${path}: the path is too long (${n} bytes; a Unix socket path has at most 107)`);
}

/** The API on a Unix socket (mode 0600). */
export class SlirpApiServer {
  private constructor(private readonly server: Server) {}

  static async listen(path: string, api: SlirpApi, log: Logger): Promise<SlirpApiServer> {
    checkApiSocketLength(path);
    await prepareSocketPath(path, "--api-socket");
    const server = createServer((sock) => serve(sock, api, log));
    server.maxConnections = MAX_CONNECTIONS;
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e) => reject(new Error(`--api-socket ${path}: ${e.message}`)));
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    try {
      chmodSync(path, 0o600);
    } catch (e) {
      server.close();
      throw e;
    }
    return new SlirpApiServer(server);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Read until a whole JSON value or the client's EOF (or the size bound), answer, close. */
function serve(sock: Socket, api: SlirpApi, log: Logger): void {
  const chunks: Buffer[] = [];
  let n = 0;
  let done = false;
  sock.setTimeout(REQUEST_TIMEOUT_MS, () => sock.destroy());
  sock.on("error", () => {});
  const answer = (text: string | undefined) => {
    if (done) return;
    done = true;
    void (text === undefined ? api.handle(Buffer.concat(chunks).toString("utf8")) : Promise.resolve(text)).then((reply) => {
      log.debug({ reply }, "api reply");
      sock.end(reply);
    });
  };
  sock.on("data", (d: Buffer) => {
    if (done) return;
    n += d.length;
    if (n >= MAX_REQUEST) return answer(bad("too large message"));
    chunks.push(d);
    // slirp4netns answers after one read; a client that never shuts down its write side gets
    // its answer as soon as the request is a whole JSON value.
    const text = Buffer.concat(chunks).toString("utf8");
    try {
      JSON.parse(text);
    } catch {
      return;
    }
    answer(undefined);
  });
  sock.on("end", () => answer(undefined));
}
