/**
 * Neighbor Discovery options (RFC 4861 §4.6): Source/Target Link-Layer Address (§4.6.1, the
 * Ethernet form of RFC 2464 §8), Prefix Information (§4.6.2), Redirected Header (§4.6.3), MTU
 * (§4.6.4), and the DNS options of RFC 8106: Recursive DNS Server (§5.1) and DNS Search List
 * (§5.2). Any other option is kept as raw bytes ("other").
 *
 * Every option is type (1), length (1, in units of 8 octets, type and length included), data.
 * A length of 0 makes the whole ND message invalid (RFC 4861 §4.6: silently discard), as does
 * an option running past the message. `parseNdpOptions` never throws; `emitNdpOption` writes
 * into a caller's buffer.
 */

import { getMac, getU32, setMac, setU32 } from "../common/bytes.js";
import { WireError } from "../common/wire-error.js";
import { readIpv6Addr, writeIpv6Addr, type Ipv6Addr } from "./addr.js";
import { domainNamesLen, readDomainNames, writeDomainNames } from "./dns-names.js";

/** Option types (IANA "IPv6 Neighbor Discovery Option Formats"). */
export const NdpOptionType = {
  SourceLinkLayerAddress: 1,
  TargetLinkLayerAddress: 2,
  PrefixInformation: 3,
  RedirectedHeader: 4,
  Mtu: 5,
  Rdnss: 25,
  Dnssl: 31,
} as const;

/** Prefix Information flags (RFC 4861 §4.6.2; R of RFC 6275 §7.2). */
export const PrefixFlag = { OnLink: 0x80, Autonomous: 0x40, RouterAddress: 0x20 } as const;

/** The "infinity" lifetime (RFC 4861 §4.6.2, RFC 8106 §5.1). */
export const INFINITE_LIFETIME = 0xffffffff;

export type NdpOption =
  | {
      type: "source-lla" | "target-lla";
      /** 48-bit Ethernet address. */
      mac: number;
    }
  | {
      type: "prefix";
      prefixLength: number;
      /** Flags byte: `PrefixFlag` bits; the reserved bits as received. */
      flags: number;
      /** Seconds; 0xffffffff is infinity. */
      validLifetime: number;
      preferredLifetime: number;
      prefix: Ipv6Addr;
    }
  | { type: "mtu"; mtu: number }
  | {
      type: "redirected-header";
      /** IP header and data of the redirected packet, padding included (borrowed on parse). */
      data: Uint8Array;
    }
  | {
      type: "rdnss";
      /** Seconds; 0xffffffff is infinity, 0 withdraws the servers. */
      lifetime: number;
      servers: Ipv6Addr[];
    }
  | {
      type: "dnssl";
      lifetime: number;
      /** Domain names without the trailing dot, e.g. "internal". */
      domains: string[];
    }
  | {
      type: "other";
      code: number;
      /** Bytes after type and length (borrowed on parse). */
      data: Uint8Array;
    };

const fail = (reason: string) => new WireError("ndp", reason);

/**
 * Parse the options in `b[start, end)`. Reasons (layer "ndp"): "bad option length" (a length
 * of 0 or past the end; RFC 4861 §4.6), "bad mtu option", "bad prefix option",
 * "bad rdnss" (RFC 8106 §5.1: length odd and at least 3), "bad dnssl" (RFC 8106 §5.2: length
 * at least 2, well-formed names, zero padding). At most one option per 8 bytes is allocated.
 */
export function parseNdpOptions(b: Uint8Array, start: number, end: number): NdpOption[] | WireError {
  const out: NdpOption[] = [];
  let i = start;
  while (i < end) {
    if (i + 2 > end) return fail("bad option length");
    const type = b[i];
    const len = b[i + 1] * 8;
    if (len === 0 || i + len > end) return fail("bad option length");
    const d = i + 2;
    switch (type) {
      case NdpOptionType.SourceLinkLayerAddress:
      case NdpOptionType.TargetLinkLayerAddress:
        if (len === 8) {
          out.push({ type: type === 1 ? "source-lla" : "target-lla", mac: getMac(b, d) });
        } else {
          out.push({ type: "other", code: type, data: b.subarray(d, i + len) });
        }
        break;
      case NdpOptionType.PrefixInformation:
        if (len !== 32 || b[d] > 128) return fail("bad prefix option");
        out.push({
          type: "prefix",
          prefixLength: b[d],
          flags: b[d + 1],
          validLifetime: getU32(b, i + 4),
          preferredLifetime: getU32(b, i + 8),
          prefix: readIpv6Addr(b, i + 16),
        });
        break;
      case NdpOptionType.Mtu:
        if (len !== 8) return fail("bad mtu option");
        out.push({ type: "mtu", mtu: getU32(b, i + 4) });
        break;
      case NdpOptionType.RedirectedHeader:
        out.push({ type: "redirected-header", data: b.subarray(i + 8, i + len) });
        break;
      case NdpOptionType.Rdnss: {
        if (len < 24 || (len / 8) % 2 === 0) return fail("bad rdnss");
        const servers: Ipv6Addr[] = [];
        for (let a = i + 8; a < i + len; a += 16) servers.push(readIpv6Addr(b, a));
        out.push({ type: "rdnss", lifetime: getU32(b, i + 4), servers });
        break;
      }
      case NdpOptionType.Dnssl: {
        if (len < 16) return fail("bad dnssl");
        const domains = readDomainNames(b, i + 8, i + len, true);
        if (domains === undefined) return fail("bad dnssl");
        out.push({ type: "dnssl", lifetime: getU32(b, i + 4), domains });
        break;
      }
      default:
        out.push({ type: "other", code: type, data: b.subarray(d, i + len) });
        break;
    }
    i += len;
  }
  return out;
}

/** Bytes `o` takes on the wire (a multiple of 8). Throws RangeError for data that cannot be encoded. */
export function ndpOptionLen(o: NdpOption): number {
  switch (o.type) {
    case "source-lla":
    case "target-lla":
    case "mtu":
      return 8;
    case "prefix":
      return 32;
    case "redirected-header":
      return 8 + ((o.data.length + 7) & ~7);
    case "rdnss":
      if (o.servers.length === 0) throw new RangeError("ndp: an RDNSS option needs a server");
      return 8 + 16 * o.servers.length;
    case "dnssl":
      if (o.domains.length === 0) throw new RangeError("ndp: a DNSSL option needs a domain");
      return 8 + ((domainNamesLen(o.domains) + 7) & ~7);
    default:
      return (o.data.length + 2 + 7) & ~7;
  }
}

/**
 * Write `o` at `buf[off]` (reserved fields and padding zero). Returns its length. Throws
 * RangeError (a programmer error) for an option that cannot be encoded (over 2040 bytes, an
 * empty RDNSS or DNSSL, a malformed domain name).
 */
export function emitNdpOption(o: NdpOption, buf: Uint8Array, off: number): number {
  const len = ndpOptionLen(o);
  if (len > 255 * 8) throw new RangeError(`ndp: option of ${len} bytes exceeds 2040`);
  buf.fill(0, off, off + len);
  buf[off + 1] = len / 8;
  switch (o.type) {
    case "source-lla":
    case "target-lla":
      buf[off] = o.type === "source-lla" ? NdpOptionType.SourceLinkLayerAddress : NdpOptionType.TargetLinkLayerAddress;
      setMac(buf, off + 2, o.mac);
      break;
    case "prefix":
      buf[off] = NdpOptionType.PrefixInformation;
      buf[off + 2] = o.prefixLength;
      buf[off + 3] = o.flags;
      setU32(buf, off + 4, o.validLifetime);
      setU32(buf, off + 8, o.preferredLifetime);
      writeIpv6Addr(buf, off + 16, o.prefix);
      break;
    case "mtu":
      buf[off] = NdpOptionType.Mtu;
      setU32(buf, off + 4, o.mtu);
      break;
    case "redirected-header":
      buf[off] = NdpOptionType.RedirectedHeader;
      buf.set(o.data, off + 8);
      break;
    case "rdnss":
      buf[off] = NdpOptionType.Rdnss;
      setU32(buf, off + 4, o.lifetime);
      for (let k = 0; k < o.servers.length; k++) writeIpv6Addr(buf, off + 8 + 16 * k, o.servers[k]);
      break;
    case "dnssl": {
      buf[off] = NdpOptionType.Dnssl;
      setU32(buf, off + 4, o.lifetime);
      writeDomainNames(o.domains, buf, off + 8);
      break;
    }
    default:
      buf[off] = o.code;
      buf.set(o.data, off + 2);
      break;
  }
  return len;
}
