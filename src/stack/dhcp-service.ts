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
 * Layering note: this glue imports `src/stack/` (the stack's UDP binding and `sendUdp`); the
 * server logic itself does not.
 */

import type { NetworkStack } from "./stack.js";
import type { StackConfig } from "./config.js";
import { sendUdp, type UdpDatagram } from "./udp.js";
import { DhcpServer, type DhcpLease, type DhcpServerConfig } from "../dhcp/server.js";

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

/** Server settings not taken from the stack (see `DhcpServerConfig`). */
export type DhcpServiceOptions = Omit<DhcpServerConfig, "network" | "prefixLength" | "serverIp" | "mtu">;

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

export class DhcpService {
  readonly server: DhcpServer;
  private bound = true;

  /** Create the server and bind port 67 (throws if the port is already bound). */
  constructor(
    private readonly stack: NetworkStack,
    opts: DhcpServiceOptions = {},
  ) {
    this.server = new DhcpServer(dhcpConfigForStack(stack.config, opts));
    stack.bindUdp(DHCP_SERVER_PORT, (_s, d) => this.receive(d));
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

  private receive(d: UdpDatagram): void {
    const server = this.server;
    // Clients send from 68 (RFC 2131 §4.1); 67 would be a relay agent, which is not supported.
    if (d.srcPort !== DHCP_CLIENT_PORT) {
      server.counters.drop("bad-source-port");
      return;
    }
    const reply = server.handle(d.payload, d.srcMac, d.srcIp, this.stack.now());
    if (reply === undefined) return;
    const gw = this.stack.config.gatewayIp;
    if (!sendUdp(this.stack, d.port, reply.dstMac, gw, DHCP_SERVER_PORT, reply.dstIp, DHCP_CLIENT_PORT, reply.bytes)) {
      server.counters.sendFailed++;
    }
  }
}
