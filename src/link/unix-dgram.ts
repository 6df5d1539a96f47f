/**
 * A FrameChannel over a Unix datagram socket (SOCK_DGRAM): one Ethernet frame per datagram,
 * no length prefix, no handshake. The transport of QEMU's `-netdev dgram` (./qemu-dgram.ts)
 * and of vfkit / Apple Virtualization's file-handle attachment (./vfkit.ts).
 *
 * skiff binds `localPath` (a stale socket file from an earlier run is replaced; `close`
 * removes it) and connect()s the socket to the peer's path, through the addon in
 * `native/tap.c` (Node's `dgram` cannot open AF_UNIX). The peer is either given (QEMU: its own
 * `local.path`) or learned from the sender address of the first datagram received (vfkit).
 * Until the socket is connected — the peer is unknown, or has not bound its path yet — the
 * addon peeks at the sender of each datagram: one from the peer connects the socket and is
 * then read as a frame, any other is dropped and counted (`foreignDrops`). Once connected, the
 * kernel delivers only the peer's datagrams (others' sends fail with EPERM on their side).
 * With `vfkitHandshake`, a first datagram of exactly the 4 bytes "VFKT" — the handshake of
 * vfkit's original protocol — only teaches the peer's path and is not delivered as a frame.
 *
 * Why connected: a sender whose peer's receive queue is full (`net.unix.max_dgram_qlen`, 10 by
 * default) gets EAGAIN, and only a *connected* AF_UNIX datagram socket is reported writable
 * again when the peer reads; an unconnected one (sendto) can wait for that forever, which is
 * how bulk traffic toward QEMU used to stall after ~66 KB.
 *
 * Receive: the addon's uv_poll reader, up to 64 datagrams per wakeup into one reused ring,
 * each delivered as a view of its slot (borrowed). Runts (< 14 bytes) and datagrams longer
 * than `mtu + 18` are counted in `rxDrops`.
 *
 * Send: a synchronous `write()`; a written frame is in the peer's queue when `send` returns.
 * On EAGAIN the frame is copied into a bounded ring and the addon is asked to call back once
 * the socket is writable (UV_WRITABLE on the reader's poll handle), which flushes the ring in
 * order. `send` returns false once `highWater` frames wait and `drain` fires when at most half
 * of that remain; beyond `limit` frames are dropped and counted in `stats.txDrops`, never
 * buffered, never thrown. A peer that stops reading therefore costs at most `limit` frames of
 * memory. `txFrames` counts frames written to the socket; waiting ones are `inFlight`. A write
 * that fails otherwise (peer gone: ECONNREFUSED, after which the kernel disconnects us; not
 * there yet: ENOENT from connect) drops that frame, counted in `sendErrors` and `txDrops`; the
 * next frame tries to connect again, so either side may (re)start first. SO_SNDBUF /
 * SO_RCVBUF are raised (1 MiB / 4 MiB, as gvproxy does for vfkit; the kernel may cap them).
 *
 * Not filtered: datagrams from another sender already queued behind the peer's first one when
 * the socket connects, or arriving while a peer that went away is being replaced.
 */

import { unlinkSync } from "node:fs";
import { checkSocketPath } from "../common/socket-path.js";
import { constants } from "node:os";
import { BaseFrameChannel, maxFrameLen } from "../common/frame-channel.js";
import { errnoName, loadAddon, type SkiffAddon } from "../native/addon.js";

const { EAGAIN, ECONNREFUSED, ENOTCONN } = constants.errno;

/** Shortest datagram taken as a frame: an Ethernet header. */
const MIN_FRAME = 14;
/** Datagrams the addon reads per wakeup (its own cap is also 64). */
const BATCH = 64;
/** First size of the EAGAIN ring, in frames; it doubles up to `limit`. */
const RING_START = 64;

export interface UnixDgramOptions {
  mtu?: number;
  /** Frames waiting (after EAGAIN) at which `send` returns false; default 64. */
  highWater?: number;
  /** Most frames waiting; beyond it frames are dropped and counted; default 512. */
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

/**
 * Remove a socket file at `path` (refusing a missing directory, a directory or any other kind
 * of file, with a message saying so). Synchronous, so it cannot tell a live binding from a
 * stale one: callers that can wait use `prepareSocketPath` (common/socket-path.ts) first.
 */
export function removeStaleSocket(path: string): void {
  if (checkSocketPath(path)) unlinkSync(path);
}

/**
 * Frames waiting after EAGAIN, oldest first: owned copies in fixed slots of one buffer that
 * starts small and doubles up to `limit` slots (no allocation per frame).
 */
class FrameRing {
  private bytes = new Uint8Array(0);
  private lengths = new Uint32Array(0);
  private head = 0;
  count = 0;

  constructor(
    private readonly slot: number,
    readonly limit: number,
  ) {}

  get full(): boolean {
    return this.count >= this.limit;
  }

  /** Copy `frame` in at the tail (the caller checks `full` first). */
  push(frame: Uint8Array): void {
    if (this.count === this.lengths.length) this.grow();
    const i = (this.head + this.count) % this.lengths.length;
    this.bytes.set(frame, i * this.slot);
    this.lengths[i] = frame.length;
    this.count++;
  }

  /** The oldest frame, a view valid until the next `push` (count > 0). */
  peek(): Uint8Array {
    const at = this.head * this.slot;
    return this.bytes.subarray(at, at + this.lengths[this.head]);
  }

  shift(): void {
    this.head = (this.head + 1) % this.lengths.length;
    this.count--;
  }

  /** Forget everything, keeping the buffer for the next burst. */
  clear(): void {
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const n = Math.min(this.limit, Math.max(RING_START, this.lengths.length * 2));
    const bytes = new Uint8Array(n * this.slot);
    const lengths = new Uint32Array(n);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) % this.lengths.length;
      bytes.set(this.bytes.subarray(i * this.slot, i * this.slot + this.lengths[i]), k * this.slot);
      lengths[k] = this.lengths[i];
    }
    this.bytes = bytes;
    this.lengths = lengths;
    this.head = 0;
  }
}

export class UnixDgramChannel extends BaseFrameChannel {
  /** Datagrams dropped while waiting for the peer: other or unbound senders (also in rxDrops). */
  foreignDrops = 0;
  /** "VFKT" handshakes consumed. */
  handshakes = 0;
  /** Frames that could not be sent: peer gone or not there yet (also counted in txDrops). */
  sendErrors = 0;
  /** Frames dropped because no peer is known yet (also counted in txDrops). */
  noPeerDrops = 0;
  readonly localPath: string;
  private peer: string | undefined;
  private connected = false;
  private readonly vfkitHandshake: boolean;
  private firstDatagram = true;
  private readonly maxFrame: number;
  private readonly slot: number;
  private readonly ring: Uint8Array;
  private readonly lengths = new Uint32Array(BATCH);
  private readonly waiting: FrameRing;
  private readonly highWater: number;
  private writableArmed = false;
  private needDrain = false;
  private readonly onBatch = (count: number): void => this.received(count);
  private readonly onPeer = (event: string | number): void => this.peerEvent(event);
  private readonly onWritable = (): void => {
    this.writableArmed = false;
    this.flush();
  };

  private constructor(
    name: string,
    private readonly addon: SkiffAddon,
    private readonly fd: number,
    endpoint: UnixDgramEndpoint,
    opts: UnixDgramOptions,
  ) {
    super(name, opts.mtu ?? 1500);
    this.localPath = endpoint.localPath;
    this.peer = endpoint.peerPath;
    this.vfkitHandshake = endpoint.vfkitHandshake ?? false;
    this.maxFrame = maxFrameLen(this.mtu);
    // One byte more than the largest frame, so a datagram truncated to the slot reads as too long.
    this.slot = this.maxFrame + 1;
    this.ring = new Uint8Array(this.slot * BATCH);
    const limit = Math.max(1, opts.limit ?? 512);
    this.highWater = Math.min(limit, Math.max(1, opts.highWater ?? 64));
    this.waiting = new FrameRing(this.maxFrame, limit);
    if (!this.connect()) this.awaitPeer();
  }

  /** Bind `endpoint.localPath` and return the channel (throws if the path cannot be bound). */
  static open(name: string, endpoint: UnixDgramEndpoint, opts: UnixDgramOptions = {}): UnixDgramChannel {
    const addon = loadAddon("Unix datagram sockets (QEMU -netdev dgram, vfkit)");
    removeStaleSocket(endpoint.localPath);
    const fd = addon.unixDgramOpen(endpoint.localPath, opts.sendBufferSize ?? 1 << 20, opts.recvBufferSize ?? 4 << 20);
    if (fd < 0) throw new Error(`${name}: cannot bind ${endpoint.localPath}: ${errnoName(-fd)}`);
    try {
      return new UnixDgramChannel(name, addon, fd, endpoint, opts);
    } catch (e) {
      addon.close(fd);
      removeStaleSocket(endpoint.localPath);
      throw e;
    }
  }

  /** Where frames go (given, or learned from the first datagram); undefined until known. */
  get peerPath(): string | undefined {
    return this.peer;
  }

  /** Frames waiting for the socket to become writable. */
  get inFlight(): number {
    return this.waiting.count;
  }

  /** Connect to the known peer and read frames from it; false when it is unknown or not there. */
  private connect(): boolean {
    if (this.peer === undefined || this.addon.unixDgramConnect(this.fd, this.peer) !== 0) return false;
    this.connected = true;
    this.addon.stopRead(this.fd); // the peer-waiting poll, if any
    this.startReading();
    return true;
  }

  private startReading(): void {
    this.writableArmed = false;
    this.addon.startRead(this.fd, this.ring.buffer as ArrayBuffer, this.slot, this.lengths, this.onBatch);
  }

  /** Not connected: poll until the peer (or, unknown, any named sender) sends; see native/tap.c. */
  private awaitPeer(): void {
    this.connected = false;
    this.writableArmed = false;
    this.addon.stopRead(this.fd);
    this.addon.unixDgramAwaitPeer(this.fd, this.peer ?? null, this.onPeer);
  }

  private peerEvent(event: string | number): void {
    if (typeof event === "string") {
      // Connected to the sender, whose datagram is next in the queue; the addon stopped polling.
      this.peer = event;
      this.connected = true;
      this.startReading();
    } else if (event === 0) {
      this.foreignDrops++;
      this.stats.rxDrops++;
    } else {
      this.finish(new Error(`${this.name}: read failed: ${errnoName(-event)}`));
    }
  }

  private received(count: number): void {
    if (count < 0) {
      this.finish(new Error(`${this.name}: read failed: ${errnoName(-count)}`));
      return;
    }
    const ring = this.ring;
    const slot = this.slot;
    for (let i = 0; i < count; i++) {
      const len = this.lengths[i];
      const frame = ring.subarray(i * slot, i * slot + len);
      if (this.firstDatagram) {
        this.firstDatagram = false;
        if (this.vfkitHandshake && isVfkt(frame)) {
          this.handshakes++;
          continue;
        }
      }
      if (len < MIN_FRAME || len > this.maxFrame) this.stats.rxDrops++;
      else this.deliver(frame);
    }
  }

  /** Write one frame now: bytes written, -EAGAIN (nothing counted), or another result, counted. */
  private write(frame: Uint8Array): number {
    if (!this.connected && !this.connect()) {
      this.sendErrors++;
      this.stats.txDrops++;
      return 0;
    }
    const n = this.addon.write(this.fd, frame);
    if (n >= 0) {
      this.stats.txFrames++;
      this.stats.txBytes += frame.length;
    } else if (n !== -EAGAIN) {
      this.sendErrors++;
      this.stats.txDrops++;
      // The peer went away: the kernel has disconnected us; wait for it (or a new one at its path).
      if ((n === -ECONNREFUSED || n === -ENOTCONN) && !this.closed) this.awaitPeer();
    }
    return n;
  }

  protected transmit(frame: Uint8Array): boolean {
    if (this.peer === undefined) {
      this.noPeerDrops++;
      this.stats.txDrops++;
      return true;
    }
    if (this.waiting.count === 0 && this.write(frame) !== -EAGAIN) return true;
    if (this.waiting.full) {
      this.stats.txDrops++;
      this.needDrain = true;
      return false;
    }
    this.waiting.push(frame);
    this.armWritable();
    if (this.waiting.count >= this.highWater) {
      this.needDrain = true;
      return false;
    }
    return true;
  }

  private armWritable(): void {
    if (this.writableArmed || !this.connected) return;
    this.writableArmed = true;
    this.addon.waitWritable(this.fd, this.onWritable);
  }

  /** The socket is writable (or the peer changed): write waiting frames in order until EAGAIN. */
  private flush(): void {
    if (this.closed) return;
    const waiting = this.waiting;
    while (waiting.count > 0) {
      if (this.write(waiting.peek()) === -EAGAIN) {
        this.armWritable();
        break;
      }
      waiting.shift();
    }
    if (this.needDrain && waiting.count <= this.highWater >>> 1) {
      this.needDrain = false;
      this.emit("drain");
    }
  }

  protected shutdown(): void {
    this.stats.txDrops += this.waiting.count;
    this.waiting.clear();
    this.addon.close(this.fd);
    try {
      unlinkSync(this.localPath);
    } catch {
      /* already gone */
    }
  }
}
