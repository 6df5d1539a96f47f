/**
 * Address policy of socket translation: where a guest's destination address goes on the host.
 *
 *  - the host alias (192.168.65.2 by default) maps to the host's 127.0.0.1, unless host
 *    loopback is disabled, when it is refused;
 *  - destinations in the deny list are refused (default: the link-local range 169.254.0.0/16,
 *    where cloud metadata services live, as gvisor-tap-vsock and VPNKit also block it);
 *  - addresses that are never a unicast host are refused: 0.0.0.0/8, 127.0.0.0/8 (the guest's
 *    own loopback), multicast 224.0.0.0/4, reserved 240.0.0.0/4 and broadcast;
 *  - everything else is dialled as is.
 */
import { formatIpv4 } from "../common/addr.js";
import { parseCidr, cidrContains, type Cidr } from "../common/cidr.js";

export const DEFAULT_DENY = ["169.254.0.0/16"];
const NEVER = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4"].map(parseCidr);

export interface PolicyOptions {
  /** The host alias address (from the stack's config), or null when there is none. */
  hostAliasIp: number | null;
  /** Map the host alias to 127.0.0.1 (default true). */
  hostLoopback?: boolean;
  /** Destination CIDRs to refuse (default DEFAULT_DENY); replaces the default when given. */
  deny?: string[];
}

/** `host` is where to connect, as a string for Node and as `ip` (uint32) for the addon. */
export type Resolution = { ok: true; host: string; ip: number } | { ok: false; reason: "host-loopback-disabled" | "denied" | "not-unicast" };

export class AddressPolicy {
  private readonly deny: Cidr[];
  private readonly hostAlias: number | null;

  constructor(opts: PolicyOptions) {
    this.deny = (opts.deny ?? DEFAULT_DENY).map(parseCidr);
    this.hostAlias = opts.hostLoopback === false ? null : opts.hostAliasIp;
    this.aliasConfigured = opts.hostAliasIp;
  }

  private readonly aliasConfigured: number | null;

  /** Where a connection to `ip` goes. */
  resolve(ip: number): Resolution {
    // The deny list applies to the address the guest used (so denying the host alias works).
    for (const c of this.deny) if (cidrContains(c, ip)) return { ok: false, reason: "denied" };
    if (this.aliasConfigured !== null && ip === this.aliasConfigured) {
      return this.hostAlias === null ? { ok: false, reason: "host-loopback-disabled" } : { ok: true, host: "127.0.0.1", ip: 0x7f000001 };
    }
    if (ip === 0xffff_ffff) return { ok: false, reason: "not-unicast" };
    for (const c of NEVER) if (cidrContains(c, ip)) return { ok: false, reason: "not-unicast" };
    return { ok: true, host: formatIpv4(ip), ip };
  }
}
