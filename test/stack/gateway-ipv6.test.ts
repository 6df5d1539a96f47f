/**
 * The gateway on IPv6 driven with frames (src/stack/gateway-ipv6.ts, ndp-service.ts,
 * dhcp6-service.ts, config6.ts): NDP (RFC 4861 §7.2, DAD per RFC 4862 §5.4.3), router
 * advertisements for SLAAC with RDNSS/DNSSL (RFC 8106), stateless DHCPv6 (RFC 8415 §6.1), echo,
 * source validation, DNS over IPv6 (AAAA, ip6.arpa PTR), and the off switch.
 */
import { expect } from "chai";
import { NetworkStack, type StackOptions } from "../../src/stack/stack.js";
import { RecordingChannel, GUEST_MAC, GW_MAC } from "../support/stack.js";
import { NextHeader, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { frame, ndpFrame, udpFrame, sent6 } from "../support/frames6.js";
import { IPV6_ALL_NODES, IPV6_ALL_ROUTERS, IPV6_UNSPECIFIED, formatIpv6, linkLocalFromMac, multicastMac6, parseIpv6Address, solicitedNode, type Ipv6Addr as A } from "../../src/ipv6/addr.js";
import { parseNdp, RaFlag } from "../../src/ipv6/ndp.js";
import { PrefixFlag } from "../../src/ipv6/ndp-options.js";
import { emitIcmpv6, icmpv6Len, parseIcmpv6, type Icmpv6Repr } from "../../src/ipv6/icmpv6.js";
import { ALL_DHCP_RELAY_AGENTS_AND_SERVERS, Dhcpv6MsgType, emitDhcpv6, dhcpv6Len, duidLl, parseDhcpv6, type Dhcpv6Message } from "../../src/ipv6/dhcpv6.js";
import { isWireError } from "../../src/common/wire-error.js";
import { getU16 } from "../../src/common/bytes.js";
import { createDnsServer } from "../../src/stack/dns-service.js";
import dnsPacket from "dns-packet";

const ip6 = (s: string): A => parseIpv6Address(s)!;
const GW6 = ip6("fd73:6b69:6666::1");
const ALIAS6 = ip6("fd73:6b69:6666::2");
const GW_LL = linkLocalFromMac(GW_MAC);
const GUEST_LL = linkLocalFromMac(GUEST_MAC);
const GUEST6 = ip6("fd73:6b69:6666:0:5054:ff:fe12:3456");

function setup(opts: StackOptions = {}) {
  const stack = new NetworkStack(opts);
  const ch = new RecordingChannel();
  const port = stack.attach(ch);
  return { stack, ch, port };
}

describe("stack: the gateway on IPv6", () => {
  let stack: NetworkStack;
  afterEach(() => stack?.close());

  it("answers a neighbour solicitation for the gateway with a solicited, router NA carrying its MAC", () => {
    const s = setup();
    stack = s.stack;
    s.stack.receive(s.port, ndpFrame(GUEST6, solicitedNode(GW6), { kind: "ns", target: GW6, options: [{ type: "source-lla", mac: GUEST_MAC }] }, multicastMac6(solicitedNode(GW6))));
    const out = sent6(s.ch);
    expect(out).to.have.length(1);
    const na = parseNdp(out[0].l4, out[0].src, out[0].dst, out[0].hopLimit);
    if (isWireError(na) || na.kind !== "na") throw new Error(`not an NA: ${JSON.stringify(na)}`);
    expect(formatIpv6(na.target)).to.equal("fd73:6b69:6666::1");
    expect(na.solicited && na.router && na.override).to.equal(true);
    expect(na.options).to.deep.include({ type: "target-lla", mac: GW_MAC });
    expect(out[0].dstMac).to.equal(GUEST_MAC);
    expect(formatIpv6(out[0].dst)).to.equal(formatIpv6(GUEST6));
    // The guest was learned from the solicitation.
    expect(s.stack.ipv6!.neighbors.lookup(GUEST6)?.mac).to.equal(GUEST_MAC);
  });

  it("answers for the link-local address and the host alias too, not for another guest's", () => {
    const s = setup();
    stack = s.stack;
    for (const t of [GW_LL, ALIAS6, ip6("fd73:6b69:6666::99")]) {
      s.stack.receive(s.port, ndpFrame(GUEST_LL, solicitedNode(t), { kind: "ns", target: t, options: [{ type: "source-lla", mac: GUEST_MAC }] }, multicastMac6(solicitedNode(t))));
    }
    expect(sent6(s.ch).map((x) => formatIpv6((parseNdp(x.l4, x.src, x.dst, 255) as { target: A }).target))).to.deep.equal([formatIpv6(GW_LL), "fd73:6b69:6666::2"]);
    expect(s.stack.counters.dropped("ndp-not-for-us")).to.equal(1);
  });

  it("DAD: defends its own address to all-nodes, never claims a guest's tentative address", () => {
    const s = setup();
    stack = s.stack;
    // The guest probes its own tentative address: silence (else it would think it duplicated).
    s.stack.receive(s.port, ndpFrame(IPV6_UNSPECIFIED, solicitedNode(GUEST6), { kind: "ns", target: GUEST6, options: [] }, multicastMac6(solicitedNode(GUEST6))));
    expect(sent6(s.ch)).to.have.length(0);
    expect(s.stack.counters.dropped("ndp-dad-foreign")).to.equal(1);
    expect(s.stack.ipv6!.neighbors.size).to.equal(0);
    // A probe for the gateway's address is defended.
    s.stack.receive(s.port, ndpFrame(IPV6_UNSPECIFIED, solicitedNode(GW6), { kind: "ns", target: GW6, options: [] }, multicastMac6(solicitedNode(GW6))));
    const out = sent6(s.ch);
    expect(out).to.have.length(1);
    expect(formatIpv6(out[0].dst)).to.equal("ff02::1");
    expect(out[0].dstMac).to.equal(multicastMac6(IPV6_ALL_NODES));
    const na = parseNdp(out[0].l4, out[0].src, out[0].dst, out[0].hopLimit);
    if (isWireError(na) || na.kind !== "na") throw new Error("not an NA");
    expect(na.solicited).to.equal(false);
    expect(s.stack.counters.ndpDadDefended).to.equal(1);
  });

  it("answers a router solicitation with an RA: prefix (L, A), MTU, RDNSS, DNSSL, O flag, from its link-local", () => {
    const s = setup({ mtu: 1400 });
    stack = s.stack;
    s.stack.receive(s.port, ndpFrame(IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, { kind: "rs", options: [] }, multicastMac6(IPV6_ALL_ROUTERS)));
    const out = sent6(s.ch);
    expect(out).to.have.length(1);
    expect(out[0].hopLimit).to.equal(255);
    expect(formatIpv6(out[0].src)).to.equal(formatIpv6(GW_LL));
    const ra = parseNdp(out[0].l4, out[0].src, out[0].dst, out[0].hopLimit);
    if (isWireError(ra) || ra.kind !== "ra") throw new Error("not an RA");
    expect(ra.flags & RaFlag.Other).to.equal(RaFlag.Other);
    expect(ra.flags & RaFlag.Managed).to.equal(0);
    expect(ra.routerLifetime).to.be.greaterThan(0);
    const prefix = ra.options.find((o) => o.type === "prefix");
    if (prefix?.type !== "prefix") throw new Error("no prefix option");
    expect(formatIpv6(prefix.prefix)).to.equal("fd73:6b69:6666::");
    expect(prefix.prefixLength).to.equal(64);
    expect(prefix.flags & (PrefixFlag.OnLink | PrefixFlag.Autonomous)).to.equal(PrefixFlag.OnLink | PrefixFlag.Autonomous);
    expect(ra.options).to.deep.include({ type: "mtu", mtu: 1400 });
    const rdnss = ra.options.find((o) => o.type === "rdnss");
    if (rdnss?.type !== "rdnss") throw new Error("no RDNSS");
    expect(rdnss.servers.map(formatIpv6)).to.deep.equal(["fd73:6b69:6666::1"]);
    expect(ra.options.find((o) => o.type === "dnssl")).to.deep.include({ domains: ["internal"] });
    // A second RS at once is rate limited (counted), not answered.
    s.stack.receive(s.port, ndpFrame(IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, { kind: "rs", options: [] }, multicastMac6(IPV6_ALL_ROUTERS)));
    expect(sent6(s.ch)).to.have.length(1);
    expect(s.stack.counters.dropped("ndp-rs-rate-limited")).to.equal(1);
  });

  it("a configured subnet6 is advertised and owned; a bad one is rejected", () => {
    const s = setup({ subnet6: "fd00:1:2:3::/64" });
    stack = s.stack;
    expect(formatIpv6(s.stack.config.ipv6!.gateway)).to.equal("fd00:1:2:3::1");
    expect(() => new NetworkStack({ subnet6: "fd00::/48" })).to.throw(/must be \/64/);
    expect(() => new NetworkStack({ subnet6: "nonsense" })).to.throw(/invalid subnet6/);
  });

  it("echo to the gateway is answered; sources outside link-local and the prefix, or ours, are dropped", () => {
    const s = setup();
    stack = s.stack;
    const echo = (src: A, dst: A) => {
      const m: Icmpv6Repr = { kind: "echo-request", id: 7, seq: 1, data: new Uint8Array([1, 2, 3]) };
      const b = new Uint8Array(icmpv6Len(m));
      emitIcmpv6(m, b, 0, src, dst);
      return frame(src, dst, NextHeader.ICMPv6, b);
    };
    s.stack.receive(s.port, echo(GUEST6, GW6));
    s.stack.receive(s.port, echo(ip6("2001:db8::5"), GW6));
    s.stack.receive(s.port, echo(ALIAS6, GW6));
    // Beyond the gateway: not forwarded, refused at once (administratively prohibited).
    s.stack.receive(s.port, echo(GUEST6, ip6("2001:db8::7")));
    const out = sent6(s.ch);
    expect(out).to.have.length(2);
    const r = parseIcmpv6(out[0].l4, out[0].src, out[0].dst);
    if (isWireError(r) || r.kind !== "echo-reply") throw new Error("not an echo reply");
    expect([r.id, r.seq, [...r.data]]).to.deep.equal([7, 1, [1, 2, 3]]);
    const refused = parseIcmpv6(out[1].l4, out[1].src, out[1].dst);
    if (isWireError(refused) || refused.kind !== "dest-unreachable") throw new Error("not unreachable");
    expect(refused.code).to.equal(1);
    expect(s.stack.counters.dropped("src6-not-allowed")).to.equal(2);
  });

  it("stateless DHCPv6: an INFORMATION-REQUEST gets a REPLY with the DNS server and domain; SOLICIT is refused", () => {
    const s = setup();
    stack = s.stack;
    const ask = (msgType: number) => {
      const m: Dhcpv6Message = { msgType, transactionId: 0x123456, options: [{ type: "client-id", duid: duidLl(GUEST_MAC) }, { type: "oro", requested: [23, 24] }] };
      const b = new Uint8Array(dhcpv6Len(m));
      emitDhcpv6(m, b, 0);
      s.stack.receive(s.port, udpFrame(GUEST_LL, 546, ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 547, b, multicastMac6(ALL_DHCP_RELAY_AGENTS_AND_SERVERS)));
    };
    ask(Dhcpv6MsgType.InformationRequest);
    ask(Dhcpv6MsgType.Solicit);
    const out = sent6(s.ch);
    expect(out).to.have.length(1);
    expect(getU16(out[0].l4, 2)).to.equal(546);
    expect(upperLayerChecksum6(out[0].l4, 0, out[0].l4.length, out[0].src, out[0].dst, NextHeader.UDP)).to.equal(0);
    const reply = parseDhcpv6(out[0].l4.subarray(8));
    if (isWireError(reply)) throw new Error(reply.reason);
    expect(reply.msgType).to.equal(Dhcpv6MsgType.Reply);
    expect(reply.transactionId).to.equal(0x123456);
    const dns = reply.options.find((o) => o.type === "dns-servers");
    expect(dns?.type === "dns-servers" && dns.servers.map(formatIpv6)).to.deep.equal(["fd73:6b69:6666::1"]);
    expect(reply.options.find((o) => o.type === "domain-list")).to.deep.include({ domains: ["internal"] });
    expect(s.stack.counters.dropped("dhcpv6-refused")).to.equal(1);
  });

  it("UDP to an unbound gateway port gets ICMPv6 port unreachable", () => {
    const s = setup();
    stack = s.stack;
    s.stack.receive(s.port, udpFrame(GUEST6, 4000, GW6, 9999, new Uint8Array(4)));
    const out = sent6(s.ch);
    expect(out).to.have.length(1);
    const r = parseIcmpv6(out[0].l4, out[0].src, out[0].dst);
    if (isWireError(r) || r.kind !== "dest-unreachable") throw new Error("not unreachable");
    expect(r.code).to.equal(4);
  });

  it("DNS over IPv6 UDP: AAAA of host.internal and gateway.internal, PTR in ip6.arpa", async () => {
    const s = setup();
    stack = s.stack;
    const dns = createDnsServer(s.stack, { hostsPath: null, servers: [] });
    try {
      const q = (name: string, type: "AAAA" | "PTR") => s.stack.receive(s.port, udpFrame(GUEST6, 5353, GW6, 53, dnsPacket.encode({ type: "query", id: 9, questions: [{ type, name }] })));
      q("host.internal", "AAAA");
      q("gateway.internal", "AAAA");
      q("2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.6.6.6.9.6.b.6.3.7.d.f.ip6.arpa", "PTR");
      await new Promise((r) => setTimeout(r, 20));
      const answers = sent6(s.ch).map((x) => dnsPacket.decode(Buffer.from(x.l4.subarray(8))).answers?.map((a) => String((a as { data: unknown }).data)));
      expect(answers).to.deep.equal([["fd73:6b69:6666::2"], ["fd73:6b69:6666::1"], ["host.internal"]]);
    } finally {
      dns.close();
    }
  });

  it("with ipv6: false every IPv6 frame is dropped (counted) and nothing is answered", () => {
    const s = setup({ ipv6: false });
    stack = s.stack;
    s.stack.receive(s.port, ndpFrame(IPV6_UNSPECIFIED, IPV6_ALL_ROUTERS, { kind: "rs", options: [] }, multicastMac6(IPV6_ALL_ROUTERS)));
    expect(s.ch.sent).to.have.length(0);
    expect(s.stack.counters.dropped("ipv6-off")).to.equal(1);
    expect(s.stack.ipv6).to.equal(undefined);
  });
});
