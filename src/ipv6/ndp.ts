/**
 * Neighbor Discovery messages (RFC 4861 §4): Router Solicitation (§4.1), Router Advertisement
 * (§4.2), Neighbor Solicitation (§4.3), Neighbor Advertisement (§4.4) and Redirect (§4.5),
 * with the receive validity checks of §6.1.1, §6.1.2, §7.1.1, §7.1.2 and §8.1. Options are in
 * `./ndp-options.ts`.
 *
 * ND messages are ICMPv6 messages (types 133..137): `parseNdp` takes the ICMPv6 bytes and the
 * IPv6 source, destination and Hop Limit (every ND message must arrive with Hop Limit 255, so
 * it cannot have crossed a router), verifies the checksum (RFC 4443 §2.3) and returns an
 * `NdpRepr` or a WireError (layer "ndp"); an invalid ND message is silently discarded.
 * `emitNdp` writes one into a caller's buffer, options and checksum included: what a gateway
 * sends (RA with prefix, MTU, RDNSS and DNSSL; NA; NS to resolve a guest).
 *
 * Layouts after the 4-byte ICMPv6 type/code/checksum (RFC 4861 §4.1-§4.5):
 *   RS        4 reserved(4)                                            8 options
 *   RA        4 cur hop limit  5 flags (M O H Prf P)  6 router lifetime(2)
 *             8 reachable time(4)  12 retrans timer(4)                16 options
 *   NS        4 reserved(4)  8 target(16)                             24 options
 *   NA        4 R S O + reserved(4)  8 target(16)                     24 options
 *   Redirect  4 reserved(4)  8 target(16)  24 destination(16)         40 options
 */

import { getU16, getU32, setU16, setU32 } from "../common/bytes.js";
import { WireError, type Parsed } from "../common/wire-error.js";
import { isLinkLocal6, isMulticast6, isSolicitedNode, isUnspecified6, ipv6Equal, readIpv6Addr, writeIpv6Addr, type Ipv6Addr } from "./addr.js";
import { Icmpv6Type } from "./icmpv6.js";
import { NextHeader, upperLayerChecksum6 } from "./ipv6.js";
import { emitNdpOption, ndpOptionLen, parseNdpOptions, type NdpOption } from "./ndp-options.js";

/** Hop Limit every ND message is sent and must be received with (RFC 4861 §6.1, §7.1, §8.1). */
export const NDP_HOP_LIMIT = 255;

/** Router Advertisement flags (RFC 4861 §4.2 M and O; H RFC 6275 §7.1; Prf RFC 4191 §2.2; P RFC 4389 §4.1). */
export const RaFlag = { Managed: 0x80, Other: 0x40, HomeAgent: 0x20, PreferenceMask: 0x18, Proxy: 0x04 } as const;

/** Neighbor Advertisement flags in byte 4 (RFC 4861 §4.4). */
const NA_ROUTER = 0x80;
const NA_SOLICITED = 0x40;
const NA_OVERRIDE = 0x20;

export type NdpRepr =
  | { kind: "rs"; options: NdpOption[] }
  | {
      kind: "ra";
      /** 0 = unspecified. */
      curHopLimit: number;
      /** The flags byte: `RaFlag` bits; the reserved bits as received. */
      flags: number;
      /** Seconds; 0 = not a default router. */
      routerLifetime: number;
      /** Milliseconds; 0 = unspecified. */
      reachableTime: number;
      /** Milliseconds; 0 = unspecified. */
      retransTimer: number;
      options: NdpOption[];
    }
  | { kind: "ns"; target: Ipv6Addr; options: NdpOption[] }
  | { kind: "na"; router: boolean; solicited: boolean; override: boolean; target: Ipv6Addr; options: NdpOption[] }
  | { kind: "redirect"; target: Ipv6Addr; destination: Ipv6Addr; options: NdpOption[] };

/** Fixed part of each message (ICMPv6 header included), where its options begin. */
function fixedLen(kind: NdpRepr["kind"]): number {
  switch (kind) {
    case "rs":
      return 8;
    case "ra":
      return 16;
    case "ns":
    case "na":
      return 24;
    default:
      return 40;
  }
}

const fail = (reason: string) => new WireError("ndp", reason);

function hasOption(options: NdpOption[], type: NdpOption["type"]): boolean {
  for (const o of options) if (o.type === type) return true;
  return false;
}

/**
 * Parse one ND message (`bytes` the ICMPv6 message). Reasons, in the order they are checked:
 * "not ndp" (type outside 133..137), "truncated" (shorter than the message's fixed part),
 * "bad hop limit" (not 255), "bad code" (not 0), "bad checksum" (unless `verifyChecksum:
 * false`), the option reasons of `parseNdpOptions`, then the per-message checks:
 * "source lla from unspecified" (RS §6.1.1, NS §7.1.1), "router source not link-local" (RA
 * §6.1.2, Redirect §8.1), "multicast target" (NS, NA §7.1.1-2), "dad not to solicited-node"
 * (NS from :: §7.1.1), "solicited to multicast" (NA §7.1.2), "bad redirect" (§8.1: multicast
 * destination, or a target neither link-local nor the destination).
 */
export function parseNdp(
  bytes: Uint8Array,
  src: Ipv6Addr,
  dst: Ipv6Addr,
  hopLimit: number,
  opts?: { verifyChecksum?: boolean },
): Parsed<NdpRepr> {
  if (bytes.length < 4) return fail("truncated");
  const type = bytes[0];
  let kind: NdpRepr["kind"];
  switch (type) {
    case Icmpv6Type.RouterSolicitation:
      kind = "rs";
      break;
    case Icmpv6Type.RouterAdvertisement:
      kind = "ra";
      break;
    case Icmpv6Type.NeighborSolicitation:
      kind = "ns";
      break;
    case Icmpv6Type.NeighborAdvertisement:
      kind = "na";
      break;
    case Icmpv6Type.Redirect:
      kind = "redirect";
      break;
    default:
      return fail("not ndp");
  }
  const fixed = fixedLen(kind);
  const n = bytes.length;
  if (n < fixed) return fail("truncated");
  if (hopLimit !== NDP_HOP_LIMIT) return fail("bad hop limit");
  if (bytes[1] !== 0) return fail("bad code");
  if (opts?.verifyChecksum !== false && upperLayerChecksum6(bytes, 0, n, src, dst, NextHeader.ICMPv6) !== 0) {
    return fail("bad checksum");
  }
  const options = parseNdpOptions(bytes, fixed, n);
  if (options instanceof WireError) return options;
  switch (kind) {
    case "rs":
      // §6.1.1: no Source Link-Layer Address option from the unspecified address.
      if (isUnspecified6(src) && hasOption(options, "source-lla")) return fail("source lla from unspecified");
      return { kind, options };
    case "ra":
      if (!isLinkLocal6(src)) return fail("router source not link-local");
      return {
        kind,
        curHopLimit: bytes[4],
        flags: bytes[5],
        routerLifetime: getU16(bytes, 6),
        reachableTime: getU32(bytes, 8),
        retransTimer: getU32(bytes, 12),
        options,
      };
    case "ns": {
      const target = readIpv6Addr(bytes, 8);
      if (isMulticast6(target)) return fail("multicast target");
      if (isUnspecified6(src)) {
        // §7.1.1: Duplicate Address Detection goes to the target's solicited-node address, without SLLA.
        if (!isSolicitedNode(dst)) return fail("dad not to solicited-node");
        if (hasOption(options, "source-lla")) return fail("source lla from unspecified");
      }
      return { kind, target, options };
    }
    case "na": {
      const target = readIpv6Addr(bytes, 8);
      if (isMulticast6(target)) return fail("multicast target");
      const f = bytes[4];
      if (isMulticast6(dst) && (f & NA_SOLICITED) !== 0) return fail("solicited to multicast");
      return {
        kind,
        router: (f & NA_ROUTER) !== 0,
        solicited: (f & NA_SOLICITED) !== 0,
        override: (f & NA_OVERRIDE) !== 0,
        target,
        options,
      };
    }
    default: {
      if (!isLinkLocal6(src)) return fail("router source not link-local");
      const target = readIpv6Addr(bytes, 8);
      const destination = readIpv6Addr(bytes, 24);
      if (isMulticast6(destination) || !(isLinkLocal6(target) || ipv6Equal(target, destination))) {
        return fail("bad redirect");
      }
      return { kind: "redirect", target, destination, options };
    }
  }
}

/** Whole message length: fixed part and options. */
export function ndpLen(repr: NdpRepr): number {
  let n = fixedLen(repr.kind);
  for (const o of repr.options) n += ndpOptionLen(o);
  return n;
}

/**
 * Write the ND message at `buf[off]` (reserved fields zero) with its options in order, and
 * fill the ICMPv6 checksum over the pseudo-header of `src` and `dst` in place. Returns the
 * message length. The IPv6 header around it must carry Hop Limit 255 (`NDP_HOP_LIMIT`).
 * Throws RangeError (a programmer error) for options that cannot be encoded.
 */
export function emitNdp(repr: NdpRepr, buf: Uint8Array, off: number, src: Ipv6Addr, dst: Ipv6Addr): number {
  const fixed = fixedLen(repr.kind);
  buf.fill(0, off, off + fixed);
  switch (repr.kind) {
    case "rs":
      buf[off] = Icmpv6Type.RouterSolicitation;
      break;
    case "ra":
      buf[off] = Icmpv6Type.RouterAdvertisement;
      buf[off + 4] = repr.curHopLimit;
      buf[off + 5] = repr.flags;
      setU16(buf, off + 6, repr.routerLifetime);
      setU32(buf, off + 8, repr.reachableTime);
      setU32(buf, off + 12, repr.retransTimer);
      break;
    case "ns":
      buf[off] = Icmpv6Type.NeighborSolicitation;
      writeIpv6Addr(buf, off + 8, repr.target);
      break;
    case "na":
      buf[off] = Icmpv6Type.NeighborAdvertisement;
      buf[off + 4] = (repr.router ? NA_ROUTER : 0) | (repr.solicited ? NA_SOLICITED : 0) | (repr.override ? NA_OVERRIDE : 0);
      writeIpv6Addr(buf, off + 8, repr.target);
      break;
    default:
      buf[off] = Icmpv6Type.Redirect;
      writeIpv6Addr(buf, off + 8, repr.target);
      writeIpv6Addr(buf, off + 24, repr.destination);
      break;
  }
  let at = off + fixed;
  for (const o of repr.options) at += emitNdpOption(o, buf, at);
  const len = at - off;
  if (len > 0xffff) throw new RangeError(`ndp: message of ${len} bytes exceeds 65535`);
  setU16(buf, off + 2, upperLayerChecksum6(buf, off, len, src, dst, NextHeader.ICMPv6));
  return len;
}
