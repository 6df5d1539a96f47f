/**
 * UDP datagram codec (RFC 768; the checksum rules of RFC 1122 §4.1.3.4).
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"):
 *  - `UdpPacket`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    the header is present and the Length field is sane and within the bytes.
 *  - `UdpRepr`: a plain record; `parseUdp` never throws, `emitUdp` writes header and payload
 *    into a caller's buffer and fills the checksum in place.
 *
 * Layout (RFC 768 "Format"):
 *   0 source port (2)   2 destination port (2)   4 length (2)   6 checksum (2)   8 data
 * Length counts header and data. The checksum covers the pseudo-header (source, destination,
 * zero, protocol 17, UDP length), the header and the data; a transmitted 0 means "no
 * checksum", so a computed 0 is sent as 0xffff (RFC 768 "Fields").
 */

import { getU16, placeBytes, setU16 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { checksumFinish, onesSum, pseudoHeaderSum } from "./checksum.js";

export const UDP_HEADER_LEN = 8;
/** IP protocol number of UDP, for the pseudo-header (RFC 768 "Fields"). */
export const IP_PROTO_UDP = 17;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  /** Payload; on parse a subarray of the input up to the Length field (borrowed: copy it to keep it). */
  payload: Uint8Array;
}

/** View over the bytes of one UDP datagram (the IPv4 payload). */
export class UdpPacket {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: the header is present and 8 <= Length <= the bytes (RFC 768 "Length"). */
  check(): boolean {
    const n = this.bytes.length;
    if (n < UDP_HEADER_LEN) return false;
    const len = this.length;
    return len >= UDP_HEADER_LEN && len <= n;
  }
  get srcPort(): number {
    return getU16(this.bytes, 0);
  }
  get dstPort(): number {
    return getU16(this.bytes, 2);
  }
  /** The Length field: header plus data. */
  get length(): number {
    return getU16(this.bytes, 4);
  }
  get checksum(): number {
    return getU16(this.bytes, 6);
  }
  /** Payload bytes (borrowed), up to the Length field. */
  get payload(): Uint8Array {
    return this.bytes.subarray(UDP_HEADER_LEN, this.length);
  }
  /**
   * True when the checksum verifies over the pseudo-header and the first `length` bytes,
   * false when it does not, null when the field is 0 (no checksum was sent, RFC 768).
   */
  checksumOk(src: number, dst: number): boolean | null {
    if (this.checksum === 0) return null;
    return datagramChecksumOk(this.bytes, this.length, src, dst);
  }
}

function datagramChecksumOk(b: Uint8Array, len: number, src: number, dst: number): boolean {
  return checksumFinish(onesSum(b, 0, len, pseudoHeaderSum(src, dst, IP_PROTO_UDP, len))) === 0;
}

/**
 * Parse one UDP datagram (the IPv4 payload). `src`/`dst` are the IPv4 addresses for the
 * pseudo-header. Reasons: "truncated" (under 8 bytes, or Length past the end of the bytes),
 * "bad length" (Length under 8), "bad checksum" (a non-zero checksum that does not verify,
 * unless `verifyChecksum: false`). A zero checksum means none was sent and is accepted
 * (RFC 768; RFC 1122 §4.1.3.4). Bytes after Length are ignored.
 */
export function parseUdp(
  bytes: Uint8Array,
  src: number,
  dst: number,
  opts?: { verifyChecksum?: boolean },
): Parsed<UdpRepr> {
  const n = bytes.length;
  if (n < UDP_HEADER_LEN) return new WireError("udp", "truncated");
  const len = getU16(bytes, 4);
  if (len < UDP_HEADER_LEN) return new WireError("udp", "bad length");
  if (len > n) return new WireError("udp", "truncated");
  if (opts?.verifyChecksum !== false && getU16(bytes, 6) !== 0 && !datagramChecksumOk(bytes, len, src, dst)) {
    return new WireError("udp", "bad checksum");
  }
  return { srcPort: getU16(bytes, 0), dstPort: getU16(bytes, 2), payload: bytes.subarray(UDP_HEADER_LEN, len) };
}

/** Whole datagram length: header and payload. */
export function udpLen(repr: UdpRepr): number {
  return UDP_HEADER_LEN + repr.payload.length;
}

/**
 * Write the datagram at `buf[off]`: header, payload (not copied when it already sits at its
 * place in `buf`), and the checksum over the pseudo-header computed in place; a computed 0 is
 * sent as 0xffff (RFC 768). With `checksum: false` the field is 0 ("no checksum").
 * Returns the datagram length. Throws RangeError (a programmer error) past 65535 bytes.
 */
export function emitUdp(
  repr: UdpRepr,
  buf: Uint8Array,
  off: number,
  src: number,
  dst: number,
  opts?: { checksum?: boolean },
): number {
  const len = UDP_HEADER_LEN + repr.payload.length;
  if (len > 0xffff) throw new RangeError(`udp: datagram of ${len} bytes exceeds 65535`);
  setU16(buf, off, repr.srcPort);
  setU16(buf, off + 2, repr.dstPort);
  setU16(buf, off + 4, len);
  buf[off + 6] = 0;
  buf[off + 7] = 0;
  placeBytes(buf, off + UDP_HEADER_LEN, repr.payload);
  if (opts?.checksum !== false) {
    const c = checksumFinish(onesSum(buf, off, len, pseudoHeaderSum(src, dst, IP_PROTO_UDP, len)));
    setU16(buf, off + 6, c === 0 ? 0xffff : c);
  }
  return len;
}
