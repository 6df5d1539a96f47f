/**
 * `skiff pcap inspect FILE [--json]`: one line (or one JSON object) per frame of a classic
 * pcap file with link type Ethernet, decoded by `src/pcap/inspect.ts`.
 *
 * Exit status: 0 when every frame was read; 1 when the file cannot be read, is not pcap
 * (pcapng included), has another link type, or ends inside a record (the frames before the
 * fault are printed, then a warning). The file is streamed in chunks, never read whole.
 * Output goes out with synchronous writes so that a reader that goes away (`| head`, EPIPE)
 * simply ends the listing, without a stack trace.
 */

import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { WireError } from "../common/wire-error.js";
import { formatFrameJson, formatFrameText, inspectPacket } from "../pcap/inspect.js";
import { LINKTYPE_ETHERNET, parsePcapHeader, PCAP_HEADER_LEN, type PcapFileHeader } from "../pcap/format.js";
import { packetTimeNs, streamPcapFile } from "../pcap/reader.js";

/** Where the command writes; injectable so tests capture the output. */
export interface InspectIo {
  /** Write to standard output; false once the reader has gone away: stop writing. */
  out(text: string): boolean;
  /** Write to standard error. */
  err(text: string): void;
}

/** Bytes of output gathered before one write. */
const FLUSH_AT = 64 * 1024;

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Write all of `text` to `fd`; false when the fd refuses it (EPIPE and the like). */
function writeFd(fd: number, text: string): boolean {
  const buf = Buffer.from(text, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      // A non-blocking pipe that is full: wait for the reader.
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") {
        sleepMs(1);
        continue;
      }
      return false;
    }
  }
  return true;
}

/** The process's standard output and error, written synchronously. */
export function processIo(): InspectIo {
  return {
    out: (text) => writeFd(1, text),
    err: (text) => {
      writeFd(2, text);
    },
  };
}

/** The file header, or why the file cannot be inspected. */
function readHeader(file: string): PcapFileHeader | string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    return `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
  }
  try {
    const buf = new Uint8Array(PCAP_HEADER_LEN);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    const h = parsePcapHeader(buf.subarray(0, n));
    if (h instanceof WireError) return h.reason;
    if (h.linkType !== LINKTYPE_ETHERNET) {
      return `link type ${h.linkType} is not Ethernet (${LINKTYPE_ETHERNET}); only Ethernet captures can be inspected`;
    }
    return h;
  } catch (e) {
    return `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // Closing a file opened read-only loses nothing.
    }
  }
}

/** Thrown from the packet callback to end the stream once stdout is gone. */
const OUTPUT_CLOSED = Symbol("output closed");

/** Run the command; returns the exit status. */
export function inspectCommand(file: string, opts: { json: boolean }, io: InspectIo = processIo()): number {
  const header = readHeader(file);
  if (typeof header === "string") {
    io.err(`skiff: ${file}: ${header}\n`);
    return 1;
  }
  const { nanosecond, fcsLen } = header;
  let pending = "";
  let closed = false;
  const flush = (): void => {
    if (pending !== "" && !closed && !io.out(pending)) closed = true;
    pending = "";
  };
  let frame = 0;
  let t0: bigint | null = null;
  let result: ReturnType<typeof streamPcapFile>;
  try {
    result = streamPcapFile(file, (p) => {
      frame++;
      const f = inspectPacket(p, frame, nanosecond, fcsLen);
      if (opts.json) {
        pending += formatFrameJson(f) + "\n";
      } else {
        const t = packetTimeNs(p);
        t0 ??= t;
        pending += formatFrameText(f, t - t0, nanosecond) + "\n";
      }
      if (pending.length >= FLUSH_AT) {
        flush();
        if (closed) throw OUTPUT_CLOSED;
      }
    });
  } catch (e) {
    if (e === OUTPUT_CLOSED) return 0;
    throw e;
  }
  flush();
  if (closed) return 0;
  if (result instanceof WireError) {
    io.err(`skiff: ${file}: warning: ${result.reason}\n`);
    return 1;
  }
  return 0;
}
