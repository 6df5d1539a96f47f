import { expect } from "chai";
import fc from "fast-check";
import {
  BOOTP_FIXED_LEN,
  DHCP_MAGIC_COOKIE,
  DhcpMessageType,
  DhcpOption,
  decodeDomainSearch,
  dhcpLen,
  emitDhcp,
  encodeDomainSearch,
  getOption,
  ipListOption,
  messageType,
  parseDhcp,
  readIpList,
  u16Option,
  u32Option,
  type DhcpOptionEntry,
  type DhcpRepr,
} from "../../src/dhcp/wire.js";
import { WireError } from "../../src/common/wire-error.js";
import { damaged, ipv4, mac, u16, u32, u8 } from "../support/arbitraries.js";

const latin1 = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 1, max: 255 }).map((c) => String.fromCharCode(c)), maxLength });

/** Option data: mostly short, sometimes near `maxData` (fast-check alone rarely builds long arrays). */
const optionArb = (maxData: number): fc.Arbitrary<DhcpOptionEntry> =>
  fc.record({
    code: fc.integer({ min: 1, max: 254 }),
    data: fc.oneof(
      fc.uint8Array({ maxLength: 16 }),
      fc.uint8Array({ minLength: Math.min(240, maxData), maxLength: maxData, size: "max" }),
    ),
  });

const reprArb = (maxData: number): fc.Arbitrary<DhcpRepr> =>
  fc.record({
    op: fc.integer({ min: 1, max: 2 }),
    htype: u8(),
    hlen: u8(),
    hops: u8(),
    xid: u32(),
    secs: u16(),
    broadcast: fc.boolean(),
    ciaddr: ipv4(),
    yiaddr: ipv4(),
    siaddr: ipv4(),
    giaddr: ipv4(),
    chaddr: mac(),
    sname: latin1(63),
    file: latin1(127),
    options: fc.array(optionArb(maxData), { maxLength: 12 }),
  });

function emitted(r: DhcpRepr): Uint8Array {
  const buf = new Uint8Array(dhcpLen(r));
  expect(emitDhcp(r, buf)).to.equal(buf.length);
  return buf;
}

function parsed(b: Uint8Array): DhcpRepr {
  const r = parseDhcp(b);
  if (r instanceof WireError) expect.fail(r.toString());
  return r;
}

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/**
 * A busybox udhcpc DISCOVER laid out by hand from RFC 2131 §2 Figure 1: MAC 52:54:00:12:34:56,
 * xid 0x3903f326, secs 0, no broadcast flag, options message type, client id, max size 576,
 * parameter request list, vendor class "udhcp 1.36.1", End, zero padding to 300 bytes.
 */
function udhcpcDiscover(): Uint8Array {
  const b = new Uint8Array(300);
  b.set([1, 1, 6, 0], 0); // op BOOTREQUEST, htype Ethernet, hlen 6, hops 0
  b.set([0x39, 0x03, 0xf3, 0x26], 4); // xid
  // secs 0, flags 0, ciaddr/yiaddr/siaddr/giaddr 0.0.0.0: already zero
  b.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 28); // chaddr (10 bytes of padding follow)
  // sname (64) and file (128) empty
  b.set([0x63, 0x82, 0x53, 0x63], 236); // magic cookie
  b.set(
    [
      53, 1, 1, // DHCPDISCOVER
      61, 7, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // client id: htype 1 + MAC
      57, 2, 0x02, 0x40, // max message size 576
      55, 7, 1, 3, 6, 12, 15, 28, 42, // parameter request list
      60, 12, ...ascii("udhcp 1.36.1"), // vendor class id
      255,
    ],
    240,
  );
  return b;
}

// RFC 3397 §2 example: "eng.apple.com." and "marketing.apple.com.", compressed.
const RFC3397_DATA = [
  3, ...ascii("eng"), 5, ...ascii("apple"), 3, ...ascii("com"), 0,
  9, ...ascii("marketing"), 0xc0, 0x04,
];

const emptyRepr = (options: DhcpOptionEntry[]): DhcpRepr => ({
  op: 2, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, broadcast: false,
  ciaddr: 0, yiaddr: 0xc0a84103, siaddr: 0xc0a84101, giaddr: 0, chaddr: 0x525400123456,
  sname: "", file: "", options,
});

describe("dhcp/wire codec (RFC 2131 §2, RFC 2132, RFC 3396, RFC 3397)", () => {
  it("parse(emit(r)) equals r when every option fits one instance", () => {
    fc.assert(
      fc.property(reprArb(255), (r) => {
        const buf = emitted(r);
        expect(buf.length).to.be.at.least(300);
        expect(parsed(buf)).to.deep.equal(r);
      }),
      { numRuns: 150 },
    );
  });

  it("splits long options (RFC 3396) and getOption gives back each option's data", () => {
    fc.assert(
      fc.property(reprArb(700), (r) => {
        const p = parsed(emitted(r));
        for (const code of new Set(r.options.map((o) => o.code))) {
          expect(getOption(p, code)).to.deep.equal(getOption(r, code));
        }
        // Every instance on the wire fits its length octet.
        for (const o of p.options) expect(o.data.length).to.be.at.most(255);
      }),
      { numRuns: 100 },
    );
  });

  it("writes every byte: emitting over a dirty buffer at an offset gives the same bytes", () => {
    fc.assert(
      fc.property(reprArb(300), fc.nat(9), (r, off) => {
        const clean = emitted(r);
        const dirty = new Uint8Array(clean.length + off).fill(0xee);
        expect(emitDhcp(r, dirty, off)).to.equal(clean.length);
        expect(dirty.subarray(off)).to.deep.equal(clean);
      }),
      { numRuns: 50 },
    );
  });

  it("decodes a udhcpc DISCOVER field by field", () => {
    const bytes = udhcpcDiscover();
    const r = parsed(bytes);
    expect(r.op).to.equal(1);
    expect(r.htype).to.equal(1);
    expect(r.hlen).to.equal(6);
    expect(r.hops).to.equal(0);
    expect(r.xid).to.equal(0x3903f326);
    expect(r.secs).to.equal(0);
    expect(r.broadcast).to.equal(false);
    expect([r.ciaddr, r.yiaddr, r.siaddr, r.giaddr]).to.deep.equal([0, 0, 0, 0]);
    expect(r.chaddr).to.equal(0x525400123456);
    expect(r.sname).to.equal("");
    expect(r.file).to.equal("");
    expect(r.options.map((o) => o.code)).to.deep.equal([53, 61, 57, 55, 60]);
    expect(messageType(r)).to.equal(DhcpMessageType.Discover);
    expect(Array.from(getOption(r, DhcpOption.ClientId)!)).to.deep.equal([1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    expect(getOption(r, DhcpOption.MaxMessageSize)).to.deep.equal(u16Option(576));
    expect(Array.from(getOption(r, DhcpOption.ParameterList)!)).to.deep.equal([1, 3, 6, 12, 15, 28, 42]);
    expect(String.fromCharCode(...getOption(r, 60)!)).to.equal("udhcp 1.36.1");
    expect(getOption(r, DhcpOption.RequestedIp)).to.equal(undefined);
    // Re-emitting gives the same 300 bytes.
    expect(emitted(r)).to.deep.equal(bytes);
  });

  it("emits options in list order, so message type goes first when it is first", () => {
    const r = emptyRepr([
      { code: DhcpOption.MessageType, data: Uint8Array.of(DhcpMessageType.Offer) },
      { code: DhcpOption.ServerId, data: u32Option(0xc0a84101) },
      { code: DhcpOption.LeaseTime, data: u32Option(7200) },
      { code: DhcpOption.SubnetMask, data: u32Option(0xffffff00) },
      { code: DhcpOption.Router, data: ipListOption([0xc0a84101]) },
      { code: DhcpOption.DnsServers, data: ipListOption([0xc0a84101, 0x08080808]) },
    ]);
    const b = emitted(r);
    expect(b.length).to.equal(300);
    expect(Array.from(b.subarray(236, 252))).to.deep.equal([
      0x63, 0x82, 0x53, 0x63, 53, 1, 2, 54, 4, 192, 168, 65, 1, 51, 4, 0,
    ]);
    const p = parsed(b);
    expect(p.options[0].code).to.equal(DhcpOption.MessageType);
    expect(readIpList(getOption(p, DhcpOption.DnsServers)!)).to.deep.equal([0xc0a84101, 0x08080808]);
    expect(b[240 + 3 + 6 + 6 + 6 + 6 + 10]).to.equal(255); // End after the last option
  });

  it("round-trips the RFC 3397 domain search example, split as in the RFC", () => {
    expect(Array.from(encodeDomainSearch(["eng.apple.com.", "marketing.apple.com."]))).to.deep.equal(RFC3397_DATA);
    expect(decodeDomainSearch(Uint8Array.from(RFC3397_DATA))).to.deep.equal(["eng.apple.com", "marketing.apple.com"]);
    // The RFC's three 9-byte instances of option 119 inside a message.
    const b = emitted(emptyRepr([]));
    const wire = [
      119, 9, ...RFC3397_DATA.slice(0, 9),
      119, 9, ...RFC3397_DATA.slice(9, 18),
      119, 9, ...RFC3397_DATA.slice(18),
      255,
    ];
    b.set(wire, 240);
    const r = parsed(b);
    expect(r.options.length).to.equal(3);
    expect(decodeDomainSearch(getOption(r, DhcpOption.DomainSearch)!)).to.deep.equal(["eng.apple.com", "marketing.apple.com"]);
  });

  it("round-trips random domain search lists, compressed no larger than uncompressed", () => {
    const label = fc.string({ unit: fc.constantFrom(..."abcxyz019-"), minLength: 1, maxLength: 12 });
    const domain = fc.array(label, { minLength: 1, maxLength: 5 }).map((ls) => ls.join("."));
    fc.assert(
      fc.property(fc.array(domain, { maxLength: 8 }), (domains) => {
        const enc = encodeDomainSearch(domains);
        expect(decodeDomainSearch(enc)).to.deep.equal(domains);
        const plain = domains.reduce((n, d) => n + d.length + 2, 0);
        expect(enc.length).to.be.at.most(plain);
      }),
      { numRuns: 200 },
    );
  });

  it("rejects bad domain search data: forward or self pointers, truncation, reserved label types", () => {
    for (const bad of [
      [0xc0, 0x00], // points at itself
      [3, 0x61, 0x62, 0x63, 0xc0, 0x06, 0], // points forward
      [3, 0x61, 0x62], // label runs past the end
      [3, 0x61, 0x62, 0x63], // no terminator
      [0x40, 0], // reserved label type
      [0xc0], // half a pointer
    ]) {
      expect(decodeDomainSearch(Uint8Array.from(bad)), JSON.stringify(bad)).to.be.instanceOf(WireError);
    }
    // A backward pointer to a name that itself reaches the pointer again is a loop: bounded by the name length.
    expect(decodeDomainSearch(Uint8Array.from([1, 0x61, 0xc0, 0x00]))).to.be.instanceOf(WireError);
    expect(() => encodeDomainSearch(["a..b"])).to.throw(RangeError);
    expect(() => encodeDomainSearch(["x".repeat(64)])).to.throw(RangeError);
  });

  it("skips Pad, tolerates a missing End, and returns no options without the magic cookie", () => {
    const b = emitted(emptyRepr([]));
    b.set([0, 0, 53, 1, 3, 0, 50, 4, 10, 0, 0, 7], 240); // no End: the rest is zero padding (Pad)
    const r = parsed(b.subarray(0, 252));
    expect(r.options).to.deep.equal([
      { code: 53, data: Uint8Array.of(3) },
      { code: 50, data: Uint8Array.of(10, 0, 0, 7) },
    ]);
    expect(messageType(r)).to.equal(DhcpMessageType.Request);
    // Plain BOOTP: a vendor area without the cookie.
    b[236] = 0;
    const bootp = parsed(b);
    expect(bootp.options).to.deep.equal([]);
    expect(messageType(bootp)).to.equal(undefined);
    expect(parsed(b.subarray(0, BOOTP_FIXED_LEN)).options).to.deep.equal([]);
  });

  it("rejects truncated messages and options that run past the end", () => {
    const b = emitted(emptyRepr([]));
    expect(parseDhcp(b.subarray(0, BOOTP_FIXED_LEN - 1))).to.deep.equal(new WireError("dhcp", "truncated"));
    b.set([53, 1, 1, 12, 10, 0x61], 240);
    expect(parseDhcp(b.subarray(0, 246))).to.deep.equal(new WireError("dhcp", "bad option"));
    expect(parseDhcp(b.subarray(0, 244))).to.deep.equal(new WireError("dhcp", "bad option")); // code without length
  });

  it("reads sname and file as NUL-terminated fields and refuses over-long ones", () => {
    const r = emptyRepr([]);
    r.sname = "gateway";
    r.file = "pxelinux.0";
    const b = emitted(r);
    expect(b[44 + 7]).to.equal(0);
    expect(String.fromCharCode(...b.subarray(108, 118))).to.equal("pxelinux.0");
    expect(parsed(b)).to.deep.include({ sname: "gateway", file: "pxelinux.0" });
    const longest = { ...r, sname: "s".repeat(63), file: "\xff".repeat(127) };
    expect(parsed(emitted(longest))).to.deep.include({ sname: longest.sname, file: longest.file });
    // A full 64-byte field with no NUL still parses (to 64 characters).
    b.fill(0x41, 44, 108);
    expect(parsed(b).sname).to.equal("A".repeat(64));
    expect(() => emitDhcp({ ...r, sname: "x".repeat(64) }, new Uint8Array(400))).to.throw(RangeError);
    expect(() => emitDhcp(emptyRepr([{ code: 255, data: new Uint8Array(1) }]), new Uint8Array(400))).to.throw(RangeError);
  });

  it("encodes and decodes option values", () => {
    fc.assert(
      fc.property(fc.array(ipv4(), { maxLength: 10 }), (ips) => {
        expect(readIpList(ipListOption(ips))).to.deep.equal(ips);
      }),
    );
    expect(Array.from(u32Option(DHCP_MAGIC_COOKIE))).to.deep.equal([0x63, 0x82, 0x53, 0x63]);
    expect(Array.from(u16Option(1500))).to.deep.equal([0x05, 0xdc]);
    expect(readIpList(Uint8Array.of(1, 2, 3, 4, 5))).to.deep.equal([0x01020304]);
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb(300), fc.nat(), fc.uint8Array({ maxLength: 400 }), (r, seed, junk) => {
        const buf = emitted(r);
        for (const input of [damaged(buf, seed), junk]) {
          const p = parseDhcp(input);
          expect(p instanceof WireError || Array.isArray(p.options)).to.equal(true);
          const d = decodeDomainSearch(input.subarray(0, 64));
          expect(d instanceof WireError || Array.isArray(d)).to.equal(true);
        }
        // Random data behind a valid header and cookie exercises the option walk itself.
        const withJunk = new Uint8Array(240 + junk.length);
        withJunk.set(buf.subarray(0, 240));
        withJunk.set(junk, 240);
        const q = parseDhcp(withJunk);
        expect(q instanceof WireError || Array.isArray(q.options)).to.equal(true);
      }),
      { numRuns: 150 },
    );
  });
});
