/**
 * Address policy of socket translation: where a guest's destination address goes on the host.
 *
 *  - destinations in the deny list are refused (default: the link-local range 169.254.0.0/16,
 *    where cloud metadata services live, as gvisor-tap-vsock and VPNKit also block it);
 *  - the host alias (192.168.65.2 by default) maps to the host's 127.0.0.1, unless host
 *    loopback is disabled, when it is refused ("host-loopback-disabled");
 *  - every other address of the guest subnet (network, gateway, guests, broadcast) is refused
 *    ("guest-subnet"): those addresses live on the guests' link, and dialling one on the host
 *    side would send it wherever the host routes it (issue 19: a SYN to .2 with the alias off
 *    left the machine through the host's default route);
 *  - addresses that are never a unicast host are refused: 0.0.0.0/8, 127.0.0.0/8 (the guest's
 *    own loopback), multicast 224.0.0.0/4, reserved 240.0.0.0/4 and broadcast;
 *  - everything else is dialled as is.
 *
 * IPv6 destinations (`resolve6`, classified by src/stack/config6.ts `classifyDestination6`): the
 * host alias's IPv6 address maps to the host's ::1 under the same switch as the IPv4 alias; the
 * guest prefix, link-local, multicast, loopback and IPv4-mapped addresses are refused; every other
 * address is dialled as is (the deny list holds IPv4 CIDRs and does not apply).
 *
 * Callers answer a refusal with ICMP "communication administratively prohibited" (RFC 1812
 * §5.2.7.1, code 13) for TCP SYNs, UDP datagrams and echo requests.
 */
import { formatIpv4 } from "../common/addr.js";
import { parseCidr, cidrContains, inSubnet, type Cidr } from "../common/cidr.js";
import type { Destination6 } from "../stack/config6.js";

export const DEFAULT_DENY = ["169.254.0.0/16"];
const NEVER = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"].map(parseCidr);

export interface PolicyOptions {
  /** The host alias address (the stack config's `hostAliasAddress`: kept when loopback is off), or null when there is none. */
  hostAliasIp: number | null;
  /** Map the host alias to 127.0.0.1 (default true); when false the alias is refused. */
  hostLoopback?: boolean;
  /** Destination CIDRs to refuse (default DEFAULT_DENY); replaces the default when given. */
  deny?: string[];
  /** The guest subnet: none of its addresses is ever dialled on the host (the alias excepted when loopback is on). */
  guestSubnet?: { network: number; prefixLength: number };
}

export type RefusalReason = "host-loopback-disabled" | "denied" | "not-unicast" | "guest-subnet";

/** `host` is where to connect, as a string for Node and as `ip` (uint32) for the addon. */
export type Resolution = { ok: true; host: string; ip: number } | { ok: false; reason: RefusalReason };

export class AddressPolicy {
  private readonly deny: Cidr[];
  private readonly aliasIp: number | null;
  private readonly loopback: boolean;
  private readonly subnet: { network: number; prefixLength: number } | undefined;

  constructor(opts: PolicyOptions) {
    this.deny = (opts.deny ?? DEFAULT_DENY).map(parseCidr);
    this.aliasIp = opts.hostAliasIp;
    this.loopback = opts.hostLoopback !== false;
    this.subnet = opts.guestSubnet === undefined ? undefined : { network: opts.guestSubnet.network, prefixLength: opts.guestSubnet.prefixLength };
  }

  /** Where a connection to `ip` goes. */
  resolve(ip: number): Resolution {
    // The deny list applies to the address the guest used (so denying the host alias works).
    for (const c of this.deny) if (cidrContains(c, ip)) return { ok: false, reason: "denied" };
    if (this.aliasIp !== null && ip === this.aliasIp) {
      return this.loopback ? { ok: true, host: "127.0.0.1", ip: 0x7f000001 } : { ok: false, reason: "host-loopback-disabled" };
    }
    if (this.subnet !== undefined && inSubnet(this.subnet, ip)) return { ok: false, reason: "guest-subnet" };
    if (ip === 0xffff_ffff) return { ok: false, reason: "not-unicast" };
    for (const c of NEVER) if (cidrContains(c, ip)) return { ok: false, reason: "not-unicast" };
    return { ok: true, host: formatIpv4(ip), ip };
  }

  /** Where a connection to a classified IPv6 destination goes (`ip` is 0: dial by `host`). */
  resolve6(d: Destination6): Resolution {
    if (d.kind === "alias") return this.loopback && this.aliasIp !== null ? { ok: true, host: "::1", ip: 0 } : { ok: false, reason: "host-loopback-disabled" };
    if (d.kind === "refused") return { ok: false, reason: d.reason };
    return { ok: true, host: d.host, ip: 0 };
  }
}
