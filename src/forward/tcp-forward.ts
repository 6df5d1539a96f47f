/**
 * TCP port forwarding, host → guest: skiff listens on a host address and port; each accepted
 * host connection becomes a connection *from the stack into the guest* (an active open of the
 * TCP engine, `TcpLayer.connect`, RFC 9293 §3.10.1) to the forward's guest address and port,
 * seen by the guest as coming from the host alias (192.168.65.2) or, with the alias disabled,
 * the gateway. docker's `-p` and VPNKit's port forwarding behave the same way.
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
import type { NeighborResolver } from "./neighbor.js";
import type { Timeout } from "../common/clock.js";
import { Counters } from "../common/counters.js";

export class TcpForwardCounters extends Counters {
  accepted = 0;
  connected = 0;
  /** The guest answered RST: nothing listens on the guest port. */
  refused = 0;
  /** No answer to ARP, a full flow table, or no SYN-ACK in time. */
  failed = 0;
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
}

export class TcpForward {
  readonly counters = new TcpForwardCounters();
  private readonly server: Server;
  private readonly guestIp: number;
  private readonly connectTimeoutMs: number;
  private readonly log: Logger | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly layer: TcpLayer,
    private readonly resolver: NeighborResolver,
    readonly spec: ForwardSpec,
    guestIp: number,
    opts: TcpForwardOptions,
  ) {
    this.guestIp = guestIp;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.log = opts.log;
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => this.onConnection(sock));
  }

  /** Listen on the spec's host address and port; rejects with an error naming the port. */
  static async listen(layer: TcpLayer, resolver: NeighborResolver, spec: ForwardSpec, guestIp: number, opts: TcpForwardOptions = {}): Promise<TcpForward> {
    const f = new TcpForward(layer, resolver, spec, guestIp, opts);
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
    relayToGuest(this.layer, this.resolver, sock, this.guestIp, this.spec.guestPort, this.counters, { connectTimeoutMs: this.connectTimeoutMs, log: this.log });
  }
}

/**
 * Relay one accepted host connection (created paused, `pauseOnConnect`) to `guestIp:guestPort`
 * through an active open of the stack's TCP engine; shared by the TCP forward and the Unix
 * socket forward (unix.ts). The host client is reset when the guest refuses, does not answer
 * ARP, or does not answer the SYN within `connectTimeoutMs`.
 */
export function relayToGuest(
  layer: TcpLayer,
  resolver: NeighborResolver,
  sock: Socket,
  guestIp: number,
  guestPort: number,
  c: TcpForwardCounters,
  opts: { connectTimeoutMs: number; log?: Logger },
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
  resolver.resolve(guestIp).then((known) => {
    if (settled) return;
    if (!known) return fail("no answer to ARP");
    try {
      flow = layer.connect(guestIp, guestPort, {
        onEvents: (f, ev) => {
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
            // RFC 9293 §3.10.7.3: RST in SYN-SENT — the guest port is closed.
            if (!settle()) return;
            if (f.conn.error === "refused") c.refused++;
            else c.failed++;
            resetSocket(sock);
          }
        },
      });
    } catch (e) {
      fail((e as Error).message);
    }
  });
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
