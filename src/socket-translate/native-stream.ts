/**
 * Host TCP sockets from the addon's epoll set (native/streams.c), as `HostStream`s.
 *
 * One `NativeStreamGroup` per process owns the shared read ring and the event records; each
 * wakeup of the set delivers every ready socket's events in one call (`dispatch`), so the
 * stack's end-of-batch work (ACKs, frames to the guest) runs once per loop iteration rather than
 * once per socket read, and no Node stream, write request or per-read callback is involved.
 *
 * Writes go straight to send(); what the kernel does not take is copied into a queue here and
 * goes out when the socket reports room (so the bridge can hand over borrowed views of the
 * receive queue, whose memory is reused once consumed). `end()` sends our FIN after the queue
 * empties; the stream closes (and reports it) once both FINs have passed, like a Node socket
 * with `allowHalfOpen`. UDP sockets of the same set are `NativeDatagramSocket`s.
 */

import { constants } from "node:os";
import { errnoName, loadAddon, type HostSocketAddon } from "../native/addon.js";
import type { HostStream, HostStreamHandlers } from "./host-stream.js";
import { UdpSendBatch, type BatchSocket } from "./udp-send-batch.js";

const K_CONNECTED = 1;
const K_DATA = 2;
const K_EOF = 3;
const K_ERROR = 4;
const K_WRITABLE = 5;
const K_DGRAM = 6;
const RECORD_INTS = 6;
const EAGAIN = constants.errno.EAGAIN;

/** Bytes read per wakeup across all sockets (one read of at most 512 KiB per socket: PER_READ in streams.c). */
const RING_BYTES = 1024 * 1024;
/** Event records per wakeup (three per TCP socket at most: data, EOF, writable; datagrams take the rest). */
const MAX_RECORDS = 1024;

export class NativeStreamGroup {
  private readonly ring = new ArrayBuffer(RING_BYTES);
  private readonly bytes = new Uint8Array(this.ring);
  private readonly records = new Int32Array(RECORD_INTS * MAX_RECORDS);
  private readonly byFd: (NativeStream | NativeDatagramSocket | undefined)[] = [];
  /** Fds closed while a batch is dispatched: their later records in the batch are stale. */
  private readonly closedInBatch = new Set<number>();
  private dispatching = false;
  /** Datagrams of the UDP sockets on their way out in UDP GSO batches (udp-send-batch.ts). */
  readonly udpBatch: UdpSendBatch;

  constructor(readonly addon: HostSocketAddon) {
    this.udpBatch = new UdpSendBatch(addon);
    addon.streamsInit(this.ring, this.records, (n) => this.dispatch(n));
  }

  /** Sockets open. */
  get size(): number {
    let n = 0;
    for (const s of this.byFd) if (s !== undefined) n++;
    return n;
  }

  /**
   * Connect to `ipv4:port`; `done(undefined)` once connected, `done(code)` ("ECONNREFUSED",
   * ...) when it fails — never synchronously.
   */
  connect(ipv4: number, port: number, done: (err: string | undefined) => void): NativeStream {
    const fd = this.addon.tcpConnect(ipv4 >>> 0, port);
    const s = new NativeStream(this, fd, done);
    if (fd < 0) {
      s.destroyed = true;
      process.nextTick(done, errnoName(-fd));
    } else {
      this.byFd[fd] = s;
    }
    return s;
  }

  /**
   * A UDP socket bound to an ephemeral port; `onMessage` gets each datagram (borrowed: valid
   * during the call) with its source. The errno name ("EMFILE", ...) when the kernel refuses.
   */
  openUdp(
    onMessage: (bytes: Uint8Array, srcIp: number, srcPort: number) => void,
    onSendError?: (code: string, datagrams: number) => void,
  ): NativeDatagramSocket | string {
    const fd = this.addon.udpOpen();
    if (fd < 0) return errnoName(-fd);
    const u = new NativeDatagramSocket(this, fd, onMessage, onSendError);
    this.byFd[fd] = u;
    return u;
  }

  /** @internal the stream's fd is closed. */
  forget(fd: number): void {
    this.byFd[fd] = undefined;
    if (this.dispatching) this.closedInBatch.add(fd);
  }

  private dispatch(n: number): void {
    const r = this.records;
    this.dispatching = true;
    try {
      for (let i = 0; i < n; i++) {
        const at = RECORD_INTS * i;
        const fd = r[at];
        const s = this.byFd[fd];
        if (s === undefined || (this.closedInBatch.size > 0 && this.closedInBatch.has(fd))) continue;
        const a = r[at + 2];
        if (s instanceof NativeDatagramSocket) {
          if (r[at + 1] === K_DGRAM) s.onMessage(this.bytes.subarray(a, a + r[at + 3]), r[at + 4] >>> 0, r[at + 5]);
          continue;
        }
        switch (r[at + 1]) {
          case K_CONNECTED:
            s.onConnected(a);
            break;
          case K_DATA:
            s.onData(this.bytes.subarray(a, a + r[at + 3]));
            break;
          case K_EOF:
            s.onEof();
            break;
          case K_ERROR:
            s.fail(a);
            break;
          case K_WRITABLE:
            s.onWritable();
            break;
        }
      }
    } finally {
      this.dispatching = false;
      this.closedInBatch.clear();
    }
  }
}

export class NativeStream implements HostStream {
  destroyed = false;
  private h: HostStreamHandlers | undefined;
  private connected = false;
  paused = false;
  private eof = false;
  private endWanted = false;
  private finSent = false;
  /** Bytes the kernel has not taken yet (copies), oldest first. */
  private queue: Uint8Array[] = [];

  constructor(
    private readonly group: NativeStreamGroup,
    readonly fd: number,
    private connectDone: ((err: string | undefined) => void) | undefined,
  ) {}

  get queuedBytes(): number {
    let n = 0;
    for (const d of this.queue) n += d.length;
    return n;
  }

  attach(h: HostStreamHandlers): void {
    this.h = h;
  }

  /** Done with `d` on return: what the kernel does not take at once is copied. */
  readonly copiesWrites = true;

  write(d: Uint8Array): boolean {
    if (this.destroyed || this.endWanted) return false;
    if (this.queue.length > 0) {
      this.queue.push(Uint8Array.from(d));
      return false;
    }
    const n = this.group.addon.streamWrite(this.fd, d);
    if (n === d.length) return true;
    if (n < 0 && n !== -EAGAIN) {
      this.fail(n);
      return false;
    }
    this.queue.push(Uint8Array.from(n > 0 ? d.subarray(n) : d));
    this.interest();
    return false;
  }

  end(): void {
    if (this.destroyed || this.endWanted) return;
    this.endWanted = true;
    // Not before the connection is up: shutdown() on a connecting socket abandons the connect.
    if (this.connected && this.queue.length === 0) this.sendFin();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.interest();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.interest();
  }

  destroy(): void {
    this.close(false);
  }

  reset(): void {
    this.close(true);
  }

  /** @internal */
  onConnected(negErrno: number): void {
    const done = this.connectDone;
    this.connectDone = undefined;
    if (negErrno < 0) {
      this.close(false);
      done?.(errnoName(-negErrno));
      return;
    }
    this.connected = true;
    this.interest();
    if (this.endWanted && this.queue.length === 0) this.sendFin();
    if (!this.destroyed) done?.(undefined);
  }

  /** @internal (one read per socket per batch: a pause can only come after it) */
  onData(chunk: Uint8Array): void {
    this.h?.data(chunk, false);
  }

  /** @internal */
  onEof(): void {
    if (this.eof) return;
    this.eof = true;
    this.h?.end();
    this.maybeFinished();
  }

  /** @internal */
  onWritable(): void {
    const addon = this.group.addon;
    while (this.queue.length > 0) {
      const d = this.queue[0];
      const n = addon.streamWrite(this.fd, d);
      if (n === d.length) {
        this.queue.shift();
        continue;
      }
      if (n < 0 && n !== -EAGAIN) return this.fail(n);
      if (n > 0) this.queue[0] = d.subarray(n);
      this.interest();
      return;
    }
    this.interest();
    if (this.endWanted) this.sendFin();
    if (!this.destroyed) this.h?.drain();
  }

  /** @internal an I/O error (-errno): close and report. */
  fail(negErrno: number): void {
    if (this.destroyed) return;
    const h = this.h;
    this.close(false);
    h?.error?.(errnoName(-negErrno));
    h?.close(true);
  }

  private sendFin(): void {
    if (this.finSent) return;
    this.finSent = true;
    const rc = this.group.addon.streamShutdown(this.fd);
    if (rc < 0) return this.fail(rc);
    this.maybeFinished();
  }

  /** Both FINs have passed: close, like a Node socket with allowHalfOpen. */
  private maybeFinished(): void {
    if (!this.eof || !this.finSent || this.destroyed) return;
    const h = this.h;
    this.close(false);
    h?.close(false);
  }

  private interest(): void {
    if (this.destroyed || !this.connected) return;
    const rc = this.group.addon.streamSet(this.fd, !this.paused && !this.eof, this.queue.length > 0);
    if (rc < 0) this.fail(rc);
  }

  private close(reset: boolean): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue = [];
    this.group.addon.streamClose(this.fd, reset);
    this.group.forget(this.fd);
  }
}

/** A UDP socket of the set (socket translation's per-flow host socket). */
export class NativeDatagramSocket implements BatchSocket {
  closed = false;

  constructor(
    private readonly group: NativeStreamGroup,
    readonly fd: number,
    /** @internal */
    readonly onMessage: (bytes: Uint8Array, srcIp: number, srcPort: number) => void,
    private readonly onSendError?: (code: string, datagrams: number) => void,
  ) {}

  /** Send one datagram now (copied by the kernel); bytes sent or -errno. */
  send(bytes: Uint8Array, ipv4: number, port: number): number {
    if (this.closed) return -constants.errno.EBADF;
    this.group.udpBatch.flushSocket(this);
    return this.group.addon.udpSendTo(this.fd, bytes, ipv4 >>> 0, port);
  }

  /**
   * Send one datagram (`bytes` borrowed: copied) at the end of the current task, in one UDP
   * GSO batch with the ones after it to the same place (udp-send-batch.ts); a failure goes to
   * `onSendError`.
   */
  sendBatched(bytes: Uint8Array, ipv4: number, port: number): void {
    if (this.closed) this.sendFailed("EBADF", 1);
    else this.group.udpBatch.add(this, bytes, ipv4, port);
  }

  /** @internal from the batch: `datagrams` were not sent. */
  sendFailed(code: string, datagrams: number): void {
    this.onSendError?.(code, datagrams);
  }

  close(): void {
    if (this.closed) return;
    this.group.udpBatch.flushSocket(this);
    this.closed = true;
    this.group.addon.streamClose(this.fd, false);
    this.group.forget(this.fd);
  }
}

let group: NativeStreamGroup | undefined;
let unavailable: string | undefined;

/** The process's group, or undefined (with `nativeStreamsUnavailable()` saying why). */
export function nativeStreams(): NativeStreamGroup | undefined {
  if (group !== undefined || unavailable !== undefined) return group;
  try {
    group = new NativeStreamGroup(loadAddon("host sockets in one epoll set"));
  } catch (e) {
    unavailable = (e as Error).message;
  }
  return group;
}

export function nativeStreamsUnavailable(): string | undefined {
  return unavailable;
}
