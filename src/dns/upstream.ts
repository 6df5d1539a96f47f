/**
 * Forwarding queries to the host's resolvers (the nameservers of resolv.conf, or servers
 * given explicitly).
 *
 * The client's message is sent as it is, with only its ID replaced by a fresh random one
 * (RFC 5452 §9.2: random IDs and, from a fresh socket per query, random source ports); the
 * answer's bytes come back untouched apart from the ID restored, so every record type, EDNS
 * options and DNSSEC records pass through whatever they are.
 *
 * - A reply is accepted only from the server asked (the UDP socket is connected), with the
 *   ID sent, QR set, and the same question (name case-insensitively, RFC 4343; type and class
 *   exactly; RFC 5452 §4.1). A reply with no question is accepted only with an error rcode.
 *   Anything else is a stray, counted and ignored.
 * - Servers are tried in order, each for `timeoutMs` (default 2000); a late answer from an
 *   earlier server is still taken while the query lasts. A server that refuses (ICMP port
 *   unreachable) is skipped at once. When no server answered: "timeout" (the resolver
 *   answers SERVFAIL).
 * - An answer with TC (RFC 1035 §4.2.1) is asked again over TCP (RFC 7766 §5) of the same
 *   server; if that fails the truncated answer stands (the client retries over TCP).
 * - At most `maxInFlight` queries at once (default 256); beyond it a query is dropped and
 *   counted, so a flood cannot grow memory.
 */

import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createConnection, isIPv6, type Socket as TcpSocket } from "node:net";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { getU16, setU16 } from "../common/bytes.js";
import type { ResolvConfFile } from "./hosts.js";
import { processClock, type NetworkClock, type Timeout } from "../common/clock.js";
import { Counters } from "../common/counters.js";

export interface UpstreamServer {
  host: string;
  port: number;
}

export type UpstreamResult =
  | { kind: "answer"; bytes: Uint8Array }
  | { kind: "timeout" }
  | { kind: "no-servers" }
  | { kind: "dropped" };

/** What the resolver forwards through (tests may substitute their own). */
export interface DnsUpstream {
  /**
   * Forward `query` (a valid message whose one question ends at `questionEnd`); resolves to
   * the answer with the query's ID. Never rejects.
   */
  forward(query: Uint8Array, questionEnd: number): Promise<UpstreamResult>;
}

export interface UpstreamOptions {
  /** Servers, or a function giving the current list (e.g. from resolv.conf). */
  servers: readonly UpstreamServer[] | (() => readonly UpstreamServer[]);
  /** Per server and per TCP retry (ms). */
  timeoutMs?: number;
  maxInFlight?: number;
  /** The network's clock and timer driver (the stack's `timers`); Node's timers without a network. */
  clock?: NetworkClock;
  log?: Logger;
}

export class UpstreamCounters extends Counters {
  queries = 0;
  answers = 0;
  udpSent = 0;
  tcpRetries = 0;
  tcpAnswers = 0;
  tcpFailures = 0;
  timeouts = 0;
  noServers = 0;
  dropped = 0;
  strays = 0;
  sendErrors = 0;
}

/** The nameservers of a resolv.conf file, port 53. */
export function serversFromResolvConf(file: ResolvConfFile): () => UpstreamServer[] {
  return () => file.nameservers.map((host) => ({ host, port: 53 }));
}

const DNS_HEADER_LEN = 12;
const MAX_TCP_MESSAGE = 65535;

/** A copy of `query` with ID `id`. */
function withId(query: Uint8Array, id: number): Uint8Array {
  const m = Uint8Array.from(query);
  setU16(m, 0, id);
  return m;
}

/** ASCII case folding of one byte (RFC 4343). */
function fold(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
}

/**
 * Whether `reply` answers the query sent with ID `id` (RFC 5452 §4.1): same ID, QR set, same
 * opcode, and the same question (bytes 12..questionEnd; the name case-insensitively).
 */
export function replyMatches(reply: Uint8Array, id: number, query: Uint8Array, questionEnd: number): boolean {
  if (reply.length < DNS_HEADER_LEN || getU16(reply, 0) !== id) return false;
  if ((reply[2] & 0x80) === 0 || (reply[2] & 0x78) !== (query[2] & 0x78)) return false;
  const qd = getU16(reply, 4);
  if (qd === 0) return (reply[3] & 0x0f) !== 0;
  if (qd !== 1 || reply.length < questionEnd) return false;
  const nameEnd = questionEnd - 4;
  for (let i = DNS_HEADER_LEN; i < nameEnd; i++) if (fold(reply[i]) !== fold(query[i])) return false;
  for (let i = nameEnd; i < questionEnd; i++) if (reply[i] !== query[i]) return false;
  return true;
}

function randomId(): number {
  return randomBytes(2).readUInt16BE(0);
}

export class UpstreamForwarder implements DnsUpstream {
  readonly counters = new UpstreamCounters();
  readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly servers: () => readonly UpstreamServer[];
  private readonly log: Logger | undefined;
  private readonly clock: NetworkClock;
  private inFlight = 0;
  private warnedNoServers = false;
  /** Ends each exchange under way (as a failure); used by `close`. */
  private readonly aborts = new Set<() => void>();
  private closed = false;

  constructor(opts: UpstreamOptions) {
    const s = opts.servers;
    this.servers = typeof s === "function" ? s : () => s;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.maxInFlight = opts.maxInFlight ?? 256;
    this.clock = opts.clock ?? processClock;
    this.log = opts.log;
  }

  get pending(): number {
    return this.inFlight;
  }

  async forward(query: Uint8Array, questionEnd: number): Promise<UpstreamResult> {
    const c = this.counters;
    c.queries++;
    if (this.closed) return { kind: "dropped" };
    const servers = this.servers();
    if (servers.length === 0) {
      c.noServers++;
      if (!this.warnedNoServers) {
        this.warnedNoServers = true;
        this.log?.warn("dns: no upstream nameservers (resolv.conf lists none); forwarded queries get SERVFAIL");
      }
      return { kind: "no-servers" };
    }
    this.warnedNoServers = false;
    if (this.inFlight >= this.maxInFlight) {
      c.dropped++;
      return { kind: "dropped" };
    }
    this.inFlight++;
    try {
      const got = await this.overUdp(servers, query, questionEnd);
      if (got === undefined) {
        c.timeouts++;
        return { kind: "timeout" };
      }
      let bytes = got.bytes;
      if (bytes[2] & 0x02) {
        // RFC 1035 §4.2.1 / RFC 7766 §5: truncated over UDP — ask the same server over TCP.
        c.tcpRetries++;
        const full = await this.overTcp(got.server, query, questionEnd);
        if (full !== undefined) {
          c.tcpAnswers++;
          bytes = full;
        } else c.tcpFailures++;
      }
      c.answers++;
      setU16(bytes, 0, getU16(query, 0));
      return { kind: "answer", bytes };
    } catch (e) {
      this.log?.warn({ err: (e as Error).message }, "dns: forwarding failed");
      return { kind: "timeout" };
    } finally {
      this.inFlight--;
    }
  }

  /** Try each server in turn over UDP; resolves with the first matching answer, or undefined. */
  private overUdp(
    servers: readonly UpstreamServer[],
    query: Uint8Array,
    questionEnd: number,
  ): Promise<{ bytes: Uint8Array; server: UpstreamServer } | undefined> {
    return new Promise((resolve) => {
      const socks: UdpSocket[] = [];
      let next = 0;
      let current: UdpSocket | undefined;
      let timer: Timeout | undefined;
      let done = false;
      const finish = (r: { bytes: Uint8Array; server: UpstreamServer } | undefined) => {
        if (done) return;
        done = true;
        timer?.cancel();
        this.aborts.delete(abort);
        for (const s of socks) closeQuietly(s);
        resolve(r);
      };
      const abort = () => finish(undefined);
      this.aborts.add(abort);
      const tryNext = (): void => {
        timer?.cancel();
        if (done) return;
        if (next >= servers.length || this.closed) return finish(undefined);
        const server = servers[next++];
        const id = randomId();
        const msg = withId(query, id);
        let sock: UdpSocket;
        try {
          sock = createSocket(isIPv6(server.host.replace(/%.*$/, "")) ? "udp6" : "udp4");
        } catch {
          this.counters.sendErrors++;
          return tryNext();
        }
        socks.push(sock);
        current = sock;
        const failed = () => {
          this.counters.sendErrors++;
          if (sock === current) tryNext();
        };
        sock.on("error", failed);
        sock.on("message", (m: Buffer) => {
          if (!replyMatches(m, id, msg, questionEnd)) {
            this.counters.strays++;
            return;
          }
          finish({ bytes: new Uint8Array(m.buffer, m.byteOffset, m.length), server });
        });
        // The callback also reports a failed connect (no route, EACCES): then the socket is
        // not connected and a send would throw.
        sock.connect(server.port, server.host, (err?: Error) => {
          if (err) return failed();
          this.counters.udpSent++;
          sock.send(msg, (err) => {
            if (err) failed();
          });
        });
        timer = this.clock.after(this.timeoutMs, tryNext);
      };
      tryNext();
    });
  }

  /** One query over TCP (RFC 1035 §4.2.2 two-byte length prefix); undefined on any failure. */
  private overTcp(server: UpstreamServer, query: Uint8Array, questionEnd: number): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      const id = randomId();
      const msg = withId(query, id);
      const framed = new Uint8Array(2 + msg.length);
      setU16(framed, 0, msg.length);
      framed.set(msg, 2);
      let buf = new Uint8Array(0);
      let done = false;
      const sock: TcpSocket = createConnection({ host: server.host, port: server.port });
      const finish = (r: Uint8Array | undefined) => {
        if (done) return;
        done = true;
        timer.cancel();
        this.aborts.delete(abort);
        sock.destroy();
        resolve(r);
      };
      const abort = () => finish(undefined);
      this.aborts.add(abort);
      const timer = this.clock.after(this.timeoutMs, () => finish(undefined));
      sock.on("connect", () => sock.write(framed));
      sock.on("data", (chunk: Buffer) => {
        const joined = new Uint8Array(buf.length + chunk.length);
        joined.set(buf);
        joined.set(chunk, buf.length);
        buf = joined;
        if (buf.length > 2 + MAX_TCP_MESSAGE) return finish(undefined);
        if (buf.length < 2) return;
        const len = getU16(buf, 0);
        if (buf.length < 2 + len) return;
        const reply = buf.slice(2, 2 + len);
        finish(replyMatches(reply, id, msg, questionEnd) ? reply : undefined);
      });
      sock.on("error", () => finish(undefined));
      sock.on("close", () => finish(undefined));
    });
  }

  /** Close every socket; queries in flight end at once as timeouts, later ones are dropped. */
  close(): void {
    this.closed = true;
    for (const abort of [...this.aborts]) abort();
  }
}

function closeQuietly(s: UdpSocket): void {
  try {
    s.close();
  } catch {
    // already closed
  }
}
