/**
 * TCP segment codec: the fixed header (RFC 9293 §3.1) and the options skiff speaks:
 *  - End of Option List and No-Operation (RFC 9293 §3.1, "Options");
 *  - Maximum Segment Size (RFC 9293 §3.1 kind 2, §3.7.1);
 *  - Window Scale (RFC 7323 §2.2) and Timestamps (RFC 7323 §3.2);
 *  - SACK-Permitted (RFC 2018 §2) and SACK blocks (RFC 2018 §3).
 * Any other kind is skipped by its length (RFC 9293 §3.1: "MUST be prepared to handle an
 * illegal option length"; kinds it does not know are ignored, §3.7.1 / RFC 1122 4.2.2.5).
 *
 * Two levels, as every codec in skiff (DESIGN.md "Two-level codecs"):
 *  - `TcpSegment`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    the header and its options are present.
 *  - `TcpRepr`: a plain record; `parseTcp` never throws, `emitTcp` writes header, options and
 *    payload into a caller's buffer and fills the checksum in place.
 *
 * This codec is on the hot path: parsing reads fields straight from the bytes (no view
 * object), a segment without options shares the frozen `NO_TCP_OPTIONS`, and the only other
 * allocations are the repr itself, the payload subarray and option values that are present.
 *
 * Sequence and acknowledgment numbers and tsVal/tsEcr are uint32 (`>>> 0`); compare them only
 * through the sequence-arithmetic module, never with `<`.
 */

import { getU16, getU32, placeBytes, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { checksumFinish, onesSum, pseudoHeaderSum } from "../ipv4/checksum.js";

export const TCP_MIN_HEADER_LEN = 20;
/** Data offset is 4 bits of 32-bit words: at most 60 bytes of header, 40 of options. */
export const TCP_MAX_HEADER_LEN = 60;
export const TCP_MAX_OPTIONS_LEN = TCP_MAX_HEADER_LEN - TCP_MIN_HEADER_LEN;
/** IP protocol number of TCP, for the pseudo-header (RFC 9293 §3.1 "PTCL"). */
export const IP_PROTO_TCP = 6;

/** Control bits (RFC 9293 §3.1; ECE/CWR from RFC 3168 §23.2). */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (RFC 9293 §3.1, RFC 7323 §2.2/§3.2, RFC 2018 §2/§3). */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WindowScale: 3,
  SackPermitted: 4,
  Sack: 5,
  Timestamp: 8,
} as const;

export interface TcpOptions {
  /** Maximum segment size (RFC 9293 §3.7.1), uint16. */
  mss?: number;
  /** Window scale shift count as sent (RFC 7323 §2.2); the engine clamps values above 14 (§2.3). */
  windowScale?: number;
  /** SACK-Permitted (RFC 2018 §2). */
  sackPermitted?: boolean;
  /**
   * SACK blocks (RFC 2018 §3): [left edge, right edge) as uint32 sequence numbers, 1 to 4
   * blocks (3 when timestamps are present, to fit 40 bytes). An empty array emits nothing.
   */
  sack?: Array<[left: number, right: number]>;
  /** Timestamps (RFC 7323 §3.2); tsVal and tsEcr are uint32. */
  timestamp?: { tsVal: number; tsEcr: number };
}

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  /** Sequence number, uint32. */
  seq: number;
  /** Acknowledgment number, uint32 (meaningful when ACK is set; carried as is otherwise). */
  ack: number;
  /** Control bits, `TcpFlag` values or-ed together (8 bits). */
  flags: number;
  /** Window as on the wire (unscaled). */
  window: number;
  urgentPointer: number;
  options: TcpOptions;
  /** Payload; on parse a subarray of the input (borrowed: copy it to keep it). */
  payload: Uint8Array;
}

/** Shared options value of a segment without options; frozen, so replace rather than mutate. */
export const NO_TCP_OPTIONS: TcpOptions = Object.freeze({});

/** View over the bytes of one TCP segment (header, options and payload). */
export class TcpSegment {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: the fixed header is present, the data offset is sane and in range. */
  check(): boolean {
    const n = this.bytes.length;
    if (n < TCP_MIN_HEADER_LEN) return false;
    const hl = this.dataOffset;
    return hl >= TCP_MIN_HEADER_LEN && hl <= n;
  }
  get srcPort(): number {
    return getU16(this.bytes, 0);
  }
  get dstPort(): number {
    return getU16(this.bytes, 2);
  }
  /** uint32. */
  get seq(): number {
    return getU32(this.bytes, 4);
  }
  /** uint32. */
  get ack(): number {
    return getU32(this.bytes, 8);
  }
  /** Header length in bytes (the Data Offset field times 4). */
  get dataOffset(): number {
    return (this.bytes[12] >>> 4) << 2;
  }
  get flags(): number {
    return this.bytes[13];
  }
  get window(): number {
    return getU16(this.bytes, 14);
  }
  get checksum(): number {
    return getU16(this.bytes, 16);
  }
  get urgentPointer(): number {
    return getU16(this.bytes, 18);
  }
  /** Option bytes (borrowed), between the fixed header and the data offset. */
  get optionBytes(): Uint8Array {
    return this.bytes.subarray(TCP_MIN_HEADER_LEN, this.dataOffset);
  }
  /** Payload bytes (borrowed). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.dataOffset);
  }
  /** True when the checksum over the pseudo-header and the whole segment verifies (RFC 9293 §3.1). */
  checksumOk(src: number, dst: number): boolean {
    return segmentChecksumOk(this.bytes, src, dst);
  }
}

function segmentChecksumOk(b: Uint8Array, src: number, dst: number): boolean {
  const len = b.length;
  return checksumFinish(onesSum(b, 0, len, pseudoHeaderSum(src, dst, IP_PROTO_TCP, len))) === 0;
}

const BAD_OPTION = "bad option";

/**
 * Decode options in `b[start, end)`. Kind 0 ends the list (RFC 9293 §3.1); a length below 2 or
 * past the end is an error. A known kind with the wrong length is ignored like an unknown one
 * (as Linux does): the SACK length must be 2 + 8n with n in 1..4 (RFC 2018 §3). A kind that
 * appears twice keeps its last value.
 */
function decodeOptions(b: Uint8Array, start: number, end: number): Parsed<TcpOptions> {
  let opts: TcpOptions | undefined;
  let i = start;
  while (i < end) {
    const kind = b[i];
    if (kind === TcpOptionKind.EOL) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return new WireError("tcp", BAD_OPTION);
    const len = b[i + 1];
    if (len < 2 || i + len > end) return new WireError("tcp", BAD_OPTION);
    switch (kind) {
      case TcpOptionKind.MSS: // RFC 9293 §3.1: kind 2, length 4
        if (len === 4) (opts ??= {}).mss = getU16(b, i + 2);
        break;
      case TcpOptionKind.WindowScale: // RFC 7323 §2.2: kind 3, length 3
        if (len === 3) (opts ??= {}).windowScale = b[i + 2];
        break;
      case TcpOptionKind.SackPermitted: // RFC 2018 §2: kind 4, length 2
        if (len === 2) (opts ??= {}).sackPermitted = true;
        break;
      case TcpOptionKind.Sack: {
        // RFC 2018 §3: kind 5, length 2 + 8n, each block a left and a right edge
        const n = (len - 2) >>> 3;
        if (n >= 1 && n <= 4 && len === 2 + 8 * n) {
          const blocks = new Array<[number, number]>(n);
          for (let k = 0; k < n; k++) {
            const o = i + 2 + 8 * k;
            blocks[k] = [getU32(b, o), getU32(b, o + 4)];
          }
          (opts ??= {}).sack = blocks;
        }
        break;
      }
      case TcpOptionKind.Timestamp: // RFC 7323 §3.2: kind 8, length 10
        if (len === 10) (opts ??= {}).timestamp = { tsVal: getU32(b, i + 2), tsEcr: getU32(b, i + 6) };
        break;
      default: // unknown kind: skipped by its length
        break;
    }
    i += len;
  }
  return opts ?? NO_TCP_OPTIONS;
}

/** Decode an options block (the bytes between the fixed header and the data offset). */
export function parseTcpOptions(bytes: Uint8Array): Parsed<TcpOptions> {
  return decodeOptions(bytes, 0, bytes.length);
}

/**
 * Parse one segment (the IPv4 payload). `src`/`dst` are the IPv4 addresses for the
 * pseudo-header checksum (RFC 9293 §3.1), verified unless `verifyChecksum: false` (e.g. a
 * checksum already validated by offload, or a capture with offloaded checksums).
 */
export function parseTcp(
  bytes: Uint8Array,
  src: number,
  dst: number,
  opts?: { verifyChecksum?: boolean },
): Parsed<TcpRepr> {
  const n = bytes.length;
  if (n < TCP_MIN_HEADER_LEN) return new WireError("tcp", "truncated");
  const hl = (bytes[12] >>> 4) << 2;
  if (hl < TCP_MIN_HEADER_LEN) return new WireError("tcp", "bad header length");
  if (hl > n) return new WireError("tcp", "truncated");
  if (opts?.verifyChecksum !== false && !segmentChecksumOk(bytes, src, dst)) {
    return new WireError("tcp", "bad checksum");
  }
  const options = hl === TCP_MIN_HEADER_LEN ? NO_TCP_OPTIONS : decodeOptions(bytes, TCP_MIN_HEADER_LEN, hl);
  if (options instanceof WireError) return options;
  return {
    srcPort: getU16(bytes, 0),
    dstPort: getU16(bytes, 2),
    seq: getU32(bytes, 4),
    ack: getU32(bytes, 8),
    flags: bytes[13],
    window: getU16(bytes, 14),
    urgentPointer: getU16(bytes, 18),
    options,
    payload: bytes.subarray(hl),
  };
}

/*
 * Canonical option layout (the one Linux sends, every option 4-byte aligned by NOPs, so no
 * trailing padding is ever needed):
 *   MSS                      02 04 mm mm                           4
 *   SACK-Permitted + TS      04 02 08 0a <tsVal> <tsEcr>           12
 *   TS alone                 01 01 08 0a <tsVal> <tsEcr>           12
 *   SACK-Permitted alone     01 01 04 02                           4
 *   Window scale             01 03 03 ss                           4
 *   SACK, n blocks           01 01 05 (2+8n) <left right>*n        4 + 8n
 */

/** Bytes the options take on the wire (always a multiple of 4; may exceed 40 for a bad repr). */
export function tcpOptionsLen(opts: TcpOptions): number {
  let len = 0;
  if (opts.mss !== undefined) len += 4;
  if (opts.timestamp !== undefined) len += 12;
  else if (opts.sackPermitted) len += 4;
  if (opts.windowScale !== undefined) len += 4;
  const sack = opts.sack;
  if (sack !== undefined && sack.length > 0) len += 4 + 8 * sack.length;
  return len;
}

/** Header length including options; throws RangeError when the options exceed 40 bytes. */
export function tcpHeaderLen(repr: TcpRepr): number {
  const ol = tcpOptionsLen(repr.options);
  if (ol > TCP_MAX_OPTIONS_LEN) throw new RangeError(`tcp: ${ol} bytes of options exceed ${TCP_MAX_OPTIONS_LEN}`);
  return TCP_MIN_HEADER_LEN + ol;
}

/** Whole segment length: header, options and payload. */
export function tcpLen(repr: TcpRepr): number {
  return tcpHeaderLen(repr) + repr.payload.length;
}

/** Write the options in canonical order at `buf[o]`; returns the offset after them. */
function emitOptions(opts: TcpOptions, buf: Uint8Array, o: number): number {
  if (opts.mss !== undefined) {
    buf[o] = TcpOptionKind.MSS;
    buf[o + 1] = 4;
    setU16(buf, o + 2, opts.mss);
    o += 4;
  }
  const ts = opts.timestamp;
  if (ts !== undefined) {
    if (opts.sackPermitted) {
      buf[o] = TcpOptionKind.SackPermitted;
      buf[o + 1] = 2;
    } else {
      buf[o] = TcpOptionKind.NOP;
      buf[o + 1] = TcpOptionKind.NOP;
    }
    buf[o + 2] = TcpOptionKind.Timestamp;
    buf[o + 3] = 10;
    setU32(buf, o + 4, ts.tsVal);
    setU32(buf, o + 8, ts.tsEcr);
    o += 12;
  } else if (opts.sackPermitted) {
    buf[o] = TcpOptionKind.NOP;
    buf[o + 1] = TcpOptionKind.NOP;
    buf[o + 2] = TcpOptionKind.SackPermitted;
    buf[o + 3] = 2;
    o += 4;
  }
  if (opts.windowScale !== undefined) {
    buf[o] = TcpOptionKind.NOP;
    buf[o + 1] = TcpOptionKind.WindowScale;
    buf[o + 2] = 3;
    buf[o + 3] = opts.windowScale;
    o += 4;
  }
  const sack = opts.sack;
  if (sack !== undefined && sack.length > 0) {
    buf[o] = TcpOptionKind.NOP;
    buf[o + 1] = TcpOptionKind.NOP;
    buf[o + 2] = TcpOptionKind.Sack;
    buf[o + 3] = 2 + 8 * sack.length;
    o += 4;
    for (let k = 0; k < sack.length; k++) {
      setU32(buf, o, sack[k][0]);
      setU32(buf, o + 4, sack[k][1]);
      o += 8;
    }
  }
  return o;
}

/**
 * Write the segment at `buf[off]`: header, options (canonical order, NOP-aligned), the payload
 * (not copied when it already sits at its place in `buf`), and the checksum over the
 * pseudo-header (RFC 9293 §3.1) computed in place. Returns the segment length.
 * With `partialChecksum` only the pseudo-header sum goes in the checksum field (folded, not
 * complemented) for a link with checksum offload to complete over the segment (the
 * virtio-net NEEDS_CSUM convention, as Linux's tcp_v4_send_check leaves it).
 * Throws RangeError (a programmer error) for more than 40 bytes of options or a segment
 * longer than 65535 bytes.
 */
export function emitTcp(repr: TcpRepr, buf: Uint8Array, off: number, src: number, dst: number, partialChecksum = false): number {
  const hl = tcpHeaderLen(repr);
  const len = hl + repr.payload.length;
  if (len > 0xffff) throw new RangeError(`tcp: segment of ${len} bytes exceeds 65535`);
  setU16(buf, off, repr.srcPort);
  setU16(buf, off + 2, repr.dstPort);
  setU32(buf, off + 4, repr.seq);
  setU32(buf, off + 8, repr.ack);
  buf[off + 12] = (hl >>> 2) << 4; // data offset; reserved bits zero (RFC 9293 §3.1)
  buf[off + 13] = repr.flags;
  setU16(buf, off + 14, repr.window);
  buf[off + 16] = 0;
  buf[off + 17] = 0;
  setU16(buf, off + 18, repr.urgentPointer);
  if (hl > TCP_MIN_HEADER_LEN) emitOptions(repr.options, buf, off + TCP_MIN_HEADER_LEN);
  placeBytes(buf, off + hl, repr.payload);
  const pseudo = pseudoHeaderSum(src, dst, IP_PROTO_TCP, len);
  setU16(buf, off + 16, partialChecksum ? pseudo : checksumFinish(onesSum(buf, off, len, pseudo)));
  return len;
}

/** Short human form for logs and `pcap inspect`, e.g. "mss=1460,ws=7,sackOK,ts=123/0,sack=1-2;5-9". */
export function describeTcpOptions(opts: TcpOptions): string {
  const parts: string[] = [];
  if (opts.mss !== undefined) parts.push(`mss=${opts.mss}`);
  if (opts.windowScale !== undefined) parts.push(`ws=${opts.windowScale}`);
  if (opts.sackPermitted) parts.push("sackOK");
  if (opts.timestamp !== undefined) parts.push(`ts=${opts.timestamp.tsVal}/${opts.timestamp.tsEcr}`);
  if (opts.sack !== undefined && opts.sack.length > 0) {
    parts.push(`sack=${opts.sack.map(([l, r]) => `${l}-${r}`).join(";")}`);
  }
  return parts.join(",");
}
