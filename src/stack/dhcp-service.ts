/**
 * The DHCP service of the gateway: binds UDP port 67 on a `NetworkStack` and feeds each
 * datagram to a `DhcpServer` (the sans-I/O logic, `./server.ts`), sending its reply from the
 * gateway's port 67 to the client's port 68 (RFC 2131 §4.1) on the port the request came in
 * on, at the destination the server chose (broadcast, or unicast at a MAC given explicitly,
 * so no ARP is involved).
 *
 * The server's subnet, server identifier (the gateway), MTU (option 26) and reserved
 * addresses (the host alias) come from the stack's configuration; everything else can be set
 * through the options.
 *
 * Requests reach the service when the stack accepts them: a DISCOVER with UDP checksum 0 (no
 * checksum, RFC 768) is fine; an IPv4 header checksum must verify in the stack.
 *
 * Isolation (issue 19, src/stack/guests.ts). Each guest may hold leases for at most
 * `maxLeasesPerGuest` MACs (default 4): a message for a new client MAC beyond that is dropped
 * and counted ("guest-lease-cap"), so one guest sending DISCOVERs from random MACs cannot take
 * the pool. MACs with a static lease do not count; the MACs counted stay the port's for as long
 * as it is attached (a new port starts afresh). With `validateSources` the service installs
 * itself as the stack's `SourceBindings`: a guest may use as a source the address bound to a
 * MAC, if the binding is a static lease or was made through that guest's port (a binding whose
 * port went away passes to the next port that uses it: a VM that reconnects).
 *
 * Layering note: this glue imports `src/stack/` (the stack's UDP binding and `sendUdp`); the
 * server logic itself does not.
 */

import type { NetworkStack } from "./stack.js";
import type { Guest, SourceBindings } from "./guests.js";
import { getMac } from "../common/bytes.js";
import { isMulticastMac } from "../common/addr.js";
import type { StackConfig } from "./config.js";
import { sendUdp, type UdpDatagram } from "./gateway-udp.js";
import { DhcpServer, type DhcpLease, type DhcpServerConfig } from "../dhcp/server.js";

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** Server settings not taken from the stack (see `DhcpServerConfig`), and the service's own. */
export type DhcpServiceOptions = Omit<DhcpServerConfig, "network" | "prefixLength" | "serverIp" | "mtu"> & {
  /** Client MACs one guest may hold leases for (default DEFAULT_LEASES_PER_GUEST). */
  maxLeasesPerGuest?: number;
  /** Install source validation on the stack (default false; the assembled network turns it on). */
  validateSources?: boolean;
};

export const DEFAULT_LEASES_PER_GUEST = 4;
/** Offset of chaddr in a BOOTP message (RFC 2131 §2, Figure 1). */
const CHADDR_OFFSET = 28;

/** A server configuration for the stack's network: gateway as server, host alias reserved. */
export function dhcpConfigForStack(cfg: StackConfig, opts: DhcpServiceOptions = {}): DhcpServerConfig {
  // The alias's address is reserved also when host loopback is off (it is refused, not a guest's).
  const reserved = [cfg.hostAliasAddress];
  return {
    ...opts,
    network: cfg.network,
    prefixLength: cfg.prefixLength,
    serverIp: cfg.gatewayIp,
    mtu: cfg.mtu,
    reserved: [...reserved, ...(opts.reserved ?? [])],
  };
}

export class DhcpService implements SourceBindings {
  readonly server: DhcpServer;
  private bound = true;
  private readonly maxLeasesPerGuest: number;

  /** Create the server and bind port 67 (throws if the port is already bound). */
  constructor(
    private readonly stack: NetworkStack,
    opts: DhcpServiceOptions = {},
  ) {
    const { maxLeasesPerGuest, validateSources, ...serverOpts } = opts;
    this.maxLeasesPerGuest = maxLeasesPerGuest ?? DEFAULT_LEASES_PER_GUEST;
    if (!Number.isInteger(this.maxLeasesPerGuest) || this.maxLeasesPerGuest < 1) throw new Error(`dhcp: invalid maxLeasesPerGuest ${this.maxLeasesPerGuest}`);
    this.server = new DhcpServer(dhcpConfigForStack(stack.config, serverOpts));
    stack.bindUdp(DHCP_SERVER_PORT, (_s, d) => this.receive(d));
    if (validateSources === true) stack.sourceBindings = this;
  }

  get generation(): number {
    return this.server.pool.generation;
  }

  /** SourceBindings (guests.ts): `ip` is bound to `mac`, statically or through `guest`'s port. */
  allows(guest: Guest, mac: number, ip: number): boolean {
    const b = this.server.pool.bindingOf(mac);
    if (b === undefined || b.ip !== ip) return false;
    if (b.owner === undefined || b.owner === guest) return true;
    if (!(b.owner as Guest).detached) return false;
    this.server.pool.adopt(mac, guest);
    return true;
  }

  get counters() {
    return this.server.counters;
  }

  /** Active bindings now (for the control API). */
  leases(): DhcpLease[] {
    return this.server.leases(this.stack.now());
  }

  /** Unbind port 67. */
  close(): void {
    if (!this.bound) return;
    this.bound = false;
    this.stack.unbindUdp(DHCP_SERVER_PORT);
  }

  /** The guest's share of leases: a client MAC it already has, a static one, or room for one more. */
  private admit(guest: Guest, chaddr: number): boolean {
    const macs = guest.leaseMacs;
    // An invalid chaddr takes no share (the server drops the message).
    if (macs.has(chaddr) || chaddr === 0 || isMulticastMac(chaddr) || this.server.pool.staticByMac.has(chaddr)) return true;
    if (macs.size >= this.maxLeasesPerGuest) return false;
    macs.add(chaddr);
    return true;
  }

  private receive(d: UdpDatagram): void {
    const server = this.server;
    // Clients send from 68 (RFC 2131 §4.1); 67 would be a relay agent, which is not supported.
    if (d.srcPort !== DHCP_CLIENT_PORT) {
      server.counters.drop("bad-source-port");
      return;
    }
    const guest = this.stack.rxGuest;
    if (guest !== undefined && d.payload.length >= CHADDR_OFFSET + 6 && !this.admit(guest, getMac(d.payload, CHADDR_OFFSET))) {
      server.counters.drop("guest-lease-cap");
      return;
    }
    const reply = server.handle(d.payload, d.srcMac, d.srcIp, this.stack.now(), guest);
    if (reply === undefined) return;
    const gw = this.stack.config.gatewayIp;
    if (!sendUdp(this.stack, d.port, reply.dstMac, gw, DHCP_SERVER_PORT, reply.dstIp, DHCP_CLIENT_PORT, reply.bytes)) {
      server.counters.sendFailed++;
    }
  }
}
