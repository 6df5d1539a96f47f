/** Tests of src/ipv6/addr.ts: RFC 5952 text form (against Node's URL serialiser too), RFC 4291 parsing, derived addresses as Linux derives them, prefixes, hashing. */
import { expect } from "chai";
import fc from "fast-check";
import {
  addrEqualsAt,
  eui64FromMac,
  formatIpv6,
  hashIpv6,
  inPrefix6,
  IPV6_ALL_NODES,
  ipv6Bytes,
  ipv6Equal,
  isLinkLocal6,
  isMulticast6,
  isSolicitedNode,
  isUniqueLocal6,
  isUnspecified6,
  linkLocalFromMac,
  maskPrefix6,
  multicastMac6,
  parseIpv6Address,
  parseIpv6Prefix,
  readIpv6Addr,
  solicitedNode,
  writeIpv6Addr,
  Ipv6Addr,
} from "../../src/ipv6/addr.js";
import { formatMac } from "../../src/common/addr.js";
import { a6, ipv6Addr, toHex } from "./helpers.js";

describe("ipv6/addr (RFC 4291 §2, RFC 5952)", () => {
  it("formats the RFC 5952 §4 cases in the recommended form", () => {
    const cases: Array<[string, string]> = [
      ["2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"], // §4.1 no leading zeros, §4.2.1 longest run
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2 one zero group is not shortened
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // §4.2.3 the longest run
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // §4.2.3 the first of equal runs
      ["2001:DB8::A", "2001:db8::a"], // §4.3 lower case
      ["0:0:0:0:0:0:0:0", "::"],
      ["0:0:0:0:0:0:0:1", "::1"],
      ["1:0:0:0:0:0:0:0", "1::"],
      ["fe80::5054:00ff:fe12:3456", "fe80::5054:ff:fe12:3456"],
      ["::ffff:c000:0201", "::ffff:192.0.2.1"], // §5 IPv4-mapped
      ["fd53:6b69:6666:0:5054:ff:fe12:3456", "fd53:6b69:6666:0:5054:ff:fe12:3456"],
    ];
    for (const [input, want] of cases) expect(formatIpv6(a6(input)), input).to.equal(want);
  });

  it("agrees with the WHATWG URL host serialiser (Node's URL) on random addresses", () => {
    fc.assert(
      fc.property(ipv6Addr(), (a) => {
        fc.pre(!(a.w0 === 0 && a.w1 === 0 && a.w2 === 0xffff)); // URL prints mapped addresses in hex
        expect(formatIpv6(a)).to.equal(new URL(`http://[${formatIpv6(a)}]/`).hostname.slice(1, -1));
        // and the long form parses to the same address Node normalises
        const long = [a.w0 >>> 16, a.w0 & 0xffff, a.w1 >>> 16, a.w1 & 0xffff, a.w2 >>> 16, a.w2 & 0xffff, a.w3 >>> 16, a.w3 & 0xffff]
          .map((g) => g.toString(16).padStart(4, "0"))
          .join(":");
        expect(new URL(`http://[${long}]/`).hostname.slice(1, -1)).to.equal(formatIpv6(a));
      }),
      { numRuns: 300 },
    );
  });

  it("parse(format(a)) equals a; bytes round-trip", () => {
    fc.assert(
      fc.property(ipv6Addr(), fc.nat(7), (a, off) => {
        expect(parseIpv6Address(formatIpv6(a))).to.deep.equal(a);
        const b = new Uint8Array(off + 16);
        writeIpv6Addr(b, off, a);
        expect(readIpv6Addr(b, off)).to.deep.equal(a);
        expect(addrEqualsAt(b, off, a)).to.equal(true);
        expect(toHex(ipv6Bytes(a))).to.equal(toHex(b.subarray(off)));
      }),
      { numRuns: 300 },
    );
  });

  it("parses every RFC 4291 §2.2 text form and rejects malformed ones", () => {
    expect(a6("2001:DB8:0:0:8:800:200C:417A")).to.deep.equal(a6("2001:db8::8:800:200c:417a"));
    expect(a6("FF01::101")).to.deep.equal(new Ipv6Addr(0xff010000, 0, 0, 0x101));
    expect(a6("::13.1.68.3")).to.deep.equal(new Ipv6Addr(0, 0, 0, 0x0d014403));
    expect(a6("::FFFF:129.144.52.38")).to.deep.equal(new Ipv6Addr(0, 0, 0xffff, 0x81903426));
    expect(a6("0:0:0:0:0:0:13.1.68.3")).to.deep.equal(a6("::13.1.68.3"));
    for (const bad of [
      "", ":", ":::", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "g::", "1:2:3:4:5:6:7::8",
      "::1.2.3", "::256.1.1.1", "::1.2.3.4:5", "fe80::1%eth0", "1:2:3:4:5:6:7:8::", " ::1", "::1/64",
    ]) {
      expect(parseIpv6Address(bad), JSON.stringify(bad)).to.equal(undefined);
    }
    expect(parseIpv6Prefix("fd53:6b69:6666::/64")).to.deep.equal({ addr: a6("fd53:6b69:6666::"), len: 64 });
    expect(parseIpv6Prefix("::/129")).to.equal(undefined);
    expect(parseIpv6Prefix("::")).to.equal(undefined);
  });

  it("classifies scopes (RFC 4291 §2.4, RFC 4193)", () => {
    expect(isUnspecified6(a6("::"))).to.equal(true);
    expect(isUnspecified6(a6("::1"))).to.equal(false);
    expect(isLinkLocal6(a6("fe80::1"))).to.equal(true);
    expect(isLinkLocal6(a6("febf::1"))).to.equal(true);
    expect(isLinkLocal6(a6("fec0::1"))).to.equal(false);
    expect(isUniqueLocal6(a6("fd53::1"))).to.equal(true);
    expect(isUniqueLocal6(a6("fc00::"))).to.equal(true);
    expect(isUniqueLocal6(a6("fe00::"))).to.equal(false);
    expect(isMulticast6(IPV6_ALL_NODES)).to.equal(true);
    expect(isMulticast6(a6("fe80::"))).to.equal(false);
  });

  it("derives solicited-node, multicast MAC and EUI-64 as Linux did in the capture", () => {
    const guest = a6("fd53:6b69:6666:0:5054:ff:fe12:3456");
    // fixtures/pcaps/ipv6/ndp-slaac.pcap frame 4: DAD to ff02::1:ff12:3456, Ethernet 33:33:ff:12:34:56.
    expect(formatIpv6(solicitedNode(guest))).to.equal("ff02::1:ff12:3456");
    expect(isSolicitedNode(solicitedNode(guest))).to.equal(true);
    expect(isSolicitedNode(IPV6_ALL_NODES)).to.equal(false);
    expect(formatMac(multicastMac6(solicitedNode(guest)))).to.equal("33:33:ff:12:34:56");
    expect(formatMac(multicastMac6(IPV6_ALL_NODES))).to.equal("33:33:00:00:00:01");
    // RFC 4291 Appendix A: the U/L bit inverted, ff:fe in the middle.
    expect(formatIpv6(linkLocalFromMac(0x525400123456))).to.equal("fe80::5054:ff:fe12:3456");
    expect(formatIpv6(linkLocalFromMac(0x025000000001))).to.equal("fe80::50:ff:fe00:1");
    expect(eui64FromMac(0xffffffffffff)).to.deep.equal([0xfdffffff, 0xfeffffff]);
  });

  it("masks prefixes and tests membership", () => {
    const a = a6("fd53:6b69:6666:1:2:3:4:5");
    expect(formatIpv6(maskPrefix6(a, 64))).to.equal("fd53:6b69:6666:1::");
    expect(formatIpv6(maskPrefix6(a, 48))).to.equal("fd53:6b69:6666::");
    expect(formatIpv6(maskPrefix6(a, 0))).to.equal("::");
    expect(maskPrefix6(a, 128)).to.deep.equal(a);
    expect(formatIpv6(maskPrefix6(a, 65))).to.equal("fd53:6b69:6666:1::");
    expect(formatIpv6(maskPrefix6(a6("::ffff:ffff:ffff:ffff"), 97))).to.equal("::ffff:ffff:8000:0");
    expect(inPrefix6(a, a6("fd53:6b69:6666:1::"), 64)).to.equal(true);
    expect(inPrefix6(a, a6("fd53:6b69:6666:2::"), 64)).to.equal(false);
    expect(inPrefix6(a, a6("fd53:6b69:6666:2::"), 46)).to.equal(true);
  });

  it("hashes equal addresses equally and spreads close ones", () => {
    fc.assert(fc.property(ipv6Addr(), (a) => {
      expect(hashIpv6(a)).to.equal(hashIpv6(new Ipv6Addr(a.w0, a.w1, a.w2, a.w3)));
    }));
    const seen = new Set<number>();
    for (let i = 0; i < 4096; i++) seen.add(hashIpv6(new Ipv6Addr(0xfd536b69, 0x66660000, 0, i)) & 0xfff);
    expect(seen.size).to.be.greaterThan(2400); // a random function fills ~2590 of 4096 buckets
    expect(ipv6Equal(a6("::1"), a6("0::1"))).to.equal(true);
  });
});
