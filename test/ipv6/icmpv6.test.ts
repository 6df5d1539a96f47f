/** Tests of src/ipv6/icmpv6.ts: ICMPv6 messages (RFC 4443) by hand and from a capture, round trips, damaged input, when errors may be sent. */
import { expect } from "chai";
import fc from "fast-check";
import { WireError } from "../../src/common/wire-error.js";
import { walkExtensionHeaders } from "../../src/ipv6/ext.js";
import {
  emitIcmpv6,
  errorQuote,
  ICMPV6_ERROR_MAX_QUOTE,
  icmpv6ErrorAllowed,
  icmpv6Len,
  Icmpv6Packet,
  Icmpv6Type,
  parseIcmpv6,
  type Icmpv6Repr,
} from "../../src/ipv6/icmpv6.js";
import { parseIpv6 } from "../../src/ipv6/ipv6.js";
import { damaged, u8, u16 } from "../support/arbitraries.js";
import { a6, cat, fixturePackets, GATEWAY, GUEST, hex, ipv6Addr, ok, packet6, reasonOf, toHex } from "./helpers.js";

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const reprArb: fc.Arbitrary<Icmpv6Repr> = fc.oneof(
  fc.record({ kind: fc.constantFrom("echo-request" as const, "echo-reply" as const), id: u16(), seq: u16(), data: bytes(64) }),
  fc.record({ kind: fc.constantFrom("dest-unreachable" as const, "time-exceeded" as const), code: u8(), original: bytes(64) }),
  fc.record({ kind: fc.constant("packet-too-big" as const), mtu: fc.integer({ min: 0, max: 0xffff_ffff }), original: bytes(64) }),
  fc.record({ kind: fc.constant("param-problem" as const), code: u8(), pointer: fc.integer({ min: 0, max: 0xffff_ffff }), original: bytes(64) }),
  fc.record({
    kind: fc.constant("other" as const),
    type: u8().filter((t) => ![1, 2, 3, 4, 128, 129].includes(t)),
    code: u8(),
    rest: fc.integer({ min: 0, max: 0xffff_ffff }),
    data: bytes(64),
  }),
);

function emitted(r: Icmpv6Repr, src = GUEST, dst = GATEWAY): Uint8Array {
  const buf = new Uint8Array(icmpv6Len(r));
  expect(emitIcmpv6(r, buf, 0, src, dst)).to.equal(buf.length);
  return buf;
}

describe("ipv6/icmpv6 codec (RFC 4443)", () => {
  it("decodes Linux's echo request and emits the kernel's reply byte for byte (ndp-slaac.pcap frames 12-13)", () => {
    const pkts = fixturePackets("ndp-slaac.pcap");
    const req = pkts.find((p) => p.frame === 12)!.ip;
    const rep = pkts.find((p) => p.frame === 13)!.ip;
    const h = ok(parseIpv6(req));
    const r = ok(parseIcmpv6(req.subarray(40), h.src, h.dst));
    if (r.kind !== "echo-request") throw new Error(r.kind);
    expect([r.id, r.seq, r.data.length]).to.deep.equal([0x41db, 1, 56]);
    const reply = emitted({ kind: "echo-reply", id: r.id, seq: r.seq, data: r.data }, h.dst, h.src);
    expect(toHex(reply)).to.equal(toHex(rep.subarray(40)));
    const p = new Icmpv6Packet(reply);
    expect([p.check(), p.type, p.code, p.id, p.seq, p.checksumOk(h.dst, h.src), p.checksumOk(h.src, h.dst)])
      .to.deep.equal([true, 129, 0, 0x41db, 1, true, true]);
    expect(p.checksumOk(h.dst, a6("::1"))).to.equal(false);
  });

  it("emits the error messages with the RFC 4443 §3 layouts (hand-written vectors)", () => {
    const orig = hex("6000000000080000 ");
    const src = a6("fe80::1");
    const dst = a6("fe80::2");
    const cases: Array<[Icmpv6Repr, string]> = [
      [{ kind: "dest-unreachable", code: 4, original: orig }, "0104 CSUM 00000000"],
      [{ kind: "packet-too-big", mtu: 1280, original: orig }, "0200 CSUM 00000500"],
      [{ kind: "time-exceeded", code: 1, original: orig }, "0301 CSUM 00000000"],
      [{ kind: "param-problem", code: 0, pointer: 42, original: orig }, "0400 CSUM 0000002a"],
    ];
    for (const [r, head] of cases) {
      const b = emitted(r, src, dst);
      const p = new Icmpv6Packet(b);
      // Everything but the checksum byte for byte; the checksum is checked by hand below.
      expect(toHex(cat(b.subarray(0, 2), b.subarray(4))), r.kind).to.equal(toHex(hex(head.replace("CSUM", ""))) + toHex(orig));
      expect(p.checksumOk(src, dst)).to.equal(true);
      expect(parseIcmpv6(b, src, dst)).to.deep.equal(r);
    }
    // The checksum of the Packet Too Big by hand: RFC 1071 over pseudo-header + message.
    const b = emitted({ kind: "packet-too-big", mtu: 1280, original: orig }, src, dst);
    let sum = 0xfe80 + 1 + 0xfe80 + 2 + 16 + 58 + 0x0200 + 0x0500 + 0x6000 + 0x0008;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    expect(new Icmpv6Packet(b).checksum).to.equal(~sum & 0xffff);
  });

  it("parse(emit(r)) equals r for every kind", () => {
    fc.assert(
      fc.property(reprArb, ipv6Addr(), ipv6Addr(), (r, src, dst) => {
        expect(parseIcmpv6(emitted(r, src, dst), src, dst)).to.deep.equal(r);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects short messages and bad checksums; an echo with a code is 'other'", () => {
    const b = emitted({ kind: "echo-request", id: 1, seq: 2, data: hex("0102") });
    expect(reasonOf(parseIcmpv6(b.subarray(0, 7), GUEST, GATEWAY), "icmpv6")).to.equal("truncated");
    expect(reasonOf(parseIcmpv6(b, GATEWAY, a6("::2")), "icmpv6")).to.equal("bad checksum");
    for (let bit = 0; bit < b.length * 8; bit++) {
      const d = Uint8Array.from(b);
      d[bit >>> 3] ^= 1 << (bit & 7);
      expect(parseIcmpv6(d, GUEST, GATEWAY), `bit ${bit}`).to.be.instanceOf(WireError);
    }
    const coded = Uint8Array.from(b);
    coded[1] = 1;
    expect(ok(parseIcmpv6(coded, GUEST, GATEWAY, { verifyChecksum: false })).kind).to.equal("other");
    const p = new Icmpv6Packet(coded);
    p.fillChecksum(GUEST, GATEWAY);
    expect(p.checksumOk(GUEST, GATEWAY)).to.equal(true);
  });

  it("quotes at most 1232 bytes so an error fits the minimum MTU (RFC 4443 §2.4(c))", () => {
    expect(ICMPV6_ERROR_MAX_QUOTE).to.equal(1232);
    expect(errorQuote(new Uint8Array(1500)).length).to.equal(1232);
    const small = new Uint8Array(100);
    expect(errorQuote(small)).to.equal(small);
  });

  it("allows an error only where RFC 4443 §2.4(e) does", () => {
    const udp = packet6(17, hex("1234 0035 0008 0000"));
    const allowed = (p: Uint8Array, type: number, code = 0) => {
      const c = walkExtensionHeaders(p);
      return icmpv6ErrorAllowed(p, c instanceof WireError ? undefined : c, type, code);
    };
    expect(allowed(udp, Icmpv6Type.DestUnreachable, 4)).to.equal(true);
    // Not to a multicast destination, except Packet Too Big and Parameter Problem code 2.
    const mcast = packet6(17, hex("1234 0035 0008 0000"), GUEST, a6("ff02::1"));
    expect(allowed(mcast, Icmpv6Type.DestUnreachable, 4)).to.equal(false);
    expect(allowed(mcast, Icmpv6Type.PacketTooBig)).to.equal(true);
    expect(allowed(mcast, Icmpv6Type.ParameterProblem, 2)).to.equal(true);
    expect(allowed(mcast, Icmpv6Type.ParameterProblem, 0)).to.equal(false);
    // Not from the unspecified or a multicast source.
    expect(allowed(packet6(17, hex("1234 0035 0008 0000"), a6("::"), GATEWAY), 1)).to.equal(false);
    expect(allowed(packet6(17, hex("1234 0035 0008 0000"), a6("ff02::1"), GATEWAY), 1)).to.equal(false);
    // Not about an ICMPv6 error or a Redirect; about an echo, yes.
    const err = packet6(58, emitted({ kind: "dest-unreachable", code: 0, original: new Uint8Array(8) }));
    expect(allowed(err, Icmpv6Type.ParameterProblem)).to.equal(false);
    expect(allowed(packet6(58, cat(hex("89000000 00000000"), new Uint8Array(32))), Icmpv6Type.ParameterProblem)).to.equal(false);
    expect(allowed(packet6(58, emitted({ kind: "echo-request", id: 1, seq: 1, data: new Uint8Array(0) })), 4)).to.equal(true);
    expect(icmpv6ErrorAllowed(new Uint8Array(10), undefined, 1, 0)).to.equal(false);
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), bytes(40), (r, seed, junk) => {
        for (const input of [damaged(emitted(r), seed), junk]) {
          for (const opts of [undefined, { verifyChecksum: false }]) {
            const p = parseIcmpv6(input, GUEST, GATEWAY, opts);
            expect(p instanceof WireError || typeof p.kind === "string").to.equal(true);
          }
        }
      }),
    );
  });
});
