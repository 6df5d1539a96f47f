/**
 * ARP packet codec (RFC 826, "An Ethernet Address Resolution Protocol"), for the one pairing
 * skiff speaks: Ethernet hardware addresses and IPv4 protocol addresses.
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"):
 *  - `ArpPacket`: a view over borrowed bytes with named field accessors; `check` makes sure
 *    every accessor stays in range.
 *  - `ArpRepr`: a plain record; `parseArp` never throws, `emitArp` writes the 28 bytes into a
 *    caller's buffer.
 *
 * Layout (RFC 826 "Packet format", with hlen 6 and plen 4):
 *   0 ar$hrd (2)  2 ar$pro (2)  4 ar$hln (1)  5 ar$pln (1)  6 ar$op (2)
 *   8 ar$sha (6) 14 ar$spa (4) 18 ar$tha (6) 24 ar$tpa (4)
 * A frame often carries Ethernet padding after the 28 bytes (minimum frame size); it is ignored.
 */

import { getMac, getU16, getU32, setMac, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";

/** Bytes of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;

/** Hardware type Ethernet (RFC 826 "ares_hrd$Ethernet"; IANA ARP parameters). */
export const ARP_HTYPE_ETHERNET = 1;
/** Protocol type IPv4: the EtherType of IP (RFC 826 ar$pro). */
export const ARP_PTYPE_IPV4 = 0x0800;

/** Opcodes (RFC 826 ar$op: ares_op$REQUEST, ares_op$REPLY). */
export const ArpOp = { Request: 1, Reply: 2 } as const;

export interface ArpRepr {
  /** ar$op; `ArpOp` values, other opcodes are carried as they are. */
  op: number;
  senderMac: number;
  senderIp: number;
  /** Zero in a request (RFC 826 leaves it unspecified; Linux sends zero). */
  targetMac: number;
  targetIp: number;
}

/** View over the bytes of one ARP packet (the Ethernet payload). */
export class ArpPacket {
  constructor(readonly bytes: Uint8Array) {}

  /**
   * Length check: the 28 bytes every accessor reads are present. It does not look at
   * htype/ptype/hlen/plen; `parseArp` does.
   */
  check(): boolean {
    return this.bytes.length >= ARP_LEN;
  }
  get htype(): number {
    return getU16(this.bytes, 0);
  }
  get ptype(): number {
    return getU16(this.bytes, 2);
  }
  get hlen(): number {
    return this.bytes[4];
  }
  get plen(): number {
    return this.bytes[5];
  }
  get op(): number {
    return getU16(this.bytes, 6);
  }
  get senderMac(): number {
    return getMac(this.bytes, 8);
  }
  get senderIp(): number {
    return getU32(this.bytes, 14);
  }
  get targetMac(): number {
    return getMac(this.bytes, 18);
  }
  get targetIp(): number {
    return getU32(this.bytes, 24);
  }
}

/**
 * Parse an ARP packet. Only Ethernet/IPv4 ARP (htype 1, ptype 0x0800, hlen 6, plen 4) is
 * understood; anything else is `WireError("arp", "unsupported hardware/protocol")` (RFC 826
 * "Packet reception": a host that does not speak the pair drops the packet).
 */
export function parseArp(bytes: Uint8Array): Parsed<ArpRepr> {
  if (bytes.length < 8) return new WireError("arp", "truncated");
  if (
    getU16(bytes, 0) !== ARP_HTYPE_ETHERNET ||
    getU16(bytes, 2) !== ARP_PTYPE_IPV4 ||
    bytes[4] !== 6 ||
    bytes[5] !== 4
  ) {
    return new WireError("arp", "unsupported hardware/protocol");
  }
  if (bytes.length < ARP_LEN) return new WireError("arp", "truncated");
  return {
    op: getU16(bytes, 6),
    senderMac: getMac(bytes, 8),
    senderIp: getU32(bytes, 14),
    targetMac: getMac(bytes, 18),
    targetIp: getU32(bytes, 24),
  };
}

/** Write an Ethernet/IPv4 ARP packet at `buf[off]`; returns `ARP_LEN`. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, off = 0): number {
  setU16(buf, off, ARP_HTYPE_ETHERNET);
  setU16(buf, off + 2, ARP_PTYPE_IPV4);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  setU16(buf, off + 6, repr.op);
  setMac(buf, off + 8, repr.senderMac);
  setU32(buf, off + 14, repr.senderIp);
  setMac(buf, off + 18, repr.targetMac);
  setU32(buf, off + 24, repr.targetIp);
  return ARP_LEN;
}
