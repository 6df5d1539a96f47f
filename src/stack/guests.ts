/**
 * Guests of the stack, one per attachment port, and what isolates them from each other
 * (issue 19): each guest's share of the shared tables, and source-address validation.
 *
 * What a guest is. A direct attachment (`stack.attach(channel)`: a TAP device, a vmnet VIF, a
 * QEMU socket) is one guest. Behind the switch (`attachSwitch`, `skiff serve`) the stack has a
 * single Port, and each *switch port* is a guest: the port a frame came in on is found from its
 * source MAC, which the switch has just learned on that port (src/stack/switched.ts). Frames
 * the stack sends carry the guest of the flow they belong to.
 *
 * Shares. Every table a guest can fill has a total bound and a per-guest share, each
 * configurable where the table is: TCP flows and half-open flows (TcpLayer), host dials in
 * flight (TcpTranslator), UDP and ICMP flows
 * (socket translation), DHCP leases (DhcpService). The defaults give a guest a quarter of a
 * table (and 4 DHCP client MACs), so one guest flooding SYNs, UDP flows or DHCP MACs leaves
 * room for the others. The counts live here, on the guest; the tables enforce them:
 *  - TCP flows cannot be taken back, so a share is a hard cap: a SYN beyond it gets RST;
 *  - UDP and ICMP flows are soft state that idles out, so a guest may use the whole table while
 *    it has room (a lone guest keeps the full capacity); when it is full, a guest at or over
 *    its share loses its own least recently used flow, and any other guest's new flow takes
 *    the least recently used flow of a guest over its share (`evictForGuest`). A guest within
 *    its share is never evicted by another's flood.
 *
 * Source validation (anti-spoofing, like a switch's port security). When a `SourceBindings`
 * is installed (the network's DHCP service does it), an IPv4 packet or ARP sender address from
 * a guest is accepted only when the address is bound to the frame's source MAC for that guest
 * (`SourceBindings.allows`): a DHCP lease obtained through that guest's port, or a static lease
 * (skiff run's configured address, a vmnet handshake's address). Always refused as a source:
 * the gateway's address and the host alias's (also when host loopback is off). 0.0.0.0 is
 * accepted only for DHCP (UDP 68 → 67), and DHCP client messages are accepted from any
 * source (a client renewing after a restart of skiff, whose leases are in memory only, must
 * reach the server to get its binding back). Everything else is dropped and counted by reason
 * (stack counters `src-*`). ARP: a packet with the gateway's or the alias's address as sender
 * is dropped ("arp-spoofed-sender"); one with another sender address that is not the guest's
 * own is answered, since the reply only tells the gateway's MAC to the asking MAC, but never
 * learned, so it cannot poison the neighbour table (`arpSendersNotLearned`); a guest with a
 * hand-set address still finds the gateway, and its IPv4 packets are what validation drops. The
 * last accepted (MAC, address) of each guest is cached, so the check costs a few compares per
 * packet while the bindings do not change.
 *
 * IPv6 has no bindings yet; a guest's Router Advertisements, Redirects and DHCPv6 server
 * messages are refused between guests (`routerOnlyIpv6`), so none can become another's router.
 *
 * Policy decisions (issue 19 asked for safe defaults): validation is on in the assembled network
 * (`createNetwork`, src/network/network.ts; its option `validateSources: false` turns it off) for guests configured
 * by hand without DHCP, who should rather get a static lease. A binding made through a port
 * belongs to that port while it is attached (another port forging both the MAC and the address
 * is refused), and passes to the next port that uses it once the first is gone (a VM that
 * reconnects); static leases belong to no port (RootlessKit opens two vmnet connections for one
 * VIF). MAC ownership in the switch: a MAC learned behind one attached port moves to another
 * only with an IPv4 packet or ARP sender bound to it for the new port (`claimsSource`, the
 * switch's `sourceClaim`), so a guest forging another's MAC cannot take its frames; a second
 * connection of the same VM with a static lease still can. Leases live in memory
 * only: after skiff restarts, a DHCP guest's traffic is dropped until it renews (T1, half the
 * lease time), unless it has a static lease.
 */

import { getU16 } from "../common/bytes.js";
import { isWireError } from "../common/wire-error.js";
import { walkExtensionHeaders } from "../ipv6/ext.js";
import { Icmpv6Type } from "../ipv6/icmpv6.js";
import { NextHeader } from "../ipv6/ipv6.js";

/** DHCPv6 server and client ports (RFC 8415 §7.2). */
const DHCPV6_SERVER_PORT = 547;
const DHCPV6_CLIENT_PORT = 546;

/**
 * RA guard for the switch's ingress filter (RFC 6105, with RFC 7113 §5 for extension headers):
 * true when an IPv6 packet from a guest is one only a router or DHCPv6 server sends — a Router
 * Advertisement, a Redirect, or a DHCPv6 server message (UDP 547 → 546) — or when its header
 * chain cannot be walked to the upper layer (it could hide one). Attack: IPv6 is not bound like
 * IPv4, so a guest could advertise itself as the other guests' default router (or hand them its
 * DNS server) and take their IPv6 traffic. A later fragment carries no upper-layer header, and
 * receivers ignore fragmented neighbour discovery (RFC 6980), so it passes.
 */
export function routerOnlyIpv6(packet: Uint8Array): boolean {
  const chain = walkExtensionHeaders(packet);
  if (isWireError(chain)) return true;
  if (chain.fragmentAt >= 0 && chain.fragmentOffset !== 0) return false;
  const at = chain.offset;
  if (chain.protocol === NextHeader.ICMPv6) {
    if (at + 1 > chain.end) return true;
    return packet[at] === Icmpv6Type.RouterAdvertisement || packet[at] === Icmpv6Type.Redirect;
  }
  if (chain.protocol === NextHeader.UDP) {
    if (at + 4 > chain.end) return true;
    return getU16(packet, at) === DHCPV6_SERVER_PORT && getU16(packet, at + 2) === DHCPV6_CLIENT_PORT;
  }
  return false;
}

/** One guest (attachment port): its usage of each shared table. */
export class Guest {
  tcpFlows = 0;
  tcpHalfOpen = 0;
  /** Host dials in flight for this guest's SYNs (socket translation). */
  tcpDials = 0;
  udpFlows = 0;
  icmpFlows = 0;
  /** MACs this guest obtained DHCP leases for (bounded by the DHCP service's share). */
  readonly leaseMacs = new Set<number>();
  /** The port went away; its leases may be taken over by another port. */
  detached = false;
  /** Cache of the last source accepted (see the file comment). */
  okMac = -1;
  okIp = -1;
  okGeneration = -1;

  constructor(
    readonly id: number,
    readonly name: string,
  ) {}
}

/** Who may use which source address: installed on the stack to turn validation on. */
export interface SourceBindings {
  /** Changes whenever a binding changes (invalidates the per-guest cache). */
  readonly generation: number;
  /** True when `ip` is bound to `mac` and may be used by `guest`. */
  allows(guest: Guest, mac: number, ip: number): boolean;
}

/** A guest's share of a table of `total` entries when none is configured: a quarter (at least 1). */
export function defaultShare(total: number): number {
  return Math.max(1, Math.floor(total / 4));
}

/** Check a per-guest share option (a positive integer); returns it or the default. */
export function shareOption(value: number | undefined, total: number, what: string): number {
  const v = value ?? defaultShare(total);
  if (!Number.isInteger(v) || v < 1) throw new Error(`invalid ${what} ${v}: use a positive integer`);
  return v;
}

/** What `evictForGuest` needs of a flow table (IdleTable). */
interface GuestFlowTable<F> {
  readonly full: boolean;
  evictOldest(mine: (entry: F) => boolean): boolean;
}

/**
 * Make room in a full `table` for a new flow of `guest` (the UDP/ICMP rule of the file comment).
 * `count` reads a guest's flows in this table. Returns true when a flow of a guest at or over
 * its share was evicted; false when the table had room or only the plain LRU rule applies.
 */
export function evictForGuest<F extends { guest: Guest | undefined }>(
  table: GuestFlowTable<F>,
  guest: Guest | undefined,
  share: number,
  count: (g: Guest) => number,
): boolean {
  if (!table.full) return false;
  if (guest !== undefined && count(guest) >= share) return table.evictOldest((f) => f.guest === guest);
  return table.evictOldest((f) => f.guest !== undefined && f.guest !== guest && count(f.guest) > share);
}
