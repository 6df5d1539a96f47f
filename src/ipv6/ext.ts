/**
 * IPv6 extension headers (RFC 8200 §4): the bounded walk of a packet's header chain, the
 * Fragment header codec (RFC 8200 §4.5), and emitters for the headers skiff writes or tests
 * with (Fragment, Hop-by-Hop / Destination Options with padding).
 *
 * `walkExtensionHeaders(packet)` follows Next Header from the fixed header through
 *  - Hop-by-Hop Options (0; RFC 8200 §4.3; only directly after the fixed header, §4.1),
 *  - Routing (43; §4.4): segments left 0 is ignored; a non-zero segments left is a parameter
 *    problem (code 0, pointing at the routing type), since skiff, a host, implements no
 *    routing type (type 0 is treated as unrecognised, RFC 5095 §3),
 *  - Fragment (44; §4.5): a later fragment ends the walk (its data is not a header); a first
 *    fragment must carry the whole chain up to and including the upper-layer header
 *    (RFC 7112 §5, RFC 8200 §4.5: else parameter problem code 3),
 *  - Destination Options (60; §4.6),
 *  - AH (51; RFC 4302 §2.2, length in 4-octet units), and the uniform-format headers of
 *    RFC 6564 (Mobility 135, HIP 139, Shim6 140, experimental 253/254),
 * and stops at ESP (50; encrypted, RFC 4303), No Next Header (59; §4.7: anything after it is
 * ignored) or any other value (the upper-layer protocol). Options of Hop-by-Hop and
 * Destination Options headers are checked as TLVs (§4.2): lengths within the header, the
 * action bits of an unrecognised option (skip / discard / discard and send a parameter
 * problem code 2 / the same unless the destination is multicast), bounded padding and option
 * counts. Pad1, PadN and Router Alert (RFC 2711) are recognised.
 *
 * Bounds (all configurable, `ExtLimits`): at most `maxHeaders` extension headers and
 * `maxChainBytes` bytes of them, at most `maxOptions` non-padding options per options header
 * and `maxPadding` consecutive padding bytes (the kinds of limit RFC 8504 §5.3 lets a node
 * apply; the defaults follow Linux's: 8 options, 7 bytes of padding). The walk is O(bytes)
 * and allocates one result.
 *
 * Errors: a `WireError` (layer "ipv6"), or its subclass `Ipv6ParameterProblem` when RFC 8200
 * says the drop should be answered with an ICMPv6 Parameter Problem (RFC 4443 §3.4) carrying
 * `code` and `pointer` (an offset from the start of the IPv6 header).
 */

import { getU16, getU32, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { IPV6_HEADER_LEN, Ipv6Field, NextHeader } from "./ipv6.js";

export const FRAGMENT_HEADER_LEN = 8;

export interface ExtLimits {
  /** Extension headers in one packet (default 8). */
  maxHeaders: number;
  /** Bytes of extension headers in one packet (default 512). */
  maxChainBytes: number;
  /** Non-padding options in one Hop-by-Hop or Destination Options header (default 8). */
  maxOptions: number;
  /** Consecutive padding bytes (Pad1/PadN) in an options header (default 7). */
  maxPadding: number;
}

export const DEFAULT_EXT_LIMITS: Readonly<ExtLimits> = {
  maxHeaders: 8,
  maxChainBytes: 512,
  maxOptions: 8,
  maxPadding: 7,
};

/** ICMPv6 Parameter Problem codes (RFC 4443 §3.4; code 3 RFC 7112 §6). */
export const ParamProblemCode = {
  ErroneousHeaderField: 0,
  UnrecognizedNextHeader: 1,
  UnrecognizedOption: 2,
  IncompleteHeaderChain: 3,
} as const;

/**
 * A drop RFC 8200 asks to answer with an ICMPv6 Parameter Problem: `code` (RFC 4443 §3.4) and
 * `pointer`, the offset of the offending byte from the start of the IPv6 header. When
 * `icmpAllowed` is false (an option whose action bits are 11 in a packet to a multicast
 * address, RFC 8200 §4.2) the packet is only discarded.
 */
export class Ipv6ParameterProblem extends WireError {
  constructor(
    reason: string,
    readonly code: number,
    readonly pointer: number,
    readonly icmpAllowed = true,
  ) {
    super("ipv6", reason);
  }
}

/** Minimum upper-layer header a first fragment must hold (RFC 7112 §5; TCP 20, UDP 8, ICMPv6 8 as Linux). */
function upperHeaderMin(proto: number): number {
  switch (proto) {
    case NextHeader.TCP:
      return 20;
    case NextHeader.UDP:
    case NextHeader.ICMPv6:
      return 8;
    default:
      return 0;
  }
}

/** Option types of Hop-by-Hop / Destination Options (IANA "Destination Options and Hop-by-Hop Options"). */
export const Ipv6Option = { Pad1: 0, PadN: 1, RouterAlert: 5 } as const;

/** The result of a successful walk. Offsets are from the start of the IPv6 header. */
export interface ExtChain {
  /** Upper-layer protocol: the Next Header value that ended the walk (6, 17, 58, 50, 59, …). */
  protocol: number;
  /** Offset of the upper-layer header (for a later fragment: of the fragment's data). */
  offset: number;
  /** End of the packet: 40 + Payload Length (or the end of the bytes of a truncated quote). */
  end: number;
  /** Extension headers walked. */
  headers: number;
  /** Offset of the Next Header field that names `protocol` (6 when there is no extension header). */
  protocolFieldAt: number;
  /** Router Alert value (RFC 2711) from the Hop-by-Hop header, or -1. */
  routerAlert: number;
  /** Routing type of a Routing header (whose segments left is 0: others are refused), or -1. */
  routingType: number;
  /** Offset of the Fragment header, or -1 when the packet is not a fragment. */
  fragmentAt: number;
  /** Offset of the Next Header field that names the Fragment header (meaningful when fragmentAt >= 0). */
  fragmentFieldAt: number;
  /** Fragment offset in bytes (fragmentAt >= 0). */
  fragmentOffset: number;
  /** M flag: more fragments follow (fragmentAt >= 0). */
  moreFragments: boolean;
  /** Fragment Identification (fragmentAt >= 0). */
  fragmentId: number;
}

/** True for a fragment of a larger packet: not an atomic fragment (RFC 6946 §4). */
export function isFragmented(c: ExtChain): boolean {
  return c.fragmentAt >= 0 && (c.moreFragments || c.fragmentOffset !== 0);
}

/** True for an atomic fragment: Fragment header with offset 0 and M clear (RFC 6946 §2). */
export function isAtomicFragment(c: ExtChain): boolean {
  return c.fragmentAt >= 0 && !c.moreFragments && c.fragmentOffset === 0;
}

const fail = (reason: string) => new WireError("ipv6", reason);

/**
 * Check the options of a Hop-by-Hop or Destination Options header at `b[start, end)`
 * (RFC 8200 §4.2). Returns the Router Alert value found (or -1), or an error.
 */
function walkOptions(b: Uint8Array, start: number, end: number, limits: ExtLimits, hbh: boolean): number | WireError {
  let i = start + 2;
  let padding = 0;
  let options = 0;
  let routerAlert = -1;
  while (i < end) {
    const type = b[i];
    if (type === Ipv6Option.Pad1) {
      if (++padding > limits.maxPadding) return fail("too much padding");
      i++;
      continue;
    }
    if (i + 2 > end) return new Ipv6ParameterProblem("option truncated", ParamProblemCode.ErroneousHeaderField, i);
    const len = b[i + 1];
    if (i + 2 + len > end) {
      return new Ipv6ParameterProblem("option truncated", ParamProblemCode.ErroneousHeaderField, i + 1);
    }
    if (type === Ipv6Option.PadN) {
      padding += 2 + len;
      if (padding > limits.maxPadding) return fail("too much padding");
      i += 2 + len;
      continue;
    }
    padding = 0;
    if (++options > limits.maxOptions) return fail("too many options");
    if (type === Ipv6Option.RouterAlert && hbh) {
      // RFC 2711 §2.1: length 2, a 16-bit value.
      if (len !== 2) return new Ipv6ParameterProblem("bad router alert", ParamProblemCode.ErroneousHeaderField, i + 1);
      routerAlert = getU16(b, i + 2);
    } else {
      // Unrecognised: the two high bits of the type say what to do (RFC 8200 §4.2).
      switch (type >>> 6) {
        case 0:
          break;
        case 1:
          return fail("unrecognized option");
        case 2:
          return new Ipv6ParameterProblem("unrecognized option", ParamProblemCode.UnrecognizedOption, i);
        default:
          return new Ipv6ParameterProblem(
            "unrecognized option",
            ParamProblemCode.UnrecognizedOption,
            i,
            b[Ipv6Field.Dst] !== 0xff,
          );
      }
    }
    i += 2 + len;
  }
  return routerAlert;
}

/**
 * Walk the extension-header chain of the IPv6 packet in `packet` (fixed header first; the
 * Payload Length must fit the bytes, unless `allowTruncated`: the packet quoted by an ICMPv6
 * error, cut to fit the minimum MTU, is walked as far as its bytes go and `end` is where they
 * end). Never throws. Reasons (layer "ipv6"): "truncated" (the fixed header or a header past the end of
 * the payload), "too many headers", "chain too long" (the bounds), "too much padding", "too
 * many options", "unrecognized option" (§4.2 action 01, silent), and as
 * `Ipv6ParameterProblem`: "hop-by-hop not first" (code 1), "option truncated" (code 0),
 * "unrecognized option" (code 2), "bad router alert" (code 0), "unrecognized routing type"
 * (code 0), "incomplete header chain" (code 3, RFC 7112 §5), "nested fragment" (code 0, a
 * second Fragment header after a first fragment's).
 */
export function walkExtensionHeaders(
  packet: Uint8Array,
  limits: ExtLimits = DEFAULT_EXT_LIMITS,
  opts?: { allowTruncated?: boolean },
): Parsed<ExtChain> {
  if (packet.length < IPV6_HEADER_LEN) return fail("truncated");
  let end = IPV6_HEADER_LEN + getU16(packet, Ipv6Field.PayloadLength);
  if (end > packet.length) {
    if (opts?.allowTruncated !== true) return fail("truncated");
    end = packet.length;
  }
  const c: ExtChain = {
    protocol: packet[Ipv6Field.NextHeader],
    offset: IPV6_HEADER_LEN,
    end,
    headers: 0,
    protocolFieldAt: Ipv6Field.NextHeader,
    routerAlert: -1,
    routingType: -1,
    fragmentAt: -1,
    fragmentFieldAt: -1,
    fragmentOffset: 0,
    moreFragments: false,
    fragmentId: 0,
  };
  let nh = c.protocol;
  let at = IPV6_HEADER_LEN;
  let fieldAt: number = Ipv6Field.NextHeader;
  for (;;) {
    let len: number;
    switch (nh) {
      case NextHeader.HopByHop:
      case NextHeader.DestinationOptions:
      case NextHeader.Routing:
      case NextHeader.Mobility:
      case NextHeader.HIP:
      case NextHeader.Shim6:
      case NextHeader.Experimental1:
      case NextHeader.Experimental2:
        // Uniform format (RFC 8200 §4.3-4.6, RFC 6564 §4): Hdr Ext Len in 8-octet units, not counting the first.
        if (at + 2 > end) return c.fragmentAt >= 0 ? incomplete() : fail("truncated");
        len = (packet[at + 1] + 1) * 8;
        break;
      case NextHeader.AH:
        // RFC 4302 §2.2: Payload Len in 4-octet units, minus 2.
        if (at + 2 > end) return c.fragmentAt >= 0 ? incomplete() : fail("truncated");
        len = (packet[at + 1] + 2) * 4;
        break;
      case NextHeader.Fragment:
        len = FRAGMENT_HEADER_LEN;
        break;
      default:
        // The upper layer (or ESP, or No Next Header): the chain ends here.
        c.protocol = nh;
        c.offset = at;
        c.protocolFieldAt = fieldAt;
        // RFC 7112 §5: a first fragment holds the upper-layer header (No Next Header ends the chain as well).
        if (c.fragmentAt >= 0 && c.moreFragments && at + upperHeaderMin(nh) > end) return incomplete();
        return c;
    }
    if (nh === NextHeader.HopByHop && at !== IPV6_HEADER_LEN) {
      // RFC 8200 §4.1/§4.3: Hop-by-Hop only directly after the fixed header.
      return new Ipv6ParameterProblem("hop-by-hop not first", ParamProblemCode.UnrecognizedNextHeader, fieldAt);
    }
    if (++c.headers > limits.maxHeaders) return fail("too many headers");
    if (at + len - IPV6_HEADER_LEN > limits.maxChainBytes) return fail("chain too long");
    if (at + len > end) return c.fragmentAt >= 0 ? incomplete() : fail("truncated");
    switch (nh) {
      case NextHeader.HopByHop:
      case NextHeader.DestinationOptions: {
        const ra = walkOptions(packet, at, at + len, limits, nh === NextHeader.HopByHop);
        if (ra instanceof WireError) return ra;
        if (nh === NextHeader.HopByHop) c.routerAlert = ra;
        break;
      }
      case NextHeader.Routing: {
        // RFC 8200 §4.4: type at +2, segments left at +3. No routing type is implemented.
        const segmentsLeft = packet[at + 3];
        if (segmentsLeft !== 0) {
          return new Ipv6ParameterProblem("unrecognized routing type", ParamProblemCode.ErroneousHeaderField, at + 2);
        }
        c.routingType = packet[at + 2];
        break;
      }
      case NextHeader.Fragment: {
        if (c.fragmentAt >= 0) {
          return new Ipv6ParameterProblem("nested fragment", ParamProblemCode.ErroneousHeaderField, fieldAt);
        }
        const w = getU16(packet, at + 2);
        c.fragmentAt = at;
        c.fragmentFieldAt = fieldAt;
        c.fragmentOffset = w & 0xfff8;
        c.moreFragments = (w & 1) !== 0;
        c.fragmentId = getU32(packet, at + 4);
        if (c.fragmentOffset !== 0) {
          // A later fragment: what follows is data, not headers (RFC 8200 §4.5).
          c.protocol = packet[at];
          c.offset = at + FRAGMENT_HEADER_LEN;
          c.protocolFieldAt = at;
          return c;
        }
        break;
      }
      default:
        break;
    }
    fieldAt = at;
    nh = packet[at];
    at += len;
  }
}

/** RFC 7112 §5 / RFC 8200 §4.5: the first fragment lacks part of the header chain. */
function incomplete(): Ipv6ParameterProblem {
  // Code 3 (RFC 7112 §6 added it to RFC 4443); the RFC names no byte to point at: 0, as Linux.
  return new Ipv6ParameterProblem("incomplete header chain", ParamProblemCode.IncompleteHeaderChain, 0);
}

/** The Fragment header (RFC 8200 §4.5). */
export interface FragmentHeaderRepr {
  nextHeader: number;
  /** Offset of the data in bytes (a multiple of 8, at most 65528). */
  fragmentOffset: number;
  /** M flag. */
  moreFragments: boolean;
  /** Identification (32 bits). */
  id: number;
}

/**
 * Parse a Fragment header at `b[off]`. Reasons: "truncated" (under 8 bytes). The reserved
 * fields are ignored on receipt (RFC 8200 §4.5).
 */
export function parseFragmentHeader(b: Uint8Array, off = 0): Parsed<FragmentHeaderRepr> {
  if (off < 0 || off + FRAGMENT_HEADER_LEN > b.length) return fail("truncated");
  const w = getU16(b, off + 2);
  return { nextHeader: b[off], fragmentOffset: w & 0xfff8, moreFragments: (w & 1) !== 0, id: getU32(b, off + 4) };
}

/**
 * Write a Fragment header at `buf[off]` (reserved fields zero; RFC 8200 §4.5). Returns 8.
 * Throws RangeError (a programmer error) for an offset that is not a multiple of 8 or over 65528.
 */
export function emitFragmentHeader(repr: FragmentHeaderRepr, buf: Uint8Array, off = 0): number {
  const fo = repr.fragmentOffset;
  if ((fo & 7) !== 0 || fo < 0 || fo > 0xfff8) throw new RangeError(`ipv6: bad fragment offset ${fo}`);
  buf[off] = repr.nextHeader;
  buf[off + 1] = 0;
  setU16(buf, off + 2, fo | (repr.moreFragments ? 1 : 0));
  setU32(buf, off + 4, repr.id >>> 0);
  return FRAGMENT_HEADER_LEN;
}

/** One option of a Hop-by-Hop or Destination Options header (not Pad1/PadN: padding is added by the emitter). */
export interface Ipv6OptionRepr {
  type: number;
  data: Uint8Array;
}

/** Length of an options header holding `options`, padded to a multiple of 8 (RFC 8200 §4.2). */
export function optionsHeaderLen(options: readonly Ipv6OptionRepr[]): number {
  let n = 2;
  for (const o of options) n += 2 + o.data.length;
  return (n + 7) & ~7;
}

/**
 * Write a Hop-by-Hop or Destination Options header at `buf[off]`: Next Header, Hdr Ext Len,
 * the options in order, then Pad1 or PadN to the next multiple of 8 (RFC 8200 §4.2; no
 * alignment requirements are applied). Returns its length. Throws RangeError (a programmer
 * error) for option data over 255 bytes or a header over 2048 bytes.
 */
export function emitOptionsHeader(nextHeader: number, options: readonly Ipv6OptionRepr[], buf: Uint8Array, off = 0): number {
  const len = optionsHeaderLen(options);
  if (len > 2048) throw new RangeError(`ipv6: options header of ${len} bytes exceeds 2048`);
  buf[off] = nextHeader;
  buf[off + 1] = len / 8 - 1;
  let i = off + 2;
  for (const o of options) {
    if (o.data.length > 255) throw new RangeError(`ipv6: option data of ${o.data.length} bytes exceeds 255`);
    buf[i] = o.type;
    buf[i + 1] = o.data.length;
    buf.set(o.data, i + 2);
    i += 2 + o.data.length;
  }
  const pad = off + len - i;
  if (pad === 1) buf[i] = Ipv6Option.Pad1;
  else if (pad > 1) {
    buf[i] = Ipv6Option.PadN;
    buf[i + 1] = pad - 2;
    buf.fill(0, i + 2, off + len);
  }
  return len;
}
