/**
 * A FrameChannel over a Unix datagram socket (SOCK_DGRAM): one Ethernet frame per datagram,
 * no length prefix, no handshake. The transport of QEMU's `-netdev dgram` (./qemu-dgram.ts)
 * and of vfkit / Apple Virtualization's file-handle attachment (./vfkit.ts).
 *
 * skiff binds `localPath` (a stale socket file from an earlier run is replaced; `close`
 * removes it) and sends every frame to the peer's path. The peer is either given (QEMU: its
 * own `local.path`) or learned from the sender address of the first datagram received
 * (vfkit). Once the peer is known, datagrams from any other sender are dropped and counted.
 * With `vfkitHandshake`, a first datagram of exactly the 4 bytes "VFKT" — the handshake of
 * vfkit's original protocol — only teaches the peer's path and is not delivered as a frame.
 *
 * Sockets come from `node-unix-socket` (Node's `dgram` cannot open AF_UNIX). Its `sendTo`
 * copies the datagram and, when the kernel answers EAGAIN (the peer's receive queue is full —
 * `net.unix.max_dgram_qlen` is often 10), keeps it and retries when the socket is writable,
 * calling back once it has gone. That library queue has no bound of its own, so this channel
 * bounds it: `send` returns false once `highWater` datagrams are waiting, and beyond `limit`
 * frames are dropped and counted in `stats.txDrops`, never buffered and never thrown. A peer
 * that stops reading therefore costs at most `limit` frames of memory. Errors reported for a
 * datagram (peer gone: ENOENT, ECONNREFUSED) are counted in `sendErrors` and `txDrops`.
 * SO_SNDBUF / SO_RCVBUF are raised (1 MiB / 4 MiB, as gvproxy does for vfkit; the kernel may
 * cap them) so bursts queue in the kernel rather than in JS.
 */

import { existsSync, statSync, unlinkSync } from "node:fs";
import unixSocket from "node-unix-socket";
import type { DgramSocket as DgramSocketType } from "node-unix-socket";
import { BaseFrameChannel, maxFrameLen } from "./channel.js";

const { DgramSocket } = unixSocket;

/** Shortest datagram taken as a frame: an Ethernet header. */
const MIN_FRAME = 14;

export interface UnixDgramOptions {
  mtu?: number;
  /** Datagrams waiting in the socket above which `send` returns false; default 64. */
  highWater?: number;
  /** Most datagrams waiting in the socket; beyond it frames are dropped and counted; default 512. */
  limit?: number;
  /** SO_SNDBUF to ask for, bytes; default 1 MiB. */
  sendBufferSize?: number;
  /** SO_RCVBUF to ask for, bytes; default 4 MiB. */
  recvBufferSize?: number;
}

export interface UnixDgramEndpoint {
  /** Path skiff binds. */
  localPath: string;
  /** Path frames are sent to; when absent it is learned from the first datagram received. */
  peerPath?: string;
  /** Consume a first datagram of exactly "VFKT" (vfkit's original handshake). */
  vfkitHandshake?: boolean;
}

/** vfkit's original handshake datagram. */
const VFKT = [0x56, 0x46, 0x4b, 0x54];

function isVfkt(b: Uint8Array): boolean {
  return b.length === 4 && b[0] === VFKT[0] && b[1] === VFKT[1] && b[2] === VFKT[2] && b[3] === VFKT[3];
}

/** Remove a stale socket file at `path`; refuse to touch anything that is not a socket. */
export function removeStaleSocket(path: string): void {
  if (!existsSync(path)) return;
  if (!statSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  unlinkSync(path);
}

export class UnixDgramChannel extends BaseFrameChannel {
  /** Datagrams from a sender other than the peer (also counted in rxDrops). */
  foreignDrops = 0;
  /** "VFKT" handshakes consumed. */
  handshakes = 0;
  /** Datagrams the socket failed to send (also counted in txDrops). */
  sendErrors = 0;
  /** Frames dropped because no peer is known yet (also counted in txDrops). */
  noPeerDrops = 0;
  readonly localPath: string;
  private peer: string | undefined;
  private readonly vfkitHandshake: boolean;
  private firstDatagram = true;
  private waiting = 0;
  private needDrain = false;
  private readonly maxFrame: number;
  private readonly highWater: number;
  private readonly limit: number;
  private readonly onSent = (err: Error | undefined): void => this.sent(err);

  private constructor(
    name: string,
    private readonly socket: DgramSocketType,
    endpoint: UnixDgramEndpoint,
    opts: UnixDgramOptions,
  ) {
    super(name, opts.mtu ?? 1500);
    this.localPath = endpoint.localPath;
    this.peer = endpoint.peerPath;
    this.vfkitHandshake = endpoint.vfkitHandshake ?? false;
    this.maxFrame = maxFrameLen(this.mtu);
    this.limit = Math.max(1, opts.limit ?? 512);
    this.highWater = Math.min(this.limit, Math.max(1, opts.highWater ?? 64));
    socket.on("data", (buf: Buffer, from: string) => this.received(buf, from));
    socket.on("error", (err: Error) => this.finish(err));
  }

  /** Bind `endpoint.localPath` and return the channel (throws if the path cannot be bound). */
  static open(name: string, endpoint: UnixDgramEndpoint, opts: UnixDgramOptions = {}): UnixDgramChannel {
    removeStaleSocket(endpoint.localPath);
    const socket = new DgramSocket();
    try {
      socket.bind(endpoint.localPath);
      socket.setSendBufferSize(opts.sendBufferSize ?? 1 << 20);
      socket.setRecvBufferSize(opts.recvBufferSize ?? 4 << 20);
    } catch (e) {
      socket.close();
      throw e;
    }
    return new UnixDgramChannel(name, socket, endpoint, opts);
  }

  /** Where frames go (given, or learned from the first datagram); undefined until known. */
  get peerPath(): string | undefined {
    return this.peer;
  }

  /** Datagrams handed to the socket and not yet sent. */
  get inFlight(): number {
    return this.waiting;
  }

  private received(buf: Buffer, from: string): void {
    if (this.closed) return;
    const first = this.firstDatagram;
    this.firstDatagram = false;
    if (this.peer === undefined) {
      // An unbound sender has no address to answer; it cannot be the peer.
      if (from === "" || from === undefined) {
        this.foreignDrops++;
        this.stats.rxDrops++;
        return;
      }
      this.peer = from;
    } else if (from !== this.peer) {
      this.foreignDrops++;
      this.stats.rxDrops++;
      return;
    }
    if (first && this.vfkitHandshake && isVfkt(buf)) {
      this.handshakes++;
      return;
    }
    if (buf.length < MIN_FRAME || buf.length > this.maxFrame) {
      this.stats.rxDrops++;
      return;
    }
    this.deliver(buf);
  }

  protected transmit(frame: Uint8Array): boolean {
    const peer = this.peer;
    if (peer === undefined) {
      this.noPeerDrops++;
      this.stats.txDrops++;
      return true;
    }
    if (this.waiting >= this.limit) {
      this.stats.txDrops++;
      this.needDrain = true;
      return false;
    }
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    this.waiting++;
    try {
      this.socket.sendTo(buf, 0, buf.length, peer, this.onSent);
    } catch {
      this.waiting--;
      this.sendErrors++;
      this.stats.txDrops++;
      return true;
    }
    this.stats.txFrames++;
    this.stats.txBytes += frame.length;
    if (this.waiting >= this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  private sent(err: Error | undefined): void {
    this.waiting--;
    if (err) {
      this.sendErrors++;
      this.stats.txDrops++;
    }
    if (this.needDrain && this.waiting <= this.highWater >>> 1 && !this.closed) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  protected shutdown(): void {
    this.socket.close();
    try {
      unlinkSync(this.localPath);
    } catch {
      /* already gone */
    }
  }
}
