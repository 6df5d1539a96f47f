/**
 * TCP socket translation: each guest TCP connection becomes an ordinary host socket.
 *
 * The gVisor "forwarder" pattern (VPNKit and gvisor-tap-vsock do the same): a guest's SYN is
 * held while skiff dials the destination from the host; only when the host connection exists
 * does the guest get its SYN-ACK. A refused dial becomes a RST, an unreachable destination an
 * ICMP destination unreachable (RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1), a destination the policy
 * forbids an ICMP "communication administratively prohibited" (code 13).
 *
 * Then bytes are relayed both ways with backpressure end to end:
 *  - host → guest: the host socket is paused while the guest's TCP send buffer is full (the
 *    guest's window is closed), and resumed on the engine's Writable event;
 *  - guest → host: data is read from the engine only while the host socket accepts it; when
 *    `socket.write` reports a full buffer, reading stops, the engine's receive buffer fills
 *    and the window offered to the guest closes, until the socket drains.
 * FIN ↔ half-close (`socket.end()` / the socket's 'end'), RST ↔ `resetAndDestroy()` / a
 * socket error. There is no idle timeout on established flows.
 */

import { createConnection, type Socket } from "node:net";
import type { Logger } from "pino";
import { TcpEvent } from "../tcp/state.js";
import { IcmpUnreachCode } from "../ipv4/icmp.js";
import type { TcpFlow, TcpLayer } from "../stack/tcp.js";
import type { AddressPolicy } from "./policy.js";
import { formatIpv4 } from "../common/addr.js";

export interface TcpTranslateOptions {
  /** Give up dialling after this long (ms); the guest gets ICMP host unreachable. */
  dialTimeoutMs?: number;
  /** Dials in flight at once; SYNs beyond are refused with RST (counted). */
  maxDials?: number;
  /**
   * How to open host connections (tests inject one). `onread` is Node's `onread` connect
   * option; pass it on to `createConnection` (or ignore it: the bridge then uses "data").
   */
  connect?: (host: string, port: number, onread?: OnRead) => Socket;
  log?: Logger;
}

export class TcpTranslateCounters {
  dials = 0;
  dialsInFlight = 0;
  connected = 0;
  refused = 0;
  unreachable = 0;
  timedOut = 0;
  denied = 0;
  tooManyDials = 0;
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
  sock: Socket;
  /** Host bytes the guest's send buffer could not take yet (the socket is paused meanwhile). */
  pending: Uint8Array | undefined;
  hostEnded: boolean;
  /** Guest → host reading is stopped until the socket drains. */
  blocked: boolean;
  endSent: boolean;
  finished: boolean;
}

export class TcpTranslator {
  readonly counters = new TcpTranslateCounters();
  private readonly dialTimeoutMs: number;
  private readonly maxDials: number;
  private readonly connect: (host: string, port: number, onread?: OnRead) => Socket;
  private readonly log: Logger | undefined;

  constructor(
    private readonly layer: TcpLayer,
    private readonly policy: AddressPolicy,
    opts: TcpTranslateOptions = {},
  ) {
    this.dialTimeoutMs = opts.dialTimeoutMs ?? 20_000;
    this.maxDials = opts.maxDials ?? 256;
    this.connect = opts.connect ?? ((host, port, onread) => createConnection({ host, port, allowHalfOpen: true, onread }));
    this.log = opts.log;
    layer.forwarder = (flow) => this.onSyn(flow);
  }

  private onSyn(flow: TcpFlow): void {
    const c = this.counters;
    const target = this.policy.resolve(flow.remoteIp);
    if (!target.ok) {
      c.denied++;
      this.log?.debug({ dst: formatIpv4(flow.remoteIp), reason: target.reason }, "tcp: destination refused by policy");
      flow.unreachable(IcmpUnreachCode.AdminProhibited);
      return;
    }
    if (c.dialsInFlight >= this.maxDials) {
      c.tooManyDials++;
      flow.refuse();
      return;
    }
    c.dials++;
    c.dialsInFlight++;
    let settled = false;
    const hook: ReadHook = { data: undefined };
    const sock = this.connect(target.host, flow.remotePort, readInto(hook));
    const settle = () => {
      if (settled) return false;
      settled = true;
      c.dialsInFlight--;
      clearTimeout(timer);
      return true;
    };
    const timer = setTimeout(() => {
      if (!settle()) return;
      c.timedOut++;
      sock.destroy();
      flow.unreachable(IcmpUnreachCode.Host);
    }, this.dialTimeoutMs);
    timer.unref?.();
    // The guest may give up (RST) while we dial.
    flow.onEvents = (f, ev) => {
      if (ev & TcpEvent.Closed && settle()) sock.destroy();
    };
    sock.once("connect", () => {
      if (!settle()) return;
      c.connected++;
      sock.setNoDelay(true);
      bridgeSocket(flow, sock, c, this.log, hook);
      flow.accept();
    });
    sock.once("error", (err: NodeJS.ErrnoException) => {
      if (!settle()) return;
      const code = err.code;
      if (code === "ECONNREFUSED") {
        c.refused++;
        flow.refuse();
      } else {
        c.unreachable++;
        flow.unreachable(code === "ENETUNREACH" ? IcmpUnreachCode.Net : IcmpUnreachCode.Host);
      }
      this.log?.debug({ dst: `${target.host}:${flow.remotePort}`, code }, "tcp: dial failed");
    });
  }
}

/** Node's `onread` connect option: reads go into one reused buffer, no stream machinery. */
export type OnRead = { buffer: Uint8Array; callback: (bytes: number, buf: Uint8Array) => boolean };

/** Where a socket opened with `readInto(hook)` delivers its reads: set by `bridgeSocket`. */
export interface ReadHook {
  data: ((chunk: Uint8Array) => boolean) | undefined;
}

/**
 * One read buffer shared by every dialled socket: a read is handled (copied into a send queue)
 * before the next one starts, so nothing outlives the callback. Saves a Buffer allocation and
 * the Readable stream's work per read.
 */
const SHARED_READ_BUFFER = new Uint8Array(64 * 1024);

/** The `onread` option that routes a socket's reads to `hook`. */
export function readInto(hook: ReadHook): OnRead {
  return {
    buffer: SHARED_READ_BUFFER,
    callback: (n, buf) => (hook.data !== undefined ? hook.data(buf.subarray(0, n)) : false),
  };
}

/**
 * Relay bytes between an established `flow` and a connected host socket `sock`, with
 * backpressure both ways, FIN ↔ half-close and RST ↔ reset (see the file comment). Takes over
 * `flow.onEvents` and `flow.owner`. Shared by socket translation (guest → host) and port
 * forwarding (host → guest). With `hook` (the socket was opened with `readInto(hook)`), host
 * bytes arrive through it instead of "data" events.
 */
export function bridgeSocket(flow: TcpFlow, sock: Socket, c: BridgeCounters, log?: Logger, hook?: ReadHook): void {
  const b: Bridge = { sock, pending: undefined, hostEnded: false, blocked: false, endSent: false, finished: false };
  flow.owner = b;
  c.open++;

  // Chunks from the socket's "data" events are ours (Node allocates each read anew): they are
  // handed to the send queue without a copy; chunks in the shared `onread` buffer are copied.
  // Bytes from the guest leave as views of the receive queue (readHead), without a copy.
  const pumpToGuest = (chunk: Uint8Array, owned: boolean) => {
    const n = flow.write(chunk, owned);
    c.bytesToGuest += n;
    if (n < chunk.length) {
      b.pending = owned ? chunk.subarray(n) : Uint8Array.from(chunk.subarray(n));
      sock.pause();
    }
  };
  const onHostBytes = (chunk: Uint8Array, owned: boolean) => {
    if (b.pending !== undefined) {
      // Should not happen while paused; keep order anyway.
      const joined = new Uint8Array(b.pending.length + chunk.length);
      joined.set(b.pending);
      joined.set(chunk, b.pending.length);
      b.pending = undefined;
      pumpToGuest(joined, true);
    } else pumpToGuest(chunk, owned);
    return b.pending === undefined;
  };
  const pumpToHost = () => {
    while (!b.blocked) {
      const d = flow.readHead();
      if (d.length === 0) break;
      c.bytesToHost += d.length;
      if (!sock.write(d)) b.blocked = true;
    }
    if (!b.endSent && flow.conn.peerFinished) {
      b.endSent = true;
      sock.end();
    }
  };
  const finish = () => {
    if (b.finished) return;
    b.finished = true;
    c.open--;
  };

  if (hook !== undefined) hook.data = (chunk) => onHostBytes(chunk, false);
  // Also for a hooked socket: a stand-in that ignored `onread` still delivers "data".
  sock.on("data", (chunk: Buffer) => void onHostBytes(chunk, true));
  sock.on("end", () => {
    b.hostEnded = true;
    if (b.pending === undefined) flow.shutdownWrite();
  });
  sock.on("drain", () => {
    b.blocked = false;
    pumpToHost();
  });
  sock.on("error", (err: NodeJS.ErrnoException) => {
    log?.debug({ code: err.code }, "tcp: host socket error");
  });
  sock.on("close", (hadError) => {
    // The host side went away: a reset (or an error) resets the guest; a clean close after
    // both FINs needs nothing more.
    if (hadError || !b.hostEnded) flow.abort();
    finish();
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
      sock.resetAndDestroy();
      finish();
    } else if (ev & TcpEvent.Closed) {
      if (!sock.destroyed) sock.destroy();
      finish();
    }
  };
}
