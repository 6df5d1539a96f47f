/**
 * ICMPv6 message codec (RFC 4443): echo (§4.1, §4.2), Destination Unreachable (§3.1), Packet
 * Too Big (§3.2), Time Exceeded (§3.3), Parameter Problem (§3.4); the checksum over the IPv6
 * pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1); the rules on when an error may be sent
 * (§2.4(e)) and how much of the invoking packet it quotes (§2.4(c)). Neighbor Discovery
 * messages (types 133..137) are parsed by `./ndp.ts`; here they are kind "other".
 *
 * Two levels, as every codec in skiff (DESIGN.md "Two-level codecs"):
 *  - `Icmpv6Packet`: a view over borrowed bytes with named field accessors.
 *  - `Icmpv6Repr`: a tagged record; `parseIcmpv6` never throws, `emitIcmpv6` writes the message
 *    into a caller's buffer and fills the checksum in place.
 *
 * Every message starts with the same 4 bytes (RFC 4443 §2.1), and all defined here with 8:
 *   0 type   1 code   2 checksum (2)   4 four type-specific bytes   8 data
 * Unlike ICMPv4, the checksum covers the pseudo-header too, so parse and emit need the
 * packet's source and destination.
 */

import { getU16, getU32, placeBytes, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { isMulticast6, isUnspecified6, readIpv6Addr, type Ipv6Addr } from "./addr.js";
import { Ipv6Field, IPV6_HEADER_LEN, IPV6_MIN_MTU, NextHeader, upperLayerChecksum6 } from "./ipv6.js";
import { ParamProblemCode, type ExtChain } from "./ext.js";

export const ICMPV6_HEADER_LEN = 8;
/** The most of an invoking packet an error can quote: 1280 - 40 - 8 (RFC 4443 §2.4(c)). */
export const ICMPV6_ERROR_MAX_QUOTE = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMPV6_HEADER_LEN;

/** Message types skiff knows by name (RFC 4443 §2.1; RFC 4861 §4 for 133..137). */
export const Icmpv6Type = {
  DestUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  Redirect: 137,
} as const;

/** Destination Unreachable codes (RFC 4443 §3.1). */
export const Icmpv6UnreachCode = {
  NoRoute: 0,
  AdminProhibited: 1,
  BeyondScope: 2,
  Address: 3,
  Port: 4,
  SourcePolicy: 5,
  RejectRoute: 6,
} as const;

/** Time Exceeded codes (RFC 4443 §3.3). */
export const Icmpv6TimeExceededCode = { HopLimit: 0, Reassembly: 1 } as const;

export type Icmpv6Repr =
  | {
      kind: "echo-request" | "echo-reply";
      id: number;
      seq: number;
      /** Echo data (borrowed on parse). */
      data: Uint8Array;
    }
  | {
      kind: "dest-unreachable" | "time-exceeded";
      code: number;
      /** As much of the invoking packet as fits (borrowed on parse). */
      original: Uint8Array;
    }
  | {
      kind: "packet-too-big";
      /** MTU of the next-hop link (RFC 4443 §3.2); the code is 0. */
      mtu: number;
      original: Uint8Array;
    }
  | {
      kind: "param-problem";
      code: number;
      /** Offset of the error in the invoking packet (RFC 4443 §3.4). */
      pointer: number;
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

/** View over the bytes of one ICMPv6 message (the upper-layer part of an IPv6 packet). */
export class Icmpv6Packet {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: the 8 bytes of header every message defined here has. */
  check(): boolean {
    return this.bytes.length >= ICMPV6_HEADER_LEN;
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
  get id(): number {
    return getU16(this.bytes, 4);
  }
  get seq(): number {
    return getU16(this.bytes, 6);
  }
  /** MTU of a Packet Too Big, or pointer of a Parameter Problem (bytes 4..7). */
  get rest(): number {
    return getU32(this.bytes, 4);
  }
  get payload(): Uint8Array {
    return this.bytes.subarray(ICMPV6_HEADER_LEN);
  }
  /** True when the checksum over the pseudo-header and the message verifies (RFC 4443 §2.3). */
  checksumOk(src: Ipv6Addr, dst: Ipv6Addr): boolean {
    return upperLayerChecksum6(this.bytes, 0, this.bytes.length, src, dst, NextHeader.ICMPv6) === 0;
  }
  /** Recompute the checksum in place. */
  fillChecksum(src: Ipv6Addr, dst: Ipv6Addr): void {
    const b = this.bytes;
    b[2] = 0;
    b[3] = 0;
    setU16(b, 2, upperLayerChecksum6(b, 0, b.length, src, dst, NextHeader.ICMPv6));
  }
}

/**
 * Parse one ICMPv6 message (`bytes` exactly the upper-layer part: from the chain's offset to
 * the packet's end). `src`/`dst` are the IPv6 addresses for the pseudo-header. Reasons:
 * "truncated" (under 8 bytes), "bad checksum" (unless `verifyChecksum: false`). An echo with a
 * non-zero code, and every type not named above, is kind "other".
 */
export function parseIcmpv6(
  bytes: Uint8Array,
  src: Ipv6Addr,
  dst: Ipv6Addr,
  opts?: { verifyChecksum?: boolean },
): Parsed<Icmpv6Repr> {
  if (bytes.length < ICMPV6_HEADER_LEN) return new WireError("icmpv6", "truncated");
  if (opts?.verifyChecksum !== false && upperLayerChecksum6(bytes, 0, bytes.length, src, dst, NextHeader.ICMPv6) !== 0) {
    return new WireError("icmpv6", "bad checksum");
  }
  const type = bytes[0];
  const code = bytes[1];
  const body = bytes.subarray(ICMPV6_HEADER_LEN);
  switch (type) {
    case Icmpv6Type.EchoRequest:
    case Icmpv6Type.EchoReply:
      if (code !== 0) break;
      return {
        kind: type === Icmpv6Type.EchoRequest ? "echo-request" : "echo-reply",
        id: getU16(bytes, 4),
        seq: getU16(bytes, 6),
        data: body,
      };
    case Icmpv6Type.DestUnreachable:
      return { kind: "dest-unreachable", code, original: body };
    case Icmpv6Type.TimeExceeded:
      return { kind: "time-exceeded", code, original: body };
    case Icmpv6Type.PacketTooBig:
      // RFC 4443 §3.2: code 0 sent, ignored on receipt.
      return { kind: "packet-too-big", mtu: getU32(bytes, 4), original: body };
    case Icmpv6Type.ParameterProblem:
      return { kind: "param-problem", code, pointer: getU32(bytes, 4), original: body };
    default:
      break;
  }
  return { kind: "other", type, code, rest: getU32(bytes, 4), data: body };
}

/** Whole message length. */
export function icmpv6Len(repr: Icmpv6Repr): number {
  switch (repr.kind) {
    case "echo-request":
    case "echo-reply":
    case "other":
      return ICMPV6_HEADER_LEN + repr.data.length;
    default:
      return ICMPV6_HEADER_LEN + repr.original.length;
  }
}

/**
 * Write the message at `buf[off]` and fill its checksum over the pseudo-header of `src` and
 * `dst` in place (RFC 4443 §2.3). Data or quoted packets already in place are not copied.
 * Returns the message length. Throws RangeError (a programmer error) past 65535 bytes.
 */
export function emitIcmpv6(repr: Icmpv6Repr, buf: Uint8Array, off: number, src: Ipv6Addr, dst: Ipv6Addr): number {
  let body: Uint8Array;
  switch (repr.kind) {
    case "echo-request":
    case "echo-reply":
      buf[off] = repr.kind === "echo-request" ? Icmpv6Type.EchoRequest : Icmpv6Type.EchoReply;
      buf[off + 1] = 0;
      setU16(buf, off + 4, repr.id);
      setU16(buf, off + 6, repr.seq);
      body = repr.data;
      break;
    case "dest-unreachable":
    case "time-exceeded":
      buf[off] = repr.kind === "dest-unreachable" ? Icmpv6Type.DestUnreachable : Icmpv6Type.TimeExceeded;
      buf[off + 1] = repr.code;
      setU32(buf, off + 4, 0); // unused, zero (RFC 4443 §3.1, §3.3)
      body = repr.original;
      break;
    case "packet-too-big":
      buf[off] = Icmpv6Type.PacketTooBig;
      buf[off + 1] = 0;
      setU32(buf, off + 4, repr.mtu);
      body = repr.original;
      break;
    case "param-problem":
      buf[off] = Icmpv6Type.ParameterProblem;
      buf[off + 1] = repr.code;
      setU32(buf, off + 4, repr.pointer);
      body = repr.original;
      break;
    default:
      buf[off] = repr.type;
      buf[off + 1] = repr.code;
      setU32(buf, off + 4, repr.rest);
      body = repr.data;
      break;
  }
  const len = ICMPV6_HEADER_LEN + body.length;
  if (len > 0xffff) throw new RangeError(`icmpv6: message of ${len} bytes exceeds 65535`);
  placeBytes(buf, off + ICMPV6_HEADER_LEN, body);
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  setU16(buf, off + 2, upperLayerChecksum6(buf, off, len, src, dst, NextHeader.ICMPv6));
  return len;
}

/** The part of `packet` an error may quote: as much as fits the minimum MTU (RFC 4443 §2.4(c)). Borrowed. */
export function errorQuote(packet: Uint8Array): Uint8Array {
  return packet.length <= ICMPV6_ERROR_MAX_QUOTE ? packet : packet.subarray(0, ICMPV6_ERROR_MAX_QUOTE);
}

/** True for an ICMPv6 error type (0..127, RFC 4443 §2.1). */
export function isIcmpv6Error(type: number): boolean {
  return type < 128;
}

/**
 * May skiff answer the IPv6 `packet` (with its walked `chain`, if the walk got that far) with
 * an ICMPv6 error of `type`/`code`? RFC 4443 §2.4(e): never about an ICMPv6 error message or a
 * Redirect (e.1, e.2 of RFC 4861 §8); never about a packet sent to a multicast address (e.3),
 * except Packet Too Big and a Parameter Problem code 2 for an option whose type has action
 * bits 10 (RFC 8200 §4.2; the walk's `icmpAllowed` covers 11); never when the source does not
 * name a single node (e.6: unspecified or multicast). Packets that arrived as link-layer
 * multicast (e.4) are the caller's to judge; rate limiting (§2.4(f)) is the caller's.
 */
export function icmpv6ErrorAllowed(packet: Uint8Array, chain: ExtChain | undefined, type: number, code: number): boolean {
  if (packet.length < IPV6_HEADER_LEN) return false;
  const src = readIpv6Addr(packet, Ipv6Field.Src);
  if (isUnspecified6(src) || isMulticast6(src)) return false;
  if (packet[Ipv6Field.Dst] === 0xff) {
    const exempt =
      type === Icmpv6Type.PacketTooBig ||
      (type === Icmpv6Type.ParameterProblem && code === ParamProblemCode.UnrecognizedOption);
    if (!exempt) return false;
  }
  if (chain !== undefined && chain.protocol === NextHeader.ICMPv6 && chain.offset < chain.end) {
    // A later fragment's data is not an ICMPv6 header: only judge unfragmented or first fragments.
    if (chain.fragmentAt < 0 || chain.fragmentOffset === 0) {
      const t = packet[chain.offset];
      if (isIcmpv6Error(t) || t === Icmpv6Type.Redirect) return false;
    }
  }
  return true;
}
