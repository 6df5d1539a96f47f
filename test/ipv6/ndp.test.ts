/** Tests of src/ipv6/ndp.ts and ndp-options.ts: ND messages (RFC 4861) and options (RFC 8106) against the captured Linux/dnsmasq messages, receive checks, round trips. */
import { expect } from "chai";
import fc from "fast-check";
import { WireError } from "../../src/common/wire-error.js";
import { formatIpv6 } from "../../src/ipv6/addr.js";
import { emitNdp, NDP_HOP_LIMIT, ndpLen, parseNdp, RaFlag, type NdpRepr } from "../../src/ipv6/ndp.js";
import { emitNdpOption, ndpOptionLen, parseNdpOptions, PrefixFlag, type NdpOption } from "../../src/ipv6/ndp-options.js";
import { parseIpv6, upperLayerChecksum6 } from "../../src/ipv6/ipv6.js";
import { damaged, mac, u8, u16 } from "../support/arbitraries.js";
import { a6, fixturePackets, hex, ipv6Addr, ok, reasonOf, toHex } from "./helpers.js";

const ROUTER_LL = a6("fe80::50:ff:fe00:1");
const GUEST_LL = a6("fe80::5054:ff:fe12:3456");
const ALL_NODES = a6("ff02::1");

function emitted(r: NdpRepr, src = ROUTER_LL, dst = ALL_NODES): Uint8Array {
  const buf = new Uint8Array(ndpLen(r));
  expect(emitNdp(r, buf, 0, src, dst)).to.equal(buf.length);
  return buf;
}

/** Set the checksum of an ND message again after a test changed it. */
function refill(b: Uint8Array, src = ROUTER_LL, dst = ALL_NODES): Uint8Array {
  b[2] = b[3] = 0;
  const c = upperLayerChecksum6(b, 0, b.length, src, dst, 58);
  b[2] = c >>> 8;
  b[3] = c & 0xff;
  return b;
}

const domainArb = fc
  .array(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join("."));
const optionArb: fc.Arbitrary<NdpOption> = fc.oneof(
  fc.record({ type: fc.constantFrom("source-lla" as const, "target-lla" as const), mac: mac() }),
  fc.record({
    type: fc.constant("prefix" as const),
    prefixLength: fc.nat(128),
    flags: u8(),
    validLifetime: fc.integer({ min: 0, max: 0xffff_ffff }),
    preferredLifetime: fc.integer({ min: 0, max: 0xffff_ffff }),
    prefix: ipv6Addr(),
  }),
  fc.record({ type: fc.constant("mtu" as const), mtu: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ type: fc.constant("redirected-header" as const), data: fc.nat(10).chain((n) => fc.uint8Array({ minLength: 8 * n, maxLength: 8 * n })) }),
  fc.record({ type: fc.constant("rdnss" as const), lifetime: fc.integer({ min: 0, max: 0xffff_ffff }), servers: fc.array(ipv6Addr(), { minLength: 1, maxLength: 4 }) }),
  fc.record({ type: fc.constant("dnssl" as const), lifetime: fc.integer({ min: 0, max: 0xffff_ffff }), domains: fc.array(domainArb, { minLength: 1, maxLength: 4 }) }),
  fc.record({
    type: fc.constant("other" as const),
    code: u8().filter((t) => ![1, 2, 3, 4, 5, 25, 31].includes(t)),
    data: fc.nat(5).chain((n) => fc.uint8Array({ minLength: 8 * n + 6, maxLength: 8 * n + 6 })),
  }),
);
const options = fc.array(optionArb, { maxLength: 5 });
const reprArb: fc.Arbitrary<NdpRepr> = fc.oneof(
  fc.record({ kind: fc.constant("rs" as const), options }),
  fc.record({
    kind: fc.constant("ra" as const), curHopLimit: u8(), flags: u8(), routerLifetime: u16(),
    reachableTime: fc.integer({ min: 0, max: 0xffff_ffff }), retransTimer: fc.integer({ min: 0, max: 0xffff_ffff }), options,
  }),
  fc.record({ kind: fc.constant("ns" as const), target: ipv6Addr().filter((a) => a.w0 >>> 24 !== 0xff), options }),
  fc.record({
    kind: fc.constant("na" as const), router: fc.boolean(), solicited: fc.constant(false), override: fc.boolean(),
    target: ipv6Addr().filter((a) => a.w0 >>> 24 !== 0xff), options,
  }),
  fc.record({ kind: fc.constant("redirect" as const), target: ipv6Addr().map((a) => a6(`fe80::${(a.w3 & 0xffff).toString(16)}`)), destination: ipv6Addr().filter((a) => a.w0 >>> 24 !== 0xff), options }),
);

// dnsmasq's Router Advertisement as a gateway would describe it (ndp-slaac.pcap frame 3).
const GATEWAY_RA: NdpRepr = {
  kind: "ra",
  curHopLimit: 64,
  flags: RaFlag.Other,
  routerLifetime: 1800,
  reachableTime: 0,
  retransTimer: 0,
  options: [
    { type: "prefix", prefixLength: 64, flags: PrefixFlag.OnLink | PrefixFlag.Autonomous, validLifetime: 3600, preferredLifetime: 3600, prefix: a6("fd53:6b69:6666::") },
    { type: "mtu", mtu: 1500 },
    { type: "source-lla", mac: 0x025000000001 },
    { type: "dnssl", lifetime: 3600, domains: ["internal"] },
    { type: "rdnss", lifetime: 3600, servers: [a6("fd53:6b69:6666::1")] },
  ],
};

describe("ipv6/ndp: Neighbor Discovery (RFC 4861, RFC 8106)", () => {
  it("re-emits every ND message of the Linux/dnsmasq capture byte for byte", () => {
    const kinds: string[] = [];
    for (const { frame, ip } of fixturePackets("ndp-slaac.pcap")) {
      const h = ok(parseIpv6(ip));
      if (h.nextHeader !== 58 || ip[40] < 133 || ip[40] > 137) continue;
      const msg = ip.subarray(40, 40 + h.payloadLength);
      const r = parseNdp(msg, h.src, h.dst, h.hopLimit);
      if (r instanceof WireError) throw new Error(`frame ${frame}: ${r.toString()}`);
      kinds.push(`${frame}:${r.kind}`);
      expect(toHex(emitted(r, h.src, h.dst)), `frame ${frame}`).to.equal(toHex(msg));
    }
    expect(kinds).to.deep.equal(["3:ra", "4:ns", "5:ns", "8:rs", "9:ra", "10:ns", "11:na"]);
  });

  it("emits the gateway's RA (prefix, MTU, SLLA, DNSSL, RDNSS) exactly as dnsmasq sent it", () => {
    const frame3 = fixturePackets("ndp-slaac.pcap").find((p) => p.frame === 3)!.ip;
    expect(toHex(emitted(GATEWAY_RA))).to.equal(toHex(frame3.subarray(40)));
    const r = ok(parseNdp(frame3.subarray(40), ROUTER_LL, ALL_NODES, NDP_HOP_LIMIT));
    expect(r).to.deep.equal(GATEWAY_RA);
  });

  it("emits the NA a gateway answers with (router, solicited, override, TLLA) as Linux did (frame 11)", () => {
    const frame11 = fixturePackets("ndp-slaac.pcap").find((p) => p.frame === 11)!.ip;
    const h = ok(parseIpv6(frame11));
    const na: NdpRepr = { kind: "na", router: true, solicited: true, override: true, target: a6("fd53:6b69:6666::1"), options: [{ type: "target-lla", mac: 0x025000000001 }] };
    expect(toHex(emitted(na, h.src, h.dst))).to.equal(toHex(frame11.subarray(40)));
    // And the DAD probe of frame 5: from ::, to the solicited-node group, with a Nonce option (RFC 7527) kept raw.
    const frame5 = fixturePackets("ndp-slaac.pcap").find((p) => p.frame === 5)!.ip;
    const dad = ok(parseNdp(frame5.subarray(40), a6("::"), a6("ff02::1:ff12:3456"), 255));
    if (dad.kind !== "ns") throw new Error(dad.kind);
    expect(formatIpv6(dad.target)).to.equal("fe80::5054:ff:fe12:3456");
    expect(dad.options).to.deep.equal([{ type: "other", code: 14, data: hex("4ab3a13f5f31") }]);
  });

  it("parse(emit(r)) equals r for every message and option kind", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        expect(parseNdp(emitted(r, GUEST_LL, ALL_NODES), GUEST_LL, ALL_NODES, 255)).to.deep.equal(r);
      }),
      { numRuns: 300 },
    );
  });

  it("applies the receive checks of RFC 4861 §6.1, §7.1 and §8.1", () => {
    const ns: NdpRepr = { kind: "ns", target: GUEST_LL, options: [{ type: "source-lla", mac: 0x525400123456 }] };
    const b = emitted(ns, ROUTER_LL, GUEST_LL);
    const check = (x: Uint8Array, src = ROUTER_LL, dst = GUEST_LL, hop = 255) => parseNdp(x, src, dst, hop);
    expect(ok(check(b)).kind).to.equal("ns");
    expect(reasonOf(check(b, ROUTER_LL, GUEST_LL, 254), "ndp")).to.equal("bad hop limit");
    expect(reasonOf(check(refill(Uint8Array.from(b).fill(1, 1, 2), ROUTER_LL, GUEST_LL)), "ndp")).to.equal("bad code");
    const other = a6("fe80::99");
    expect(reasonOf(check(b, other, GUEST_LL), "ndp")).to.equal("bad checksum");
    expect(ok(parseNdp(b, other, GUEST_LL, 255, { verifyChecksum: false })).kind).to.equal("ns");
    expect(reasonOf(check(b.subarray(0, 23)), "ndp")).to.equal("truncated");
    expect(reasonOf(parseNdp(hex("8000000000000000"), ROUTER_LL, GUEST_LL, 255), "ndp")).to.equal("not ndp");
    // NS: no multicast target; DAD (from ::) only to a solicited-node group and without SLLA.
    expect(reasonOf(check(emitted({ ...ns, target: ALL_NODES }, ROUTER_LL, GUEST_LL)), "ndp")).to.equal("multicast target");
    const dadDst = a6("ff02::1:ff12:3456");
    expect(reasonOf(parseNdp(emitted(ns, a6("::"), dadDst), a6("::"), dadDst, 255), "ndp")).to.equal("source lla from unspecified");
    const bare: NdpRepr = { kind: "ns", target: GUEST_LL, options: [] };
    expect(ok(parseNdp(emitted(bare, a6("::"), dadDst), a6("::"), dadDst, 255)).kind).to.equal("ns");
    expect(reasonOf(parseNdp(emitted(bare, a6("::"), ALL_NODES), a6("::"), ALL_NODES, 255), "ndp")).to.equal("dad not to solicited-node");
    // NA: solicited only to unicast.
    const na: NdpRepr = { kind: "na", router: false, solicited: true, override: true, target: GUEST_LL, options: [] };
    expect(reasonOf(parseNdp(emitted(na, GUEST_LL, ALL_NODES), GUEST_LL, ALL_NODES, 255), "ndp")).to.equal("solicited to multicast");
    expect(ok(parseNdp(emitted(na, GUEST_LL, ROUTER_LL), GUEST_LL, ROUTER_LL, 255)).kind).to.equal("na");
    // RS from :: without SLLA; RA and Redirect only from link-local sources.
    const rs: NdpRepr = { kind: "rs", options: [{ type: "source-lla", mac: 1 }] };
    expect(reasonOf(parseNdp(emitted(rs, a6("::"), a6("ff02::2")), a6("::"), a6("ff02::2"), 255), "ndp")).to.equal("source lla from unspecified");
    const ula = a6("fd53:6b69:6666::1");
    expect(reasonOf(parseNdp(emitted(GATEWAY_RA, ula, ALL_NODES), ula, ALL_NODES, 255), "ndp")).to.equal("router source not link-local");
    const redirect: NdpRepr = { kind: "redirect", target: a6("fe80::9"), destination: a6("2001:db8::9"), options: [] };
    expect(ok(parseNdp(emitted(redirect, ROUTER_LL, GUEST_LL), ROUTER_LL, GUEST_LL, 255)).kind).to.equal("redirect");
    expect(reasonOf(parseNdp(emitted(redirect, ula, GUEST_LL), ula, GUEST_LL, 255), "ndp")).to.equal("router source not link-local");
    const offLink = { ...redirect, target: a6("2001:db8::8") };
    expect(reasonOf(parseNdp(emitted(offLink, ROUTER_LL, GUEST_LL), ROUTER_LL, GUEST_LL, 255), "ndp")).to.equal("bad redirect");
    const onLinkDest = { ...redirect, target: a6("2001:db8::9") }; // target = destination: on-link
    expect(ok(parseNdp(emitted(onLinkDest, ROUTER_LL, GUEST_LL), ROUTER_LL, GUEST_LL, 255)).kind).to.equal("redirect");
  });

  it("rejects malformed options (RFC 4861 §4.6, RFC 8106 §5)", () => {
    const bad = (o: string) => parseNdpOptions(hex(o), 0, hex(o).length);
    expect(reasonOf(bad("0100 525400123456"), "ndp")).to.equal("bad option length"); // length 0
    expect(reasonOf(bad("0102 525400123456"), "ndp")).to.equal("bad option length"); // past the end
    expect(reasonOf(bad("01"), "ndp")).to.equal("bad option length");
    expect(reasonOf(bad("0502 0000 000005dc 0000000000000000"), "ndp")).to.equal("bad mtu option");
    expect(reasonOf(bad(`0304 81c0 00000e10 00000e10 00000000 ${"00".repeat(16)}`), "ndp")).to.equal("bad prefix option");
    expect(reasonOf(bad(`1902 0000 00000e10 ${"00".repeat(8)}`), "ndp")).to.equal("bad rdnss"); // RFC 8106 §5.1: at least 3
    expect(reasonOf(bad(`1904 0000 00000e10 ${"00".repeat(24)}`), "ndp")).to.equal("bad rdnss"); // even
    expect(reasonOf(bad("1f01 0000 00000e10"), "ndp")).to.equal("bad dnssl"); // RFC 8106 §5.2: at least 2
    expect(reasonOf(bad("1f02 0000 00000e10 c00c000000000000"), "ndp")).to.equal("bad dnssl"); // a compression pointer
    expect(reasonOf(bad("1f02 0000 00000e10 0561620063640000"), "ndp")).to.equal("bad dnssl"); // a zero inside a label
    expect(reasonOf(bad("1f02 0000 00000e10 0361626300000001"), "ndp")).to.equal("bad dnssl"); // padding not zero
    expect(reasonOf(bad("1f02 0000 00000e10 0761626364656667"), "ndp")).to.equal("bad dnssl"); // name without its end
    expect(ok(bad("1f02 0000 00000e10 0161000162000000"))).to.deep.equal([{ type: "dnssl", lifetime: 3600, domains: ["a", "b"] }]);
    // A link-layer address option that is not 8 bytes (not Ethernet) is kept raw.
    expect(ok(bad("0102 0000000000000000000000000000"))).to.deep.equal([{ type: "other", code: 1, data: hex("0000000000000000000000000000") }]);
    // Emit refuses what it cannot encode.
    const buf = new Uint8Array(4096);
    expect(() => emitNdpOption({ type: "rdnss", lifetime: 1, servers: [] }, buf, 0)).to.throw(RangeError);
    expect(() => emitNdpOption({ type: "dnssl", lifetime: 1, domains: [] }, buf, 0)).to.throw(RangeError);
    expect(() => emitNdpOption({ type: "dnssl", lifetime: 1, domains: ["a..b"] }, buf, 0)).to.throw(RangeError);
    expect(() => emitNdpOption({ type: "dnssl", lifetime: 1, domains: [""] }, buf, 0)).to.throw(RangeError);
    expect(() => emitNdpOption({ type: "dnssl", lifetime: 1, domains: ["x".repeat(64)] }, buf, 0)).to.throw(RangeError);
    expect(() => emitNdpOption({ type: "other", code: 99, data: new Uint8Array(2040) }, buf, 0)).to.throw(RangeError);
    expect(ndpOptionLen({ type: "dnssl", lifetime: 1, domains: ["internal"] })).to.equal(24);
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.uint8Array({ maxLength: 64 }), (r, seed, junk) => {
        for (const input of [damaged(emitted(r, GUEST_LL, ALL_NODES), seed), junk]) {
          const p = parseNdp(input, GUEST_LL, ALL_NODES, 255, { verifyChecksum: false });
          expect(p instanceof WireError || typeof p.kind === "string").to.equal(true);
          const o = parseNdpOptions(input, 0, input.length);
          expect(o instanceof WireError || Array.isArray(o)).to.equal(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
