/**
 * Completing a partial TCP/UDP checksum in a captured frame, in place.
 *
 * With checksum offload (virtio-net header semantics: VIRTIO_NET_HDR_F_NEEDS_CSUM on a TAP),
 * the sender leaves in the TCP or UDP checksum field only the sum of the pseudo-header (RFC
 * 9293 §3.1, RFC 768), and whoever puts the frame on a wire adds the rest. A capture taken at
 * the link therefore sees checksums that look bad. The capture wrapper marks such frames, and
 * the pcap writer completes them in the record it writes (never in the frame the network
 * uses): the checksum is computed over the pseudo-header and the whole segment (RFC 1071),
 * as the link would. Only when capturing: the cost is one pass over the frame.
 *
 * IPv4 (RFC 791) and IPv6 (RFC 8200 §8.1: the pseudo-header of source, destination,
 * upper-layer length and next header) are handled. Frames left alone: anything but IPv4 or IPv6
 * (behind Ethernet, with at most one 802.1Q tag) carrying TCP or UDP directly (an IPv6 packet
 * with extension headers: offload never produces one), an IPv4 UDP datagram without checksum
 * (field 0), a fragment, a datagram whose length is not all in `frame` (a snapshot length cut
 * it: the sum cannot be computed), a malformed header.
 */

import { checksumFinish, onesSum, pseudoHeaderSum } from "../ipv4/checksum.js";

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const PROTO_UDP = 17;

/** Write the complete TCP/UDP checksum into `frame` (see the file comment); true when written. */
export function completeL4Checksum(frame: Uint8Array): boolean {
  if (frame.length < 14) return false;
  let l3 = 14;
  let type = (frame[12] << 8) | frame[13];
  if (type === ETHERTYPE_VLAN) {
    if (frame.length < 18) return false;
    type = (frame[16] << 8) | frame[17];
    l3 = 18;
  }
  if (type === ETHERTYPE_IPV6) return completeIpv6(frame, l3);
  if (type !== ETHERTYPE_IPV4 || frame.length < l3 + 20) return false;
  // RFC 791 §3.1: version, IHL, Total Length, flags/fragment offset, protocol, addresses.
  if (frame[l3] >> 4 !== 4) return false;
  const ihl = (frame[l3] & 0x0f) * 4;
  const total = (frame[l3 + 2] << 8) | frame[l3 + 3];
  if (ihl < 20 || total < ihl || l3 + total > frame.length) return false;
  if (((frame[l3 + 6] << 8) | frame[l3 + 7]) & 0x3fff) return false;
  const proto = frame[l3 + 9];
  const at = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : -1;
  const l4 = l3 + ihl;
  const len = total - ihl;
  if (at < 0 || len < at + 2) return false;
  // UDP checksum 0: none was sent (RFC 768); a partial sum is never 0.
  if (proto === PROTO_UDP && frame[l4 + 6] === 0 && frame[l4 + 7] === 0) return false;
  const u32 = (o: number) => ((frame[o] << 24) | (frame[o + 1] << 16) | (frame[o + 2] << 8) | frame[o + 3]) >>> 0;
  writeSum(frame, l4, len, at, proto, pseudoHeaderSum(u32(l3 + 12), u32(l3 + 16), proto, len));
  return true;
}

/** The IPv6 case: a fixed header followed directly by TCP or UDP (RFC 8200 §8.1). */
function completeIpv6(frame: Uint8Array, l3: number): boolean {
  if (frame.length < l3 + 40 || frame[l3] >> 4 !== 6) return false;
  const len = (frame[l3 + 4] << 8) | frame[l3 + 5];
  const proto = frame[l3 + 6];
  const at = proto === PROTO_TCP ? 16 : proto === PROTO_UDP ? 6 : -1;
  const l4 = l3 + 40;
  if (at < 0 || len < at + 2 || l4 + len > frame.length) return false;
  // Source and destination (32 bytes from offset 8), then the length and next header.
  writeSum(frame, l4, len, at, proto, onesSum(frame, l3 + 8, 32, len + proto));
  return true;
}

/** Zero the checksum field at `l4 + at`, sum the segment onto `pseudo` and write the result. */
function writeSum(frame: Uint8Array, l4: number, len: number, at: number, proto: number, pseudo: number): void {
  frame[l4 + at] = 0;
  frame[l4 + at + 1] = 0;
  let c = checksumFinish(onesSum(frame, l4, len, pseudo));
  // RFC 768 (and RFC 8200 §8.1 for IPv6): a computed UDP checksum of zero is sent as all ones.
  if (c === 0 && proto === PROTO_UDP) c = 0xffff;
  frame[l4 + at] = c >>> 8;
  frame[l4 + at + 1] = c & 0xff;
}
