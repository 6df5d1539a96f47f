/**
 * QEMU `-netdev stream` (and `-netdev socket`) attachment: Ethernet frames, each preceded by
 * a 4-byte big-endian length, over a Unix or TCP stream socket.
 *
 * skiff can listen (QEMU connects: `-netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH`)
 * — each accepted connection is one guest's channel — or connect to a QEMU that listens
 * (`server=on`).
 *
 * Addresses are written `unix:PATH` or `tcp:HOST:PORT`.
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";
import { unlinkSync } from "node:fs";
import { prepareSocketPath } from "../common/socket-path.js";
import { EventEmitter } from "node:events";
import { QEMU_PREFIX, StreamFrameChannel, type StreamChannelOptions } from "./stream-channel.js";

export type StreamAddress = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Parse `unix:PATH` or `tcp:HOST:PORT` (a bare path is taken as unix). */
export function parseStreamAddress(s: string): StreamAddress {
  if (s.startsWith("tcp:")) {
    const rest = s.slice(4);
    const i = rest.lastIndexOf(":");
    const port = Number(rest.slice(i + 1));
    if (i < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Error(`bad TCP address "${s}": expected tcp:HOST:PORT`);
    }
    return { kind: "tcp", host: rest.slice(0, i).replace(/^\[|\]$/g, "") || "127.0.0.1", port };
  }
  const path = s.startsWith("unix:") ? s.slice(5) : s;
  if (path.length === 0) throw new Error(`bad Unix socket address "${s}"`);
  return { kind: "unix", path };
}

export function formatStreamAddress(a: StreamAddress): string {
  return a.kind === "unix" ? `unix:${a.path}` : `tcp:${a.host}:${a.port}`;
}

function wrap(socket: Socket, label: string, opts: StreamChannelOptions): StreamFrameChannel {
  return new StreamFrameChannel(`qemu-stream:${label}`, socket, QEMU_PREFIX, opts);
}

/** Connect to a QEMU listening with `-netdev stream,server=on`. */
export function connectQemuStream(address: string, opts: StreamChannelOptions = {}): Promise<StreamFrameChannel> {
  const a = parseStreamAddress(address);
  return new Promise((resolve, reject) => {
    const socket = a.kind === "unix" ? createConnection(a.path) : createConnection(a.port, a.host);
    socket.once("error", reject);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(wrap(socket, formatStreamAddress(a), opts));
    });
  });
}

export interface QemuStreamListenerEvents {
  channel: [channel: StreamFrameChannel];
  error: [error: Error];
}

/**
 * Listens for QEMU guests; emits `channel` for each connection. A stale Unix socket file
 * from an earlier run is replaced; `close()` removes the socket file.
 */
export class QemuStreamListener extends EventEmitter<QemuStreamListenerEvents> {
  private constructor(
    private readonly server: Server,
    readonly address: StreamAddress,
  ) {
    super();
  }

  static async listen(address: string, opts: StreamChannelOptions = {}): Promise<QemuStreamListener> {
    const a = parseStreamAddress(address);
    if (a.kind === "unix") await prepareSocketPath(a.path);
    const server = createServer();
    const listener = new QemuStreamListener(server, a);
    let n = 0;
    server.on("connection", (socket) => {
      const label = a.kind === "unix" ? `${a.path}#${++n}` : `${socket.remoteAddress}:${socket.remotePort}`;
      listener.emit("channel", wrap(socket, label, opts));
    });
    return new Promise((resolve, reject) => {
      // A failed listen leaves nothing open (the server's handle would keep the process alive).
      const fail = (e: Error) => {
        server.close();
        reject(e);
      };
      server.once("error", fail);
      const done = () => {
        server.off("error", fail);
        server.on("error", (e) => listener.emit("error", e));
        if (a.kind === "tcp") {
          const addr = server.address();
          if (addr && typeof addr === "object") (listener.address as { port: number }).port = addr.port;
        }
        resolve(listener);
      };
      if (a.kind === "unix") server.listen(a.path, done);
      else server.listen(a.port, a.host, done);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      if (this.address.kind === "unix") {
        try {
          unlinkSync(this.address.path);
        } catch {
          /* already gone */
        }
      }
    });
  }
}
