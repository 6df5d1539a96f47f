/**
 * IPv6 addresses (RFC 4291 §2): the in-stack representation, byte access, text form
 * (RFC 4291 §2.2 to parse, RFC 5952 §4 to format), and the derived addresses a gateway needs
 * (solicited-node multicast, RFC 4291 §2.7.1; Ethernet multicast mapping, RFC 2464 §7;
 * modified EUI-64 interface identifiers, RFC 4291 Appendix A).
 *
 * Representation: `Ipv6Addr`, four big-endian uint32 words (`w0` = bytes 0..3 … `w3` = bytes
 * 12..15) in one small class. Why four uint32 numbers rather than the alternatives:
 *  - a JS number holds at most 53 bits exactly, so "two halves" would need BigInt, which
 *    allocates on every operation and is ~10x slower than small-integer arithmetic;
 *  - a 16-byte `Uint8Array` per address costs a typed-array allocation (much heavier than a
 *    plain object in V8) and compares by a loop of 16;
 *  - four uint32 fields on one class keep a single hidden class (monomorphic access), compare
 *    in four number comparisons, mask a /64 prefix as `w0, w1`, and hash into a flow-table key
 *    without building a string, like the IPv4 uint32 addresses of the rest of the stack
 *    (DESIGN.md "Hot path"). The view (`Ipv6Packet`) can also compare in place without
 *    allocating one (`addrEqualsAt`).
 * Strings exist only at the edges (configuration, logs, `pcap inspect`).
 */

import { getU32, setU32 } from "../common/bytes.js";

/** A 128-bit IPv6 address as four big-endian 32-bit words (each 0..2^32-1). Immutable. */
export class Ipv6Addr {
  constructor(
    readonly w0: number,
    readonly w1: number,
    readonly w2: number,
    readonly w3: number,
  ) {}

  toString(): string {
    return formatIpv6(this);
  }
}

/** The unspecified address `::` (RFC 4291 §2.5.2). */
export const IPV6_UNSPECIFIED = new Ipv6Addr(0, 0, 0, 0);
/** The loopback address `::1` (RFC 4291 §2.5.3). */
export const IPV6_LOOPBACK = new Ipv6Addr(0, 0, 0, 1);
/** All-nodes multicast `ff02::1` (RFC 4291 §2.7.1). */
export const IPV6_ALL_NODES = new Ipv6Addr(0xff020000, 0, 0, 1);
/** All-routers multicast `ff02::2` (RFC 4291 §2.7.1). */
export const IPV6_ALL_ROUTERS = new Ipv6Addr(0xff020000, 0, 0, 2);

/** Read 16 bytes at `b[o]` (caller checks the length). */
export function readIpv6Addr(b: Uint8Array, o: number): Ipv6Addr {
  return new Ipv6Addr(getU32(b, o), getU32(b, o + 4), getU32(b, o + 8), getU32(b, o + 12));
}

/** Write `a` as 16 bytes at `b[o]`. */
export function writeIpv6Addr(b: Uint8Array, o: number, a: Ipv6Addr): void {
  setU32(b, o, a.w0);
  setU32(b, o + 4, a.w1);
  setU32(b, o + 8, a.w2);
  setU32(b, o + 12, a.w3);
}

/** The 16 bytes of `a` as a new array. */
export function ipv6Bytes(a: Ipv6Addr): Uint8Array {
  const b = new Uint8Array(16);
  writeIpv6Addr(b, 0, a);
  return b;
}

export function ipv6Equal(a: Ipv6Addr, b: Ipv6Addr): boolean {
  return a.w0 === b.w0 && a.w1 === b.w1 && a.w2 === b.w2 && a.w3 === b.w3;
}

/** True when the 16 bytes at `b[o]` are `a` (no allocation). */
export function addrEqualsAt(b: Uint8Array, o: number, a: Ipv6Addr): boolean {
  return getU32(b, o) === a.w0 && getU32(b, o + 4) === a.w1 && getU32(b, o + 8) === a.w2 && getU32(b, o + 12) === a.w3;
}

/** `ff00::/8` (RFC 4291 §2.7). */
export function isMulticast6(a: Ipv6Addr): boolean {
  return a.w0 >>> 24 === 0xff;
}

/** `::` (RFC 4291 §2.5.2). */
export function isUnspecified6(a: Ipv6Addr): boolean {
  return (a.w0 | a.w1 | a.w2 | a.w3) === 0;
}

/** `fe80::/10` (RFC 4291 §2.5.6). */
export function isLinkLocal6(a: Ipv6Addr): boolean {
  return a.w0 >>> 22 === 0xfe80 >>> 6;
}

/** `fc00::/7`, Unique Local Addresses (RFC 4193 §3.1). */
export function isUniqueLocal6(a: Ipv6Addr): boolean {
  return a.w0 >>> 25 === 0xfc >>> 1;
}

/** Solicited-node multicast address `ff02::1:ffXX:XXXX` of `a` (RFC 4291 §2.7.1). */
export function solicitedNode(a: Ipv6Addr): Ipv6Addr {
  return new Ipv6Addr(0xff020000, 0, 1, (0xff000000 | (a.w3 & 0xffffff)) >>> 0);
}

/** True for any solicited-node multicast address `ff02::1:ff00:0/104` (RFC 4291 §2.7.1). */
export function isSolicitedNode(a: Ipv6Addr): boolean {
  return a.w0 === 0xff020000 && a.w1 === 0 && a.w2 === 1 && a.w3 >>> 24 === 0xff;
}

/** Ethernet destination of an IPv6 multicast: 33:33 and the last 32 bits (RFC 2464 §7). */
export function multicastMac6(a: Ipv6Addr): number {
  return 0x3333 * 0x1_0000_0000 + a.w3;
}

/**
 * Modified EUI-64 interface identifier of a 48-bit MAC (RFC 4291 Appendix A; RFC 2464 §4):
 * FF-FE inserted in the middle, universal/local bit inverted. Returned as the low 64 bits
 * `[w2, w3]` of an address.
 */
export function eui64FromMac(mac: number): [number, number] {
  const hi = Math.floor(mac / 0x1_0000_0000); // first 2 bytes
  const lo = mac >>> 0; // last 4 bytes
  const w2 = ((((hi >>> 8) ^ 0x02) << 24) | ((hi & 0xff) << 16) | ((lo >>> 24) << 8) | 0xff) >>> 0;
  const w3 = ((0xfe << 24) | (lo & 0xffffff)) >>> 0;
  return [w2, w3];
}

/** Link-local address `fe80::/64` + the modified EUI-64 of `mac` (RFC 4862 §5.3). */
export function linkLocalFromMac(mac: number): Ipv6Addr {
  const [w2, w3] = eui64FromMac(mac);
  return new Ipv6Addr(0xfe800000, 0, w2, w3);
}

/** `a` with every bit after the first `len` cleared (0 <= len <= 128). */
export function maskPrefix6(a: Ipv6Addr, len: number): Ipv6Addr {
  const m = (i: number) => {
    const bits = Math.max(0, Math.min(32, len - 32 * i));
    return bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  };
  return new Ipv6Addr((a.w0 & m(0)) >>> 0, (a.w1 & m(1)) >>> 0, (a.w2 & m(2)) >>> 0, (a.w3 & m(3)) >>> 0);
}

/** True when `a` lies in `prefix/len`. */
export function inPrefix6(a: Ipv6Addr, prefix: Ipv6Addr, len: number): boolean {
  return ipv6Equal(maskPrefix6(a, len), maskPrefix6(prefix, len));
}

/** The eight 16-bit groups of `a`. */
function groups(a: Ipv6Addr): number[] {
  return [a.w0 >>> 16, a.w0 & 0xffff, a.w1 >>> 16, a.w1 & 0xffff, a.w2 >>> 16, a.w2 & 0xffff, a.w3 >>> 16, a.w3 & 0xffff];
}

/**
 * RFC 5952 §4 text form: lower-case hex, no leading zeros (§4.1), `::` for the longest run of
 * two or more zero groups, the first one on a tie (§4.2.1-§4.2.3), never for a single group
 * (§4.2.2). IPv4-mapped addresses `::ffff:0:0/96` end in dotted decimal (§5).
 */
export function formatIpv6(a: Ipv6Addr): string {
  const g = groups(a);
  if (a.w0 === 0 && a.w1 === 0 && a.w2 === 0xffff) {
    const v4 = a.w3;
    return `::ffff:${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`;
  }
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** Parse one dotted-quad IPv4 address into a uint32; undefined if malformed. */
function parseDottedQuad(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const x = Number(m[i]);
    if (x > 255) return undefined;
    v = v * 256 + x;
  }
  return v;
}

/** Parse "a:b:…" groups (1 to 4 hex digits each) into `out`; false if malformed. */
function parseGroups(s: string, out: number[]): boolean {
  if (s === "") return true;
  for (const part of s.split(":")) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return false;
    out.push(parseInt(part, 16));
  }
  return true;
}

/**
 * Parse the text forms of RFC 4291 §2.2: eight groups of 1-4 hex digits, at most one `::`,
 * and an optional trailing dotted-quad IPv4 address (§2.2 form 3). No zone index, no prefix
 * length. Undefined if malformed.
 */
export function parseIpv6Address(s: string): Ipv6Addr | undefined {
  if (s.length > 45 || s.length < 2) return undefined;
  let tail4: number | undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (lastColon >= 0 && s.indexOf(".", lastColon) > lastColon) {
    tail4 = parseDottedQuad(s.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    // Replace the IPv4 part by two placeholder groups.
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const g: number[] = [];
  const dbl = text.indexOf("::");
  if (dbl >= 0) {
    if (text.indexOf("::", dbl + 1) >= 0) return undefined;
    const head: number[] = [];
    const tail: number[] = [];
    if (!parseGroups(text.slice(0, dbl), head) || !parseGroups(text.slice(dbl + 2), tail)) return undefined;
    const zeros = 8 - head.length - tail.length;
    if (zeros < 1) return undefined;
    g.push(...head, ...new Array<number>(zeros).fill(0), ...tail);
  } else {
    if (!parseGroups(text, g) || g.length !== 8) return undefined;
  }
  const w = (i: number) => ((g[2 * i] << 16) | g[2 * i + 1]) >>> 0;
  return new Ipv6Addr(w(0), w(1), w(2), tail4 !== undefined ? tail4 : w(3));
}

/** Parse "addr/len" (0 <= len <= 128); undefined if malformed. The address is not masked. */
export function parseIpv6Prefix(s: string): { addr: Ipv6Addr; len: number } | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const addr = parseIpv6Address(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (addr === undefined || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  return len <= 128 ? { addr, len } : undefined;
}

/**
 * A 32-bit hash of an address (for flow-table keys without strings): a multiplicative mix of
 * the four words. Equal addresses hash equally; callers still compare with `ipv6Equal`.
 */
export function hashIpv6(a: Ipv6Addr): number {
  let h = Math.imul(a.w0 ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ a.w1 ^ (h >>> 15), 0xc2b2ae35);
  h = Math.imul(h ^ a.w2 ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ a.w3 ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

