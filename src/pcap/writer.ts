/**
 * Classic pcap writer (µs or ns timestamps, little-endian, link type 1 = Ethernet by default).
 *
 * Implements the writing side of draft-ietf-opsawg-pcap sections 4 (File Header) and 5
 * (Packet Record). Sinks:
 *  - a file path or file descriptor: synchronous writes, the header at open and each record
 *    (header + data) in a single write call from one reused buffer, so `tshark -r` can read
 *    the file while it is still being written;
 *  - a Node `Writable`: one owned buffer per record; records are dropped (and counted) while
 *    the stream holds more than `maxBuffered` bytes, so a slow stream never grows memory
 *    without bound;
 *  - memory: an array of chunks (header first, then one chunk per record), for tests.
 *
 * `writePacket` never throws. The first I/O error is kept in `error` and reported once
 * through `onError`; every later packet is counted in `packetsDropped`.
 */

import { closeSync, openSync, writeSync } from "node:fs";
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

export interface PcapFdOptions extends PcapWriterOptions {
  /** Close the descriptor in `close()`; default false (the caller owns it). */
  closeFd?: boolean;
}

/** Where records go. `alloc` hands out the buffer `put` then writes in one call. */
interface Sink {
  alloc(len: number): Uint8Array;
  /** Write one record; false when it was dropped for backpressure. May throw on I/O error. */
  put(rec: Uint8Array): boolean;
  close(): void;
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
  alloc(len: number): Uint8Array {
    return Buffer.allocUnsafe(len);
  }
  put(rec: Uint8Array): boolean {
    if (this.stream.writableLength > this.maxBuffered) return false;
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
  /** File bytes written, header included. */
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

  private constructor(opts: PcapWriterOptions, makeSink: (snaplen: number) => Sink) {
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
    this.sink = makeSink(snaplen);
    this.memory = this.sink instanceof MemorySink ? this.sink : null;
    // Section 4: the file header goes out at open, so a reader sees a valid (empty) file.
    const h = this.sink.alloc(PCAP_HEADER_LEN);
    emitPcapHeader({ linkType, snaplen, nanosecond: this.nanosecond }, h);
    this.putRecord(h);
  }

  /**
   * Create (truncate) `path` and write the header. Throws if the file cannot be opened
   * (a configuration error); write errors later go to `onError`.
   */
  static toFile(path: string, opts: PcapWriterOptions = {}): PcapWriter {
    const fd = openSync(path, "w");
    try {
      return new PcapWriter(opts, (snaplen) => new FdSink(fd, true, snaplen));
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
   */
  writePacket(data: Uint8Array, ts: PcapTimestamp): boolean {
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
    // Section 5 record header, little-endian like the file header.
    setU32le(rec, 0, sec);
    setU32le(rec, 4, this.nanosecond ? nsec : Math.floor(nsec / 1000));
    setU32le(rec, 8, captured);
    setU32le(rec, 12, data.length);
    rec.set(captured === data.length ? data : data.subarray(0, captured), PCAP_RECORD_HEADER_LEN);
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
