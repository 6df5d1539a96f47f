/**
 * IPv4 header codec (RFC 791 §3.1 "Internet Header Format"; the receive checks of RFC 1122
 * §3.2.1).
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"):
 *  - `Ipv4Packet`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    the header and the whole datagram (Total Length) are present.
 *  - `Ipv4Repr`: a plain record; `parseIpv4` never throws, `emitIpv4` writes the header (and
 *    options) into a caller's buffer and fills the header checksum in place. The caller writes
 *    the payload after the header.
 *
 * Options are kept as raw bytes and not interpreted (skiff neither source-routes nor records
 * routes; RFC 1122 §3.2.1.8 lets a host pass options it does not implement through silently).
 * Fragments are recognised (`isFragment`) but reassembled elsewhere.
 *
 * Layout (RFC 791 §3.1):
 *   0 version(4) IHL(4)   1 type of service   2 total length (2)   4 identification (2)
 *   6 flags(3) fragment offset(13)   8 TTL   9 protocol   10 header checksum (2)
 *  12 source (4)  16 destination (4)  20 options (IHL*4 - 20 bytes, 0..40)
 */

import { getU16, getU32, placeBytes, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { checksum } from "./checksum.js";

export const IPV4_MIN_HEADER_LEN = 20;
/** IHL is 4 bits of 32-bit words: at most 60 bytes of header, 40 of options (RFC 791 §3.1). */
export const IPV4_MAX_HEADER_LEN = 60;
export const IPV4_MAX_OPTIONS_LEN = IPV4_MAX_HEADER_LEN - IPV4_MIN_HEADER_LEN;
/** Largest Total Length (a 16-bit field). */
export const IPV4_MAX_TOTAL_LEN = 0xffff;

/** Protocol numbers skiff knows by name (IANA "Assigned Internet Protocol Numbers"). */
export const IpProtocol = { ICMP: 1, TCP: 6, UDP: 17 } as const;

/** Flag bits in byte 6 (RFC 791 §3.1 "Flags"): bit 0 reserved, DF, MF. */
const FLAG_RESERVED = 0x80;
const FLAG_DF = 0x40;
const FLAG_MF = 0x20;

export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  id: number;
  /** The whole type-of-service byte: DSCP (RFC 2474) and ECN (RFC 3168). */
  tos: number;
  /** Don't Fragment. */
  df: boolean;
  /** More Fragments. */
  mf: boolean;
  /** Fragment offset in bytes (a multiple of 8; the wire field counts 8-byte units). */
  fragmentOffset: number;
  /** Total Length minus the header length. */
  payloadLength: number;
  /**
   * Raw option bytes (length a multiple of 4, at most 40), not interpreted; empty if none.
   * On parse a subarray of the input (borrowed: copy it to keep it), or the shared
   * `NO_IPV4_OPTIONS` when there are none.
   */
  options: Uint8Array;
}

/** The options value of a header without options (empty; shared, never written). */
export const NO_IPV4_OPTIONS: Uint8Array = new Uint8Array(0);

/** View over the bytes of one IPv4 datagram (possibly followed by Ethernet padding). */
export class Ipv4Packet {
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Length check (RFC 1122 §3.2.1.1, RFC 791 §3.1): version 4, IHL at least 5, the header
   * and Total Length within the bytes, Total Length at least the header length.
   */
  check(): boolean {
    const n = this.bytes.length;
    if (n < IPV4_MIN_HEADER_LEN || this.version !== 4) return false;
    const hl = this.headerLen;
    const tl = this.totalLength;
    return hl >= IPV4_MIN_HEADER_LEN && hl <= n && tl >= hl && tl <= n;
  }
  get version(): number {
    return this.bytes[0] >>> 4;
  }
  /** Header length in bytes (IHL times 4). */
  get headerLen(): number {
    return (this.bytes[0] & 0x0f) << 2;
  }
  get tos(): number {
    return this.bytes[1];
  }
  get totalLength(): number {
    return getU16(this.bytes, 2);
  }
  get id(): number {
    return getU16(this.bytes, 4);
  }
  /** The reserved flag bit (RFC 791 §3.1: "must be zero"). */
  get reservedFlag(): boolean {
    return (this.bytes[6] & FLAG_RESERVED) !== 0;
  }
  get df(): boolean {
    return (this.bytes[6] & FLAG_DF) !== 0;
  }
  get mf(): boolean {
    return (this.bytes[6] & FLAG_MF) !== 0;
  }
  /** Fragment offset in bytes. */
  get fragmentOffset(): number {
    return (getU16(this.bytes, 6) & 0x1fff) << 3;
  }
  get ttl(): number {
    return this.bytes[8];
  }
  get protocol(): number {
    return this.bytes[9];
  }
  get headerChecksum(): number {
    return getU16(this.bytes, 10);
  }
  get src(): number {
    return getU32(this.bytes, 12);
  }
  get dst(): number {
    return getU32(this.bytes, 16);
  }
  /** Option bytes (borrowed). */
  get options(): Uint8Array {
    return this.bytes.subarray(IPV4_MIN_HEADER_LEN, this.headerLen);
  }
  /** Payload bytes (borrowed), up to Total Length: Ethernet padding after it is excluded. */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen, this.totalLength);
  }
  /** True when the header checksum verifies (RFC 791 §3.1 "Header Checksum"; RFC 1122 §3.2.1.2). */
  checksumOk(): boolean {
    return checksum(this.bytes, 0, this.headerLen) === 0;
  }
  /** Recompute the header checksum in place (after changing a field, e.g. the TTL). */
  fillChecksum(): void {
    const b = this.bytes;
    b[10] = 0;
    b[11] = 0;
    setU16(b, 10, checksum(b, 0, this.headerLen));
  }
}

export interface Ipv4ParseOptions {
  /** Verify the header checksum (default true; RFC 1122 §3.2.1.2). */
  verifyChecksum?: boolean;
  /**
   * Accept bytes that end before Total Length (default false): the quoted datagram inside an
   * ICMP error, which carries only the header and the first 8 bytes of data (RFC 792;
   * RFC 1122 §3.2.2). `payloadLength` still comes from Total Length.
   */
  allowTruncated?: boolean;
}

/**
 * Parse an IPv4 header. Reasons, in the order they are checked: "truncated" (under 20 bytes,
 * or the header or Total Length past the end of the bytes), "bad version" (not 4, RFC 1122
 * §3.2.1.1), "bad header length" (IHL under 5), "bad total length" (Total Length under the
 * header length), "bad checksum" (RFC 1122 §3.2.1.2). Bytes after Total Length (Ethernet
 * padding) are ignored. The reserved flag bit is ignored.
 */
export function parseIpv4(bytes: Uint8Array, opts?: Ipv4ParseOptions): Parsed<Ipv4Repr> {
  const n = bytes.length;
  if (n < IPV4_MIN_HEADER_LEN) return new WireError("ipv4", "truncated");
  const b0 = bytes[0];
  if (b0 >>> 4 !== 4) return new WireError("ipv4", "bad version");
  const hl = (b0 & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER_LEN) return new WireError("ipv4", "bad header length");
  if (hl > n) return new WireError("ipv4", "truncated");
  const tl = getU16(bytes, 2);
  if (tl < hl) return new WireError("ipv4", "bad total length");
  if (tl > n && opts?.allowTruncated !== true) return new WireError("ipv4", "truncated");
  if (opts?.verifyChecksum !== false && checksum(bytes, 0, hl) !== 0) {
    return new WireError("ipv4", "bad checksum");
  }
  const b6 = bytes[6];
  return {
    src: getU32(bytes, 12),
    dst: getU32(bytes, 16),
    protocol: bytes[9],
    ttl: bytes[8],
    id: getU16(bytes, 4),
    tos: bytes[1],
    df: (b6 & FLAG_DF) !== 0,
    mf: (b6 & FLAG_MF) !== 0,
    fragmentOffset: (getU16(bytes, 6) & 0x1fff) << 3,
    payloadLength: tl - hl,
    options: hl === IPV4_MIN_HEADER_LEN ? NO_IPV4_OPTIONS : bytes.subarray(IPV4_MIN_HEADER_LEN, hl),
  };
}

/**
 * Header length including options. Throws RangeError (a programmer error) when the options
 * are not a multiple of 4 bytes or exceed 40 (RFC 791 §3.1: the header ends on a 32-bit
 * boundary, padded by the sender; skiff's options are already padded).
 */
export function ipv4HeaderLen(repr: Ipv4Repr): number {
  const ol = repr.options.length;
  if (ol > IPV4_MAX_OPTIONS_LEN || (ol & 3) !== 0) {
    throw new RangeError(`ipv4: ${ol} bytes of options (must be a multiple of 4, at most ${IPV4_MAX_OPTIONS_LEN})`);
  }
  return IPV4_MIN_HEADER_LEN + ol;
}

/**
 * Write the header at `buf[off]`: fixed fields, options (not copied when already in place),
 * Total Length = header + `payloadLength`, and the header checksum computed in place
 * (RFC 791 §3.1). Returns the header length; the caller writes the payload after it.
 * Throws RangeError (a programmer error) for bad options, a fragment offset that is not a
 * multiple of 8 or does not fit 13 bits, or a Total Length over 65535.
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, off = 0): number {
  const hl = ipv4HeaderLen(repr);
  const tl = hl + repr.payloadLength;
  if (tl > IPV4_MAX_TOTAL_LEN) throw new RangeError(`ipv4: total length ${tl} exceeds 65535`);
  const fo = repr.fragmentOffset;
  if ((fo & 7) !== 0 || fo < 0 || fo > 0x1fff << 3) throw new RangeError(`ipv4: bad fragment offset ${fo}`);
  buf[off] = 0x40 | (hl >>> 2);
  buf[off + 1] = repr.tos;
  setU16(buf, off + 2, tl);
  setU16(buf, off + 4, repr.id);
  // Flags (reserved bit zero, DF, MF) and the offset in 8-byte units (RFC 791 §3.1).
  setU16(buf, off + 6, (repr.df ? FLAG_DF << 8 : 0) | (repr.mf ? FLAG_MF << 8 : 0) | (fo >>> 3));
  buf[off + 8] = repr.ttl;
  buf[off + 9] = repr.protocol;
  buf[off + 10] = 0;
  buf[off + 11] = 0;
  setU32(buf, off + 12, repr.src);
  setU32(buf, off + 16, repr.dst);
  if (hl > IPV4_MIN_HEADER_LEN) placeBytes(buf, off + IPV4_MIN_HEADER_LEN, repr.options);
  setU16(buf, off + 10, checksum(buf, off, hl));
  return hl;
}

/** True for any fragment of a larger datagram, first or later (RFC 791 §3.2 "Fragmentation"). */
export function isFragment(repr: Ipv4Repr): boolean {
  return repr.mf || repr.fragmentOffset !== 0;
}
