/**
 * Source fragmentation of a packet the gateway itself sends and that does not fit the link MTU:
 * an echo reply to a large `ping -s 3000` (the request came in fragments and was reassembled).
 * IPv4: RFC 791 §3.2 ("Fragmentation"; every fragment but the last carries a multiple of 8
 * octets, MF set, the offset in 8-octet units, the header checksum recomputed). IPv6: RFC 8200
 * §4.5 (only the source fragments; the unfragmentable part is the IPv6 header, each fragment
 * gets a Fragment header with the original Next Header, the same 32-bit Identification, the
 * offset and the M flag). The gateway emits no extension headers, so the unfragmentable part is
 * just the fixed header.
 *
 * Input: a whole frame (Ethernet + IP header + payload) built in a transmit buffer whose length
 * fields already describe the unfragmented packet. Each fragment is built in `scratch` and handed
 * to `send`, which must consume it before returning (channels copy or write synchronously).
 */

import { getU16, setU16 } from "../common/bytes.js";
import { checksum } from "../ipv4/checksum.js";
import { emitFragmentHeader, FRAGMENT_HEADER_LEN } from "../ipv6/ext.js";

const ETH = 14;
const IPV6_HEADER = 40;
/** Next Header value of the IPv6 Fragment header (RFC 8200 §4.5). */
const NEXT_FRAGMENT = 44;
const FLAG_MF = 0x2000;

/** Send an IPv4 `frame` larger than `mtu` as fragments; false when any fragment was refused. */
export function sendIpv4Fragments(frame: Uint8Array, mtu: number, scratch: Uint8Array, send: (f: Uint8Array) => boolean): boolean {
  const hl = (frame[ETH] & 0x0f) * 4;
  const payload = frame.subarray(ETH + hl, ETH + getU16(frame, ETH + 2));
  const step = ((mtu - hl) >>> 3) << 3;
  let ok = true;
  for (let at = 0; at < payload.length; at += step) {
    const n = Math.min(step, payload.length - at);
    scratch.set(frame.subarray(0, ETH + hl), 0);
    setU16(scratch, ETH + 2, hl + n);
    // DF cleared (a packet we fragment was sent without it), MF on all but the last.
    setU16(scratch, ETH + 6, (at + n < payload.length ? FLAG_MF : 0) | (at >>> 3));
    setU16(scratch, ETH + 10, 0);
    setU16(scratch, ETH + 10, checksum(scratch, ETH, hl));
    scratch.set(payload.subarray(at, at + n), ETH + hl);
    ok = send(scratch.subarray(0, ETH + hl + n)) && ok;
  }
  return ok;
}

/** Send an IPv6 `frame` (no extension headers) larger than `mtu` as fragments with Identification `id`. */
export function sendIpv6Fragments(frame: Uint8Array, mtu: number, id: number, scratch: Uint8Array, send: (f: Uint8Array) => boolean): boolean {
  const nextHeader = frame[ETH + 6];
  const payload = frame.subarray(ETH + IPV6_HEADER, ETH + IPV6_HEADER + getU16(frame, ETH + 4));
  const step = ((mtu - IPV6_HEADER - FRAGMENT_HEADER_LEN) >>> 3) << 3;
  let ok = true;
  for (let at = 0; at < payload.length; at += step) {
    const n = Math.min(step, payload.length - at);
    scratch.set(frame.subarray(0, ETH + IPV6_HEADER), 0);
    scratch[ETH + 6] = NEXT_FRAGMENT;
    setU16(scratch, ETH + 4, FRAGMENT_HEADER_LEN + n);
    emitFragmentHeader({ nextHeader, fragmentOffset: at, moreFragments: at + n < payload.length, id }, scratch, ETH + IPV6_HEADER);
    scratch.set(payload.subarray(at, at + n), ETH + IPV6_HEADER + FRAGMENT_HEADER_LEN);
    ok = send(scratch.subarray(0, ETH + IPV6_HEADER + FRAGMENT_HEADER_LEN + n)) && ok;
  }
  return ok;
}
