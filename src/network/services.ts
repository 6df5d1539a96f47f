/**
 * The gateway's services, assembled: the gateway stack with its TCP layer, socket translation
 * of guest flows to host sockets (TCP, UDP, ICMP echo) under an address policy, the DHCP server,
 * the DNS server and the file-sharing service (9P on TCP 564) on the gateway. `Network` (network.ts) builds one and adds attachments,
 * the switch, forwards, capture and the control API around it; tests build one directly.
 *
 * Isolation between guests (src/stack/guests.ts) is on by default: source validation (each
 * guest sends only from its leased or static address) and each guest's share of every table
 * (`limits`).
 */

import { NetworkStack } from "../stack/stack.js";
import { TcpLayer } from "../stack/tcp.js";
import { TcpTranslator } from "../socket-translate/tcp-translator.js";
import { AddressPolicy } from "../socket-translate/policy.js";
import { UdpTranslator } from "../socket-translate/udp-translator.js";
import { Udp6Translator } from "../socket-translate/udp6-translator.js";
import { Icmp6Translator } from "../socket-translate/icmp6-translator.js";
import { IcmpTranslator } from "../socket-translate/icmp-translator.js";
import { FdBudget, raiseFileLimit } from "../socket-translate/fd-budget.js";
import { DhcpService } from "../stack/dhcp-service.js";
import { createDnsServer, type DnsServer } from "../stack/dns-service.js";
import type { DhcpLease, StaticLease } from "../dhcp/server.js";
import { ShareService } from "../share/service.js";
import { StatsTree } from "../common/counters.js";
import { NetworkOptionError, resolveNetworkOptions, type NetworkOptions, type ResolvedNetworkOptions } from "./options.js";

export class NetworkServices {
  readonly stack: NetworkStack;
  readonly tcp: TcpLayer;
  readonly tcpTranslator: TcpTranslator;
  readonly udp: UdpTranslator;
  /** UDP over IPv6 to host sockets (undefined with IPv6 off). */
  readonly udp6: Udp6Translator | undefined;
  readonly icmp: IcmpTranslator;
  /** ICMPv6 echo to the host alias and beyond (undefined with IPv6 off). */
  readonly icmp6: Icmp6Translator | undefined;
  readonly dns: DnsServer;
  /** Descriptor budget of translation's host sockets (counters for the control API's stats). */
  readonly fds: FdBudget;
  /** 9P2000.L file server on the gateway (src/share/); `shares.registry` adds and removes shares. */
  readonly shares: ShareService;
  /** Every service's counters, by name (`Network.stats()`, GET /stats; network/stats.ts adds forwards and capture). */
  readonly stats = new StatsTree();
  private readonly dhcpService: DhcpService;
  private closed = false;
  /** Static leases by MAC. */
  private readonly statics = new Map<number, number>();

  /** The options, checked (`resolveNetworkOptions`); a bad one throws before anything is opened. */
  readonly options: ResolvedNetworkOptions;

  constructor(input: NetworkOptions | ResolvedNetworkOptions = {}) {
    const opts = "config" in input ? input : resolveNetworkOptions(input);
    this.options = opts;
    // First: a bad share (not a directory) throws before any socket or timer exists.
    try {
      this.shares = new ShareService({ shares: opts.shares, events: { maxWatches: opts.limits.shareWatchDirs } });
    } catch (e) {
      throw new NetworkOptionError("shares", (e as Error).message);
    }
    this.stack = new NetworkStack({ subnet: opts.subnet, gatewayIp: opts.gatewayIp, mtu: opts.mtu, hostAliasIp: opts.hostIp, ipv6: opts.ipv6, subnet6: opts.subnet6, busyPollUs: opts.busyPollUs });
    const cfg = this.stack.config;
    const l = opts.limits;
    const limit = raiseFileLimit(opts.log);
    this.fds = new FdBudget({ limit: limit?.soft, reserve: opts.fdReserve, log: opts.log });
    const fds = this.fds;
    this.tcp = new TcpLayer(this.stack, { maxFlows: l.tcpFlows, maxFlowsPerGuest: l.tcpFlowsPerGuest, maxHalfOpen: l.tcpHalfOpen, maxHalfOpenPerGuest: l.tcpHalfOpenPerGuest });
    // The alias's address is kept when host loopback is off, so it is refused rather than dialled.
    const policy = new AddressPolicy({ hostAliasIp: cfg.hostAliasAddress, hostLoopback: cfg.hostAliasIp !== null, deny: opts.deny, guestSubnet: cfg });
    this.tcpTranslator = new TcpTranslator(this.tcp, policy, { log: opts.log, maxDials: l.tcpDials, maxDialsPerGuest: l.tcpDialsPerGuest, fds });
    this.udp = new UdpTranslator(this.stack, policy, { log: opts.log, maxFlows: l.udpFlows, maxFlowsPerGuest: l.udpFlowsPerGuest, fds });
    this.udp6 = this.stack.ipv6 === undefined ? undefined : new Udp6Translator(this.stack, policy, { log: opts.log, maxFlows: l.udpFlows, maxFlowsPerGuest: l.udpFlowsPerGuest, fds });
    try {
      this.dhcpService = new DhcpService(this.stack, {
        staticLeases: [...opts.staticLeases],
        maxLeasesPerGuest: l.leasesPerGuest,
        validateSources: opts.validateSources,
      });
    } catch (e) {
      throw new NetworkOptionError(/static lease/.test((e as Error).message) ? "staticLeases" : "limits.leasesPerGuest", (e as Error).message);
    }
    for (const sl of opts.staticLeases) this.statics.set(sl.mac, sl.ip);
    this.dns = createDnsServer(this.stack, { tcp: this.tcp, log: opts.log });
    this.shares.bindTcp(this.tcp);
    opts.dnsRecords.forEach((rec, i) => {
      try {
        this.dns.records.add(rec.name, rec.ip);
      } catch (e) {
        throw new NetworkOptionError(`dnsRecords[${i}]`, `${JSON.stringify(rec.text)}: ${(e as Error).message}`);
      }
    });
    // Last: it opens a socket at once (raw mode), and nothing after it may throw, so a bad
    // option above leaves nothing open that would keep the process alive.
    this.icmp = new IcmpTranslator(this.stack, policy, { log: opts.log, maxFlows: l.icmpFlows, maxFlowsPerGuest: l.icmpFlowsPerGuest, fds });
    this.icmp6 = this.stack.ipv6 === undefined ? undefined : new Icmp6Translator(this.stack, policy, { log: opts.log, maxFlows: l.icmpFlows, maxFlowsPerGuest: l.icmpFlowsPerGuest, fds });
    this.registerStats();
  }

  private registerStats(): void {
    const { stack, tcp, udp, fds, dns } = this;
    this.stats
      .value("attachments", () => stack.attached.map((p) => ({ id: p.id, name: p.channel.name, ...p.channel.stats.snapshot() })))
      .counters("stack", stack.counters)
      .counters("tcp", tcp.counters, () => ({ flowsOpen: tcp.size, halfOpen: tcp.halfOpenCount }))
      .counters("tcpTranslate", this.tcpTranslator.counters)
      .counters("udpTranslate", udp.counters, () => ({ flowsOpen: udp.size, ...udp.sendBatches }))
      .counters("icmpTranslate", this.icmp.counters)
      .counters("fdBudget", fds.counters, () => ({ size: Number.isFinite(fds.size) ? fds.size : null }))
      .counters("shares", this.shares.counters, () => ({ connectionsOpen: this.shares.connections }))
      .counters("shareEvents", this.shares.events.counters, () => ({ subscribers: this.shares.events.subscribers }))
      .counters("dhcp", this.dhcpService.counters)
      .tree("dns", new StatsTree().counters("service", dns.service.counters).counters("resolver", dns.resolver.counters).counters("upstream", dns.upstream.counters));
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
    this.udp6?.closeAll();
    this.icmp.closeAll();
    this.icmp6?.closeAll();
    this.dhcpService.close();
    this.dns.close();
    this.shares.close();
    this.stack.close();
  }
}
