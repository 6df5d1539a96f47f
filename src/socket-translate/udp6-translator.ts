/**
 * UDP socket translation over IPv6: the IPv6 twin of udp-translator.ts (VPNKit's model: one host
 * datagram socket per guest source address and port; a datagram from any peer on that socket
 * goes back to the guest, the host's ::1 shown as the host alias's IPv6 address).
 *
 * Host sockets are Node `udp6` dgram sockets (the addon's epoll set opens IPv4 sockets only).
 * Flows are keyed by a 32-bit mix of the guest's address hash and port (no string building);
 * the entry's address is compared, and a colliding new flow replaces the old one (counted as an
 * eviction). Bounds as for IPv4: idle expiry (`idleMs`), `maxFlows` with the per-guest share of
 * src/stack/guests.ts, the descriptor budget. Destinations the address policy refuses
 * (`AddressPolicy.resolve6`) get ICMPv6 "administratively prohibited" (RFC 4443 §3.1 code 1).
 */

import type { NetworkStack } from "../stack/stack.js";
import type { Ipv6Gateway, Udp6Datagram } from "../stack/gateway-ipv6.js";
import { classifyDestination6, formatIpv6, hashIpv6, ipv6Equal, parseIpv6Address } from "../stack/config6.js";
import { countToGuest, UdpFlow, UdpFlowTranslator, type HostDatagram, type UdpTranslateOptions } from "./udp-flows.js";
import type { AddressPolicy } from "./policy.js";

/** ICMPv6 Destination Unreachable, administratively prohibited (RFC 4443 §3.1). */
const ADMIN_PROHIBITED = 1;

export class Udp6Translator extends UdpFlowTranslator<Udp6Datagram> {
  private readonly gw: Ipv6Gateway;

  constructor(
    stack: NetworkStack,
    private readonly policy: AddressPolicy,
    opts: UdpTranslateOptions = {},
  ) {
    super(stack, "udp6", opts);
    if (stack.ipv6 === undefined) throw new Error("Udp6Translator: the stack has IPv6 off");
    this.gw = stack.ipv6;
    this.gw.udpForwarder = (_gw, d) => this.fromGuest(d);
  }

  private fromGuest(d: Udp6Datagram): void {
    const c = this.counters;
    const target = this.policy.resolve6(classifyDestination6(this.gw.cfg, d.dst));
    if (!target.ok) {
      c.denied++;
      this.gw.sendUnreachable(d, ADMIN_PROHIBITED);
      return;
    }
    const key = (hashIpv6(d.src) ^ Math.imul(d.srcPort + 1, 0x9e3779b1)) >>> 0;
    let found = this.flows.get(key);
    if (found !== undefined && (found.guestPort !== d.srcPort || !ipv6Equal(found.guest6!, d.src))) {
      // A hash collision: the newer flow takes the slot.
      c.flowsEvicted++;
      this.close(found);
      found = undefined;
    }
    const flow = this.flowFor(found, key, d);
    if (flow === undefined) return;
    flow.sock.send(d.payload, target.host, 0, d.dstPort);
  }

  protected newFlow(key: number, d: Udp6Datagram, now: number): UdpFlow {
    // The guest's address came from the parse as an immutable object of its own: kept as is.
    return new UdpFlow(key, d.port, d.srcMac, 0, d.src, d.srcPort, now);
  }

  protected hostSocket(flow: UdpFlow): HostDatagram {
    return this.dgramSocket(flow, "udp6", (msg, address, port) => this.toGuest(flow, msg, address, port));
  }

  private toGuest(flow: UdpFlow, msg: Uint8Array, address: string, port: number): void {
    if (!this.live(flow)) return;
    let src = parseIpv6Address(address.replace(/%.*$/, ""));
    if (src === undefined) return;
    // Replies from the host's loopback appear to come from the host alias.
    if (src.w0 === 0 && src.w1 === 0 && src.w2 === 0 && src.w3 === 1) {
      if (this.gw.cfg.hostAlias === null) return;
      src = this.gw.cfg.hostAlias;
    }
    countToGuest(this.counters, this.gw.sendUdp(flow.port, flow.guestMac, src, port, flow.guest6!, flow.guestPort, msg), msg.length);
  }

  list(): Array<{ guest: string; idleMs: number }> {
    const now = this.stack.now();
    return [...this.flows.values()].map((f) => ({ guest: `[${formatIpv6(f.guest6!)}]:${f.guestPort}`, idleMs: now - f.lastActive }));
  }
}
