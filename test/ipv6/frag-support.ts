/**
 * Test support for IPv6 fragments: cut a packet into fragments the way RFC 8200 §4.5 describes
 * (Unfragmentable Part copied into each, a Fragment header, a slice of the Fragmentable Part),
 * and offer a fragment to a reassembler after walking its chain.
 */
import { WireError } from "../../src/common/wire-error.js";
import { emitFragmentHeader, walkExtensionHeaders } from "../../src/ipv6/ext.js";
import { Ipv6Reassembler } from "../../src/ipv6/fragments.js";
import { IPV6_HEADER_LEN } from "../../src/ipv6/ipv6.js";

/**
 * Fragment `whole` (an IPv6 packet whose Unfragmentable Part is the first `unfragLen` bytes and
 * whose last unfragmentable Next Header field is at `fieldAt`) at the data offsets in `cuts`
 * (multiples of 8, increasing, inside the Fragmentable Part). Returns the fragment packets in order.
 */
export function fragmentPacket(whole: Uint8Array, unfragLen: number, fieldAt: number, cuts: number[], id: number): Uint8Array[] {
  const data = whole.subarray(unfragLen);
  const nh = whole[fieldAt];
  const bounds = [0, ...cuts, data.length];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const start = bounds[i];
    const end = bounds[i + 1];
    const f = new Uint8Array(unfragLen + 8 + end - start);
    f.set(whole.subarray(0, unfragLen));
    f[fieldAt] = 44;
    emitFragmentHeader({ nextHeader: nh, fragmentOffset: start, moreFragments: end < data.length, id }, f, unfragLen);
    f.set(data.subarray(start, end), unfragLen + 8);
    const pl = f.length - IPV6_HEADER_LEN;
    f[4] = pl >>> 8;
    f[5] = pl & 0xff;
    out.push(f);
  }
  return out;
}

/** Walk `pkt` and offer it to `r` at `now`; throws (a test bug) when the walk fails. */
export function offer(r: Ipv6Reassembler, pkt: Uint8Array, now: number): Uint8Array | undefined {
  const c = walkExtensionHeaders(pkt);
  if (c instanceof WireError) throw new Error(`test fragment does not walk: ${c.toString()}`);
  return r.add(pkt, c, now);
}
