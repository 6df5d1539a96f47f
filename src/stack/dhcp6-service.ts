/**
 * Stateless DHCPv6 at the gateway (RFC 8415 §6.1 "DHCP for Non-Address Configuration"): the
 * router advertisements carry the O flag (ndp-service.ts), and a guest's INFORMATION-REQUEST to
 * ff02::1:2 (or the gateway) on UDP 547 gets a REPLY (§18.3.6) with the gateway's Server
 * Identifier (a DUID-LL of its MAC, §11.4), the client's own Client Identifier, the DNS server
 * (the gateway's ULA, RFC 3646 §3), the domain search list ("internal", RFC 3646 §4) and an
 * Information Refresh Time (§21.23). Messages of stateful DHCPv6 (SOLICIT, REQUEST, …) and
 * INFORMATION-REQUESTs RFC 8415 §16.12 says to discard are dropped, counted ("dhcpv6-refused").
 * The reply goes from the gateway's link-local address to the client's address and port 546.
 */

import { isWireError } from "../common/wire-error.js";
import {
  DHCPV6_CLIENT_PORT,
  DHCPV6_SERVER_PORT,
  Dhcpv6MsgType,
  dhcpv6Len,
  duidLl,
  emitDhcpv6,
  informationRequestRefusal,
  parseDhcpv6,
  type Dhcpv6Message,
  type Dhcpv6Option,
} from "../ipv6/dhcpv6.js";
import { DNS_SEARCH_DOMAIN } from "./ndp-service.js";
import type { Ipv6Gateway, Udp6Datagram } from "./gateway-ipv6.js";

/** Seconds before a client asks again (RFC 8415 §21.23; the default IRT_DEFAULT is 86400). */
const REFRESH_S = 86400;

/** Serve stateless DHCPv6 on `gw` (UDP 547). */
export function bindDhcpv6(gw: Ipv6Gateway): void {
  const serverDuid = duidLl(gw.stack.config.gatewayMac);
  const buf = new Uint8Array(1500);
  gw.bindUdp(DHCPV6_SERVER_PORT, (_gw, d) => answer(gw, d, serverDuid, buf));
}

function answer(gw: Ipv6Gateway, d: Udp6Datagram, serverDuid: Uint8Array, buf: Uint8Array): void {
  const c = gw.counters;
  const m = parseDhcpv6(d.payload);
  if (isWireError(m)) return c.drop("dhcpv6-malformed");
  if (informationRequestRefusal(m, serverDuid) !== undefined) return c.drop("dhcpv6-refused");
  const options: Dhcpv6Option[] = [{ type: "server-id", duid: serverDuid }];
  // RFC 8415 §18.3.6: the Client Identifier is echoed when the request had one.
  for (const o of m.options) if (o.type === "client-id") options.push({ type: "client-id", duid: o.duid });
  options.push({ type: "dns-servers", servers: [gw.cfg.gateway] });
  options.push({ type: "domain-list", domains: [DNS_SEARCH_DOMAIN] });
  options.push({ type: "information-refresh-time", seconds: REFRESH_S });
  const reply: Dhcpv6Message = { msgType: Dhcpv6MsgType.Reply, transactionId: m.transactionId, options };
  const len = emitDhcpv6(reply, buf, 0);
  if (len !== dhcpv6Len(reply)) return;
  if (gw.sendUdp(d.port, d.srcMac, gw.cfg.gatewayLinkLocal, DHCPV6_SERVER_PORT, d.src, d.srcPort === DHCPV6_CLIENT_PORT ? DHCPV6_CLIENT_PORT : d.srcPort, buf.subarray(0, len))) {
    c.dhcpv6Replies++;
  }
}
