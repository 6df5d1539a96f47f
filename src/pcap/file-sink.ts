/**
 * The capture file sink: pcap records go to a regular file without ever blocking the event
 * loop on the disk.
 *
 * Records are appended to 64 KiB chunks; one asynchronous positional write (`fs.writev` on the
 * thread pool) at a time takes everything queued so far, so under load records go out in
 * batches and a lone record goes out at once (the file stays readable by `tshark -r` while the
 * capture runs, a few milliseconds behind). What is queued, the write in flight included, is
 * capped (`maxQueued`, default 8 MiB): beyond it a record is refused, and the writer counts it
 * as dropped. A slow or stalled disk therefore costs counted drops, never memory or a frozen
 * network.
 *
 * The first write error (ENOSPC, EIO, ...) stops the sink: it is handed to `onError` once and
 * every later record is refused. `close()` writes whatever is still queued with synchronous
 * positional writes (the write in flight too: rewriting the same bytes at the same offset is
 * harmless), so a capture is complete on disk when `close()` returns even if the process exits
 * right after; the descriptor itself is closed once the write in flight has come back.
 *
 * Writes are positional (the sink keeps the offset), so the descriptor must be a regular file
 * opened at offset 0: `openCaptureFile` in capture-file.ts gives exactly that.
 */

import { closeSync, writeSync, writev } from "node:fs";

/** The file operations the sink uses; injectable so tests can make writes fail. */
export interface FileSinkIo {
  writev(fd: number, buffers: Uint8Array[], position: number, cb: (err: NodeJS.ErrnoException | null, bytesWritten: number) => void): void;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  close(fd: number): void;
}

export const nodeFileIo: FileSinkIo = {
  writev: (fd, buffers, position, cb) => writev(fd, buffers, position, cb),
  writeSync: (fd, buffer, offset, length, position) => writeSync(fd, buffer, offset, length, position),
  close: (fd) => closeSync(fd),
};

/** Default cap on bytes queued for the file, the write in flight included. */
export const DEFAULT_MAX_QUEUED = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;
/** Most buffers handed to one writev (IOV_MAX is 1024 on Linux). */
const MAX_IOV = 1024;

export class FileSink {
  /** Bytes queued or in flight. */
  queued = 0;
  /** Chunk being filled, and where its unsubmitted part starts and ends. */
  private chunk: Uint8Array = new Uint8Array(0);
  private start = 0;
  private used = 0;
  /** Submitted-later parts of full chunks, in file order. */
  private waiting: Uint8Array[] = [];
  /** The batch being written, and its file offset. */
  private inFlight: Uint8Array[] | null = null;
  private inFlightPos = 0;
  /** File offset of the first byte not yet handed to a write. */
  private position = 0;
  private failed = false;
  private closed = false;
  private fdClosed = false;
  private idle: Array<() => void> = [];

  constructor(
    private readonly fd: number,
    private readonly maxQueued: number,
    private readonly onError: (err: Error) => void,
    private readonly io: FileSinkIo = nodeFileIo,
  ) {}

  /** Room for one record of `len` bytes, or null when it must be dropped (cap reached or failed). */
  alloc(len: number): Uint8Array | null {
    if (this.failed || this.closed || this.queued + len > this.maxQueued) return null;
    if (this.chunk.length - this.used < len) {
      if (this.used > this.start) this.waiting.push(this.chunk.subarray(this.start, this.used));
      this.chunk = new Uint8Array(Math.max(CHUNK, len));
      this.start = this.used = 0;
    }
    return this.chunk.subarray(this.used, this.used + len);
  }

  /** Commit the record `alloc` handed out (`rec` is that very view). */
  put(rec: Uint8Array): boolean {
    this.used += rec.length;
    this.queued += rec.length;
    this.kick();
    return true;
  }

  /** Resolves when everything queued so far is on disk (or the sink has failed or closed). */
  flushed(): Promise<void> {
    if (this.inFlight === null && this.queued === 0) return Promise.resolve();
    if (this.failed || this.fdClosed) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.failed) {
      // Synchronous final flush: the batch in flight again, then what waits.
      const rest = this.takeWaiting();
      try {
        let pos = this.inFlight ? this.inFlightPos : this.position;
        for (const b of [...(this.inFlight ?? []), ...rest]) {
          let off = 0;
          while (off < b.length) off += this.io.writeSync(this.fd, b, off, b.length - off, pos + off);
          pos += b.length;
        }
        this.position = pos;
      } catch (e) {
        this.fail(e as Error);
      }
    }
    this.queued = 0;
    if (this.inFlight === null) this.closeFd();
  }

  private takeWaiting(): Uint8Array[] {
    const out = this.waiting;
    this.waiting = [];
    if (this.used > this.start) {
      out.push(this.chunk.subarray(this.start, this.used));
      this.start = this.used;
    }
    return out;
  }

  private kick(): void {
    if (this.inFlight !== null || this.failed || this.closed) return;
    let batch = this.takeWaiting();
    if (batch.length === 0) return this.wakeIdle();
    if (batch.length > MAX_IOV) {
      this.waiting = batch.slice(MAX_IOV);
      batch = batch.slice(0, MAX_IOV);
    }
    this.inFlight = batch;
    this.inFlightPos = this.position;
    let total = 0;
    for (const b of batch) total += b.length;
    this.position += total;
    this.submit(batch, this.inFlightPos, total);
  }

  private submit(batch: Uint8Array[], pos: number, total: number): void {
    this.io.writev(this.fd, batch, pos, (err, n) => {
      if (this.closed) {
        // close() already wrote this batch synchronously.
        this.inFlight = null;
        this.closeFd();
        return;
      }
      if (err) {
        this.inFlight = null;
        return this.fail(err);
      }
      if (n < total) {
        // A short write: go on with the rest at its offset.
        const rest = skip(batch, n);
        this.inFlightPos = pos + n;
        this.inFlight = rest;
        this.queued -= n;
        return this.submit(rest, pos + n, total - n);
      }
      this.queued -= total;
      this.inFlight = null;
      this.kick();
    });
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.waiting = [];
    this.start = this.used;
    this.queued = 0;
    this.onError(err);
    this.wakeIdle();
    if (this.closed && this.inFlight === null) this.closeFd();
  }

  private closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    try {
      this.io.close(this.fd);
    } catch (e) {
      this.fail(e as Error);
    }
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const w = this.idle;
    this.idle = [];
    for (const f of w) f();
  }
}

/** `batch` without its first `n` bytes. */
function skip(batch: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const b of batch) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}
