/**
 * The full network a skiff command serves: the gateway stack with its TCP layer, socket
 * translation of guest flows to host sockets (TCP, UDP, ICMP echo) under an address policy,
 * the DHCP server, the DNS server and the file-sharing service (9P on TCP 564) on the gateway. `skiff run` and `skiff vpnkit` build it
 * the same way from their options; they differ only in how guests attach (a TAP device in a
 * namespace, or vmnet connections).
 *
 * Isolation between guests (issue 19, src/stack/guests.ts) is on by default: source validation
 * (each guest sends only from its leased or static address) and each guest's share of every
 * table (`limits`).
 */

import type { Logger } from "pino";
import { NetworkStack } from "../stack/stack.js";
import { TcpLayer } from "../stack/tcp.js";
import { TcpTranslator } from "../socket-translate/tcp.js";
import { AddressPolicy } from "../socket-translate/policy.js";
import { UdpTranslator } from "../socket-translate/udp.js";
import { IcmpTranslator } from "../socket-translate/icmp.js";
import { FdBudget, raiseFileLimit } from "../socket-translate/fd-budget.js";
import { DhcpService } from "../stack/dhcp-service.js";
import { createDnsServer, type DnsServer } from "../stack/dns-service.js";
import type { DhcpLease, StaticLease } from "../dhcp/server.js";
import { ShareService } from "../share/service.js";
import type { ShareSpec } from "../share/registry.js";

export interface NetworkOptions {
  mtu: number;
  /** Guest network (default 192.168.65.0/24). */
  subnet?: string;
  /** Host alias address; "0.0.0.0" disables host loopback. */
  hostIp?: string;
  /** Gateway address (default: the subnet's .1); `skiff slirp4netns` puts it on .3, slirp4netns's DNS address. */
  gatewayIp?: string;
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
  /**
   * Source validation (src/stack/guests.ts): a guest may send only from an address leased or
   * statically assigned to its MAC. Default true; turn it off for guests configured by hand
   * without DHCP (or give them a static lease instead).
   */
  validateSources?: boolean;
  /** Bounds of the shared tables and each guest's share of them (defaults in NetworkLimits). */
  limits?: NetworkLimits;
  /**
   * Descriptors kept out of the host-socket budget for the API, DNS, forwards and new guests
   * (src/socket-translate/fd-budget.ts; default 256). The soft open-file limit is raised to the
   * hard one first.
   */
  fdReserve?: number;
  log: Logger;
}

/**
 * Totals and per-guest shares (issue 19). Defaults: 65 536 TCP flows, 1 024 half-open ones and
 * 256 host dials in flight, 4 096 UDP and 1 024 ICMP flows, each guest a quarter of each, 4
 * DHCP client MACs per guest.
 */
export interface NetworkLimits {
  tcpFlows?: number;
  tcpFlowsPerGuest?: number;
  tcpHalfOpen?: number;
  tcpHalfOpenPerGuest?: number;
  tcpDials?: number;
  tcpDialsPerGuest?: number;
  udpFlows?: number;
  udpFlowsPerGuest?: number;
  icmpFlows?: number;
  icmpFlowsPerGuest?: number;
  leasesPerGuest?: number;
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
  /** Descriptor budget of translation's host sockets (counters for the control API's stats). */
  readonly fds: FdBudget;
  /** 9P2000.L file server on the gateway (src/share/); `shares.registry` adds and removes shares. */
  readonly shares: ShareService;
  private readonly dhcpService: DhcpService;
  private closed = false;
  /** Static leases by MAC. */
  private readonly statics = new Map<number, number>();

  constructor(opts: NetworkOptions) {
    // First: a bad share (not a directory) throws before any socket or timer exists.
    this.shares = new ShareService({ shares: opts.shares });
    this.stack = new NetworkStack({ subnet: opts.subnet, gatewayIp: opts.gatewayIp, mtu: opts.mtu, hostAliasIp: opts.hostIp, busyPollUs: opts.busyPollUs ?? DEFAULT_BUSY_POLL_US });
    const cfg = this.stack.config;
    const l = opts.limits ?? {};
    const limit = raiseFileLimit(opts.log);
    this.fds = new FdBudget({ limit: limit?.soft, reserve: opts.fdReserve, log: opts.log });
    const fds = this.fds;
    this.tcp = new TcpLayer(this.stack, { maxFlows: l.tcpFlows, maxFlowsPerGuest: l.tcpFlowsPerGuest, maxHalfOpen: l.tcpHalfOpen, maxHalfOpenPerGuest: l.tcpHalfOpenPerGuest });
    // The alias's address is kept when host loopback is off, so it is refused rather than dialled.
    const policy = new AddressPolicy({ hostAliasIp: cfg.hostAliasAddress, hostLoopback: cfg.hostAliasIp !== null, deny: opts.deny, guestSubnet: cfg });
    this.tcpTranslator = new TcpTranslator(this.tcp, policy, { log: opts.log, maxDials: l.tcpDials, maxDialsPerGuest: l.tcpDialsPerGuest, fds });
    this.udp = new UdpTranslator(this.stack, policy, { log: opts.log, maxFlows: l.udpFlows, maxFlowsPerGuest: l.udpFlowsPerGuest, fds });
    this.dhcpService = new DhcpService(this.stack, {
      staticLeases: [...(opts.staticLeases ?? [])],
      maxLeasesPerGuest: l.leasesPerGuest,
      validateSources: opts.validateSources ?? true,
    });
    for (const sl of opts.staticLeases ?? []) this.statics.set(sl.mac, sl.ip);
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
    // Last: it opens a socket at once (raw mode), and nothing after it may throw, so a bad
    // option above leaves nothing open that would keep the process alive.
    this.icmp = new IcmpTranslator(this.stack, policy, { log: opts.log, maxFlows: l.icmpFlows, maxFlowsPerGuest: l.icmpFlowsPerGuest, fds });
  }

  get dhcp(): DhcpService {
    return this.dhcpService;
  }

  /** Add static DHCP leases while running (dynamic leases are kept). */
  setStaticLeases(leases: StaticLease[]): void {
    if (this.closed) return;
    for (const l of leases) {
      this.dhcpService.server.addStaticLease(l.mac, l.ip);
      this.statics.set(l.mac, l.ip);
    }
  }

  /**
   * The guests' addresses: DHCP bindings, and every static lease no client has asked for (a
   * guest configured statically with it, as `skiff run`'s is, never does), which never expires.
   */
  leases(): DhcpLease[] {
    const out = this.dhcpService.leases();
    const bound = new Set(out.map((l) => l.mac));
    for (const [mac, ip] of this.statics) if (!bound.has(mac)) out.push({ mac, ip, expiresAt: Infinity, static: true });
    return out;
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
