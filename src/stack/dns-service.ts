/**
 * The DNS server on the gateway: UDP port 53 through the stack's UDP services, TCP port 53
 * through the stack's TCP layer (RFC 7766), both answered by one `DnsResolver`.
 *
 * UDP: a query to the gateway's address (broadcasts are ignored) is copied out of the borrowed
 * datagram and answered from the gateway's address and port 53 to the sender's address and
 * port; the resolver has already cut the answer to the client's size (TC set).
 *
 * TCP (RFC 1035 §4.2.2, RFC 7766 §6): messages with a two-byte length prefix; several queries
 * may be pipelined and are answered as they complete (RFC 7766 §6.2.1.1, matched by ID). At
 * most `maxTcpPipeline` queries per connection are worked on at once, and none while answers
 * wait for room in the TCP send buffer — further bytes stay unread in the TCP receive buffer,
 * so the window closes on a guest that floods or does not read. Connections
 * beyond `maxTcpConnections` are refused with RST; a connection idle for `tcpIdleMs` is
 * closed by skiff (RFC 7766 §6.2.3). When the guest closes its side, skiff closes after the
 * last answer.
 *
 * `createDnsServer` assembles the whole server from the host's files: built-in names for the
 * stack's addresses, run-time records, `/etc/hosts`, and forwarding to `/etc/resolv.conf`'s
 * nameservers (or servers given explicitly).
 */

import type { Logger } from "pino";
import type { NetworkStack } from "./stack.js";
import { sendUdp, type UdpDatagram } from "./gateway-udp.js";
import type { Ipv6Gateway, Udp6Datagram } from "./gateway-ipv6.js";
import type { TcpFlow, TcpLayer } from "./tcp.js";
import { TcpEvent } from "../tcp/state.js";
import { getU16, setU16 } from "../common/bytes.js";
import { DnsResolver } from "../dns/resolver.js";
import { RecordStore } from "../dns/records.js";
import { HostsFile, ResolvConfFile } from "../dns/hosts.js";
import { ownTimers, type TimerTarget, type Timers } from "./timers.js";
import { UpstreamForwarder, serversFromResolvConf, type UpstreamServer } from "../dns/upstream.js";
import { Counters } from "../common/counters.js";

export const DNS_PORT = 53;

export interface DnsServiceOptions {
  /** Gateway port to serve (53). */
  port?: number;
  maxTcpConnections?: number;
  /** Queries worked on at once per TCP connection. */
  maxTcpPipeline?: number;
  /** Close a TCP connection with nothing happening for this long (ms). */
  tcpIdleMs?: number;
  log?: Logger;
}

export class DnsServiceCounters extends Counters {
  udpQueries = 0;
  udpAnswers = 0;
  udpSendFailures = 0;
  /** UDP to port 53 at a broadcast address: not answered. */
  udpNotToGateway = 0;
  tcpConnections = 0;
  tcpRefused = 0;
  tcpQueries = 0;
  tcpAnswers = 0;
  tcpIdleClosed = 0;
}

interface TcpConn extends TimerTarget {
  flow: TcpFlow;
  /** Bytes of the message being read (length prefix included). */
  inbuf: Uint8Array;
  inLen: number;
  pending: number;
  out: Uint8Array[];
  finSent: boolean;
  done: boolean;
  /** Re-entrancy guards: reading or writing the flow may deliver its events synchronously. */
  pumping: boolean;
  flushing: boolean;
}

export class DnsService {
  readonly counters = new DnsServiceCounters();
  readonly port: number;
  private readonly maxTcp: number;
  private readonly maxPipeline: number;
  private readonly idleMs: number;
  private readonly conns = new Set<TcpConn>();
  /** Idle limits of TCP connections, on the stack's one timer driver. */
  private readonly idle: Timers<TcpConn>;
  private closed = false;

  constructor(
    readonly stack: NetworkStack,
    readonly resolver: DnsResolver,
    opts: DnsServiceOptions = {},
  ) {
    this.port = opts.port ?? DNS_PORT;
    this.maxTcp = opts.maxTcpConnections ?? 64;
    this.maxPipeline = opts.maxTcpPipeline ?? 16;
    this.idleMs = opts.tcpIdleMs ?? 10_000;
    this.idle = ownTimers<TcpConn>(stack.timers, (conn) => this.onIdle(conn));
    stack.bindUdp(this.port, (_s, d) => this.onUdp(this.stack, d));
    stack.ipv6?.bindUdp(this.port, (gw, d) => this.onUdp6(gw, d));
  }

  /** Answer one DNS-over-TCP message (without its two-byte length); undefined = no answer. */
  answerTcp(message: Uint8Array): Promise<Uint8Array | undefined> {
    return this.resolver.resolve(message, "tcp");
  }

  /** Serve TCP port 53 of the gateway through `layer`. */
  bindTcp(layer: TcpLayer): void {
    layer.bindLocal(this.port, (flow) => this.onSyn(flow));
  }

  get tcpConnections(): number {
    return this.conns.size;
  }

  /** Stop answering: UDP unbound, TCP connections aborted and new ones refused. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stack.unbindUdp(this.port);
    this.stack.ipv6?.unbindUdp(this.port);
    for (const conn of [...this.conns]) {
      this.forget(conn);
      conn.flow.abort();
    }
  }

  // ---- UDP ---------------------------------------------------------------------------

  private onUdp(stack: NetworkStack, d: UdpDatagram): void {
    const c = this.counters;
    const gateway = stack.config.gatewayIp;
    if (d.dstIp !== gateway) {
      c.udpNotToGateway++;
      return;
    }
    c.udpQueries++;
    const query = Uint8Array.from(d.payload); // the datagram is borrowed
    const { port, srcMac, srcIp, srcPort } = d;
    void this.resolver.resolve(query, "udp").then((reply) => {
      if (reply === undefined || this.closed) return;
      if (sendUdp(stack, port, srcMac, gateway, this.port, srcIp, srcPort, reply)) c.udpAnswers++;
      else c.udpSendFailures++;
    });
  }

  /** A query over IPv6 to one of the gateway's addresses: answered from the address it was sent to. */
  private onUdp6(gw: Ipv6Gateway, d: Udp6Datagram): void {
    const c = this.counters;
    if (d.dst.w0 >>> 24 === 0xff) {
      c.udpNotToGateway++;
      return;
    }
    c.udpQueries++;
    const query = Uint8Array.from(d.payload); // the datagram is borrowed
    const { port, srcMac, src, srcPort, dst } = d;
    void this.resolver.resolve(query, "udp").then((reply) => {
      if (reply === undefined || this.closed) return;
      if (gw.sendUdp(port, srcMac, dst, this.port, src, srcPort, reply)) c.udpAnswers++;
      else c.udpSendFailures++;
    });
  }

  // ---- TCP ---------------------------------------------------------------------------

  private onSyn(flow: TcpFlow): void {
    if (this.closed || this.conns.size >= this.maxTcp) {
      this.counters.tcpRefused++;
      flow.refuse();
      return;
    }
    const conn: TcpConn = { flow, inbuf: new Uint8Array(2), inLen: 0, pending: 0, out: [], timerAt: Infinity, timerSeq: 0, timerQueuedAt: Infinity, finSent: false, done: false, pumping: false, flushing: false };
    this.conns.add(conn);
    this.counters.tcpConnections++;
    flow.onEvents = (_f, ev) => this.onEvents(conn, ev);
    flow.accept();
    this.touch(conn);
  }

  private onEvents(conn: TcpConn, ev: number): void {
    if (ev & (TcpEvent.Reset | TcpEvent.Closed)) return this.forget(conn);
    if (ev & TcpEvent.Writable) {
      this.flush(conn);
      if (conn.out.length === 0) this.pump(conn);
    }
    if (ev & (TcpEvent.Readable | TcpEvent.PeerFin)) {
      this.touch(conn);
      this.pump(conn);
    }
  }

  /** Read whole messages while fewer than `maxPipeline` are being answered. */
  private pump(conn: TcpConn): void {
    if (conn.pumping) return;
    conn.pumping = true;
    try {
      this.readMessages(conn);
    } finally {
      conn.pumping = false;
    }
    this.maybeClose(conn);
  }

  private readMessages(conn: TcpConn): void {
    const flow = conn.flow;
    // Answers the TCP send buffer could not take yet also stop reading: a guest that sends
    // queries but never reads the answers cannot make skiff queue without bound.
    while (!conn.done && conn.pending < this.maxPipeline && conn.out.length === 0) {
      // Read only what the current message still needs: the prefix, then its body.
      const want = conn.inLen < 2 ? 2 : 2 + getU16(conn.inbuf, 0);
      if (conn.inLen < want) {
        const d = flow.read(want - conn.inLen);
        if (d.length === 0) break;
        conn.inbuf.set(d, conn.inLen);
        conn.inLen += d.length;
        if (conn.inLen === 2) {
          const full = new Uint8Array(2 + getU16(conn.inbuf, 0));
          full.set(conn.inbuf.subarray(0, 2));
          conn.inbuf = full;
        }
        continue;
      }
      const msg = conn.inbuf.subarray(2, want);
      conn.inbuf = new Uint8Array(2);
      conn.inLen = 0;
      this.answer(conn, msg);
    }
  }

  private answer(conn: TcpConn, msg: Uint8Array): void {
    const c = this.counters;
    c.tcpQueries++;
    conn.pending++;
    void this.resolver.resolve(msg, "tcp").then((reply) => {
      conn.pending--;
      if (conn.done) return;
      if (reply !== undefined) {
        const framed = new Uint8Array(2 + reply.length);
        setU16(framed, 0, reply.length);
        framed.set(reply, 2);
        conn.out.push(framed);
        c.tcpAnswers++;
        this.flush(conn);
      }
      this.touch(conn);
      this.pump(conn);
    });
  }

  private flush(conn: TcpConn): void {
    if (conn.flushing) return;
    conn.flushing = true;
    try {
      while (conn.out.length > 0 && !conn.done) {
        const head = conn.out[0];
        const n = conn.flow.write(head);
        if (n < head.length) {
          conn.out[0] = head.subarray(n);
          return;
        }
        conn.out.shift();
      }
    } finally {
      conn.flushing = false;
    }
    this.maybeClose(conn);
  }

  /** After the guest's FIN, close once every answer is written. */
  private maybeClose(conn: TcpConn): void {
    if (conn.done || conn.finSent || conn.pending > 0 || conn.out.length > 0) return;
    if (!conn.flow.conn.peerFinished) return;
    conn.finSent = true;
    conn.flow.shutdownWrite();
  }

  /** Something happened: the idle limit starts again (a later deadline costs the driver nothing). */
  private touch(conn: TcpConn): void {
    this.idle.schedule(conn, this.stack.now() + this.idleMs);
  }

  private onIdle(conn: TcpConn): void {
    if (conn.done || conn.finSent) return;
    if (conn.pending > 0 || conn.out.length > 0) return this.touch(conn);
    this.counters.tcpIdleClosed++;
    conn.finSent = true;
    conn.flow.shutdownWrite();
  }

  private forget(conn: TcpConn): void {
    conn.done = true;
    this.idle.cancel(conn);
    this.conns.delete(conn);
  }
}

export interface DnsServerOptions extends DnsServiceOptions {
  /** Hosts file answered locally; null for none. */
  hostsPath?: string | null;
  /** resolv.conf whose nameservers get forwarded queries (ignored when `servers` is given). */
  resolvConfPath?: string;
  /** Forward to these servers instead of resolv.conf's. */
  servers?: UpstreamServer[];
  /** Per upstream attempt (ms). */
  timeoutMs?: number;
  /** Forwarded queries in flight at once. */
  maxInFlight?: number;
  /** TTL of local answers (s). */
  ttl?: number;
  maxRecords?: number;
  /** Serve TCP 53 through this TCP layer too. */
  tcp?: TcpLayer;
  /** Injected clock for re-reading the files (ms). */
  now?: () => number;
}

export interface DnsServer {
  service: DnsService;
  resolver: DnsResolver;
  records: RecordStore;
  upstream: UpstreamForwarder;
  close(): void;
}

/** Build and bind the gateway's DNS server (UDP 53, and TCP 53 when `tcp` is given). */
export function createDnsServer(stack: NetworkStack, opts: DnsServerOptions = {}): DnsServer {
  const cfg = stack.config;
  // One clock: the files are re-read by the stack's clock unless a test gives its own.
  const fileOpts = { now: opts.now ?? stack.now, log: opts.log };
  const records = new RecordStore(cfg, { maxRecords: opts.maxRecords });
  const hostsPath = opts.hostsPath === undefined ? "/etc/hosts" : opts.hostsPath;
  const hosts = hostsPath === null ? undefined : new HostsFile(hostsPath, fileOpts);
  const servers = opts.servers ?? serversFromResolvConf(new ResolvConfFile(opts.resolvConfPath ?? "/etc/resolv.conf", fileOpts));
  const upstream = new UpstreamForwarder({ servers, clock: stack.timers, timeoutMs: opts.timeoutMs, maxInFlight: opts.maxInFlight, log: opts.log });
  // The largest UDP answer that fits the guest link unfragmented (IPv4 20 or IPv6 40, + UDP 8).
  const resolver = new DnsResolver({ records, hosts, upstream, ttl: opts.ttl, maxUdpPayload: Math.min(cfg.mtu - (cfg.ipv6 !== null ? 48 : 28), 4096), log: opts.log });
  const service = new DnsService(stack, resolver, opts);
  if (opts.tcp !== undefined) service.bindTcp(opts.tcp);
  return {
    service,
    resolver,
    records,
    upstream,
    close: () => {
      service.close();
      upstream.close();
    },
  };
}
