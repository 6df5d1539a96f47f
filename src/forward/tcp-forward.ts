/**
 * TCP port forwarding, host → guest: skiff listens on a host address and port; each accepted
 * host connection becomes a connection *from the stack into the guest* (an active open of the
 * TCP engine, `TcpLayer.connect`, RFC 9293 §3.10.1) to the forward's guest address and port,
 * seen by the guest as coming from the host alias (192.168.65.2) or, with the alias disabled,
 * the gateway. docker's `-p` and VPNKit's port forwarding behave the same way. To an IPv6 guest
 * address the active open is over IPv6 (`TcpLayer.connect6`) from the IPv6 host alias (or the
 * gateway's ULA), after a neighbour solicitation when the guest has not been heard from; with
 * a fallback IPv4 address (spec.ts `guestAddrFallback`) a guest that refuses over IPv6 (RST) or
 * does not answer the solicitation is tried again over IPv4 before the host client is reset.
 *
 * The host socket is paused until the guest's handshake completes; then bytes are relayed both
 * ways by the same bridge as socket translation (`bridgeSocket`: backpressure, FIN ↔
 * half-close, RST ↔ reset). A guest that answers the SYN with RST (no listener) resets the host
 * client at once; a guest that does not answer within `connectTimeoutMs` does too.
 */

import { createServer, isIPv6, type Server, type Socket } from "node:net";
import type { Logger } from "pino";
import { TcpEvent, type TcpFlow, type TcpLayer } from "../stack/tcp.js";
import { bridgeSocket } from "../socket-translate/tcp-translator.js";
import { socketStream } from "../socket-translate/host-stream.js";
import type { ForwardSpec } from "./spec.js";
import type { GuestAddr, NeighborResolver } from "./neighbor.js";
import type { Timeout } from "../common/clock.js";
import { Counters } from "../common/counters.js";

export class TcpForwardCounters extends Counters {
  accepted = 0;
  connected = 0;
  /** The guest answered RST: nothing listens on the guest port. */
  refused = 0;
  /** No answer to ARP, a full flow table, or no SYN-ACK in time. */
  failed = 0;
  /** Connections retried over IPv4 after the guest refused over IPv6 or did not answer solicitation. */
  fellBack = 0;
  connectsInFlight = 0;
  open = 0;
  bytesToHost = 0;
  bytesToGuest = 0;
}

export interface TcpForwardOptions {
  connectTimeoutMs?: number;
  log?: Logger;
  /** Told of an error of the host listener after it listens (the forward is lost). */
  onError?: (err: Error) => void;
  /** IPv4 guest address tried when the guest refuses over IPv6 (spec.ts `guestAddrFallback`). */
  fallback?: number;
}

export class TcpForward {
  readonly counters = new TcpForwardCounters();
  private readonly server: Server;
  private readonly guest: GuestAddr;
  private readonly fallback: number | undefined;
  private readonly connectTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly layer: TcpLayer,
    private readonly resolver: NeighborResolver,
    readonly spec: ForwardSpec,
    guest: GuestAddr,
    opts: TcpForwardOptions,
  ) {
    this.guest = guest;
    this.fallback = opts.fallback;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.log = opts.log;
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => this.onConnection(sock));
  }

  /** Listen on the spec's host address and port; rejects with an error naming the port. */
  static async listen(layer: TcpLayer, resolver: NeighborResolver, spec: ForwardSpec, guest: GuestAddr, opts: TcpForwardOptions = {}): Promise<TcpForward> {
    const f = new TcpForward(layer, resolver, spec, guest, opts);
    await new Promise<void>((resolve, reject) => {
      f.server.once("error", (e: NodeJS.ErrnoException) => reject(listenError(e, spec)));
      // An IPv6 address means IPv6 only (`[::]` too, as docker's proxies bind it), so `0.0.0.0:P`
      // and `[::]:P` are two forwards that can coexist.
      f.server.listen({ host: spec.hostAddr, port: spec.hostPort, exclusive: true, ipv6Only: isIPv6(spec.hostAddr) }, () => resolve());
    });
    f.server.on("error", (e) => {
      f.log?.warn({ err: e.message }, "forward: listener error");
      opts.onError?.(e);
    });
    return f;
  }

  /** The port actually listened on (differs from the spec's when it asked for 0). */
  get hostPort(): number {
    return (this.server.address() as { port: number }).port;
  }

  /** Stop accepting; connections already open carry on until they finish. */
  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Close the listener and reset every connection (shutting down). */
  destroy(): void {
    this.server.close();
    for (const s of this.sockets) s.resetAndDestroy();
  }

  private onConnection(sock: Socket): void {
    this.sockets.add(sock);
    sock.once("close", () => this.sockets.delete(sock));
    relayToGuest(this.layer, this.resolver, sock, this.guest, this.spec.guestPort, this.counters, { connectTimeoutMs: this.connectTimeoutMs, log: this.log, fallback: this.fallback });
  }
}

/**
 * Relay one accepted host connection (created paused, `pauseOnConnect`) to `guest:guestPort`
 * through an active open of the stack's TCP engine (over IPv4 or IPv6 by the address); shared
 * by the TCP forward and the Unix socket forward (unix.ts). The host client is reset when the
 * guest refuses, does not answer ARP / neighbour solicitation, or does not answer the SYN
 * within `connectTimeoutMs` — after one more try at `opts.fallback` (IPv4) when the first two
 * happen over IPv6.
 */
export function relayToGuest(
  layer: TcpLayer,
  resolver: NeighborResolver,
  sock: Socket,
  guest: GuestAddr,
  guestPort: number,
  c: TcpForwardCounters,
  opts: { connectTimeoutMs: number; log?: Logger; fallback?: number },
): void {
  const log = opts.log;
  c.accepted++;
  sock.on("error", (err: NodeJS.ErrnoException) => log?.debug({ code: err.code }, "forward: host client error"));
  c.connectsInFlight++;
  let settled = false;
  let flow: TcpFlow | undefined;
  let timer: Timeout | undefined;
  const settle = (): boolean => {
    if (settled) return false;
    settled = true;
    c.connectsInFlight--;
    timer?.cancel();
    return true;
  };
  const fail = (why: string) => {
    if (!settle()) return;
    c.failed++;
    log?.debug({ guest: guestPort, why }, "forward: cannot reach the guest");
    flow?.abort();
    if (!sock.destroyed) resetSocket(sock);
  };
  // The host client may give up before the guest answers.
  sock.once("close", () => {
    if (settle()) flow?.abort();
  });
  // On the network's clock and timer driver (stack/timers.ts).
  timer = layer.stack.timers.after(opts.connectTimeoutMs, () => fail("no answer to SYN"));
  /** A second try over IPv4, if there is one to make. */
  const fallBack = (to: GuestAddr): boolean => {
    if (typeof to === "number" || opts.fallback === undefined || settled) return false;
    c.fellBack++;
    attempt(opts.fallback);
    return true;
  };
  const attempt = (to: GuestAddr): void => {
    void resolver.resolve(to).then((known) => {
      if (settled) return;
      if (!known) return fallBack(to) ? undefined : fail(typeof to === "number" ? "no answer to ARP" : "no answer to neighbour solicitation");
      try {
        const onEvents = (f: TcpFlow, ev: number): void => {
          if (settled) return;
          if (ev & TcpEvent.Established) {
            settle();
            c.connected++;
            if (typeof sock.setNoDelay === "function") sock.setNoDelay(true);
            bridgeSocket(f, socketStream(sock), c, log);
            sock.resume();
            const rest = ev & ~TcpEvent.Established;
            if (rest !== 0) f.onEvents?.(f, rest);
          } else if (ev & (TcpEvent.Reset | TcpEvent.Closed)) {
            // RFC 9293 §3.10.7.3: RST in SYN-SENT — the guest port is closed (on this family).
            if (f.conn.error === "refused" && fallBack(to)) return;
            if (!settle()) return;
            if (f.conn.error === "refused") c.refused++;
            else c.failed++;
            resetSocket(sock);
          }
        };
        flow = typeof to === "number" ? layer.connect(to, guestPort, { onEvents }) : layer.connect6(to, guestPort, { onEvents });
      } catch (e) {
        fail((e as Error).message);
      }
    });
  };
  attempt(guest);
}

/** Reset a TCP client (RST), or close a Unix-socket client (which has no reset: Node throws ERR_INVALID_HANDLE_TYPE). */
function resetSocket(sock: Socket): void {
  if (sock.remoteFamily === undefined) sock.destroy();
  else sock.resetAndDestroy();
}

function listenError(e: NodeJS.ErrnoException, spec: ForwardSpec): Error {
  const where = `${spec.hostAddr}:${spec.hostPort}/${spec.proto}`;
  if (e.code === "EADDRINUSE") return new Error(`port ${spec.hostPort} is already in use (${where})`);
  if (e.code === "EACCES") return new Error(`no permission to listen on port ${spec.hostPort} (${where})`);
  if (e.code === "EADDRNOTAVAIL") return new Error(`address ${spec.hostAddr} is not on this host (${where})`);
  return new Error(`cannot listen on ${where}: ${e.message}`);
}

export { listenError };
