/**
 * IPv6 fixed header codec (RFC 8200 §3 "IPv6 Header Format") and the upper-layer
 * pseudo-header checksum (RFC 8200 §8.1).
 *
 * Two levels, as every codec in skiff (DESIGN.md "Two-level codecs"):
 *  - `Ipv6Packet`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    the 40-byte header and the whole payload (Payload Length) are present.
 *  - `Ipv6Repr`: a plain record; `parseIpv6` never throws, `emitIpv6` writes the header into a
 *    caller's buffer. The caller writes extension headers and payload after it
 *    (`./ext.ts` walks and emits extension headers).
 *
 * Layout (RFC 8200 §3):
 *   0 version(4) traffic class(8) flow label(20)   4 payload length (2)   6 next header
 *   7 hop limit   8 source (16)   24 destination (16)   40 extension headers, payload
 * There is no header checksum; upper layers checksum a pseudo-header instead (§8.1).
 *
 * Jumbograms (RFC 2675, Payload Length 0 with a Jumbo Payload option) are not supported: they
 * cannot cross an Ethernet link; a Payload Length of 0 means an empty payload.
 *
 * Note: the RFC 1071 sum is imported from `../ipv4/checksum.ts` (a sibling codec folder); it
 * may move to `src/common/` when the stack wires IPv6 in, since both IP versions use it.
 */

import { getU16, getU32, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { checksumFinish, foldSum, onesSum } from "../ipv4/checksum.js";
import { addrEqualsAt, readIpv6Addr, writeIpv6Addr, type Ipv6Addr } from "./addr.js";

export const IPV6_HEADER_LEN = 40;
/** Largest Payload Length (a 16-bit field; RFC 8200 §3). */
export const IPV6_MAX_PAYLOAD_LEN = 0xffff;
/** Every link must carry 1280-byte packets (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** Offsets of the fixed header's fields (RFC 8200 §3). */
export const Ipv6Field = {
  PayloadLength: 4,
  NextHeader: 6,
  HopLimit: 7,
  Src: 8,
  Dst: 24,
} as const;

/**
 * Next Header values skiff knows by name (IANA "Assigned Internet Protocol Numbers"; the
 * extension headers of RFC 8200 §4, AH RFC 4302, ESP RFC 4303, Mobility RFC 6275, HIP
 * RFC 7401, Shim6 RFC 5533, experimental RFC 3692).
 */
export const NextHeader = {
  HopByHop: 0,
  TCP: 6,
  UDP: 17,
  Routing: 43,
  Fragment: 44,
  ESP: 50,
  AH: 51,
  ICMPv6: 58,
  NoNextHeader: 59,
  DestinationOptions: 60,
  Mobility: 135,
  HIP: 139,
  Shim6: 140,
  Experimental1: 253,
  Experimental2: 254,
} as const;

export interface Ipv6Repr {
  src: Ipv6Addr;
  dst: Ipv6Addr;
  /** Next Header of the fixed header: the first extension header or the upper layer. */
  nextHeader: number;
  hopLimit: number;
  /** Traffic class: DSCP (RFC 2474) and ECN (RFC 3168). */
  trafficClass: number;
  /** Flow label (20 bits, RFC 6437). */
  flowLabel: number;
  /** Payload Length: everything after the 40-byte header, extension headers included. */
  payloadLength: number;
}

/** View over the bytes of one IPv6 packet (possibly followed by Ethernet padding). */
export class Ipv6Packet {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: version 6, the 40-byte header and Payload Length within the bytes. */
  check(): boolean {
    const n = this.bytes.length;
    return n >= IPV6_HEADER_LEN && this.version === 6 && IPV6_HEADER_LEN + this.payloadLength <= n;
  }
  get version(): number {
    return this.bytes[0] >>> 4;
  }
  get trafficClass(): number {
    return ((this.bytes[0] & 0x0f) << 4) | (this.bytes[1] >>> 4);
  }
  get flowLabel(): number {
    return getU32(this.bytes, 0) & 0xfffff;
  }
  get payloadLength(): number {
    return getU16(this.bytes, Ipv6Field.PayloadLength);
  }
  get nextHeader(): number {
    return this.bytes[Ipv6Field.NextHeader];
  }
  get hopLimit(): number {
    return this.bytes[Ipv6Field.HopLimit];
  }
  set hopLimit(v: number) {
    this.bytes[Ipv6Field.HopLimit] = v;
  }
  /** Source address (allocates; compare in place with `srcIs`). */
  get src(): Ipv6Addr {
    return readIpv6Addr(this.bytes, Ipv6Field.Src);
  }
  /** Destination address (allocates; compare in place with `dstIs`). */
  get dst(): Ipv6Addr {
    return readIpv6Addr(this.bytes, Ipv6Field.Dst);
  }
  srcIs(a: Ipv6Addr): boolean {
    return addrEqualsAt(this.bytes, Ipv6Field.Src, a);
  }
  dstIs(a: Ipv6Addr): boolean {
    return addrEqualsAt(this.bytes, Ipv6Field.Dst, a);
  }
  /** True when the destination is multicast (`ff00::/8`), without allocating. */
  get dstIsMulticast(): boolean {
    return this.bytes[Ipv6Field.Dst] === 0xff;
  }
  /** Payload bytes (borrowed): extension headers and upper layer, Ethernet padding excluded. */
  get payload(): Uint8Array {
    return this.bytes.subarray(IPV6_HEADER_LEN, IPV6_HEADER_LEN + this.payloadLength);
  }
}

export interface Ipv6ParseOptions {
  /**
   * Accept bytes that end before Payload Length (default false): the invoking packet quoted in
   * an ICMPv6 error, cut to fit the minimum MTU (RFC 4443 §2.4(c)). `payloadLength` still
   * comes from the field.
   */
  allowTruncated?: boolean;
}

/**
 * Parse the fixed header. Reasons, in the order they are checked: "truncated" (under 40
 * bytes, or Payload Length past the end of the bytes), "bad version" (not 6). Bytes after
 * Payload Length (Ethernet padding) are ignored.
 */
export function parseIpv6(bytes: Uint8Array, opts?: Ipv6ParseOptions): Parsed<Ipv6Repr> {
  const n = bytes.length;
  if (n < IPV6_HEADER_LEN) return new WireError("ipv6", "truncated");
  const w = getU32(bytes, 0);
  if (w >>> 28 !== 6) return new WireError("ipv6", "bad version");
  const pl = getU16(bytes, Ipv6Field.PayloadLength);
  if (IPV6_HEADER_LEN + pl > n && opts?.allowTruncated !== true) return new WireError("ipv6", "truncated");
  return {
    src: readIpv6Addr(bytes, Ipv6Field.Src),
    dst: readIpv6Addr(bytes, Ipv6Field.Dst),
    nextHeader: bytes[Ipv6Field.NextHeader],
    hopLimit: bytes[Ipv6Field.HopLimit],
    trafficClass: (w >>> 20) & 0xff,
    flowLabel: w & 0xfffff,
    payloadLength: pl,
  };
}

/** The fixed header is always 40 bytes (RFC 8200 §3). */
export function ipv6HeaderLen(): number {
  return IPV6_HEADER_LEN;
}

/** Whole packet length: header and payload. */
export function ipv6BufferLen(repr: Ipv6Repr): number {
  return IPV6_HEADER_LEN + repr.payloadLength;
}

/**
 * Write the 40-byte header at `buf[off]` (RFC 8200 §3). Returns 40; the caller writes the
 * payload after it. Throws RangeError (a programmer error) for a payload over 65535 bytes, a
 * traffic class over 8 bits or a flow label over 20 bits.
 */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array, off = 0): number {
  const { payloadLength: pl, trafficClass: tc, flowLabel: fl } = repr;
  if (!(pl >= 0 && pl <= IPV6_MAX_PAYLOAD_LEN)) throw new RangeError(`ipv6: payload length ${pl} outside 0..65535`);
  if (!(tc >= 0 && tc <= 0xff)) throw new RangeError(`ipv6: traffic class ${tc} outside 0..255`);
  if (!(fl >= 0 && fl <= 0xfffff)) throw new RangeError(`ipv6: flow label ${fl} outside 0..0xfffff`);
  setU32(buf, off, ((6 << 28) | (tc << 20) | fl) >>> 0);
  setU16(buf, off + Ipv6Field.PayloadLength, pl);
  buf[off + Ipv6Field.NextHeader] = repr.nextHeader;
  buf[off + Ipv6Field.HopLimit] = repr.hopLimit;
  writeIpv6Addr(buf, off + Ipv6Field.Src, repr.src);
  writeIpv6Addr(buf, off + Ipv6Field.Dst, repr.dst);
  return IPV6_HEADER_LEN;
}

/** Sum of an address's eight 16-bit groups. */
function addrSum(a: Ipv6Addr): number {
  return (a.w0 >>> 16) + (a.w0 & 0xffff) + (a.w1 >>> 16) + (a.w1 & 0xffff) +
    (a.w2 >>> 16) + (a.w2 & 0xffff) + (a.w3 >>> 16) + (a.w3 & 0xffff);
}

/**
 * One's-complement sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination (the
 * final one, if a Routing header is present), the 32-bit upper-layer packet length, three
 * zero bytes and the upper-layer Next Header value. Feed it as `initial` to `onesSum` over the
 * upper-layer packet.
 */
export function pseudoHeaderSum6(src: Ipv6Addr, dst: Ipv6Addr, nextHeader: number, length: number): number {
  return foldSum(addrSum(src) + addrSum(dst) + Math.floor(length / 0x10000) + (length & 0xffff) + nextHeader);
}

/**
 * Checksum of an upper-layer packet `b[off, off+len)` under the IPv6 pseudo-header
 * (RFC 8200 §8.1): the value for its checksum field when the field holds zero, or 0 when a
 * packet with its checksum filled in verifies.
 */
export function upperLayerChecksum6(
  b: Uint8Array,
  off: number,
  len: number,
  src: Ipv6Addr,
  dst: Ipv6Addr,
  nextHeader: number,
): number {
  return checksumFinish(onesSum(b, off, len, pseudoHeaderSum6(src, dst, nextHeader, len)));
}
