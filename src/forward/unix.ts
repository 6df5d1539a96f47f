/**
 * A host Unix socket forwarded to a guest TCP port: skiff listens on a socket file (mode 0600:
 * only its owner may connect, as with the control API) and relays each connection to
 * `guestIp:guestPort` through the stack's TCP engine, exactly as a TCP forward does
 * (tcp.ts `relayToGuest`: paused until the guest's handshake completes, then bridged with
 * backpressure and half-close). `skiff docker` serves the guest dockerd's TCP port this way as
 * `docker.sock`, so the host's docker CLI works with `DOCKER_HOST=unix://…`.
 *
 * A stale socket file left by a dead process is replaced; a live one is refused. `close()`
 * stops accepting and removes the socket file; `destroy()` also resets open connections.
 */

import { createServer, type Server, type Socket } from "node:net";
import { chmodSync, unlinkSync } from "node:fs";
import type { Logger } from "pino";
import type { TcpLayer } from "../stack/tcp.js";
import type { NeighborResolver } from "./neighbor.js";
import { relayToGuest, TcpForwardCounters } from "./tcp-forward.js";
import { prepareSocketPath } from "../common/socket-path.js";

export interface UnixForwardOptions {
  connectTimeoutMs?: number;
  log?: Logger;
  /** Names the option or purpose in error messages (default "unix forward"). */
  label?: string;
}

export class UnixForward {
  readonly counters = new TcpForwardCounters();
  private readonly sockets = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listen on `path` (mode 0600) and relay to `guestIp:guestPort`. */
  static async listen(layer: TcpLayer, resolver: NeighborResolver, path: string, guestIp: number, guestPort: number, opts: UnixForwardOptions = {}): Promise<UnixForward> {
    const label = opts.label ?? "unix forward";
    await prepareSocketPath(path, label);
    let self: UnixForward | undefined;
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
      if (!self || self.closed) return void sock.destroy();
      self.sockets.add(sock);
      sock.once("close", () => self!.sockets.delete(sock));
      relayToGuest(layer, resolver, sock, guestIp, guestPort, self.counters, { connectTimeoutMs: opts.connectTimeoutMs ?? 10_000, log: opts.log });
    });
    self = new UnixForward(server, path);
    // The socket file is created with mode 0600 (umask), before any other user could connect.
    const old = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) => reject(new Error(`${label} ${path}: ${e.code === "EADDRINUSE" ? "in use by a running process" : e.message}`)));
        server.listen(path, () => resolve());
      });
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o600);
    server.on("error", (e) => opts.log?.warn({ err: e.message }, `${label}: listener error`));
    return self;
  }

  /** Stop accepting and remove the socket file; open connections finish on their own. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) =>
      this.server.close(() => {
        // Node removes the file when it closes a listener it bound; make sure of it.
        try {
          unlinkSync(this.path);
        } catch {
          /* already gone */
        }
        resolve();
      }),
    );
  }

  /** Close, and reset every open connection. */
  destroy(): Promise<void> {
    const p = this.close();
    // A Unix socket has no reset: its clients see the connection close.
    for (const s of this.sockets) s.destroy();
    return p;
  }
}
