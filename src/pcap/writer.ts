/**
 * Classic pcap writer (µs or ns timestamps, little-endian, link type 1 = Ethernet by default).
 *
 * Implements the writing side of draft-ietf-opsawg-pcap sections 4 (File Header) and 5
 * (Packet Record). Sinks:
 *  - a file path (`toFile`): opened by `openCaptureFile` (capture-file.ts: never through a
 *    link, only a new or regular file of the caller, mode 0600), written by `FileSink`
 *    (file-sink.ts: asynchronous batched writes, a capped queue, records beyond the cap
 *    dropped and counted), so a slow disk never blocks the event loop; `flushed()` resolves
 *    once what was written so far is in the file, which `tshark -r` can read while the capture
 *    is still open;
 *  - a caller's file descriptor (`toFd`): synchronous writes, each record (header + data) in
 *    one write call; for descriptors the caller chose and owns;
 *  - a Node `Writable`: one owned buffer per record; records are dropped (and counted) while
 *    the stream holds more than `maxBuffered` bytes, so a slow stream never grows memory
 *    without bound;
 *  - memory: an array of chunks (header first, then one chunk per record), for tests.
 *
 * `writePacket` never throws. The first I/O error is kept in `error` and reported once
 * through `onError`; every later packet is counted in `packetsDropped`.
 *
 * Checksum offload: a frame whose TCP/UDP checksum the link left partial (the pseudo-header
 * sum only: a TAP with offloads, both directions) is written with the checksum completed when
 * `writePacket` is told so (`completeChecksum`, see l4-checksum.ts), so tshark and
 * `pcap inspect` see valid checksums where the wire would have had them.
 */

import { closeSync, writeSync } from "node:fs";
import { openCaptureFile } from "./capture-file.js";
import { completeL4Checksum } from "./l4-checksum.js";
import { DEFAULT_MAX_QUEUED, FileSink, type FileSinkIo } from "./file-sink.js";
import type { Writable } from "node:stream";
import {
  emitPcapHeader,
  LINKTYPE_ETHERNET,
  PCAP_HEADER_LEN,
  PCAP_MAX_SNAPLEN,
  PCAP_RECORD_HEADER_LEN,
  setU32le,
} from "./format.js";

/** Wall-clock time: nanoseconds since the epoch, or seconds plus nanoseconds. */
export type PcapTimestamp = bigint | { sec: number; nsec: number };

export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d); default microseconds (0xa1b2c3d4). */
  nanosecond?: boolean;
  /** Bytes kept of each packet, 1..262144; default 262144. */
  snaplen?: number;
  /** Link type in the file header; default 1 (Ethernet). */
  linkType?: number;
  /** Called once, with the first I/O error. */
  onError?: (err: Error) => void;
}

export interface PcapStreamOptions extends PcapWriterOptions {
  /** Drop records while the stream buffers more than this many bytes; default 8 MiB. */
  maxBuffered?: number;
}

export interface PcapFileOptions extends PcapWriterOptions {
  /** Drop records while more than this many bytes wait for the disk; default 8 MiB. */
  maxQueued?: number;
  /** File operations (tests inject failures); default Node's fs. */
  io?: FileSinkIo;
}

export interface PcapFdOptions extends PcapWriterOptions {
  /** Close the descriptor in `close()`; default false (the caller owns it). */
  closeFd?: boolean;
}

/**
 * Where records go. `alloc` hands out the buffer `put` then writes in one call, or null when
 * the record must be dropped (a full queue or stream).
 */
interface Sink {
  alloc(len: number): Uint8Array | null;
  /** Write one record. May throw on I/O error. */
  put(rec: Uint8Array): boolean;
  close(): void;
  flushed?(): Promise<void>;
}

class FdSink implements Sink {
  private readonly scratch: Uint8Array;
  constructor(
    private readonly fd: number,
    private readonly owned: boolean,
    snaplen: number,
  ) {
    this.scratch = new Uint8Array(PCAP_RECORD_HEADER_LEN + snaplen);
  }
  alloc(len: number): Uint8Array {
    return this.scratch.subarray(0, len);
  }
  put(rec: Uint8Array): boolean {
    // A regular file takes the whole record in one write; loop only for a short write.
    let off = 0;
    while (off < rec.length) off += writeSync(this.fd, rec, off, rec.length - off);
    return true;
  }
  close(): void {
    if (this.owned) closeSync(this.fd);
  }
}

class MemorySink implements Sink {
  readonly chunks: Uint8Array[] = [];
  alloc(len: number): Uint8Array {
    return new Uint8Array(len);
  }
  put(rec: Uint8Array): boolean {
    this.chunks.push(rec);
    return true;
  }
  close(): void {}
}

class StreamSink implements Sink {
  constructor(
    private readonly stream: Writable,
    private readonly maxBuffered: number,
  ) {}
  alloc(len: number): Uint8Array | null {
    if (this.stream.writableLength > this.maxBuffered) return null;
    return Buffer.allocUnsafe(len);
  }
  put(rec: Uint8Array): boolean {
    this.stream.write(rec);
    return true;
  }
  close(): void {
    this.stream.end();
  }
}

const NS_PER_SEC = 1_000_000_000;
const MAX_SEC = 0xffff_ffff;

export class PcapWriter {
  /** Records written (handed to the sink). */
  packetsWritten = 0;
  /** Packets not written: after an error or `close()`, or refused by a full stream. */
  packetsDropped = 0;
  /** File bytes written (for a file: accepted for the disk), header included. */
  bytesWritten = 0;
  /** The first I/O error, if any. */
  error: Error | null = null;
  closed = false;
  readonly nanosecond: boolean;
  readonly snaplen: number;
  readonly linkType: number;
  private readonly onError: ((err: Error) => void) | undefined;
  private readonly memory: MemorySink | null;
  private readonly sink: Sink;

  private constructor(opts: PcapWriterOptions, makeSink: (snaplen: number, fail: (err: Error) => void) => Sink) {
    const snaplen = opts.snaplen ?? PCAP_MAX_SNAPLEN;
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > PCAP_MAX_SNAPLEN) {
      throw new RangeError(`pcap snaplen must be an integer in 1..${PCAP_MAX_SNAPLEN}, got ${snaplen}`);
    }
    const linkType = opts.linkType ?? LINKTYPE_ETHERNET;
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
      throw new RangeError(`pcap link type must be an integer in 0..65535, got ${linkType}`);
    }
    this.nanosecond = opts.nanosecond ?? false;
    this.snaplen = snaplen;
    this.linkType = linkType;
    this.onError = opts.onError;
    this.sink = makeSink(snaplen, (err) => this.fail(err));
    this.memory = this.sink instanceof MemorySink ? this.sink : null;
    // Section 4: the file header goes out at open, so a reader sees a valid (empty) file.
    const h = this.sink.alloc(PCAP_HEADER_LEN);
    if (h) {
      emitPcapHeader({ linkType, snaplen, nanosecond: this.nanosecond }, h);
      this.putRecord(h);
    }
  }

  /**
   * Create `path` (or empty an existing regular file of the caller's; see capture-file.ts)
   * and write the header. Throws a `CaptureFileError` naming the reason when the path is
   * refused (a link, a FIFO, a device, another user's file...); write errors later go to
   * `onError`.
   */
  static toFile(path: string, opts: PcapFileOptions = {}): PcapWriter {
    const maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    if (!Number.isInteger(maxQueued) || maxQueued < 1) throw new RangeError(`pcap maxQueued must be a positive integer, got ${maxQueued}`);
    const fd = openCaptureFile(path);
    try {
      return new PcapWriter(opts, (_snaplen, fail) => new FileSink(fd, maxQueued, fail, opts.io));
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** Write to an open file descriptor (synchronous writes). */
  static toFd(fd: number, opts: PcapFdOptions = {}): PcapWriter {
    return new PcapWriter(opts, (snaplen) => new FdSink(fd, opts.closeFd ?? false, snaplen));
  }

  /** Write to a Node stream; `close()` ends it. */
  static toStream(stream: Writable, opts: PcapStreamOptions = {}): PcapWriter {
    const w = new PcapWriter(opts, () => new StreamSink(stream, opts.maxBuffered ?? 8 * 1024 * 1024));
    stream.on("error", (err: Error) => w.fail(err));
    return w;
  }

  /** Keep the file in memory as `chunks`. */
  static toMemory(opts: PcapWriterOptions = {}): PcapWriter {
    return new PcapWriter(opts, () => new MemorySink());
  }

  /** The chunks of a memory writer (header first, one per record); empty for other sinks. */
  get chunks(): readonly Uint8Array[] {
    return this.memory ? this.memory.chunks : [];
  }

  /** Resolves once every record written so far has reached the sink's file (or it failed). */
  flushed(): Promise<void> {
    return this.sink.flushed ? this.sink.flushed() : Promise.resolve();
  }

  /** The whole file of a memory writer as one array. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.memory ? this.bytesWritten : 0);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /**
   * Append one packet, truncated to `snaplen` (its original length is recorded). Returns true
   * when the record was written, false when it was dropped. Never throws.
   * `completeChecksum`: the frame's TCP/UDP checksum is partial (offload); the record gets the
   * completed checksum when the whole frame fits in it (`data` itself is not changed).
   */
  writePacket(data: Uint8Array, ts: PcapTimestamp, completeChecksum = false): boolean {
    if (this.closed || this.error || !(data instanceof Uint8Array)) {
      this.packetsDropped++;
      return false;
    }
    let sec: number;
    let nsec: number;
    if (typeof ts === "bigint") {
      if (ts < 0n) ts = 0n;
      sec = Number(ts / 1_000_000_000n);
      nsec = Number(ts % 1_000_000_000n);
    } else {
      sec = Math.floor(ts?.sec);
      nsec = Math.floor(ts?.nsec);
      if (!Number.isFinite(sec) || !Number.isFinite(nsec)) sec = nsec = 0;
      const carry = Math.floor(nsec / NS_PER_SEC);
      sec += carry;
      nsec -= carry * NS_PER_SEC;
    }
    // Section 5: seconds are an unsigned 32-bit count; clamp what does not fit.
    if (sec < 0) sec = nsec = 0;
    else if (sec > MAX_SEC) {
      sec = MAX_SEC;
      nsec = NS_PER_SEC - 1;
    }
    const captured = data.length < this.snaplen ? data.length : this.snaplen;
    const rec = this.sink.alloc(PCAP_RECORD_HEADER_LEN + captured);
    if (rec === null) {
      this.packetsDropped++;
      return false;
    }
    // Section 5 record header, little-endian like the file header.
    setU32le(rec, 0, sec);
    setU32le(rec, 4, this.nanosecond ? nsec : Math.floor(nsec / 1000));
    setU32le(rec, 8, captured);
    setU32le(rec, 12, data.length);
    rec.set(captured === data.length ? data : data.subarray(0, captured), PCAP_RECORD_HEADER_LEN);
    if (completeChecksum && captured === data.length) completeL4Checksum(rec.subarray(PCAP_RECORD_HEADER_LEN));
    if (!this.putRecord(rec)) {
      this.packetsDropped++;
      return false;
    }
    this.packetsWritten++;
    return true;
  }

  /** Flush and release the sink. Idempotent; packets written afterwards are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.sink.close();
    } catch (e) {
      this.fail(e as Error);
    }
  }

  private putRecord(rec: Uint8Array): boolean {
    if (this.error) return false;
    try {
      if (!this.sink.put(rec)) return false;
    } catch (e) {
      this.fail(e as Error);
      return false;
    }
    this.bytesWritten += rec.length;
    return true;
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err instanceof Error ? err : new Error(String(err));
    try {
      this.onError?.(this.error);
    } catch {
      // The error is kept in `error`; a failing handler must not turn a packet into a throw.
    }
  }
}

const clockBase = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Wall-clock nanoseconds since the epoch with the monotonic clock's resolution. */
export function wallClockNs(): bigint {
  return clockBase + process.hrtime.bigint();
}
