/**
 * Neighbor Discovery at the gateway (RFC 4861) and router advertisements for stateless
 * address autoconfiguration (RFC 4862), with the DNS options of RFC 8106.
 *
 *  - Neighbor Solicitation (§7.2.3, §7.2.4) for one of the gateway's addresses (its ULA, its
 *    link-local, the host alias when on): a solicited Neighbor Advertisement with the router
 *    flag and the gateway's MAC. A solicitation from the unspecified address is Duplicate
 *    Address Detection (RFC 4862 §5.4.3): for an address the gateway owns it is defended with an
 *    advertisement to all-nodes; for any other address (a guest's tentative one) it is never
 *    answered, so no guest is ever told its address is taken ("ndp-dad-foreign").
 *  - Neighbor Advertisements and the Source Link-Layer Address of solicitations teach the
 *    neighbour cache (neighbors6.ts) a guest's MAC; one claiming a gateway address is dropped.
 *  - Router Solicitation (§6.2.6): a Router Advertisement to the soliciting guest (unicast when
 *    it has an address, else to all-nodes), at most one per port per `MIN_RA_GAP_MS`;
 *    unsolicited ones to all-nodes on every port every `raIntervalS` (uniformly 3/4..1 of it,
 *    §6.2.4) from the stack's one timer.
 *  - The advertisement: default router (lifetime 3 × interval, at most 9000 s, §6.2.1), the
 *    O flag (stateless DHCPv6 for DNS, RFC 8415 §6.1; M clear: no stateful addresses), the
 *    Source Link-Layer Address, the MTU (§4.6.4), the prefix with L and A (on-link, SLAAC;
 *    §4.6.2), RDNSS with the gateway's ULA and DNSSL "internal" (RFC 8106 §5.1, §5.2; lifetime
 *    3 × interval, §5.1 recommends at least 3 × MaxRtrAdvInterval).
 * Redirects and Router Advertisements from guests are never acted on (counted drops); the
 * switch's RA guard keeps them from other guests too.
 */

import { isWireError } from "../common/wire-error.js";
import {
  IPV6_ALL_NODES,
  Ipv6Addr,
  isLinkLocal6,
  isUnspecified6,
  multicastMac6,
  type Ipv6Addr as Addr,
} from "../ipv6/addr.js";
import { emitNdp, ndpLen, NDP_HOP_LIMIT, parseNdp, RaFlag, type NdpRepr } from "../ipv6/ndp.js";
import { PrefixFlag, type NdpOption } from "../ipv6/ndp-options.js";
import { NextHeader } from "../ipv6/ipv6.js";
import { ownTimers, type TimerTarget, type Timers } from "./timers.js";
import { inPrefix64, type Ipv6Config } from "./config6.js";
import type { StackConfig } from "./config.js";
import type { StackCounters } from "./counters.js";
import type { NeighborCache6 } from "./neighbors6.js";
import type { Port } from "./port.js";
import type { SharedTimers } from "./timers.js";

/** What Neighbor Discovery needs of the IPv6 gateway (gateway-ipv6.ts implements it; no import cycle). */
export interface NdpHost {
  readonly cfg: Ipv6Config;
  readonly counters: StackCounters;
  readonly neighbors: NeighborCache6<Port>;
  readonly stack: { readonly config: StackConfig; readonly now: () => number; readonly timers: SharedTimers; readonly attached: readonly Port[] };
  readonly txBuffer: Uint8Array;
  isGatewayAddress(a: Addr): boolean;
  isReserved(a: Addr): boolean;
  begin(port: Port, dstMac: number, src: Addr, dst: Addr, nextHeader: number, l4Len: number, hopLimit: number): number;
  finish(l4Len: number): boolean;
}

/** Smallest gap between two solicited advertisements on one port (RFC 4861 §10 MIN_DELAY_BETWEEN_RAS is 3 s for multicast ones). */
export const MIN_RA_GAP_MS = 500;
/** The search domain advertised (the built-in names are host.internal, gateway.internal). */
export const DNS_SEARCH_DOMAIN = "internal";

export class NdpService implements TimerTarget {
  timerAt = Infinity;
  timerSeq = 0;
  timerQueuedAt = Infinity;
  private readonly timers: Timers<NdpService>;
  private readonly lastRa = new WeakMap<Port, number>();
  private readonly ra: NdpRepr;
  private closed = false;

  constructor(private readonly gw: NdpHost) {
    const cfg = gw.cfg;
    const lifetime = Math.min(9000, 3 * cfg.raIntervalS);
    const options: NdpOption[] = [
      { type: "source-lla", mac: gw.stack.config.gatewayMac },
      { type: "mtu", mtu: gw.stack.config.mtu },
      { type: "prefix", prefixLength: 64, flags: PrefixFlag.OnLink | PrefixFlag.Autonomous, validLifetime: 86400, preferredLifetime: 14400, prefix: cfg.prefix },
      { type: "rdnss", lifetime, servers: [cfg.gateway] },
      { type: "dnssl", lifetime, domains: [DNS_SEARCH_DOMAIN] },
    ];
    this.ra = { kind: "ra", curHopLimit: 64, flags: RaFlag.Other, routerLifetime: lifetime, reachableTime: 0, retransTimer: 0, options };
    this.timers = ownTimers<NdpService>(gw.stack.timers, () => this.periodic());
    this.scheduleNext();
  }

  close(): void {
    this.closed = true;
    this.timers.cancel(this);
  }

  private scheduleNext(): void {
    if (this.closed) return;
    const ms = this.gw.cfg.raIntervalS * 1000 * (0.75 + 0.25 * Math.random());
    this.timers.schedule(this, this.gw.stack.now() + ms);
  }

  /** Unsolicited advertisement to all-nodes on every attached port (RFC 4861 §6.2.4). */
  private periodic(): void {
    this.advertiseAll();
    this.scheduleNext();
  }

  /** Send a router advertisement to all-nodes on every attached port now. */
  advertiseAll(): void {
    for (const port of this.gw.stack.attached) this.sendRa(port, multicastMac6(IPV6_ALL_NODES), IPV6_ALL_NODES);
  }

  /** One ND message (the ICMPv6 bytes, borrowed) from a guest. */
  receive(port: Port, srcMac: number, src: Addr, dst: Addr, hopLimit: number, msg: Uint8Array): void {
    const gw = this.gw;
    const c = gw.counters;
    const nd = parseNdp(msg, src, dst, hopLimit);
    if (isWireError(nd)) return c.drop("ndp-malformed");
    switch (nd.kind) {
      case "ns":
        return this.onSolicitation(port, srcMac, src, nd.target, nd.options);
      case "na": {
        if (gw.isReserved(nd.target)) return c.drop("ndp-not-for-us");
        if (!(isLinkLocal6(nd.target) || inPrefix64(gw.cfg, nd.target))) return c.drop("ndp-not-for-us");
        gw.neighbors.learn(nd.target, lla(nd.options, "target-lla") ?? srcMac, port);
        return;
      }
      case "rs": {
        c.routerSolicitations++;
        const now = gw.stack.now();
        const last = this.lastRa.get(port);
        if (last !== undefined && now - last < MIN_RA_GAP_MS) return c.drop("ndp-rs-rate-limited");
        if (isUnspecified6(src)) this.sendRa(port, multicastMac6(IPV6_ALL_NODES), IPV6_ALL_NODES);
        else this.sendRa(port, lla(nd.options, "source-lla") ?? srcMac, src);
        return;
      }
      default:
        // RAs and Redirects from guests: the gateway is the only router here.
        return c.drop("ndp-not-for-us");
    }
  }

  private onSolicitation(port: Port, srcMac: number, src: Addr, target: Addr, options: NdpOption[]): void {
    const gw = this.gw;
    const c = gw.counters;
    c.ndpSolicitations++;
    const dad = isUnspecified6(src);
    if (!gw.isGatewayAddress(target)) return c.drop(dad ? "ndp-dad-foreign" : "ndp-not-for-us");
    if (dad) {
      // RFC 4862 §5.4.3: the owner of the address answers a probe to all-nodes (not solicited).
      c.ndpDadDefended++;
      this.sendNa(port, multicastMac6(IPV6_ALL_NODES), IPV6_ALL_NODES, target, false);
      return;
    }
    const mac = lla(options, "source-lla") ?? srcMac;
    // RFC 4861 §7.2.3: a solicitation with a source address creates or updates its entry.
    gw.neighbors.learn(src, mac, port);
    this.sendNa(port, mac, src, target, true);
  }

  /** Neighbor Advertisement for `target` (router, override; solicited as told), with our MAC. */
  private sendNa(port: Port, dstMac: number, dst: Addr, target: Addr, solicited: boolean): void {
    const gw = this.gw;
    const na: NdpRepr = { kind: "na", router: true, solicited, override: true, target, options: [{ type: "target-lla", mac: gw.stack.config.gatewayMac }] };
    const len = ndpLen(na);
    // The source is the target itself when it is one of ours (RFC 4861 §7.2.4 lets any of our addresses do).
    const off = gw.begin(port, dstMac, target, dst, NextHeader.ICMPv6, len, NDP_HOP_LIMIT);
    if (off < 0) return;
    emitNdp(na, gw.txBuffer, off, target, dst);
    gw.counters.ndpAdvertisementsSent++;
    gw.finish(len);
  }

  /** A router advertisement from the gateway's link-local address (RFC 4861 §6.1.2 requires it). */
  sendRa(port: Port, dstMac: number, dst: Addr): void {
    const gw = this.gw;
    const len = ndpLen(this.ra);
    const src = gw.cfg.gatewayLinkLocal;
    const off = gw.begin(port, dstMac, src, dst, NextHeader.ICMPv6, len, NDP_HOP_LIMIT);
    if (off < 0) return;
    emitNdp(this.ra, gw.txBuffer, off, src, dst);
    this.lastRa.set(port, gw.stack.now());
    gw.counters.routerAdvertisements++;
    gw.finish(len);
  }

  /**
   * Neighbor Solicitation for a guest's address (RFC 4861 §7.2.2), to its solicited-node group
   * on every port: the answer is learned by `receive` (port forwarding to a guest not heard yet).
   */
  solicit(target: Addr): void {
    const gw = this.gw;
    const dst = new Ipv6Addr(0xff020000, 0, 1, (0xff000000 | (target.w3 & 0xffffff)) >>> 0);
    const src = isLinkLocal6(target) ? gw.cfg.gatewayLinkLocal : gw.cfg.gateway;
    const ns: NdpRepr = { kind: "ns", target, options: [{ type: "source-lla", mac: gw.stack.config.gatewayMac }] };
    const len = ndpLen(ns);
    for (const port of gw.stack.attached) {
      const off = gw.begin(port, multicastMac6(dst), src, dst, NextHeader.ICMPv6, len, NDP_HOP_LIMIT);
      if (off < 0) return;
      emitNdp(ns, gw.txBuffer, off, src, dst);
      gw.finish(len);
    }
  }
}

/** The MAC of a Source/Target Link-Layer Address option, if any. */
function lla(options: NdpOption[], type: "source-lla" | "target-lla"): number | undefined {
  for (const o of options) if (o.type === type) return o.mac;
  return undefined;
}
