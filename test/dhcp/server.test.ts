/**
 * DHCP server (RFC 2131), message by message with explicit time: each client message is
 * built exactly, handed to the sans-I/O `DhcpServer`, and the reply (or the counted silence)
 * is checked field by field, options in wire order. Then through the stack: a recording
 * channel, the real busybox udhcpc frames of `fixtures/pcaps/dhcp-udhcpc.pcap`, RootlessKit's
 * checksum-less DISCOVER, and random bytes (fast-check) that must never throw.
 */
import { expect } from "chai";
import fc from "fast-check";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import {
  DhcpServer,
  INFINITE_LEASE,
  macHash,
  type DhcpLeaseEvent,
  type DhcpReply,
  type DhcpServerConfig,
} from "../../src/dhcp/server.js";
import { DhcpService } from "../../src/stack/dhcp-service.js";
import {
  DhcpMessageType as T,
  DhcpOption as O,
  decodeDomainSearch,
  dhcpLen,
  emitDhcp,
  getOption,
  ipListOption,
  parseDhcp,
  u16Option,
  u32Option,
  type DhcpOptionEntry,
  type DhcpRepr,
} from "../../src/dhcp/wire.js";
import { parseIpv4Address, parseMac, MAC_BROADCAST } from "../../src/common/addr.js";
import { isWireError } from "../../src/common/wire-error.js";
import { emitEthernet, parseEthernet, EtherType } from "../../src/ethernet/ethernet.js";
import { emitIpv4, parseIpv4, IpProtocol } from "../../src/ipv4/ipv4.js";
import { emitUdp, parseUdp, UdpPacket } from "../../src/ipv4/udp.js";
import { NetworkStack } from "../../src/stack/stack.js";
import { loadSession, RecordingChannel } from "../support/replay.js";
import { damaged } from "../support/arbitraries.js";

const ip = (s: string) => parseIpv4Address(s)!;
const macOf = (s: string) => parseMac(s)!;
const GW = ip("192.168.65.1");
const NET = ip("192.168.65.0");
const POOL_FIRST = ip("192.168.65.3");
const POOL_SIZE = 252; // .3 … .254
const A = macOf("52:54:00:12:34:56");
const B = macOf("52:54:00:00:00:0b");
const C = macOf("52:54:00:00:00:0c");
const BCAST = 0xffff_ffff;
const HOUR_MS = 3_600_000;

/** Where the hash puts a MAC in the default pool (no collisions). */
const hashIp = (mac: number) => POOL_FIRST + (macHash(mac) % POOL_SIZE);

function server(extra: Partial<DhcpServerConfig> = {}): DhcpServer {
  return new DhcpServer({ network: NET, prefixLength: 24, serverIp: GW, mtu: 1500, reserved: [ip("192.168.65.2")], ...extra });
}

interface Msg {
  mac?: number;
  xid?: number;
  ciaddr?: number;
  giaddr?: number;
  broadcast?: boolean;
  requested?: number;
  serverId?: number;
  options?: DhcpOptionEntry[];
  op?: number;
  htype?: number;
  hlen?: number;
}

/** A client message: option 53 first, then 50, 54 and any extra options. */
function msg(type: number | undefined, m: Msg = {}): Uint8Array {
  const options: DhcpOptionEntry[] = [];
  if (type !== undefined) options.push({ code: O.MessageType, data: Uint8Array.of(type) });
  if (m.requested !== undefined) options.push({ code: O.RequestedIp, data: u32Option(m.requested) });
  if (m.serverId !== undefined) options.push({ code: O.ServerId, data: u32Option(m.serverId) });
  options.push(...(m.options ?? []));
  const repr: DhcpRepr = {
    op: m.op ?? 1, htype: m.htype ?? 1, hlen: m.hlen ?? 6, hops: 0, xid: m.xid ?? 0x1234_5678, secs: 0,
    broadcast: m.broadcast ?? false, ciaddr: m.ciaddr ?? 0, yiaddr: 0, siaddr: 0, giaddr: m.giaddr ?? 0,
    chaddr: m.mac ?? A, sname: "", file: "", options,
  };
  const b = new Uint8Array(dhcpLen(repr));
  emitDhcp(repr, b);
  return b;
}

/** Handle and decode: the reply's bytes must parse back to the message the server built. */
function send(s: DhcpServer, bytes: Uint8Array, now: number, srcMac = A, srcIp = 0): DhcpReply | undefined {
  const r = s.handle(bytes, srcMac, srcIp, now);
  if (r !== undefined) {
    const back = parseDhcp(r.bytes);
    if (isWireError(back)) throw new Error(back.reason);
    expect({ ...back, options: joinSplit(back.options) }).to.deep.equal(r.message);
  }
  return r;
}

/** Consecutive instances of one option joined again (RFC 3396: the parser returns each instance). */
function joinSplit(options: DhcpOptionEntry[]): DhcpOptionEntry[] {
  const out: DhcpOptionEntry[] = [];
  for (const o of options) {
    const last = out.at(-1);
    if (last?.code === o.code) out[out.length - 1] = { code: o.code, data: Uint8Array.from([...last.data, ...o.data]) };
    else out.push(o);
  }
  return out;
}

function must(r: DhcpReply | undefined): DhcpReply {
  expect(r, "a reply").to.not.equal(undefined);
  return r!;
}

const opt = (code: number, data: Uint8Array): DhcpOptionEntry => ({ code, data });
const latin1 = (s: string) => Uint8Array.from(s, (ch) => ch.charCodeAt(0));

/** The options of an OFFER/ACK under the default configuration, in order. */
function defaultOptions(type: number, lease = true): DhcpOptionEntry[] {
  return [
    opt(O.MessageType, Uint8Array.of(type)),
    opt(O.ServerId, u32Option(GW)),
    ...(lease ? [opt(O.LeaseTime, u32Option(3600)), opt(O.RenewalTime, u32Option(1800)), opt(O.RebindingTime, u32Option(3150))] : []),
    opt(O.SubnetMask, u32Option(ip("255.255.255.0"))),
    opt(O.Router, ipListOption([GW])),
    opt(O.DnsServers, ipListOption([GW])),
    opt(O.DomainName, latin1("internal")),
    opt(O.InterfaceMtu, u16Option(1500)),
    opt(O.BroadcastAddress, u32Option(ip("192.168.65.255"))),
  ];
}

/** DISCOVER then REQUEST (SELECTING); returns the bound address. */
function bind(s: DhcpServer, mac: number, now: number): number {
  const offer = must(send(s, msg(T.Discover, { mac }), now, mac));
  const ack = must(send(s, msg(T.Request, { mac, requested: offer.message.yiaddr, serverId: GW }), now, mac));
  expect(ack.message.options[0].data[0]).to.equal(T.Ack);
  return ack.message.yiaddr;
}

describe("dhcp/server: DISCOVER → OFFER (RFC 2131 §4.3.1)", () => {
  it("offers the MAC's hashed address with every field and option exactly, 53 first", () => {
    const s = server();
    const r = must(send(s, msg(T.Discover, { xid: 0xdeadbeef }), 1000));
    expect(r.message).to.deep.equal({
      op: 2, htype: 1, hlen: 6, hops: 0, xid: 0xdeadbeef, secs: 0, broadcast: false,
      ciaddr: 0, yiaddr: ip("192.168.65.250"), siaddr: 0, giaddr: 0, chaddr: A, sname: "", file: "",
      options: defaultOptions(T.Offer),
    });
    // RootlessKit's client reads the bytes after the cookie as 53 01 02.
    expect([...r.bytes.subarray(236, 243)]).to.deep.equal([0x63, 0x82, 0x53, 0x63, 53, 1, 2]);
    // RFC 2131 §4.1: no broadcast bit, no ciaddr → unicast to yiaddr at chaddr.
    expect([r.dstIp, r.dstMac]).to.deep.equal([ip("192.168.65.250"), A]);
    expect(r.bytes.length).to.equal(240 + 66); // cookie, 66 bytes of options with End
    expect(s.counters.offers).to.equal(1);
  });

  it("pins the address function: 52:54:00:12:34:56 → 192.168.65.250 (FNV-1a mod 252)", () => {
    expect(macHash(A)).to.equal(3145677691);
    expect(hashIp(A)).to.equal(ip("192.168.65.250"));
  });

  it("broadcasts the OFFER when the client set the broadcast bit", () => {
    const r = must(send(server(), msg(T.Discover, { broadcast: true }), 0));
    expect([r.dstIp, r.dstMac, r.message.broadcast]).to.deep.equal([BCAST, MAC_BROADCAST, true]);
  });

  it("answers RootlessKit's DISCOVER (no parameter list, xid 01000000, broadcast) as its client expects", () => {
    const s = server();
    const r = must(send(s, msg(T.Discover, { xid: 0x0100_0000, broadcast: true }), 0));
    expect(r.bytes.length).to.be.at.least(243);
    expect([...r.bytes.subarray(240, 243)]).to.deep.equal([53, 1, 2]);
    expect([...r.bytes.subarray(4, 8)]).to.deep.equal([1, 0, 0, 0]);
    expect(r.bytes[0]).to.equal(2);
    expect(r.dstMac).to.equal(MAC_BROADCAST);
  });

  it("sends option 119 after 15 when search domains are configured, and honours other settings", () => {
    const s = server({
      searchDomains: ["internal", "corp.example.com"], domainName: "corp.example.com", dnsServers: [ip("10.0.0.53"), GW],
      leaseTime: 600, mtu: 65520,
    });
    const r = must(send(s, msg(T.Discover), 0));
    const codes = r.message.options.map((o) => o.code);
    expect(codes).to.deep.equal([53, 54, 51, 58, 59, 1, 3, 6, 15, 119, 26, 28]);
    expect(decodeDomainSearch(getOption(r.message, O.DomainSearch)!)).to.deep.equal(["internal", "corp.example.com"]);
    expect(getOption(r.message, O.DnsServers)).to.deep.equal(ipListOption([ip("10.0.0.53"), GW]));
    expect(getOption(r.message, O.InterfaceMtu)).to.deep.equal(u16Option(65520));
    expect(getOption(r.message, O.LeaseTime)).to.deep.equal(u32Option(600));
    expect(getOption(r.message, O.RenewalTime)).to.deep.equal(u32Option(300));
    expect(getOption(r.message, O.RebindingTime)).to.deep.equal(u32Option(525));
  });

  it("an infinite lease has no T1/T2 and never expires", () => {
    const s = server({ leaseTime: INFINITE_LEASE });
    const r = must(send(s, msg(T.Discover), 0));
    expect(r.message.options.slice(0, 4).map((o) => o.code)).to.deep.equal([53, 54, 51, 1]);
    expect(getOption(r.message, O.LeaseTime)).to.deep.equal(Uint8Array.of(255, 255, 255, 255));
    bind(s, A, 0);
    expect(s.leases(1e15)).to.deep.equal([{ mac: A, ip: hashIp(A), expiresAt: Infinity, static: false }]);
  });

  it("offers the requested address (option 50) when it is free, as §4.3.1 orders", () => {
    const r = must(send(server(), msg(T.Discover, { requested: ip("192.168.65.77") }), 0));
    expect(r.message.yiaddr).to.equal(ip("192.168.65.77"));
  });

  it("does not offer a requested address outside the pool or reserved", () => {
    for (const asked of ["192.168.65.2", "192.168.65.1", "10.0.0.5", "192.168.65.255"]) {
      const r = must(send(server(), msg(T.Discover, { requested: ip(asked) }), 0));
      expect(r.message.yiaddr, asked).to.equal(hashIp(A));
    }
  });

  it("'lowest' allocation gives the first client .3 and the second .4", () => {
    const s = server({ allocation: "lowest" });
    expect(bind(s, A, 0)).to.equal(ip("192.168.65.3"));
    expect(bind(s, B, 0)).to.equal(ip("192.168.65.4"));
  });
});

describe("dhcp/server: REQUEST → ACK, stability per MAC (RFC 2131 §4.3.2)", () => {
  it("ACKs the offered address, binds it, lists it and tells the observer", () => {
    const events: DhcpLeaseEvent[] = [];
    const s = server({ onLease: (e) => events.push(e) });
    must(send(s, msg(T.Discover), 5000));
    const r = must(send(s, msg(T.Request, { requested: hashIp(A), serverId: GW }), 5000));
    expect(r.message).to.deep.equal({
      op: 2, htype: 1, hlen: 6, hops: 0, xid: 0x1234_5678, secs: 0, broadcast: false,
      ciaddr: 0, yiaddr: hashIp(A), siaddr: 0, giaddr: 0, chaddr: A, sname: "", file: "",
      options: defaultOptions(T.Ack),
    });
    expect([r.dstIp, r.dstMac]).to.deep.equal([hashIp(A), A]);
    const lease = { mac: A, ip: hashIp(A), expiresAt: 5000 + HOUR_MS, static: false };
    expect(s.leases(5000)).to.deep.equal([lease]);
    expect(events).to.deep.equal([{ kind: "bound", ...lease }]);
    expect(s.counters.acks).to.equal(1);
  });

  it("a second client gets a different address (its own hash)", () => {
    const s = server();
    const a = bind(s, A, 0);
    const b = bind(s, B, 0);
    expect(b).to.not.equal(a);
    expect(b).to.equal(hashIp(B));
    expect(s.leases(0).map((l) => l.ip).sort()).to.deep.equal([a, b].sort());
  });

  it("the same MAC gets the same address: again, after RELEASE, and from a new server instance", () => {
    const s = server();
    const first = bind(s, A, 0);
    expect(bind(s, A, 1000)).to.equal(first);
    expect(send(s, msg(T.Release, { ciaddr: first, serverId: GW }), 2000)).to.equal(undefined);
    expect(s.leases(2000)).to.deep.equal([]);
    expect(bind(s, A, 3000)).to.equal(first);
    expect(bind(server(), A, 0)).to.equal(first);
  });

  it("a released address is kept for its client while never-used addresses remain", () => {
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.4") });
    const a = bind(s, A, 0);
    send(s, msg(T.Release, { ciaddr: a, serverId: GW }), 10);
    const b = bind(s, B, 20);
    expect(b).to.not.equal(a);
    expect(bind(s, A, 30)).to.equal(a);
  });

  it("a hash collision probes to the next free address", () => {
    // Pool of one slot for the hash: every MAC starts at .3 and probes upwards.
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.5") });
    const got = [A, B, C].map((m) => bind(s, m, 0));
    expect(new Set(got).size).to.equal(3);
    expect(got.every((g) => g >= ip("192.168.65.3") && g <= ip("192.168.65.5"))).to.equal(true);
  });

  it("NAKs a SELECTING request for an address other than the one offered", () => {
    const s = server();
    send(s, msg(T.Discover), 0);
    const r = must(send(s, msg(T.Request, { requested: ip("192.168.65.99"), serverId: GW }), 0));
    expect(r.message.options).to.deep.equal([
      opt(O.MessageType, Uint8Array.of(T.Nak)),
      opt(O.ServerId, u32Option(GW)),
      opt(O.Message, latin1("requested address not available")),
    ]);
    expect([r.message.yiaddr, r.message.ciaddr, r.dstIp, r.dstMac]).to.deep.equal([0, 0, BCAST, MAC_BROADCAST]);
    expect(s.leases(0)).to.deep.equal([]);
    expect(s.counters.naks).to.equal(1);
  });

  it("stays silent when the client chose another server, and frees the offer", () => {
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.4") });
    const offered = must(send(s, msg(T.Discover), 0)).message.yiaddr;
    expect(send(s, msg(T.Request, { requested: offered, serverId: ip("192.168.65.99") }), 10)).to.equal(undefined);
    expect(s.counters.dropped("other-server")).to.equal(1);
    expect(s.leases(10)).to.deep.equal([]);
    // The pool's other address goes first; then A's former offer is available to others.
    expect(bind(s, B, 20)).to.not.equal(offered);
    expect(bind(s, C, 20)).to.equal(offered);
  });

  it("ACKs a SELECTING request after a restart lost the offer, when the address is free", () => {
    const r = must(send(server(), msg(T.Request, { requested: ip("192.168.65.40"), serverId: GW }), 0));
    expect(r.message.options[0].data[0]).to.equal(T.Ack);
    expect(r.message.yiaddr).to.equal(ip("192.168.65.40"));
  });

  describe("INIT-REBOOT (requested address, no server id, ciaddr 0)", () => {
    it("ACKs the client's own address", () => {
      const s = server();
      const a = bind(s, A, 0);
      const r = must(send(s, msg(T.Request, { requested: a }), 1000));
      expect([r.message.options[0].data[0], r.message.yiaddr]).to.deep.equal([T.Ack, a]);
      expect(s.leases(1000)[0].expiresAt).to.equal(1000 + HOUR_MS);
    });

    it("NAKs an address on another network", () => {
      const r = must(send(server(), msg(T.Request, { requested: ip("10.1.2.3") }), 0));
      expect(r.message.options[0].data[0]).to.equal(T.Nak);
      expect(getOption(r.message, O.Message)).to.deep.equal(latin1("wrong network"));
    });

    it("NAKs a known client asking for an address that is not its own", () => {
      const s = server();
      bind(s, A, 0);
      const r = must(send(s, msg(T.Request, { requested: ip("192.168.65.9") }), 0));
      expect(r.message.options[0].data[0]).to.equal(T.Nak);
    });

    it("NAKs an unknown client asking for another client's address", () => {
      const s = server();
      const b = bind(s, B, 0);
      const r = must(send(s, msg(T.Request, { requested: b }), 0, A));
      expect(r.message.options[0].data[0]).to.equal(T.Nak);
    });

    it("stays silent for an unknown client asking for a free address (RFC 2131 §4.3.2)", () => {
      const s = server();
      expect(send(s, msg(T.Request, { requested: ip("192.168.65.40") }), 0)).to.equal(undefined);
      expect(s.counters.dropped("unknown-client")).to.equal(1);
    });
  });

  describe("RENEWING (ciaddr set, unicast) and REBINDING", () => {
    it("ACKs by unicast to ciaddr at the sender's MAC, extends the lease, and reports a renewal", () => {
      const events: DhcpLeaseEvent[] = [];
      const s = server({ onLease: (e) => events.push(e) });
      const a = bind(s, A, 0);
      const r = must(send(s, msg(T.Request, { ciaddr: a }), HOUR_MS / 2, A, a));
      expect(r.message.options.map((o) => o.code)).to.deep.equal(defaultOptions(T.Ack).map((o) => o.code));
      expect([r.message.yiaddr, r.message.ciaddr, r.dstIp, r.dstMac]).to.deep.equal([a, a, a, A]);
      expect(s.leases(HOUR_MS)).to.deep.equal([{ mac: A, ip: a, expiresAt: HOUR_MS / 2 + HOUR_MS, static: false }]);
      expect(events.map((e) => e.kind)).to.deep.equal(["bound", "renewed"]);
    });

    it("also unicasts to ciaddr when the client set the broadcast bit (ciaddr wins, §4.1)", () => {
      const s = server();
      const a = bind(s, A, 0);
      const r = must(send(s, msg(T.Request, { ciaddr: a, broadcast: true }), 10, A, 0));
      expect([r.dstIp, r.dstMac]).to.deep.equal([a, A]);
    });

    it("ACKs a client renewing a free address after a restart (new instance)", () => {
      const r = must(send(server(), msg(T.Request, { ciaddr: ip("192.168.65.50") }), 0, A, ip("192.168.65.50")));
      expect([r.message.options[0].data[0], r.message.yiaddr]).to.deep.equal([T.Ack, ip("192.168.65.50")]);
    });

    it("NAKs (broadcast) a renewal of another client's address", () => {
      const s = server();
      const b = bind(s, B, 0);
      const r = must(send(s, msg(T.Request, { ciaddr: b }), 10, A, b));
      expect([r.message.options[0].data[0], r.dstIp, r.dstMac]).to.deep.equal([T.Nak, BCAST, MAC_BROADCAST]);
    });
  });

  it("drops a REQUEST with neither server id, requested address nor ciaddr", () => {
    const s = server();
    expect(send(s, msg(T.Request), 0)).to.equal(undefined);
    expect(s.counters.dropped("bad-request")).to.equal(1);
  });
});

describe("dhcp/server: static leases", () => {
  it("a static client gets its address; another client whose hash lands there gets the next one", () => {
    const s = server({ staticLeases: [{ mac: A, ip: hashIp(B) }] });
    expect(bind(s, A, 0)).to.equal(hashIp(B));
    expect(bind(s, B, 0)).to.equal(hashIp(B) + 1);
    expect(s.leases(0).find((l) => l.mac === A)).to.deep.equal({ mac: A, ip: hashIp(B), expiresAt: HOUR_MS, static: true });
  });

  it("a static address may lie outside the pool, and its client gets nothing else", () => {
    const s = server({ poolFirst: ip("192.168.65.100"), staticLeases: [{ mac: A, ip: ip("192.168.65.10") }] });
    expect(must(send(s, msg(T.Discover, { requested: ip("192.168.65.150") }), 0)).message.yiaddr).to.equal(ip("192.168.65.10"));
    const nak = must(send(s, msg(T.Request, { requested: ip("192.168.65.150"), serverId: GW }), 0));
    expect(nak.message.options[0].data[0]).to.equal(T.Nak);
    expect(must(send(s, msg(T.Request, { requested: ip("192.168.65.10") }), 0)).message.options[0].data[0]).to.equal(T.Ack);
  });

  it("no other client can take a static address, not even by asking for it", () => {
    const s = server({ staticLeases: [{ mac: A, ip: ip("192.168.65.10") }] });
    expect(must(send(s, msg(T.Discover, { mac: B, requested: ip("192.168.65.10") }), 0, B)).message.yiaddr).to.equal(hashIp(B));
    const r = must(send(s, msg(T.Request, { mac: B, ciaddr: ip("192.168.65.10") }), 0, B));
    expect(r.message.options[0].data[0]).to.equal(T.Nak);
  });

  it("static leases added while running keep the dynamic leases already given", () => {
    const s = server();
    const b = bind(s, B, 0);
    s.addStaticLease(A, ip("192.168.65.20"));
    s.addStaticLease(A, ip("192.168.65.20")); // the same pair again: nothing changes
    expect(bind(s, A, 0)).to.equal(ip("192.168.65.20"));
    expect(s.leases(0).find((l) => l.mac === B)?.ip).to.equal(b);
    expect(() => s.addStaticLease(B, ip("192.168.65.20"))).to.throw(/duplicate/);
  });

  it("rejects bad configurations with a message naming the value", () => {
    expect(() => server({ staticLeases: [{ mac: A, ip: ip("10.0.0.1") }] })).to.throw(/static lease address 10\.0\.0\.1/);
    expect(() => server({ staticLeases: [{ mac: A, ip: GW }] })).to.throw(/static lease/);
    expect(() => server({ staticLeases: [{ mac: A, ip: ip("192.168.65.9") }, { mac: B, ip: ip("192.168.65.9") }] })).to.throw(/duplicate/);
    expect(() => server({ poolFirst: ip("192.168.66.3") })).to.throw(/poolFirst 192\.168\.66\.3/);
    expect(() => server({ poolFirst: ip("192.168.65.9"), poolLast: ip("192.168.65.8") })).to.throw(/after poolLast/);
    expect(() => server({ leaseTime: 0 })).to.throw(/lease time/);
    expect(() => server({ serverIp: ip("192.168.65.0") })).to.throw(/server address/);
  });
});

describe("dhcp/server: DECLINE, RELEASE, INFORM (RFC 2131 §4.3.3-§4.3.5)", () => {
  it("DECLINE holds the address back: the client gets the next one, others neither, until the hold ends", () => {
    const events: DhcpLeaseEvent[] = [];
    const s = server({ declineHoldMs: 60_000, onLease: (e) => events.push(e) });
    const a = bind(s, A, 0);
    expect(send(s, msg(T.Decline, { requested: a, serverId: GW }), 100)).to.equal(undefined);
    expect(events.at(-1)).to.deep.equal({ kind: "declined", mac: A, ip: a, expiresAt: 100, static: false });
    expect(s.leases(100)).to.deep.equal([]);
    expect(bind(s, A, 200)).to.equal(a + 1);
    // Another client asking for the declined address does not get it during the hold.
    expect(must(send(s, msg(T.Discover, { mac: B, requested: a }), 300, B)).message.yiaddr).to.equal(hashIp(B));
    expect(must(send(s, msg(T.Discover, { mac: C, requested: a }), 60_101, C)).message.yiaddr).to.equal(a);
  });

  it("ignores a DECLINE of an address that is not the client's, or for another server", () => {
    const s = server();
    const a = bind(s, A, 0);
    send(s, msg(T.Decline, { requested: ip("192.168.65.9"), serverId: GW }), 1);
    send(s, msg(T.Decline, { requested: a, serverId: ip("192.168.65.99") }), 1);
    expect(s.counters.dropped("decline-ignored")).to.equal(1);
    expect(s.counters.dropped("other-server")).to.equal(1);
    expect(s.leases(1).map((l) => l.ip)).to.deep.equal([a]);
    // .9 was not held back: another client asking for it gets it.
    expect(must(send(s, msg(T.Discover, { mac: C, requested: ip("192.168.65.9") }), 2, C)).message.yiaddr).to.equal(ip("192.168.65.9"));
  });

  it("RELEASE frees the binding and reports it; a RELEASE of someone else's address is ignored", () => {
    const events: DhcpLeaseEvent[] = [];
    const s = server({ onLease: (e) => events.push(e) });
    const a = bind(s, A, 0);
    send(s, msg(T.Release, { mac: B, ciaddr: a, serverId: GW }), 5, B);
    expect(s.counters.dropped("release-ignored")).to.equal(1);
    expect(s.leases(5)).to.have.length(1);
    send(s, msg(T.Release, { ciaddr: a, serverId: GW }), 10);
    expect(events.at(-1)).to.deep.equal({ kind: "released", mac: A, ip: a, expiresAt: 10, static: false });
    expect(s.leases(10)).to.deep.equal([]);
  });

  it("INFORM gets an ACK with the configuration, no yiaddr and no lease time, unicast to ciaddr", () => {
    const s = server();
    const me = ip("192.168.65.200");
    const r = must(send(s, msg(T.Inform, { ciaddr: me }), 0, A, me));
    expect(r.message).to.deep.include({ op: 2, yiaddr: 0, ciaddr: me, xid: 0x1234_5678 });
    expect(r.message.options).to.deep.equal(defaultOptions(T.Ack, false));
    expect([r.dstIp, r.dstMac]).to.deep.equal([me, A]);
    expect(s.leases(0)).to.deep.equal([]);
    // Without ciaddr and source address there is nowhere to unicast: broadcast.
    const b = must(send(s, msg(T.Inform), 0, A, 0));
    expect([b.dstIp, b.dstMac]).to.deep.equal([BCAST, MAC_BROADCAST]);
  });
});

describe("dhcp/server: limits and time", () => {
  it("pool exhaustion: no OFFER, counted; after a lease expires its address is reused", () => {
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.4"), leaseTime: 60 });
    bind(s, A, 0);
    bind(s, B, 0);
    expect(send(s, msg(T.Discover, { mac: C }), 1000, C)).to.equal(undefined);
    expect(s.counters.dropped("pool-exhausted")).to.equal(1);
    expect(bind(s, C, 60_001)).to.be.oneOf([ip("192.168.65.3"), ip("192.168.65.4")]);
    expect(s.leases(60_001).map((l) => l.mac)).to.deep.equal([C]);
  });

  it("lease expiry by time: listed until expiresAt, then gone; an expired address goes last", () => {
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.4"), leaseTime: 10 });
    const a = bind(s, A, 0);
    expect(s.leases(9_999)).to.have.length(1);
    expect(s.leases(10_000)).to.deep.equal([]);
    // The never-used address first, wherever B's hash points.
    expect(bind(s, B, 20_000)).to.equal(a === ip("192.168.65.3") ? ip("192.168.65.4") : ip("192.168.65.3"));
    expect(bind(s, C, 20_000)).to.equal(a); // then A's expired one
    // A has lost its address and the pool is full of live leases.
    expect(send(s, msg(T.Discover), 20_001)).to.equal(undefined);
  });

  it("an OFFER holds its address only for offerHoldMs", () => {
    const s = server({ poolFirst: ip("192.168.65.3"), poolLast: ip("192.168.65.3"), offerHoldMs: 1000 });
    must(send(s, msg(T.Discover), 0));
    expect(send(s, msg(T.Discover, { mac: B }), 999, B)).to.equal(undefined);
    expect(must(send(s, msg(T.Discover, { mac: B }), 1000, B)).message.yiaddr).to.equal(ip("192.168.65.3"));
  });

  it("the client table is bounded: new clients are dropped while every record is live, then reuse expired ones", () => {
    const s = server({ maxLeases: 3, offerHoldMs: 1000 });
    const macs = Array.from({ length: 10 }, (_, i) => 0x0200_0000_0000 + i);
    const offered = macs.filter((m) => send(s, msg(T.Discover, { mac: m }), 0, m) !== undefined);
    expect(offered).to.have.length(3);
    expect(s.counters.dropped("lease-table-full")).to.equal(7);
    // A REQUEST from an unknown client cannot grow the table either.
    expect(send(s, msg(T.Request, { mac: macs[9], ciaddr: ip("192.168.65.77") }), 0, macs[9])).to.equal(undefined);
    expect(s.counters.dropped("lease-table-full")).to.equal(8);
    expect(send(s, msg(T.Discover, { mac: macs[5] }), 1000, macs[5])).to.not.equal(undefined);
  });

  it("keeps replies within 576 bytes, leaving out options from the end, unless option 57 allows more", () => {
    const long = Array.from({ length: 6 }, (_, i) => `${String.fromCharCode(97 + i).repeat(40)}.example${i}`);
    const s = server({ searchDomains: long });
    const small = must(send(s, msg(T.Discover), 0));
    expect(small.bytes.length).to.be.at.most(548);
    expect(small.message.options.map((o) => o.code)).to.deep.equal([53, 54, 51, 58, 59, 1, 3, 6, 15, 26, 28]);
    expect(s.counters.optionsOmitted).to.equal(1);
    const big = must(send(s, msg(T.Discover, { options: [opt(O.MaxMessageSize, u16Option(1500))] }), 0));
    expect(big.message.options.map((o) => o.code)).to.include(119);
    expect(big.bytes.length).to.be.greaterThan(548).and.at.most(1472);
    // A max message size below 576 is not legal (RFC 2132 §9.10): 576 still applies.
    const tiny = must(send(s, msg(T.Discover, { options: [opt(O.MaxMessageSize, u16Option(300))] }), 0));
    expect(tiny.bytes.length).to.equal(small.bytes.length);
  });
});

describe("dhcp/server: bad input is counted, never thrown", () => {
  const cases: Array<[string, Uint8Array, string]> = [
    ["truncated", msg(T.Discover).subarray(0, 100), "malformed"],
    ["a BOOTREPLY", msg(T.Discover, { op: 2 }), "not-request"],
    ["htype 6", msg(T.Discover, { htype: 6 }), "bad-hardware"],
    ["hlen 16", msg(T.Discover, { hlen: 16 }), "bad-hardware"],
    ["broadcast chaddr", msg(T.Discover, { mac: MAC_BROADCAST }), "bad-chaddr"],
    ["zero chaddr", msg(T.Discover, { mac: 0 }), "bad-chaddr"],
    ["relayed (giaddr set)", msg(T.Discover, { giaddr: ip("10.0.0.1") }), "relayed"],
    ["plain BOOTP", msg(undefined), "no-message-type"],
    ["an OFFER from a client", msg(T.Offer), "unexpected-type"],
    ["message type 42", msg(42), "unexpected-type"],
  ];
  for (const [name, bytes, reason] of cases) {
    it(`drops ${name} as "${reason}"`, () => {
      const s = server();
      expect(send(s, bytes, 0)).to.equal(undefined);
      expect(s.counters.drops).to.deep.equal({ [reason]: 1 });
    });
  }

  it("random and damaged messages never throw, and every reply is a BOOTREPLY that parses", () => {
    const valid = [msg(T.Discover), msg(T.Request, { requested: hashIp(A), serverId: GW }), msg(T.Inform, { ciaddr: ip("192.168.65.9") })];
    const s = server({ maxLeases: 16 });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.tuple(fc.nat(2), fc.nat()).map(([i, seed]) => damaged(valid[i], seed))), fc.nat(1e9), (bytes, now) => {
        const r = s.handle(bytes, A, 0, now);
        if (r !== undefined) {
          const back = parseDhcp(r.bytes);
          expect(isWireError(back)).to.equal(false);
          expect(r.bytes[0]).to.equal(2);
          expect(r.bytes[240]).to.equal(53);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- through the stack ----------------------------------------------------------------

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "fixtures", "pcaps");
const GW_MAC = macOf("02:50:00:00:00:01");

function stackWithService(opts: ConstructorParameters<typeof DhcpService>[1] = {}) {
  const stack = new NetworkStack({ now: () => 0 });
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  const service = new DhcpService(stack, opts);
  return { stack, ch, port, service };
}

/** Decode a frame the stack sent: Ethernet, IPv4, UDP (checksum must verify) and DHCP. */
function decodeReply(frame: Uint8Array) {
  const eth = parseEthernet(frame);
  if (isWireError(eth)) throw new Error(eth.reason);
  expect(eth.ethertype).to.equal(EtherType.IPv4);
  const ipr = parseIpv4(frame.subarray(14));
  if (isWireError(ipr)) throw new Error(ipr.reason);
  const l4 = frame.subarray(34, 34 + ipr.payloadLength);
  expect(new UdpPacket(l4).checksumOk(ipr.src, ipr.dst), "UDP checksum").to.equal(true);
  const udp = parseUdp(l4, ipr.src, ipr.dst);
  if (isWireError(udp)) throw new Error(udp.reason);
  const dhcp = parseDhcp(udp.payload);
  if (isWireError(dhcp)) throw new Error(dhcp.reason);
  return { eth, ip: ipr, udp, dhcp };
}

/** A client frame: DHCP payload in UDP 68→67 in IPv4 in Ethernet, optionally without checksums. */
function clientFrame(payload: Uint8Array, o: { srcMac?: number; src?: number; dst?: number; dstMac?: number; ipChecksum?: boolean; udpChecksum?: boolean } = {}) {
  const src = o.src ?? 0;
  const dst = o.dst ?? BCAST;
  const udpLenB = 8 + payload.length;
  const f = new Uint8Array(14 + 20 + udpLenB);
  let off = emitEthernet({ dst: o.dstMac ?? MAC_BROADCAST, src: o.srcMac ?? A, ethertype: EtherType.IPv4 }, f);
  off += emitIpv4({ src, dst, protocol: IpProtocol.UDP, ttl: 64, id: 0x7f61, tos: 0, df: false, mf: false, fragmentOffset: 0, payloadLength: udpLenB, options: new Uint8Array(0) }, f, off);
  if (o.ipChecksum === false) f[24] = f[25] = 0;
  emitUdp({ srcPort: 68, dstPort: 67, payload }, f, off, src, dst, { checksum: o.udpChecksum !== false });
  return f;
}

describe("dhcp/service: through the stack with a recording channel", () => {
  it("replays busybox udhcpc's DISCOVER and REQUEST (dhcp-udhcpc.pcap), static lease as recorded: OFFER and ACK of .3", () => {
    const session = loadSession(join(fixtures, "dhcp-udhcpc.pcap"), GW_MAC);
    const { stack, ch, port, service } = stackWithService({ staticLeases: [{ mac: A, ip: ip("192.168.65.3") }] });
    const answers: Uint8Array[][] = [];
    for (const f of session.frames.filter((x) => !x.fromGateway)) {
      const before = ch.sent.length;
      stack.receive(port, f.data);
      answers.push(ch.sent.slice(before));
    }
    expect(answers.map((a) => a.length)).to.deep.equal([1, 1]);
    const [offer, ack] = answers.map((a) => decodeReply(a[0]));
    for (const [r, type] of [[offer, T.Offer], [ack, T.Ack]] as const) {
      expect(r.dhcp.options[0]).to.deep.equal(opt(O.MessageType, Uint8Array.of(type)));
      expect(r.dhcp.xid).to.equal(0x8480876f);
      expect(r.dhcp.yiaddr).to.equal(ip("192.168.65.3"));
      // udhcpc does not set the broadcast bit: unicast to yiaddr at chaddr (RFC 2131 §4.1).
      expect([r.eth.dst, r.eth.src, r.ip.src, r.ip.dst]).to.deep.equal([A, GW_MAC, GW, ip("192.168.65.3")]);
      expect([r.udp.srcPort, r.udp.dstPort]).to.deep.equal([67, 68]);
    }
    expect(service.leases()).to.deep.equal([{ mac: A, ip: ip("192.168.65.3"), expiresAt: HOUR_MS, static: true }]);
    expect(stack.counters.drops).to.deep.equal({});
  });

  it("replays the same frames with the default configuration: OFFER of the hashed .250, NAK of the recorded .3", () => {
    const session = loadSession(join(fixtures, "dhcp-udhcpc.pcap"), GW_MAC);
    const { stack, ch, port } = stackWithService();
    const frames = session.frames.filter((x) => !x.fromGateway);
    stack.receive(port, frames[0].data);
    const offer = decodeReply(ch.sent[0]);
    expect([offer.dhcp.yiaddr, offer.ip.dst, offer.eth.dst]).to.deep.equal([ip("192.168.65.250"), ip("192.168.65.250"), A]);
    stack.receive(port, frames[1].data); // asks for .3, which was never offered
    const nak = decodeReply(ch.sent[1]);
    expect(nak.dhcp.options[0].data[0]).to.equal(T.Nak);
    expect([nak.ip.dst, nak.eth.dst]).to.deep.equal([BCAST, MAC_BROADCAST]);
  });

  it("answers a DISCOVER with UDP checksum 0 (no checksum) by a broadcast OFFER whose option 53 comes first", () => {
    const { stack, ch, port } = stackWithService();
    stack.receive(port, clientFrame(msg(T.Discover, { xid: 0x0100_0000, broadcast: true }), { udpChecksum: false }));
    expect(ch.sent).to.have.length(1);
    const r = decodeReply(ch.sent[0]);
    expect([r.eth.dst, r.ip.dst]).to.deep.equal([MAC_BROADCAST, BCAST]);
    expect([...r.udp.payload.subarray(240, 243)]).to.deep.equal([53, 1, 2]);
  });

  it("answers RootlessKit's DISCOVER whose IPv4 header checksum is 0 too", () => {
    const { stack, ch, port } = stackWithService();
    stack.receive(port, clientFrame(msg(T.Discover, { xid: 0x0100_0000, broadcast: true }), { udpChecksum: false, ipChecksum: false }));
    expect(stack.counters.dropped("ipv4-bad-checksum")).to.equal(0);
    expect(ch.sent).to.have.length(1);
    expect([...decodeReply(ch.sent[0]).udp.payload.subarray(240, 243)]).to.deep.equal([53, 1, 2]);
  });

  it("the same MAC gets the same address on a second connection (RootlessKit's parent, then child)", () => {
    const { stack, ch: ch1, port, service } = stackWithService();
    const ch2 = new RecordingChannel();
    const port2 = stack.attach(ch2);
    const discover = clientFrame(msg(T.Discover, { xid: 0x0100_0000, broadcast: true }), { udpChecksum: false });
    stack.receive(port, discover);
    stack.receive(port2, discover);
    const [a, b] = [decodeReply(ch1.sent[0]), decodeReply(ch2.sent[0])];
    expect(a.dhcp.yiaddr).to.equal(ip("192.168.65.250"));
    expect(b.dhcp.yiaddr).to.equal(a.dhcp.yiaddr);
    expect(service.counters.offers).to.equal(2);
  });

  it("RENEWING by unicast to the gateway gets an ACK unicast to ciaddr at the sender's MAC", () => {
    const { stack, ch, port } = stackWithService();
    const me = ip("192.168.65.250");
    stack.receive(port, clientFrame(msg(T.Request, { ciaddr: me }), { src: me, dst: GW, dstMac: GW_MAC }));
    const r = decodeReply(ch.sent[0]);
    expect([r.dhcp.options[0].data[0], r.eth.dst, r.ip.dst, r.dhcp.yiaddr]).to.deep.equal([T.Ack, A, me, me]);
  });

  it("counts a datagram to port 67 that does not come from port 68, and unbinds on close", () => {
    const { stack, ch, port, service } = stackWithService();
    const f = clientFrame(msg(T.Discover));
    f[34 + 1] = 67; // source port 67 (a relay agent); the UDP checksum no longer matters: zero it
    f[34 + 6] = f[34 + 7] = 0;
    stack.receive(port, f);
    expect(service.counters.dropped("bad-source-port")).to.equal(1);
    service.close();
    stack.receive(port, clientFrame(msg(T.Discover)));
    expect(ch.sent).to.have.length(0);
    expect(stack.counters.dropped("udp-no-service")).to.equal(1);
  });

  it("random bytes and damaged DHCP messages in UDP to port 67 never throw (fast-check)", () => {
    const { stack, ch, port, service } = stackWithService({ maxLeases: 8 });
    const valid = [msg(T.Discover), msg(T.Request, { requested: hashIp(A), serverId: GW }), msg(T.Release, { ciaddr: hashIp(A) })];
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 700 }), fc.tuple(fc.nat(2), fc.nat()).map(([i, seed]) => damaged(valid[i], seed))),
        (payload) => {
          const before = ch.sent.length;
          stack.receive(port, clientFrame(payload));
          for (const f of ch.sent.slice(before)) expect(decodeReply(f).dhcp.op).to.equal(2);
        },
      ),
      { numRuns: 2000 },
    );
    const c = service.counters;
    expect(c.discovers + c.requests + c.releases + Object.values(c.drops).reduce((x, y) => x + (y ?? 0), 0)).to.be.greaterThan(0);
  });
});
