/**
 * Ethernet II frame codec (IEEE 802.3 with EtherType; IEEE 802.1Q tag recognised).
 *
 * Two levels, as every codec in skiff (ARCHITECTURE.md "Two-level codecs"):
 *  - `EthernetFrame`: a view over borrowed bytes with named field accessors; `check` makes
 *    sure every accessor stays in range.
 *  - `EthernetRepr`: a plain record; `parseEthernet` never throws, `emitEthernet` writes into
 *    a caller's buffer of at least `ethernetHeaderLen(repr)` bytes.
 *
 * The frame check sequence is not present: every attachment (TAP, QEMU, vmnet) carries
 * frames without it.
 */

import { getMac, getU16, setMac, setU16 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";

export const ETH_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4;

/** EtherType values skiff knows by name. */
export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPv6: 0x86dd,
} as const;

/** 802.1Q tag control information. */
export interface VlanTag {
  /** Priority code point, 0..7. */
  pcp: number;
  /** Drop eligible indicator. */
  dei: boolean;
  /** VLAN identifier, 0..4095. */
  id: number;
}

export interface EthernetRepr {
  dst: number;
  src: number;
  /** The EtherType of the payload (after the 802.1Q tag when there is one). */
  ethertype: number;
  vlan?: VlanTag;
}

/** View over the bytes of one Ethernet frame. */
export class EthernetFrame {
  constructor(readonly bytes: Uint8Array) {}

  /** Length check: true when the header (and the 802.1Q tag, if any) is present. */
  check(): boolean {
    if (this.bytes.length < ETH_HEADER_LEN) return false;
    return !this.hasVlan || this.bytes.length >= ETH_HEADER_LEN + VLAN_TAG_LEN;
  }
  get dst(): number {
    return getMac(this.bytes, 0);
  }
  get src(): number {
    return getMac(this.bytes, 6);
  }
  get hasVlan(): boolean {
    return getU16(this.bytes, 12) === EtherType.VLAN;
  }
  /** EtherType of the payload, past any 802.1Q tag. */
  get ethertype(): number {
    return this.hasVlan ? getU16(this.bytes, 16) : getU16(this.bytes, 12);
  }
  get headerLen(): number {
    return this.hasVlan ? ETH_HEADER_LEN + VLAN_TAG_LEN : ETH_HEADER_LEN;
  }
  /** Payload bytes (borrowed). */
  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLen);
  }
}

export function parseEthernet(bytes: Uint8Array): Parsed<EthernetRepr> {
  const f = new EthernetFrame(bytes);
  if (!f.check()) return new WireError("eth", "truncated");
  const repr: EthernetRepr = { dst: f.dst, src: f.src, ethertype: f.ethertype };
  if (f.hasVlan) {
    const tci = getU16(bytes, 14);
    repr.vlan = { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, id: tci & 0x0fff };
  }
  return repr;
}

export function ethernetHeaderLen(repr: EthernetRepr): number {
  return repr.vlan ? ETH_HEADER_LEN + VLAN_TAG_LEN : ETH_HEADER_LEN;
}

/** Write the header at `buf[off]`; returns the header length. */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, off = 0): number {
  setMac(buf, off, repr.dst);
  setMac(buf, off + 6, repr.src);
  if (repr.vlan) {
    setU16(buf, off + 12, EtherType.VLAN);
    setU16(buf, off + 14, (repr.vlan.pcp << 13) | (repr.vlan.dei ? 0x1000 : 0) | repr.vlan.id);
    setU16(buf, off + 16, repr.ethertype);
    return ETH_HEADER_LEN + VLAN_TAG_LEN;
  }
  setU16(buf, off + 12, repr.ethertype);
  return ETH_HEADER_LEN;
}
