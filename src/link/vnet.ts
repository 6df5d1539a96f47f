/**
 * The virtio-net header (`struct virtio_net_hdr`, 10 bytes, VIRTIO 1.2 §5.1.6) that a Linux
 * TAP device opened with IFF_VNET_HDR puts before every frame: how the kernel asks for
 * checksum and segmentation offloads, and how we ask it for them.
 *
 *   0 flags        NEEDS_CSUM (1): the L4 checksum is partial, to be completed from
 *                  csum_start, stored at csum_start + csum_offset; DATA_VALID (2): verified.
 *   1 gso_type     NONE (0), TCPV4 (1), UDP (3), TCPV6 (4); | ECN (0x80)
 *   2 hdr_len      bytes of headers before the payload (Ethernet + IP + TCP)
 *   4 gso_size     payload bytes per segment
 *   6 csum_start   offset of the L4 header from the start of the frame
 *   8 csum_offset  offset of the checksum field in the L4 header (TCP 16, UDP 6)
 *
 * The 16-bit fields are in the host's byte order for a legacy TAP (little-endian here; TAP's
 * TUNSETVNETBE is never set). Used by `tap.ts` in offload mode only.
 */

import { TX_CSUM_PARTIAL, txGsoSize } from "../common/frame-channel.js";

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
/** The IPv6 fixed header; frames skiff sends carry no extension headers. */
const IPV6_LEN = 40;
const ETH_LEN = 14;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

function setLe16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = v >>> 8;
}

/**
 * Fill the 10-byte header at `hdr[0..10)` for sending `frame` with `txMeta` (see channel.ts).
 * Returns false when the metadata cannot apply to this frame (not IPv4 or IPv6 TCP/UDP — IPv6
 * without extension headers —, or GSO on a non-TCP frame): the caller drops and counts it.
 */
export function emitVnetHeader(hdr: Uint8Array, frame: Uint8Array, txMeta: number): boolean {
  hdr.fill(0, 0, VNET_HDR_LEN);
  if ((txMeta & TX_CSUM_PARTIAL) === 0) return true;
  if (frame.length < ETH_LEN + 20) return false;
  const type = (frame[12] << 8) | frame[13];
  let proto: number;
  let l4: number;
  if (type === ETHERTYPE_IPV4) {
    proto = frame[ETH_LEN + 9];
    l4 = ETH_LEN + ((frame[ETH_LEN] & 0x0f) << 2);
  } else if (type === ETHERTYPE_IPV6) {
    proto = frame[ETH_LEN + 6];
    l4 = ETH_LEN + IPV6_LEN;
  } else return false;
  const gso = txGsoSize(txMeta);
  let csumOffset: number;
  if (proto === IPPROTO_TCP) csumOffset = 16;
  else if (proto === IPPROTO_UDP && gso === 0) csumOffset = 6;
  else return false;
  if (frame.length < l4 + csumOffset + 2) return false;
  hdr[0] = VNET_F_NEEDS_CSUM;
  setLe16(hdr, 6, l4);
  setLe16(hdr, 8, csumOffset);
  if (gso > 0) {
    const tcpHeaderLen = (frame[l4 + 12] >>> 4) << 2;
    hdr[1] = type === ETHERTYPE_IPV4 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6;
    setLe16(hdr, 2, l4 + tcpHeaderLen);
    setLe16(hdr, 4, gso);
  }
  return true;
}

/** Flags byte of a received header. */
export function vnetFlags(hdr: Uint8Array, off: number): number {
  return hdr[off];
}

/** GSO type of a received header (ECN bit included). */
export function vnetGsoType(hdr: Uint8Array, off: number): number {
  return hdr[off + 1];
}
