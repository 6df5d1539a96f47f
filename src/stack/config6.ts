/**
 * IPv6 configuration of the gateway host (ARCHITECTURE.md "Addressing plan"):
 *
 *   fd73:6b69:6666::/64    guest prefix, a ULA (RFC 4193 §3.1: fd00::/8, global ID 73:6b69:6666,
 *                          "skiff" in ASCII; subnet 0); guests take addresses in it by SLAAC
 *                          (RFC 4862 §5.5.3) from the router advertisements
 *   <prefix>::1            gateway: NDP, router advertisements, DNS, stateless DHCPv6, echo
 *   <prefix>::2            host alias (connections go to the host's ::1); off with the IPv4
 *                          alias (`hostAliasIp: null`), still reserved then
 *   fe80::<EUI-64 of MAC>  the gateway's link-local address (RFC 4862 §5.3), the source of
 *                          its router advertisements (RFC 4861 §4.2)
 *
 * The prefix must be a /64: SLAAC on Ethernet forms 64-bit interface identifiers (RFC 4291
 * §2.5.1, RFC 2464 §4). `resolveIpv6Config` rejects bad values with an Error naming the field.
 */

import { isLinkLocal6, isMulticast6, isUnspecified6, linkLocalFromMac, maskPrefix6, parseIpv6Prefix, parseIpv6Address, formatIpv6, hashIpv6, ipv6Bytes, ipv6Equal, Ipv6Addr } from "../ipv6/addr.js";

export const DEFAULT_SUBNET6 = "fd73:6b69:6666::/64";

export interface Ipv6Config {
  /** The guest prefix (a /64, host bits zero). */
  prefix: Ipv6Addr;
  prefixLength: 64;
  /** prefix::1 */
  gateway: Ipv6Addr;
  /** prefix::2 when the host alias is on, else null. */
  hostAlias: Ipv6Addr | null;
  /** prefix::2 whether the alias is on or off (reserved: never a guest's source, never dialled). */
  hostAliasAddress: Ipv6Addr;
  /** fe80:: + the modified EUI-64 of the gateway MAC. */
  gatewayLinkLocal: Ipv6Addr;
  /** Seconds between unsolicited router advertisements (RFC 4861 §6.2.1 MaxRtrAdvInterval). */
  raIntervalS: number;
  /** Neighbour cache bound (guests' IPv6 addresses). */
  maxNeighbors: number;
}

export interface Ipv6ConfigInput {
  /** false turns IPv6 off entirely: every IPv6 frame is dropped (counted). Default true. */
  ipv6?: boolean;
  /** The guest prefix, a /64 (default DEFAULT_SUBNET6). */
  subnet6?: string;
  /** Seconds between unsolicited router advertisements (default 200; 4..1800). */
  raIntervalS?: number;
}

/** The IPv6 part of the stack configuration, or null when IPv6 is off. */
export function resolveIpv6Config(input: Ipv6ConfigInput, gatewayMac: number, hostAliasOn: boolean, maxNeighbors: number): Ipv6Config | null {
  if (input.ipv6 === false) return null;
  const text = input.subnet6 ?? DEFAULT_SUBNET6;
  const p = parseIpv6Prefix(text);
  if (p === undefined) throw new Error(`invalid subnet6: ${JSON.stringify(text)} (expected an IPv6 prefix such as ${DEFAULT_SUBNET6})`);
  if (p.len !== 64) throw new Error(`invalid subnet6 prefix /${p.len}: must be /64 (SLAAC needs 64-bit interface identifiers)`);
  if (isMulticast6(p.addr) || isLinkLocal6(p.addr) || (p.addr.w0 | p.addr.w1) === 0) {
    throw new Error(`invalid subnet6 ${text}: not a unicast prefix usable for a guest network`);
  }
  const prefix = maskPrefix6(p.addr, 64);
  const raIntervalS = input.raIntervalS ?? 200;
  if (!Number.isInteger(raIntervalS) || raIntervalS < 4 || raIntervalS > 1800) throw new Error(`invalid raIntervalS ${raIntervalS}: use 4..1800`);
  const alias = new Ipv6Addr(prefix.w0, prefix.w1, 0, 2);
  return {
    prefix,
    prefixLength: 64,
    gateway: new Ipv6Addr(prefix.w0, prefix.w1, 0, 1),
    hostAlias: hostAliasOn ? alias : null,
    hostAliasAddress: alias,
    gatewayLinkLocal: linkLocalFromMac(gatewayMac),
    raIntervalS,
    maxNeighbors,
  };
}

/** `a` lies in the guest prefix. */
export function inPrefix64(cfg: Ipv6Config, a: Ipv6Addr): boolean {
  return a.w0 === cfg.prefix.w0 && a.w1 === cfg.prefix.w1;
}

/**
 * Where a guest's IPv6 destination goes (socket translation's address policy): the host alias
 * (its IPv6 twin of 192.168.65.2); "guest-subnet" for the guest prefix and link-local addresses
 * (they live on the guests' link, never dialled on the host); "not-unicast" for multicast, ::,
 * ::1 (the guest's own loopback) and the IPv4-mapped and -compatible ranges ::ffff:0:0/96 and
 * ::/96 (they would reach IPv4 addresses past the IPv4 policy); else the address as text.
 */
export type Destination6 = { kind: "alias" } | { kind: "refused"; reason: "guest-subnet" | "not-unicast" } | { kind: "host"; host: string };

export function classifyDestination6(cfg: Ipv6Config, a: Ipv6Addr): Destination6 {
  if (ipv6Equal(a, cfg.hostAliasAddress)) return { kind: "alias" };
  if (inPrefix64(cfg, a) || isLinkLocal6(a)) return { kind: "refused", reason: "guest-subnet" };
  if (isMulticast6(a) || isUnspecified6(a) || (a.w0 === 0 && a.w1 === 0 && (a.w2 === 0 || a.w2 === 0xffff))) return { kind: "refused", reason: "not-unicast" };
  return { kind: "host", host: formatIpv6(a) };
}

export { formatIpv6, parseIpv6Address, hashIpv6, ipv6Equal, ipv6Bytes };
export type { Ipv6Addr as Ipv6Address };
