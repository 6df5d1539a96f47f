/**
 * DHCP server logic (RFC 2131; options of RFC 2132 and RFC 3397), sans-I/O: one client
 * message in, at most one reply out, with the time passed in. No sockets, no timers; the glue
 * that binds UDP port 67 on the stack is `src/stack/dhcp-service.ts`. The address pool and the
 * lease records are `./leases.ts`; this file is the message handling.
 *
 * Read first: RFC 2131 §3.1 (the exchange), §4.1 (where replies go), §4.3.1-§4.3.5 (what the
 * server does with each message), Table 3 (fields and options of a reply); RFC 2132 §9.
 *
 * Addresses. Leases come from a pool (default network+3 … broadcast-1: .1 is the gateway and
 * .2 the host alias in the VPNKit plan, ARCHITECTURE.md). A client is identified by its hardware
 * address (chaddr, htype 1 / hlen 6 only); option 61 (client identifier) is not used as the
 * key. A new client's address is picked from its MAC: FNV-1a (32-bit) over the 6 MAC bytes,
 * modulo the pool size, is the first candidate, then the pool is probed upwards (wrapping).
 * So a MAC gets the same address across server restarts as long as the pool is not crowded.
 * That function is part of the contract: changing it moves every guest. `allocation:
 * "lowest"` probes from the start of the pool instead (the first client gets .3, as in
 * VPNKit), stable only while the server remembers the client.
 *
 * Memory. One record per MAC and per address, in memory only, bounded by `maxLeases`
 * (records of offers, bindings, and released or expired bindings kept as the client's
 * "previous address", RFC 2131 §4.3.1). An address remembered for another client is handed
 * out only when no never-used address is left, so a client that does not renew (RootlessKit
 * uses its first address forever) keeps its address in practice. When the table is full,
 * the expired record that expired first is forgotten; if none has expired the DISCOVER is
 * dropped and counted. Static leases always win: their address goes to no one else, and
 * their client gets nothing else.
 *
 * Replies. Option 53 is always the first option (RootlessKit's vpnkit client reads bytes
 * 240-242 of the reply as `53 01 02`), then 54, 51, 58, 59, 1, 3, 6, 15, 119, 26, 28. Unlike
 * VPNKit (charrua includes only options named in the client's parameter request list) the
 * configuration options are always sent: RootlessKit's client sends no list at all and
 * udhcpc asks for most of them, so including them always is the safer choice. Replies stay
 * within the client's maximum message size (option 57, not below 576), else 576 bytes (the
 * IP datagram, RFC 2131 §2); options that do not fit are left out from the end and counted.
 *
 * Defaults, and why: lease time 1 hour (gvisor-tap-vsock's; VPNKit sends 68 years because it
 * keeps no lease database, this server keeps one and answers renewals after a restart);
 * domain name "internal" (skiff's built-in names are `host.internal` and `gateway.internal`);
 * DNS servers and routers [gateway]; no search domains (option 119 is sent when some are
 * configured); an OFFER holds its address for 60 s; a DECLINEd address is held back for
 * 10 minutes (RFC 2131 §4.3.3 leaves the time to the server).
 *
 * Not supported: relay agents (giaddr ≠ 0: skiff is on the link with its guests, so such a
 * message is dropped and counted), plain BOOTP without option 53, option overload, client
 * requested lease times (the configured one is always used), DHCPv6.
 */

import { getU16, getU32 } from "../common/bytes.js";
import { MAC_BROADCAST, isMulticastMac } from "../common/addr.js";
import { isWireError } from "../common/wire-error.js";
import { DropCounters } from "../common/counters.js";
import { broadcastAddress, inSubnet, prefixMask } from "../common/cidr.js";
import { Avail, LeasePool, macHash, type DhcpLease, type StaticLease } from "./leases.js";
import {
  DhcpMessageType,
  DhcpOption,
  dhcpLen,
  emitDhcp,
  encodeDomainSearch,
  getOption,
  ipListOption,
  messageType,
  parseDhcp,
  u16Option,
  u32Option,
  type DhcpOptionEntry,
  type DhcpRepr,
} from "./wire.js";

export { macHash, type DhcpLease, type StaticLease };

/** RFC 2131 §3.3: lease time 0xffffffff means infinity. */
export const INFINITE_LEASE = 0xffff_ffff;
/** RFC 2131 §2: every client accepts a 576-byte IP datagram; IPv4 + UDP headers take 28. */
const MIN_DATAGRAM = 576;
const IP_UDP_HEADERS = 28;
/** Fixed header + magic cookie (RFC 2131 §3), and the End option. */
const OPTIONS_OFFSET = 240;
const LIMITED_BROADCAST = 0xffff_ffff;

export interface DhcpServerConfig {
  /** Network address and prefix length of the guest subnet. */
  network: number;
  prefixLength: number;
  /** Our address: server identifier (option 54) and source of replies. */
  serverIp: number;
  /** Interface MTU for option 26 (RFC 2132 §5.1); also caps the reply size. */
  mtu: number;
  /** Addresses never handed out besides the server's, the network's and the broadcast (e.g. the host alias). */
  reserved?: number[];
  /** First and last address of the dynamic pool (default network+3 … broadcast-1). */
  poolFirst?: number;
  poolLast?: number;
  /** Lease time in seconds (default 3600); INFINITE_LEASE for infinity. */
  leaseTime?: number;
  /** How long an OFFER holds its address (ms, default 60 000). */
  offerHoldMs?: number;
  /** How long a declined address is held back (ms, default 600 000; RFC 2131 §4.3.3). */
  declineHoldMs?: number;
  staticLeases?: StaticLease[];
  /** Option 3 (default [serverIp]). */
  routers?: number[];
  /** Option 6 (default [serverIp]). */
  dnsServers?: number[];
  /** Option 15 (default "internal"; null leaves it out). */
  domainName?: string | null;
  /** Option 119 (RFC 3397; default none). */
  searchDomains?: string[];
  /** Bound of remembered clients (default 4096). */
  maxLeases?: number;
  /** How a new client's address is picked (default "hash", see the file comment). */
  allocation?: "hash" | "lowest";
  /** Told about bindings, renewals, releases and declines (for observers such as the control API). */
  onLease?: (event: DhcpLeaseEvent) => void;
}

export interface DhcpLeaseEvent extends DhcpLease {
  kind: "bound" | "renewed" | "released" | "declined";
}

/** A reply to send: the message, its bytes, and where it goes (RFC 2131 §4.1). */
export interface DhcpReply {
  message: DhcpRepr;
  bytes: Uint8Array;
  dstIp: number;
  dstMac: number;
}

export type DhcpDropReason =
  | "malformed" // parseDhcp failed
  | "not-request" // op ≠ BOOTREQUEST
  | "bad-hardware" // htype ≠ 1 or hlen ≠ 6
  | "bad-chaddr" // zero, broadcast or multicast chaddr
  | "relayed" // giaddr ≠ 0: relay agents are not supported
  | "no-message-type" // plain BOOTP
  | "unexpected-type" // OFFER/ACK/NAK or an unknown type from a client
  | "bad-request" // REQUEST without server id, requested address and ciaddr
  | "other-server" // REQUEST or DECLINE for another server (the client chose it)
  | "unknown-client" // INIT-REBOOT from a client we have no record of (RFC 2131 §4.3.2)
  | "pool-exhausted" // DISCOVER with no address left
  | "lease-table-full" // DISCOVER from a new client when every record is live
  | "decline-ignored" // DECLINE of an address that is not the client's
  | "release-ignored" // RELEASE of an address that is not the client's
  | "bad-source-port" // not from UDP port 68 (counted by the service)
  | "guest-lease-cap"; // a guest asking for leases for more MACs than its share (counted by the service)

export class DhcpCounters extends DropCounters<DhcpDropReason> {
  discovers = 0;
  requests = 0;
  declines = 0;
  releases = 0;
  informs = 0;
  offers = 0;
  acks = 0;
  naks = 0;
  /** Options left out of replies to fit the client's maximum message size. */
  optionsOmitted = 0;
  /** Replies the service could not send (too big for the MTU, or the channel refused). */
  sendFailed = 0;
}

export class DhcpServer {
  readonly counters = new DhcpCounters();
  /** Addresses and lease records (./leases.ts). */
  readonly pool: LeasePool;
  readonly leaseTime: number;
  private readonly mask: number;
  private readonly broadcast: number;
  private readonly offerHoldMs: number;
  private readonly declineHoldMs: number;
  private readonly onLease: ((e: DhcpLeaseEvent) => void) | undefined;
  private readonly serverIdOption: DhcpOptionEntry;
  /** Lease time, T1, T2 (RFC 2132 §9.2, §9.11, §9.12); T1/T2 left out for infinite leases. */
  private readonly leaseOptions: DhcpOptionEntry[];
  /** Options 1, 3, 6, 15, 119, 26, 28 in that order (the ones configured). */
  private readonly configOptions: DhcpOptionEntry[];

  constructor(readonly config: DhcpServerConfig) {
    const { prefixLength, serverIp } = config;
    this.mask = prefixMask(prefixLength);
    this.broadcast = broadcastAddress(config);
    this.pool = new LeasePool(config, this.counters);
    const leaseTime = config.leaseTime ?? 3600;
    if (!Number.isInteger(leaseTime) || leaseTime < 1 || leaseTime > INFINITE_LEASE) throw new Error(`dhcp: invalid lease time ${leaseTime}`);
    this.leaseTime = leaseTime;
    this.offerHoldMs = config.offerHoldMs ?? 60_000;
    this.declineHoldMs = config.declineHoldMs ?? 600_000;
    this.onLease = config.onLease;

    this.serverIdOption = { code: DhcpOption.ServerId, data: u32Option(serverIp) };
    this.leaseOptions = [{ code: DhcpOption.LeaseTime, data: u32Option(leaseTime) }];
    if (leaseTime !== INFINITE_LEASE) {
      // RFC 2131 §4.4.5: T1 = 0.5 and T2 = 0.875 of the lease.
      this.leaseOptions.push({ code: DhcpOption.RenewalTime, data: u32Option(Math.floor(leaseTime / 2)) });
      this.leaseOptions.push({ code: DhcpOption.RebindingTime, data: u32Option(Math.floor((leaseTime * 7) / 8)) });
    }
    const opts: DhcpOptionEntry[] = [{ code: DhcpOption.SubnetMask, data: u32Option(this.mask) }];
    const routers = config.routers ?? [serverIp];
    if (routers.length > 0) opts.push({ code: DhcpOption.Router, data: ipListOption(routers) });
    const dns = config.dnsServers ?? [serverIp];
    if (dns.length > 0) opts.push({ code: DhcpOption.DnsServers, data: ipListOption(dns) });
    const domain = config.domainName === undefined ? "internal" : config.domainName;
    if (domain !== null && domain !== "") opts.push({ code: DhcpOption.DomainName, data: latin1Bytes(domain) });
    const search = config.searchDomains ?? [];
    if (search.length > 0) opts.push({ code: DhcpOption.DomainSearch, data: encodeDomainSearch(search) });
    opts.push({ code: DhcpOption.InterfaceMtu, data: u16Option(config.mtu) });
    opts.push({ code: DhcpOption.BroadcastAddress, data: u32Option(this.broadcast) });
    this.configOptions = opts;
  }

  /**
   * Handle one client message (the UDP payload, borrowed for this call) from Ethernet source
   * `srcMac` and IP source `srcIp`, at time `now` (ms). Returns the reply to send, or
   * undefined (silence; the reason is counted). Never throws. `owner` (opaque) is the guest the
   * message came through: a binding made now remembers it (LeasePool.bindingOf).
   */
  handle(payload: Uint8Array, srcMac: number, srcIp: number, now: number, owner?: object): DhcpReply | undefined {
    this.owner = owner;
    try {
      return this.dispatch(payload, srcMac, srcIp, now);
    } finally {
      this.owner = undefined;
    }
  }

  /** The guest of the message being handled (see `handle`). */
  private owner: object | undefined;

  private dispatch(payload: Uint8Array, srcMac: number, srcIp: number, now: number): DhcpReply | undefined {
    const c = this.counters;
    const req = parseDhcp(payload);
    if (isWireError(req)) return c.drop("malformed");
    if (req.op !== 1) return c.drop("not-request");
    // RFC 2131 §2: htype/hlen as in RFC 1700 "ARP hardware types"; Ethernet only.
    if (req.htype !== 1 || req.hlen !== 6) return c.drop("bad-hardware");
    if (req.chaddr === 0 || isMulticastMac(req.chaddr)) return c.drop("bad-chaddr");
    if (req.giaddr !== 0) return c.drop("relayed");
    const type = messageType(req);
    if (type === undefined) return c.drop("no-message-type");
    switch (type) {
      case DhcpMessageType.Discover:
        c.discovers++;
        return this.discover(req, srcMac, now);
      case DhcpMessageType.Request:
        c.requests++;
        return this.request(req, srcMac, now);
      case DhcpMessageType.Decline:
        c.declines++;
        return this.decline(req, now);
      case DhcpMessageType.Release:
        c.releases++;
        return this.release(req, now);
      case DhcpMessageType.Inform:
        c.informs++;
        return this.inform(req, srcMac, srcIp);
      default:
        return c.drop("unexpected-type");
    }
  }

  get poolFirst(): number {
    return this.pool.poolFirst;
  }

  get poolLast(): number {
    return this.pool.poolLast;
  }

  /**
   * Add a static lease while running (a new vmnet VIF, say). Adding the same pair again is a
   * no-op; an address or MAC already bound to something else is an Error naming it.
   */
  addStaticLease(mac: number, ip: number): void {
    this.pool.addStaticLease(mac, ip);
  }

  /** Active bindings (bound and not expired at `now`), in no particular order. */
  leases(now: number): DhcpLease[] {
    return this.pool.leases(now);
  }

  // ---- messages (RFC 2131 §4.3) ------------------------------------------------------

  /** §4.3.1: choose an address, hold it for the client, and OFFER it. */
  private discover(req: DhcpRepr, srcMac: number, now: number): DhcpReply | undefined {
    const mac = req.chaddr;
    const ip = this.pool.chooseAddress(mac, requestedIp(req), now);
    if (ip === undefined) return undefined; // counted by chooseAddress
    const r = this.pool.byMac.get(mac);
    if (r !== undefined && r.ip === ip && r.state === "bound" && r.expiresAt > now) {
      // An existing binding keeps its state and expiry until the REQUEST.
    } else {
      this.pool.remember(mac, ip, "offered", now + this.offerHoldMs);
    }
    this.counters.offers++;
    return this.reply(req, DhcpMessageType.Offer, ip, 0, srcMac);
  }

  /** §4.3.2: SELECTING, INIT-REBOOT, RENEWING or REBINDING, told apart by the fields set. */
  private request(req: DhcpRepr, srcMac: number, now: number): DhcpReply | undefined {
    const mac = req.chaddr;
    const serverId = serverIdOf(req);
    const requested = requestedIp(req);
    if (serverId !== undefined) {
      // SELECTING: the client chose the server named in option 54.
      if (serverId !== this.config.serverIp) {
        // Our offer, if any, was not taken: free it (the record stays as a memory).
        const r = this.pool.byMac.get(mac);
        if (r !== undefined && r.state === "offered") r.expiresAt = Math.min(r.expiresAt, now);
        return this.counters.drop("other-server");
      }
      const want = requested ?? req.ciaddr;
      if (want === 0) return this.counters.drop("bad-request");
      const expected = this.pool.staticByMac.get(mac) ?? this.pool.byMac.get(mac)?.ip;
      const ok = expected !== undefined ? want === expected && this.pool.avail(mac, want, now) === Avail.Mine : this.pool.usable(mac, want, now);
      return ok ? this.ack(req, want, srcMac, now) : this.nak(req, "requested address not available");
    }
    if (req.ciaddr !== 0) {
      // RENEWING (unicast) or REBINDING (broadcast): extend the binding of ciaddr. A client we
      // have no record of (skiff restarted) gets its address if it is free (RFC 2131 §4.3.2
      // lets the server check ciaddr; an authoritative server answers).
      const ip = req.ciaddr;
      const known = this.pool.staticByMac.get(mac) ?? this.pool.byMac.get(mac)?.ip;
      const ok = known !== undefined ? ip === known && this.pool.avail(mac, ip, now) === Avail.Mine : this.pool.usable(mac, ip, now);
      return ok ? this.ack(req, ip, srcMac, now) : this.nak(req, "address not available");
    }
    if (requested !== undefined) {
      // INIT-REBOOT: NAK a wrong address (wrong network, or another client's); silence when we
      // do not know the client and the address is fine (RFC 2131 §4.3.2).
      const ip = requested;
      if (!inSubnet(this.config, ip)) return this.nak(req, "wrong network");
      const known = this.pool.staticByMac.get(mac) ?? this.pool.byMac.get(mac)?.ip;
      if (known !== undefined) {
        return ip === known && this.pool.avail(mac, ip, now) === Avail.Mine ? this.ack(req, ip, srcMac, now) : this.nak(req, "not your address");
      }
      if (!this.pool.usable(mac, ip, now)) return this.nak(req, "address not available");
      return this.counters.drop("unknown-client");
    }
    return this.counters.drop("bad-request");
  }

  /** §4.3.3: the client found the address in use; hold it back. No reply. */
  private decline(req: DhcpRepr, now: number): undefined {
    const serverId = serverIdOf(req);
    if (serverId !== undefined && serverId !== this.config.serverIp) return this.counters.drop("other-server");
    const mac = req.chaddr;
    const ip = requestedIp(req);
    const r = this.pool.byMac.get(mac);
    const isStatic = ip !== undefined && this.pool.staticByMac.get(mac) === ip;
    if (ip === undefined || (!isStatic && r?.ip !== ip)) return this.counters.drop("decline-ignored");
    if (r !== undefined && r.ip === ip) this.pool.forget(r);
    // A static lease always wins: its address is not held back (there is nothing else to give).
    if (!isStatic) {
      this.pool.declined.delete(ip);
      if (this.pool.declined.size >= this.pool.maxLeases) this.pool.declined.delete(this.pool.declined.keys().next().value as number);
      this.pool.declined.set(ip, now + this.declineHoldMs);
    }
    this.onLease?.({ kind: "declined", mac, ip, expiresAt: now, static: isStatic });
    return undefined;
  }

  /** §4.3.4: the client gives the address up; it stays the client's preferred address. No reply. */
  private release(req: DhcpRepr, now: number): undefined {
    const serverId = serverIdOf(req);
    if (serverId !== undefined && serverId !== this.config.serverIp) return this.counters.drop("other-server");
    const r = this.pool.byMac.get(req.chaddr);
    if (r === undefined || r.ip !== req.ciaddr || r.state !== "bound") return this.counters.drop("release-ignored");
    r.state = "released";
    this.pool.generation++;
    r.expiresAt = Math.min(r.expiresAt, now);
    this.onLease?.({ ...this.pool.leaseOf(r), kind: "released" });
    return undefined;
  }

  /** §4.3.5: configuration only: an ACK without yiaddr and lease time, sent to ciaddr. */
  private inform(req: DhcpRepr, srcMac: number, srcIp: number): DhcpReply {
    this.counters.acks++;
    const message = this.build(req, DhcpMessageType.Ack, 0, req.ciaddr, false);
    const to = req.ciaddr !== 0 ? req.ciaddr : srcIp;
    return to !== 0 ? this.finish(message, to, srcMac) : this.finish(message, LIMITED_BROADCAST, MAC_BROADCAST);
  }

  private ack(req: DhcpRepr, ip: number, srcMac: number, now: number): DhcpReply | undefined {
    const mac = req.chaddr;
    const before = this.pool.byMac.get(mac);
    if (before === undefined && !this.pool.staticByMac.has(mac) && !this.pool.roomFor(now)) return this.counters.drop("lease-table-full");
    const renewed = before !== undefined && before.ip === ip && before.state === "bound" && before.expiresAt > now;
    const expiresAt = this.leaseTime === INFINITE_LEASE ? Infinity : now + this.leaseTime * 1000;
    const r = this.pool.remember(mac, ip, "bound", expiresAt, this.owner);
    this.counters.acks++;
    const reply = this.reply(req, DhcpMessageType.Ack, ip, req.ciaddr, srcMac);
    this.onLease?.({ ...this.pool.leaseOf(r), kind: renewed ? "renewed" : "bound" });
    return reply;
  }

  /** Table 3: a NAK carries only 53, 54 and 56; RFC 2131 §4.1: always broadcast (giaddr 0). */
  private nak(req: DhcpRepr, why: string): DhcpReply {
    this.counters.naks++;
    const message = baseReply(req, [
      { code: DhcpOption.MessageType, data: Uint8Array.of(DhcpMessageType.Nak) },
      this.serverIdOption,
      { code: DhcpOption.Message, data: latin1Bytes(why) },
    ]);
    return this.finish(message, LIMITED_BROADCAST, MAC_BROADCAST);
  }

  // ---- replies -----------------------------------------------------------------------

  /**
   * An OFFER or ACK with a lease. RFC 2131 §4.1, giaddr being 0: to ciaddr at the sender's
   * MAC when ciaddr is set; broadcast when the client set the broadcast bit; else unicast to
   * yiaddr at chaddr (udhcpc, dhclient and systemd-networkd receive on a packet socket before
   * they have an address; RootlessKit's client sets the broadcast bit).
   */
  private reply(req: DhcpRepr, type: number, yiaddr: number, ciaddr: number, srcMac: number): DhcpReply {
    const message = this.build(req, type, yiaddr, ciaddr, true);
    if (req.ciaddr !== 0) return this.finish(message, req.ciaddr, srcMac);
    if (req.broadcast) return this.finish(message, LIMITED_BROADCAST, MAC_BROADCAST);
    return this.finish(message, yiaddr, req.chaddr);
  }

  /** Fields per RFC 2131 Table 3; options in the fixed order of the file comment, cut to size. */
  private build(req: DhcpRepr, type: number, yiaddr: number, ciaddr: number, withLease: boolean): DhcpRepr {
    const budget = this.replyLimit(req) - OPTIONS_OFFSET - 1; // End
    const options: DhcpOptionEntry[] = [{ code: DhcpOption.MessageType, data: Uint8Array.of(type) }, this.serverIdOption];
    let used = 3 + 6;
    const rest = withLease ? [...this.leaseOptions, ...this.configOptions] : this.configOptions;
    for (const o of rest) {
      const len = o.data.length + 2 * Math.max(1, Math.ceil(o.data.length / 255)); // RFC 3396 split
      if (used + len > budget) {
        this.counters.optionsOmitted++;
        continue;
      }
      options.push(o);
      used += len;
    }
    const message = baseReply(req, options);
    message.yiaddr = yiaddr;
    message.ciaddr = ciaddr;
    return message;
  }

  /** Largest reply payload: the client's option 57 (at least 576), capped by the MTU, less IP and UDP headers. */
  private replyLimit(req: DhcpRepr): number {
    const o = getOption(req, DhcpOption.MaxMessageSize);
    const max = o !== undefined && o.length === 2 ? Math.max(MIN_DATAGRAM, getU16(o, 0)) : MIN_DATAGRAM;
    return Math.min(max, this.config.mtu) - IP_UDP_HEADERS;
  }

  private finish(message: DhcpRepr, dstIp: number, dstMac: number): DhcpReply {
    const bytes = new Uint8Array(dhcpLen(message));
    emitDhcp(message, bytes);
    return { message, bytes, dstIp, dstMac };
  }

}

/** Reply skeleton per RFC 2131 Table 3: op 2, xid/flags/giaddr/chaddr from the request, the rest zero. */
function baseReply(req: DhcpRepr, options: DhcpOptionEntry[]): DhcpRepr {
  return {
    op: 2,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    broadcast: req.broadcast,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: req.giaddr,
    chaddr: req.chaddr,
    sname: "",
    file: "",
    options,
  };
}

/** A 4-byte address option's value, or undefined when absent or not 4 bytes. */
function ipOption(req: DhcpRepr, code: number): number | undefined {
  const d = getOption(req, code);
  return d !== undefined && d.length === 4 ? getU32(d, 0) : undefined;
}

const requestedIp = (req: DhcpRepr) => ipOption(req, DhcpOption.RequestedIp);
const serverIdOf = (req: DhcpRepr) => ipOption(req, DhcpOption.ServerId);

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

