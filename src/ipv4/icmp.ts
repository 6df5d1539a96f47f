/**
 * ICMP message codec (RFC 792; RFC 1191 §4 for the next-hop MTU of "fragmentation needed";
 * RFC 1122 §3.2.2 for what a host must accept).
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"):
 *  - `IcmpPacket`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    the 8-byte header is present.
 *  - `IcmpRepr`: a tagged record; `parseIcmp` never throws, `emitIcmp` writes the message into
 *    a caller's buffer and fills the checksum in place.
 *
 * Every ICMP message has the same 8-byte header (RFC 792):
 *   0 type   1 code   2 checksum (2)   4 four type-specific bytes   8 data
 * The checksum covers the whole message (the IPv4 payload), with no pseudo-header.
 *
 * Kinds decoded by name:
 *  - Echo Request / Echo Reply (types 8 / 0, code 0): identifier and sequence number in bytes
 *    4..7, then arbitrary data (RFC 792 "Echo or Echo Reply Message").
 *  - Destination Unreachable (type 3): bytes 4..7 unused, except that with code 4
 *    (fragmentation needed and DF set) bytes 6..7 carry the next-hop MTU (RFC 1191 §4); then
 *    the invoking datagram's IP header and at least its first 8 data bytes.
 *  - Time Exceeded (type 11): bytes 4..7 unused; then the invoking datagram as above.
 * Everything else (and an echo with a non-zero code) is kind "other", carried losslessly.
 *
 * The quoted datagram (`original`) is not validated here: read it with
 * `parseIpv4(original, { allowTruncated: true })`, since it normally ends before its own
 * Total Length.
 */

import { getU16, getU32, placeBytes, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { checksum } from "./checksum.js";

export const ICMP_HEADER_LEN = 8;

/** Message types skiff knows by name (RFC 792). */
export const IcmpType = { EchoReply: 0, DestUnreachable: 3, EchoRequest: 8, TimeExceeded: 11 } as const;

/** Destination Unreachable codes (RFC 792; 4 per RFC 1191; 13 per RFC 1812 §5.2.7.1). */
export const IcmpUnreachCode = { Net: 0, Host: 1, Protocol: 2, Port: 3, FragNeeded: 4, AdminProhibited: 13 } as const;

/** Time Exceeded codes (RFC 792). */
export const IcmpTimeExceededCode = { TtlExceeded: 0, ReassemblyTimeExceeded: 1 } as const;

export type IcmpRepr =
  | {
      kind: "echo-request" | "echo-reply";
      /** Identifier (bytes 4..5). */
      id: number;
      /** Sequence number (bytes 6..7). */
      seq: number;
      /** Echo data (on parse a subarray of the input: borrowed). */
      data: Uint8Array;
    }
  | {
      kind: "dest-unreachable";
      code: number;
      /** Next-hop MTU (RFC 1191 §4); 0 unless code is 4 (fragmentation needed). */
      nextHopMtu: number;
      /** The invoking datagram: IP header and at least 8 bytes of its data (borrowed on parse). */
      original: Uint8Array;
    }
  | {
      kind: "time-exceeded";
      code: number;
      /** The invoking datagram: IP header and at least 8 bytes of its data (borrowed on parse). */
      original: Uint8Array;
    }
  | {
      kind: "other";
      type: number;
      code: number;
      /** Bytes 4..7 as a uint32. */
      rest: number;
      /** Bytes from 8 on (borrowed on parse). */
      data: Uint8Array;
    };

/** View over the bytes of one ICMP message (the IPv4 payload). */
export class IcmpPacket {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: the 8-byte header is present. */
  check(): boolean {
    return this.bytes.length >= ICMP_HEADER_LEN;
  }
  get type(): number {
    return this.bytes[0];
  }
  get code(): number {
    return this.bytes[1];
  }
  get checksum(): number {
    return getU16(this.bytes, 2);
  }
  /** Echo identifier (bytes 4..5). */
  get id(): number {
    return getU16(this.bytes, 4);
  }
  /** Echo sequence number (bytes 6..7). */
  get seq(): number {
    return getU16(this.bytes, 6);
  }
  /** Next-hop MTU of a "fragmentation needed" message (bytes 6..7, RFC 1191 §4). */
  get nextHopMtu(): number {
    return getU16(this.bytes, 6);
  }
  /** Bytes 4..7 as a uint32. */
  get rest(): number {
    return getU32(this.bytes, 4);
  }
  /** Bytes after the header (borrowed): echo data, or the quoted datagram of an error. */
  get payload(): Uint8Array {
    return this.bytes.subarray(ICMP_HEADER_LEN);
  }
  /** True when the checksum over the whole message verifies (RFC 792). */
  checksumOk(): boolean {
    return checksum(this.bytes, 0, this.bytes.length) === 0;
  }
  /** Recompute the checksum in place. */
  fillChecksum(): void {
    const b = this.bytes;
    b[2] = 0;
    b[3] = 0;
    setU16(b, 2, checksum(b, 0, b.length));
  }
}

/**
 * Parse one ICMP message (the whole IPv4 payload). Reasons: "truncated" (under 8 bytes),
 * "bad checksum" (unless `verifyChecksum: false`).
 */
export function parseIcmp(bytes: Uint8Array, opts?: { verifyChecksum?: boolean }): Parsed<IcmpRepr> {
  if (bytes.length < ICMP_HEADER_LEN) return new WireError("icmp", "truncated");
  if (opts?.verifyChecksum !== false && checksum(bytes, 0, bytes.length) !== 0) {
    return new WireError("icmp", "bad checksum");
  }
  const type = bytes[0];
  const code = bytes[1];
  const body = bytes.subarray(ICMP_HEADER_LEN);
  switch (type) {
    case IcmpType.EchoRequest:
    case IcmpType.EchoReply:
      // RFC 792 "Echo or Echo Reply Message": code 0.
      if (code !== 0) break;
      return {
        kind: type === IcmpType.EchoRequest ? "echo-request" : "echo-reply",
        id: getU16(bytes, 4),
        seq: getU16(bytes, 6),
        data: body,
      };
    case IcmpType.DestUnreachable:
      return {
        kind: "dest-unreachable",
        code,
        // RFC 1191 §4: the low-order 16 bits of the unused field carry the next-hop MTU.
        nextHopMtu: code === IcmpUnreachCode.FragNeeded ? getU16(bytes, 6) : 0,
        original: body,
      };
    case IcmpType.TimeExceeded:
      return { kind: "time-exceeded", code, original: body };
    default:
      break;
  }
  return { kind: "other", type, code, rest: getU32(bytes, 4), data: body };
}

/** Whole message length: the 8-byte header and the data or quoted datagram. */
export function icmpLen(repr: IcmpRepr): number {
  switch (repr.kind) {
    case "dest-unreachable":
    case "time-exceeded":
      return ICMP_HEADER_LEN + repr.original.length;
    default:
      return ICMP_HEADER_LEN + repr.data.length;
  }
}

/**
 * Write the message at `buf[off]`: header, data or quoted datagram (not copied when it
 * already sits at its place in `buf`), and the checksum over the whole message computed in
 * place (RFC 792). Unused header bytes are written as zero. Returns the message length.
 */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, off = 0): number {
  let body: Uint8Array;
  switch (repr.kind) {
    case "echo-request":
    case "echo-reply":
      buf[off] = repr.kind === "echo-request" ? IcmpType.EchoRequest : IcmpType.EchoReply;
      buf[off + 1] = 0;
      setU16(buf, off + 4, repr.id);
      setU16(buf, off + 6, repr.seq);
      body = repr.data;
      break;
    case "dest-unreachable":
      buf[off] = IcmpType.DestUnreachable;
      buf[off + 1] = repr.code;
      // RFC 1191 §4: unused (zero) high half, next-hop MTU in the low half for code 4.
      setU32(buf, off + 4, repr.code === IcmpUnreachCode.FragNeeded ? repr.nextHopMtu & 0xffff : 0);
      body = repr.original;
      break;
    case "time-exceeded":
      buf[off] = IcmpType.TimeExceeded;
      buf[off + 1] = repr.code;
      setU32(buf, off + 4, 0);
      body = repr.original;
      break;
    default:
      buf[off] = repr.type;
      buf[off + 1] = repr.code;
      setU32(buf, off + 4, repr.rest);
      body = repr.data;
      break;
  }
  const len = ICMP_HEADER_LEN + body.length;
  placeBytes(buf, off + ICMP_HEADER_LEN, body);
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  setU16(buf, off + 2, checksum(buf, off, len));
  return len;
}
