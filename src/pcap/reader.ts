/**
 * Classic pcap reader: both magics (µs and ns), both byte orders, never throws.
 *
 * Implements the reading side of draft-ietf-opsawg-pcap sections 4 (File Header) and 5
 * (Packet Record); the header itself is decoded by `parsePcapHeader` in format.ts.
 *
 *  - `PcapDecoder`: a sans-I/O incremental decoder. Push chunks of any size; it calls back
 *    with each complete record. Packet `data` is borrowed for the duration of the callback
 *    (it may point into the pushed chunk): copy what you keep.
 *  - `readPcap(bytes)`: a whole file in memory; packets' `data` are subarrays of `bytes`.
 *  - `readPcapFile(path)` / `streamPcapFile(path, onPacket)`: the same over a file, whole or in
 *    fixed-size chunks.
 *
 * A file that ends inside a record, or a captured length above the hard per-record cap
 * (`maxRecordLen`, default 256 KiB: libpcap's and Wireshark's largest record), is reported as a
 * `PcapReadError` (a `WireError` with layer "pcap") that also says how many packets were read
 * before it. A captured length above the file header's snapshot length is accepted, as
 * tshark accepts it: the header's snaplen is what the capturing tool asked for, and some
 * tools write records longer than it (section 4 gives no rule for readers).
 */

import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { WireError } from "../common/wire-error.js";
import {
  getU32x,
  parsePcapHeader,
  PCAP_HEADER_LEN,
  PCAP_MAX_SNAPLEN,
  PCAP_RECORD_HEADER_LEN,
  type PcapFileHeader,
} from "./format.js";

/** One packet record. */
export interface PcapPacket {
  /** Seconds since the Unix epoch (section 5 "Timestamp (Seconds)"). */
  tsSec: number;
  /** Fraction of the second in nanoseconds, whatever the file's unit. */
  tsFrac: number;
  /** Bytes present in `data` (section 5 "Captured Packet Length"). */
  capturedLength: number;
  /** Length of the packet on the wire (section 5 "Original Packet Length"). */
  originalLength: number;
  /** The captured bytes (borrowed: see the file comment). */
  data: Uint8Array;
}

export interface PcapCapture {
  header: PcapFileHeader;
  packets: PcapPacket[];
}

/** Why a file could not be read (completely), and how many packets came before the fault. */
export class PcapReadError extends WireError {
  constructor(
    reason: string,
    /** Packets decoded before the fault (0 for a header fault). */
    readonly packetsRead: number,
  ) {
    super("pcap", reason);
  }
}

export interface PcapReadOptions {
  /** Largest captured length accepted in a record, 1..2^31; default 262144 (256 KiB). */
  maxRecordLen?: number;
}

/** Receiver of decoded packets; `packet.data` is borrowed for the call. */
export type PcapPacketReceiver = (packet: PcapPacket) => void;

const EMPTY = new Uint8Array(0);

/** The packet's timestamp as nanoseconds since the epoch. */
export function packetTimeNs(p: PcapPacket): bigint {
  return BigInt(p.tsSec) * 1_000_000_000n + BigInt(p.tsFrac);
}

/**
 * Incremental pcap decoder (sans-I/O). `push` chunks, then `finish` once the input ends.
 * After the first fault it stays failed and ignores further input.
 */
export class PcapDecoder {
  /** The file header, once 24 bytes have arrived. */
  header: PcapFileHeader | null = null;
  /** Complete records delivered so far. */
  packetsRead = 0;
  /** The first fault, if any. */
  error: PcapReadError | null = null;
  /** Bytes of an incomplete record (or header) carried to the next push; always owned. */
  private pending: Uint8Array = EMPTY;
  private littleEndian = true;
  private nanosecond = false;
  private readonly maxRecordLen: number;

  constructor(opts: PcapReadOptions = {}) {
    const max = opts.maxRecordLen ?? PCAP_MAX_SNAPLEN;
    if (!Number.isInteger(max) || max < 1 || max > 0x8000_0000) {
      throw new RangeError(`pcap maxRecordLen must be an integer in 1..2^31, got ${max}`);
    }
    this.maxRecordLen = max;
  }

  /** Decode what `chunk` completes; returns false once the decoder has failed. */
  push(chunk: Uint8Array, onPacket: PcapPacketReceiver): boolean {
    if (this.error) return false;
    let buf = chunk;
    if (this.pending.length > 0) {
      buf = new Uint8Array(this.pending.length + chunk.length);
      buf.set(this.pending);
      buf.set(chunk, this.pending.length);
    }
    let off = 0;
    if (!this.header) {
      if (buf.length < PCAP_HEADER_LEN) {
        this.keep(buf, 0, chunk);
        return true;
      }
      const h = parsePcapHeader(buf);
      if (h instanceof WireError) return this.fail(h.reason);
      this.header = h;
      this.littleEndian = h.littleEndian;
      this.nanosecond = h.nanosecond;
      off = PCAP_HEADER_LEN;
    }
    const le = this.littleEndian;
    while (buf.length - off >= PCAP_RECORD_HEADER_LEN) {
      // Section 5: the four record header fields, in the file's byte order.
      const capturedLength = getU32x(buf, off + 8, le);
      if (capturedLength > this.maxRecordLen) {
        return this.fail(
          `captured length ${capturedLength} exceeds the ${this.maxRecordLen}-byte record limit after ${this.packetsRead} packets`,
        );
      }
      const end = off + PCAP_RECORD_HEADER_LEN + capturedLength;
      if (end > buf.length) break;
      const frac = getU32x(buf, off + 4, le);
      onPacket({
        tsSec: getU32x(buf, off, le),
        tsFrac: this.nanosecond ? frac : frac * 1000,
        capturedLength,
        originalLength: getU32x(buf, off + 12, le),
        data: buf.subarray(off + PCAP_RECORD_HEADER_LEN, end),
      });
      this.packetsRead++;
      off = end;
    }
    this.keep(buf, off, chunk);
    return true;
  }

  /** The input has ended: returns the fault (including a cut-off last record), or null. */
  finish(): PcapReadError | null {
    if (this.error) return this.error;
    if (!this.header) {
      const h = parsePcapHeader(this.pending);
      this.fail(h instanceof WireError ? h.reason : "truncated header");
      return this.error;
    }
    if (this.pending.length > 0) this.fail(`truncated record after ${this.packetsRead} packets`);
    return this.error;
  }

  /** Carry `buf[off..]` over; copy it when it lies in the caller's (borrowed) chunk. */
  private keep(buf: Uint8Array, off: number, chunk: Uint8Array): void {
    if (off >= buf.length) this.pending = EMPTY;
    else this.pending = buf === chunk ? buf.slice(off) : buf.subarray(off);
  }

  private fail(reason: string): false {
    this.error = new PcapReadError(reason, this.packetsRead);
    this.pending = EMPTY;
    return false;
  }
}

function ioError(path: string, e: unknown, packetsRead: number): PcapReadError {
  return new PcapReadError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, packetsRead);
}

/** Read a whole capture held in memory. Packets' `data` are subarrays of `bytes`. */
export function readPcap(bytes: Uint8Array, opts: PcapReadOptions = {}): PcapCapture | PcapReadError {
  const d = new PcapDecoder(opts);
  const packets: PcapPacket[] = [];
  d.push(bytes, (p) => packets.push(p));
  const err = d.finish();
  if (err) return err;
  return { header: d.header!, packets };
}

/** Read a whole capture file. I/O errors come back as a `PcapReadError` too. */
export function readPcapFile(path: string, opts: PcapReadOptions = {}): PcapCapture | PcapReadError {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    return ioError(path, e, 0);
  }
  return readPcap(bytes, opts);
}

/**
 * Read a capture file in chunks of `chunkSize` bytes, handing each packet to `onPacket`
 * (its `data` is borrowed for the call). Returns the header and the packet count, or the
 * fault (`packetsRead` says how many packets were delivered before it).
 */
export function streamPcapFile(
  path: string,
  onPacket: PcapPacketReceiver,
  chunkSize = 65_536,
  opts: PcapReadOptions = {},
): { header: PcapFileHeader; packets: number } | PcapReadError {
  const d = new PcapDecoder(opts);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    return ioError(path, e, 0);
  }
  const chunk = new Uint8Array(Math.max(1, chunkSize));
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        return ioError(path, e, d.packetsRead);
      }
      if (n === 0) break;
      if (!d.push(chunk.subarray(0, n), onPacket)) break;
    }
  } finally {
    try {
      closeSync(fd);
    } catch {
      // A failed close of a file opened read-only loses nothing.
    }
  }
  const err = d.finish();
  if (err) return err;
  return { header: d.header!, packets: d.packetsRead };
}
