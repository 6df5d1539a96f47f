/**
 * TCP socket translation: each guest TCP connection becomes an ordinary host socket.
 *
 * The gVisor "forwarder" pattern (VPNKit and gvisor-tap-vsock do the same): a guest's SYN is
 * held while skiff dials the destination from the host; only when the host connection exists
 * does the guest get its SYN-ACK. A refused dial becomes a RST, an unreachable destination an
 * ICMP destination unreachable (RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1), a destination the policy
 * forbids an ICMP "communication administratively prohibited" (code 13).
 *
 * Host sockets come from the addon's epoll set (`native-stream.ts`: all ready sockets of a loop
 * iteration in one call, writes straight to send()), or are Node sockets when the addon is
 * missing or `hostSockets: "node"`; the bridge sees either as a `HostStream` (host-stream.ts).
 *
 * Then bytes are relayed both ways with backpressure end to end:
 *  - host → guest: the host stream is paused while the guest's TCP send buffer is full (the
 *    guest's window is closed), and resumed on the engine's Writable event;
 *  - guest → host: data is read from the engine only while the host stream accepts it; when
 *    `write` reports a full buffer, reading stops, the engine's receive buffer fills and the
 *    window offered to the guest closes, until the stream drains.
 * FIN ↔ half-close (`end()` / the stream's end), RST ↔ `reset()` / a stream error. There is no
 * idle timeout on established flows.
 */

import { createConnection, type Socket } from "node:net";
import type { Logger } from "pino";
import { TcpEvent } from "../tcp/state.js";
import { IcmpUnreachCode } from "../stack/gateway-icmp.js";
import type { TcpFlow, TcpLayer } from "../stack/tcp.js";
import type { AddressPolicy } from "./policy.js";
import { formatIpv4 } from "../common/addr.js";
import { classifyDestination6, formatIpv6 } from "../stack/config6.js";
import { readInto, socketStream, type HostStream, type OnRead, type ReadHook } from "./host-stream.js";
import { nativeStreams } from "./native-stream.js";
import { shareOption } from "../stack/guests.js";
import type { FdBudget } from "./fd-budget.js";
import { Counters } from "../common/counters.js";

export interface TcpTranslateOptions {
  /** Give up dialling after this long (ms); the guest gets ICMP host unreachable. */
  dialTimeoutMs?: number;
  /** Dials in flight at once; SYNs beyond are refused with RST (counted). */
  maxDials?: number;
  /** One guest's share of `maxDials` (src/stack/guests.ts; default a quarter): a hard cap, RST beyond. */
  maxDialsPerGuest?: number;
  /** Descriptor budget (fd-budget.ts): a SYN past it gets RST. */
  fds?: FdBudget;
  /**
   * Host sockets: "native" (default) from the addon's epoll set, read in batches
   * (native-stream.ts); "node" as Node `net.Socket`s. Without the addon, "node".
   */
  hostSockets?: "native" | "node";
  /**
   * How to open host connections as Node sockets (tests inject one; implies "node"). `onread`
   * is Node's `onread` connect option; pass it on to `createConnection` (or ignore it: the
   * bridge then uses "data").
   */
  connect?: (host: string, port: number, onread?: OnRead) => Socket;
  log?: Logger;
}

/** Open a host connection to `host` (= `ip`): the stream at once, `done(undefined | error code)` later. */
type Dial = (host: string, ip: number, port: number, done: (err: string | undefined) => void) => HostStream;

export class TcpTranslateCounters extends Counters {
  dials = 0;
  dialsInFlight = 0;
  connected = 0;
  refused = 0;
  unreachable = 0;
  timedOut = 0;
  denied = 0;
  tooManyDials = 0;
  /** SYNs refused because their guest had its share of dials in flight. */
  guestDialShare = 0;
  /** SYNs refused because the descriptor budget was spent (fd-budget.ts). */
  fdBudgetRefused = 0;
  open = 0;
  bytesToHost = 0;
  bytesToGuest = 0;
}

/** What `bridgeSocket` counts (the translator's and the port forwarder's counters both fit). */
export interface BridgeCounters {
  open: number;
  bytesToHost: number;
  bytesToGuest: number;
}

interface Bridge {
  sock: HostStream;
  /** Host bytes the guest's send buffer could not take yet (the socket is paused meanwhile). */
  pending: Uint8Array | undefined;
  hostEnded: boolean;
  /** Guest → host reading is stopped until the socket drains. */
  blocked: boolean;
  endSent: boolean;
  finished: boolean;
}

/** Default bound of host dials in flight (all guests together). */
export const DEFAULT_MAX_DIALS = 256;

export class TcpTranslator {
  readonly counters = new TcpTranslateCounters();
  private readonly dialTimeoutMs: number;
  private readonly maxDials: number;
  private readonly maxDialsPerGuest: number;
  private readonly fds: FdBudget | undefined;
  private readonly dial: Dial;
  /** IPv6 destinations: Node sockets (the addon's epoll set dials IPv4 only). */
  private readonly dial6: Dial;
  private readonly log: Logger | undefined;

  constructor(
    private readonly layer: TcpLayer,
    private readonly policy: AddressPolicy,
    opts: TcpTranslateOptions = {},
  ) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 20_000;
    this.maxDials = opts.maxDials ?? DEFAULT_MAX_DIALS;
    this.maxDialsPerGuest = shareOption(opts.maxDialsPerGuest, this.maxDials, "maxDialsPerGuest");
    this.fds = opts.fds;
    const connect = opts.connect ?? ((host, port, onread) => createConnection({ host, port, allowHalfOpen: true, onread }));
    const group = opts.connect === undefined && opts.hostSockets !== "node" ? nativeStreams() : undefined;
    this.dial6 = nodeDialer(connect);
    this.dial = group === undefined ? this.dial6 : (_host, ip, port, done) => group.connect(ip, port, done);
    this.log = opts.log;
    layer.forwarder = (flow) => this.onSyn(flow);
  }

  private onSyn(flow: TcpFlow): void {
    const c = this.counters;
    const v6 = flow.remote6 !== undefined;
    const target = v6 ? this.policy.resolve6(classifyDestination6(this.layer.stack.config.ipv6!, flow.remote6!)) : this.policy.resolve(flow.remoteIp);
    if (!target.ok) {
      c.denied++;
      this.log?.debug({ dst: v6 ? formatIpv6(flow.remote6!) : formatIpv4(flow.remoteIp), reason: target.reason }, "tcp: destination refused by policy");
      flow.unreachable(IcmpUnreachCode.AdminProhibited);
      return;
    }
    const guest = flow.guest;
    if (c.dialsInFlight >= this.maxDials || (guest !== undefined && guest.tcpDials >= this.maxDialsPerGuest)) {
      if (c.dialsInFlight >= this.maxDials) c.tooManyDials++;
      else c.guestDialShare++;
      flow.refuse();
      return;
    }
    const fds = this.fds;
    if (fds !== undefined && !fds.tryAcquire()) {
      c.fdBudgetRefused++;
      flow.refuse();
      return;
    }
    // The descriptor goes back once, when the host socket is gone (dial failed, or bridge ended).
    let holdsFd = fds !== undefined;
    const releaseFd = () => {
      if (!holdsFd) return;
      holdsFd = false;
      fds!.release();
    };
    c.dials++;
    c.dialsInFlight++;
    if (guest !== undefined) guest.tcpDials++;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      c.dialsInFlight--;
      if (guest !== undefined) guest.tcpDials--;
      timer.cancel();
      return true;
    };
    // On the network's clock and timer driver (stack/timers.ts), like the flow's own deadlines.
    const timer = this.layer.stack.timers.after(this.dialTimeoutMs, () => {
      if (!settle()) return;
      c.timedOut++;
      sock.destroy();
      releaseFd();
      flow.unreachable(IcmpUnreachCode.Host);
    });
    const sock = (v6 ? this.dial6 : this.dial)(target.host, target.ip, flow.remotePort, (code) => {
      if (!settle()) return;
      if (code === undefined) {
        c.connected++;
        bridgeSocket(flow, sock, c, this.log, releaseFd);
        flow.accept();
        return;
      }
      releaseFd();
      this.log?.debug({ dst: `${target.host}:${flow.remotePort}`, code }, "tcp: dial failed");
      if (code === "ECONNREFUSED") {
        c.refused++;
        flow.refuse();
      } else {
        c.unreachable++;
        flow.unreachable(code === "ENETUNREACH" || code === "EADDRNOTAVAIL" ? IcmpUnreachCode.Net : IcmpUnreachCode.Host);
      }
    });
    // The guest may give up (RST) while we dial.
    flow.onEvents = (f, ev) => {
      if (ev & TcpEvent.Closed && settle()) {
        sock.destroy();
        releaseFd();
      }
    };
  }
}

/** Dial with Node sockets (`connect` makes them), reads through the shared `onread` buffer. */
function nodeDialer(connect: (host: string, port: number, onread?: OnRead) => Socket): Dial {
  return (host, _ip, port, done) => {
    const hook: ReadHook = { data: undefined };
    const sock = connect(host, port, readInto(hook));
    const stream = socketStream(sock, hook);
    const onError = (err: NodeJS.ErrnoException) => done(err.code ?? "EIO");
    sock.once("error", onError);
    sock.once("connect", () => {
      sock.removeListener("error", onError);
      sock.setNoDelay(true);
      done(undefined);
    });
    return stream;
  };
}

/**
 * Relay bytes between an established `flow` and a connected host stream `sock`, with
 * backpressure both ways, FIN ↔ half-close and RST ↔ reset (see the file comment). Takes over
 * `flow.onEvents` and `flow.owner`. Shared by socket translation (guest → host) and port
 * forwarding (host → guest). `onFinish` runs once when the bridge ends.
 */
export function bridgeSocket(flow: TcpFlow, sock: HostStream, c: BridgeCounters, log?: Logger, onFinish?: () => void): void {
  const b: Bridge = { sock, pending: undefined, hostEnded: false, blocked: false, endSent: false, finished: false };
  flow.owner = b;
  c.open++;

  // Chunks the stream says are ours (Node's "data" events) are handed to the send queue without
  // a copy; chunks in a shared read buffer are copied. Bytes from the guest leave as views of
  // the receive queue without a copy: kept ones (readHead) for a Node socket, which holds them
  // until written; borrowed ones (peekHead, then consume) for a stream that copies.
  const pumpToGuest = (chunk: Uint8Array, owned: boolean) => {
    // Sent at the end of the batch: an EOF read with these bytes puts the FIN on their segment.
    const n = flow.write(chunk, owned, true);
    c.bytesToGuest += n;
    if (n < chunk.length) {
      b.pending = owned ? chunk.subarray(n) : Uint8Array.from(chunk.subarray(n));
      sock.pause();
    }
  };
  const pumpToHost = () => {
    // A stream that copies gets a borrowed view, consumed after the write (the chunk is then
    // reused); one that keeps what it is given gets a view it may keep.
    const borrow = sock.copiesWrites;
    while (!b.blocked) {
      const d = borrow ? flow.peekHead() : flow.readHead();
      if (d.length === 0) break;
      c.bytesToHost += d.length;
      if (!sock.write(d)) b.blocked = true;
      if (borrow) flow.consume(d.length);
    }
    if (!b.endSent && !b.blocked && flow.conn.peerFinished) {
      b.endSent = true;
      sock.end();
    }
  };
  const finish = () => {
    if (b.finished) return;
    b.finished = true;
    c.open--;
    onFinish?.();
  };

  sock.attach({
    data(chunk, owned) {
      if (b.pending !== undefined) {
        // Should not happen while paused; keep order anyway.
        const joined = new Uint8Array(b.pending.length + chunk.length);
        joined.set(b.pending);
        joined.set(chunk, b.pending.length);
        b.pending = undefined;
        pumpToGuest(joined, true);
      } else pumpToGuest(chunk, owned);
    },
    end() {
      b.hostEnded = true;
      if (b.pending === undefined) flow.shutdownWrite();
    },
    drain() {
      b.blocked = false;
      pumpToHost();
    },
    error(code) {
      log?.debug({ code }, "tcp: host socket error");
    },
    close(hadError) {
      // The host side went away: a reset (or an error) resets the guest; a clean close after
      // both FINs needs nothing more.
      if (hadError || !b.hostEnded) flow.abort();
      finish();
    },
  });

  flow.onEvents = (f, ev) => {
    if (ev & TcpEvent.Writable && b.pending !== undefined) {
      const p = b.pending;
      b.pending = undefined;
      pumpToGuest(p, true);
      if (b.pending === undefined) {
        sock.resume();
        if (b.hostEnded) flow.shutdownWrite();
      }
    }
    if (ev & (TcpEvent.Readable | TcpEvent.PeerFin)) pumpToHost();
    if (ev & TcpEvent.Reset) {
      sock.reset();
      finish();
    } else if (ev & TcpEvent.Closed) {
      if (!sock.destroyed) sock.destroy();
      finish();
    }
  };
}
