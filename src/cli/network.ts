/**
 * The full network a skiff command serves: the gateway stack with its TCP layer, socket
 * translation of guest flows to host sockets (TCP, UDP, ICMP echo) under an address policy,
 * the DHCP server, the DNS server and the file-sharing service (9P on TCP 564) on the gateway. `skiff run` and `skiff vpnkit` build it
 * the same way from their options; they differ only in how guests attach (a TAP device in a
 * namespace, or vmnet connections).
 */

import type { Logger } from "pino";
import { NetworkStack } from "../stack/stack.js";
import { TcpLayer } from "../stack/tcp.js";
import { TcpTranslator } from "../socket-translate/tcp.js";
import { AddressPolicy } from "../socket-translate/policy.js";
import { UdpTranslator } from "../socket-translate/udp.js";
import { IcmpTranslator } from "../socket-translate/icmp.js";
import { DhcpService } from "../stack/dhcp-service.js";
import { createDnsServer, type DnsServer } from "../stack/dns-service.js";
import type { StaticLease } from "../dhcp/server.js";
import { ShareService } from "../share/service.js";
import type { ShareSpec } from "../share/registry.js";

export interface NetworkOptions {
  mtu: number;
  /** Guest network (default 192.168.65.0/24). */
  subnet?: string;
  /** Host alias address; "0.0.0.0" disables host loopback. */
  hostIp?: string;
  /** Destination CIDRs to refuse (replaces the default deny list). */
  deny?: string[];
  /** Extra DNS records, "NAME=IP". */
  dnsRecords?: string[];
  /** DHCP static leases known at start (more can be set later with `setStaticLeases`). */
  staticLeases?: StaticLease[];
  /** Host directories served over 9P on the gateway's TCP port 564 (more can be added at run time). */
  shares?: ShareSpec[];
  /** Busy-poll window after each frame, µs (src/stack/busy-poll.ts); default DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  log: Logger;
}

/** Busy polling after traffic, µs: halves a TCP ping-pong's latency for a little CPU while traffic flows. */
export const DEFAULT_BUSY_POLL_US = 100;

export class Network {
  readonly stack: NetworkStack;
  readonly tcp: TcpLayer;
  readonly tcpTranslator: TcpTranslator;
  readonly udp: UdpTranslator;
  readonly icmp: IcmpTranslator;
  readonly dns: DnsServer;
  /** 9P2000.L file server on the gateway (src/share/); `shares.registry` adds and removes shares. */
  readonly shares: ShareService;
  private readonly dhcpService: DhcpService;
  private closed = false;

  constructor(opts: NetworkOptions) {
    // First: a bad share (not a directory) throws before any socket or timer exists.
    this.shares = new ShareService({ shares: opts.shares });
    this.stack = new NetworkStack({ subnet: opts.subnet, mtu: opts.mtu, hostAliasIp: opts.hostIp, busyPollUs: opts.busyPollUs ?? DEFAULT_BUSY_POLL_US });
    const cfg = this.stack.config;
    this.tcp = new TcpLayer(this.stack);
    const policy = new AddressPolicy({ hostAliasIp: cfg.hostAliasIp, deny: opts.deny });
    this.tcpTranslator = new TcpTranslator(this.tcp, policy, { log: opts.log });
    this.udp = new UdpTranslator(this.stack, policy, { log: opts.log });
    this.icmp = new IcmpTranslator(this.stack, policy, { log: opts.log });
    this.dhcpService = new DhcpService(this.stack, { staticLeases: [...(opts.staticLeases ?? [])] });
    this.dns = createDnsServer(this.stack, { tcp: this.tcp, log: opts.log });
    this.shares.bindTcp(this.tcp);
    for (const rec of opts.dnsRecords ?? []) {
      const i = rec.indexOf("=");
      if (i <= 0) throw new Error(`--dns-record "${rec}": expected NAME=IP`);
      try {
        this.dns.records.add(rec.slice(0, i), rec.slice(i + 1));
      } catch (e) {
        throw new Error(`--dns-record "${rec}": ${(e as Error).message}`);
      }
    }
  }

  get dhcp(): DhcpService {
    return this.dhcpService;
  }

  /** Add static DHCP leases while running (dynamic leases are kept). */
  setStaticLeases(leases: StaticLease[]): void {
    if (this.closed) return;
    for (const l of leases) this.dhcpService.server.addStaticLease(l.mac, l.ip);
  }

  /** Close every host socket and unbind the services. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tcp.close();
    this.udp.closeAll();
    this.icmp.closeAll();
    this.dhcpService.close();
    this.dns.close();
    this.shares.close();
    this.stack.close();
  }
}
