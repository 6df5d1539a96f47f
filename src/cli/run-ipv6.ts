/**
 * `skiff run`'s IPv6 set-up of the guest interface (src/stack/config6.ts's plan): the address
 * SLAAC would form (RFC 4862 §5.5.3: the prefix and the modified EUI-64 of the MAC, RFC 4291
 * Appendix A), without Duplicate Address Detection (the namespace's only other node is skiff),
 * and the default route via the gateway's link-local address (RFC 4861 §6.3.4: routers are
 * known by their link-local addresses). With IPv6 off, IPv6 is disabled in the namespace so
 * programs fall back to IPv4 at once.
 */

import { eui64FromMac, formatIpv6, Ipv6Addr } from "../ipv6/addr.js";
import type { StackConfig } from "../stack/config.js";

/** The `ip`/`sysctl` command lines that configure IPv6 on `dev`. */
export function ipv6GuestSetup(cfg: StackConfig, mac: number, dev: string): string[][] {
  const v6 = cfg.ipv6;
  const addr = guestAddress6(cfg, mac);
  if (v6 === null || addr === undefined) return [["sysctl", "-qw", `net.ipv6.conf.${dev}.disable_ipv6=1`]];
  return [
    ["ip", "-6", "addr", "add", `${addr}/64`, "dev", dev, "nodad"],
    ["ip", "-6", "route", "replace", "default", "via", formatIpv6(v6.gatewayLinkLocal), "dev", dev],
  ];
}

/** The guest's IPv6 address (the prefix and the EUI-64 of `mac`), or undefined with IPv6 off. */
export function guestAddress6(cfg: StackConfig, mac: number): string | undefined {
  const v6 = cfg.ipv6;
  if (v6 === null) return undefined;
  const [w2, w3] = eui64FromMac(mac);
  return formatIpv6(new Ipv6Addr(v6.prefix.w0, v6.prefix.w1, w2, w3));
}
