/**
 * Configuration of the gateway host (ARCHITECTURE.md "Addressing plan", VPNKit-compatible):
 *
 *   192.168.65.0/24   guest network
 *   192.168.65.1      gateway: ARP, DHCP, DNS, ICMP echo
 *   192.168.65.2      host alias (connections go to the host's 127.0.0.1); off when hostAlias is null
 *                     (the address stays reserved as `hostAliasAddress`: refused, never leased,
 *                     never dialled on the host side; ARP for it is not answered, and a packet
 *                     sent to it anyway gets ICMP "administratively prohibited")
 *   192.168.65.3 …    guests
 *
 * Addresses are uint32 numbers and MACs 48-bit numbers inside the stack; `resolveConfig`
 * accepts strings at the edge and rejects bad values with an Error that names the field.
 */

import { parseIpv4Address, parseMac, formatIpv4 } from "../common/addr.js";
import { resolveIpv6Config, type Ipv6Config, type Ipv6ConfigInput } from "./config6.js";

export type { Ipv6Config };

export interface StackConfig {
  /** Network address of the guest subnet. */
  network: number;
  prefixLength: number;
  gatewayIp: number;
  /** The host alias address, or null when host loopback is disabled. */
  hostAliasIp: number | null;
  /**
   * The alias's address whether host loopback is on or off (network+2 by default). With
   * loopback off it is still reserved: connections to it are refused (administratively
   * prohibited), it is never leased and never accepted as a guest's source address.
   * (Issue 19: nulling the alias made .2 an ordinary destination that was dialled on the host.)
   */
  hostAliasAddress: number;
  /** MAC address the gateway (and host alias) answer with. */
  gatewayMac: number;
  /** IP MTU toward guests. */
  mtu: number;
  /** Neighbour (ARP) table bound: entries beyond it evict the least recently refreshed. */
  maxNeighbors: number;
  /** TTL of packets the stack originates (RFC 1122 §3.2.1.7 recommends 64). */
  ttl: number;
  /** IPv6 on the guest link (config6.ts), or null when off. */
  ipv6: Ipv6Config | null;
}

export interface StackConfigInput extends Ipv6ConfigInput {
  subnet?: string; // "192.168.65.0/24"
  gatewayIp?: string;
  hostAliasIp?: string | null; // null or "0.0.0.0" disables
  gatewayMac?: string;
  mtu?: number;
  maxNeighbors?: number;
  ttl?: number;
}

export const DEFAULT_SUBNET = "192.168.65.0/24";
/** Locally administered, unicast (02:…): never collides with a real NIC's vendor prefix. */
export const DEFAULT_GATEWAY_MAC = "02:50:00:00:00:01";

export { prefixMask, inSubnet, broadcastAddress } from "../common/cidr.js";
import { prefixMask, inSubnet, broadcastAddress } from "../common/cidr.js";

function need<T>(v: T | undefined, what: string, raw: unknown): T {
  if (v === undefined) throw new Error(`invalid ${what}: ${JSON.stringify(raw)}`);
  return v;
}

export function resolveConfig(input: StackConfigInput = {}): StackConfig {
  const subnet = input.subnet ?? DEFAULT_SUBNET;
  const m = /^([^/]+)\/(\d{1,2})$/.exec(subnet);
  if (!m) throw new Error(`invalid subnet: ${JSON.stringify(subnet)} (expected A.B.C.D/N)`);
  const base = need(parseIpv4Address(m[1]), "subnet", subnet);
  const prefixLength = Number(m[2]);
  if (prefixLength < 8 || prefixLength > 30) throw new Error(`invalid subnet prefix /${prefixLength}: use /8 to /30`);
  const network = (base & prefixMask(prefixLength)) >>> 0;
  const cfgNet = { network, prefixLength };
  const gatewayIp = need(parseIpv4Address(input.gatewayIp ?? formatIpv4(network + 1)), "gateway address", input.gatewayIp);
  const aliasIn = input.hostAliasIp === undefined ? formatIpv4(network + 2) : input.hostAliasIp;
  const hostAliasIp = aliasIn === null || aliasIn === "0.0.0.0" ? null : need(parseIpv4Address(aliasIn), "host alias address", aliasIn);
  for (const [what, ip] of [["gateway address", gatewayIp], ["host alias address", hostAliasIp]] as const) {
    if (ip !== null && (!inSubnet(cfgNet, ip) || ip === network || ip === broadcastAddress(cfgNet))) {
      throw new Error(`${what} ${formatIpv4(ip)} is not a host address in ${subnet}`);
    }
  }
  if (hostAliasIp === gatewayIp) throw new Error("host alias address equals the gateway address");
  // With the alias off its default address stays reserved (unless the gateway took it).
  const hostAliasAddress = hostAliasIp ?? (network + 2 === gatewayIp ? gatewayIp : (network + 2) >>> 0);
  const gatewayMac = need(parseMac(input.gatewayMac ?? DEFAULT_GATEWAY_MAC), "gateway MAC", input.gatewayMac);
  const mtu = input.mtu ?? 1500;
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65521) throw new Error(`invalid MTU ${mtu}: use 576..65521`);
  const maxNeighbors = input.maxNeighbors ?? 4096;
  if (!Number.isInteger(maxNeighbors) || maxNeighbors < 1) throw new Error(`invalid maxNeighbors ${maxNeighbors}`);
  const ttl = input.ttl ?? 64;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new Error(`invalid ttl ${ttl}`);
  const ipv6 = resolveIpv6Config(input, gatewayMac, hostAliasIp !== null, maxNeighbors);
  return { network, prefixLength, gatewayIp, hostAliasIp, hostAliasAddress, gatewayMac, mtu, maxNeighbors, ttl, ipv6 };
}
