/** Tests of src/ipv6/ext.ts: the extension-header walk (RFC 8200 §4, RFC 7112), its bounds and parameter problems, the Fragment header codec. */
import { expect } from "chai";
import fc from "fast-check";
import { WireError } from "../../src/common/wire-error.js";
import {
  DEFAULT_EXT_LIMITS,
  emitFragmentHeader,
  emitOptionsHeader,
  FRAGMENT_HEADER_LEN,
  Ipv6ParameterProblem,
  isAtomicFragment,
  isFragmented,
  optionsHeaderLen,
  parseFragmentHeader,
  ParamProblemCode,
  walkExtensionHeaders,
  type ExtChain,
} from "../../src/ipv6/ext.js";
import { NextHeader } from "../../src/ipv6/ipv6.js";
import { a6, cat, hex, ok, packet6, reasonOf, toHex } from "./helpers.js";

const UDP8 = hex("1234 0035 0008 0000"); // a bare UDP header
const TCP20 = new Uint8Array(20);

/** A Destination Options / Hop-by-Hop header: next header, then option bytes padded by hand. */
const opts = (nh: number, body: string) => {
  const b = hex(body);
  expect((b.length + 2) % 8, "test header must be a multiple of 8").to.equal(0);
  return cat(Uint8Array.of(nh, (b.length + 2) / 8 - 1), b);
};
const frag = (nh: number, offset: number, more: boolean, id = 0x01020304) => {
  const b = new Uint8Array(8);
  emitFragmentHeader({ nextHeader: nh, fragmentOffset: offset, moreFragments: more, id }, b);
  return b;
};
const routing = (nh: number, type: number, segmentsLeft: number) => hex(`${nh.toString(16).padStart(2, "0")}00 ${type.toString(16).padStart(2, "0")}${segmentsLeft.toString(16).padStart(2, "0")} 00000000`);

function problem(x: unknown): Ipv6ParameterProblem {
  expect(x).to.be.instanceOf(Ipv6ParameterProblem);
  return x as Ipv6ParameterProblem;
}

describe("ipv6/ext: extension-header walk (RFC 8200 §4, RFC 7112)", () => {
  it("a packet without extension headers: the upper layer at 40", () => {
    const c = ok(walkExtensionHeaders(packet6(NextHeader.UDP, UDP8)));
    expect([c.protocol, c.offset, c.end, c.headers, c.protocolFieldAt, c.fragmentAt, c.routerAlert, c.routingType]).to.deep.equal([17, 40, 48, 0, 6, -1, -1, -1]);
    expect(isFragmented(c) || isAtomicFragment(c)).to.equal(false);
  });

  it("walks Linux's MLDv2 report: Hop-by-Hop with Router Alert (RFC 2711) then ICMPv6", () => {
    // fixtures/pcaps/ipv6/ndp-slaac.pcap frame 7, from the IPv6 header on.
    const mld = hex(`600000000024 00 01 fe80000000000000505400fffe123456 ff020000000000000000000000000016
      3a00 0502 0000 0100  8f00b8e4 00000001 04000000 ff020000000000000000000001ff123456`);
    const c = ok(walkExtensionHeaders(mld));
    expect([c.protocol, c.offset, c.headers, c.routerAlert, c.protocolFieldAt]).to.deep.equal([58, 48, 1, 0, 40]);
    // The same Hop-by-Hop header, emitted: Router Alert then PadN of 0 bytes.
    const b = new Uint8Array(8);
    expect(emitOptionsHeader(58, [{ type: 5, data: hex("0000") }], b)).to.equal(8);
    expect(toHex(b)).to.equal("3a00050200000100");
  });

  it("Hop-by-Hop anywhere but first is a parameter problem code 1 at the Next Header naming it (§4.1)", () => {
    const p = packet6(NextHeader.DestinationOptions, cat(opts(0, "010400000000"), opts(17, "010400000000"), UDP8));
    const e = problem(walkExtensionHeaders(p));
    expect([e.reason, e.code, e.pointer, e.icmpAllowed]).to.deep.equal(["hop-by-hop not first", 1, 40, true]);
  });

  it("Routing: segments left 0 is ignored, otherwise a parameter problem code 0 at the routing type (§4.4, RFC 5095)", () => {
    const c = ok(walkExtensionHeaders(packet6(NextHeader.Routing, cat(routing(17, 4, 0), UDP8))));
    expect([c.protocol, c.offset, c.routingType]).to.deep.equal([17, 48, 4]);
    for (const type of [0, 2, 4, 200]) {
      const e = problem(walkExtensionHeaders(packet6(NextHeader.Routing, cat(routing(17, type, 1), UDP8))));
      expect([e.reason, e.code, e.pointer]).to.deep.equal(["unrecognized routing type", 0, 42]);
    }
  });

  it("acts on an unrecognised option by its two high bits (§4.2)", () => {
    const with_ = (type: number, dst = a6("fd53:6b69:6666::1")) =>
      walkExtensionHeaders(packet6(NextHeader.DestinationOptions, cat(opts(17, `${type.toString(16)}00 01020000`), UDP8), undefined, dst));
    expect(ok(with_(0x1e)).protocol).to.equal(17); // 00: skip
    expect(reasonOf(with_(0x5e), "ipv6")).to.equal("unrecognized option"); // 01: discard silently
    expect(with_(0x5e)).to.not.be.instanceOf(Ipv6ParameterProblem);
    const e10 = problem(with_(0x9e)); // 10: discard, ICMP even to multicast
    expect([e10.code, e10.pointer, e10.icmpAllowed]).to.deep.equal([2, 42, true]);
    expect(problem(with_(0x9e, a6("ff02::1"))).icmpAllowed).to.equal(true);
    expect(problem(with_(0xde)).icmpAllowed).to.equal(true); // 11: ICMP unless multicast
    expect(problem(with_(0xde, a6("ff02::1"))).icmpAllowed).to.equal(false);
    // Router Alert is only known in Hop-by-Hop: in Destination Options it is an unknown 00 option.
    expect(ok(walkExtensionHeaders(packet6(NextHeader.DestinationOptions, cat(opts(17, "05020000 0100"), UDP8)))).routerAlert).to.equal(-1);
  });

  it("checks option TLVs: lengths inside the header, bounded padding and option count", () => {
    const e = problem(walkExtensionHeaders(packet6(0, cat(opts(17, "0109 00000000"), UDP8))));
    expect([e.reason, e.code, e.pointer]).to.deep.equal(["option truncated", 0, 43]);
    expect(reasonOf(walkExtensionHeaders(packet6(0, cat(opts(17, "0106 000000000000 0104 00000000"), UDP8))), "ipv6")).to.equal("too much padding");
    // Six Pad1 bytes are fine (<= 7); a Router Alert of the wrong length is not.
    expect(ok(walkExtensionHeaders(packet6(0, cat(opts(17, "000000000000"), UDP8)))).headers).to.equal(1);
    expect(problem(walkExtensionHeaders(packet6(0, cat(opts(17, "0503000000 00"), UDP8)))).reason).to.equal("bad router alert");
    const nine = "1e00".repeat(9) + "00000000"; // nine empty skip-able options and 4 x Pad1: 24 bytes
    expect(reasonOf(walkExtensionHeaders(packet6(60, cat(opts(17, nine), UDP8))), "ipv6")).to.equal("too many options");
    expect(ok(walkExtensionHeaders(packet6(60, cat(opts(17, nine), UDP8)), { ...DEFAULT_EXT_LIMITS, maxOptions: 9 })).offset).to.equal(64);
  });

  it("bounds the chain by header count and bytes (configurable)", () => {
    const chain = (n: number) => {
      const parts: Uint8Array[] = [];
      for (let i = 0; i < n; i++) parts.push(opts(i === n - 1 ? 17 : 60, "010400000000"));
      return packet6(60, cat(...parts, UDP8));
    };
    expect(ok(walkExtensionHeaders(chain(8))).headers).to.equal(8);
    expect(reasonOf(walkExtensionHeaders(chain(9)), "ipv6")).to.equal("too many headers");
    expect(ok(walkExtensionHeaders(chain(9), { ...DEFAULT_EXT_LIMITS, maxHeaders: 9 })).offset).to.equal(40 + 72);
    expect(reasonOf(walkExtensionHeaders(chain(4), { ...DEFAULT_EXT_LIMITS, maxChainBytes: 31 }), "ipv6")).to.equal("chain too long");
    expect(ok(walkExtensionHeaders(chain(4), { ...DEFAULT_EXT_LIMITS, maxChainBytes: 32 })).offset).to.equal(72);
    // One 2048-byte header is over the default 512 bytes.
    const big = cat(Uint8Array.of(17, 255), Uint8Array.of(1, 250), new Uint8Array(250), ...Array.from({ length: 7 }, () => Uint8Array.of(1, 254, ...new Uint8Array(254))), new Uint8Array(2048 - 2 - 252 - 7 * 256));
    expect(big.length).to.equal(2048);
    expect(reasonOf(walkExtensionHeaders(packet6(60, cat(big, UDP8))), "ipv6")).to.equal("chain too long");
  });

  it("AH is walked in 4-octet units (RFC 4302 §2.2); ESP and No Next Header end the walk", () => {
    const ah = cat(hex("11 04 0000 00000001 00000002"), new Uint8Array(12)); // (4+2)*4 = 24 bytes
    const c = ok(walkExtensionHeaders(packet6(NextHeader.AH, cat(ah, UDP8))));
    expect([c.protocol, c.offset]).to.deep.equal([17, 64]);
    const esp = ok(walkExtensionHeaders(packet6(60, cat(opts(50, "010400000000"), hex("deadbeef00000001")))));
    expect([esp.protocol, esp.offset, esp.protocolFieldAt]).to.deep.equal([50, 48, 40]);
    const none = ok(walkExtensionHeaders(packet6(59, hex("0102030405"))));
    expect([none.protocol, none.offset, none.end]).to.deep.equal([59, 40, 45]); // §4.7: the bytes after it are ignored
  });

  it("walks the Fragment header (§4.5): the first fragment continues, a later one ends the walk", () => {
    const first = ok(walkExtensionHeaders(packet6(44, cat(frag(17, 0, true, 0xfa0bcb1a), UDP8, new Uint8Array(16)))));
    expect([first.protocol, first.offset, first.fragmentAt, first.fragmentFieldAt, first.fragmentOffset, first.moreFragments, first.fragmentId])
      .to.deep.equal([17, 48, 40, 6, 0, true, 0xfa0bcb1a]);
    expect([isFragmented(first), isAtomicFragment(first)]).to.deep.equal([true, false]);
    const later = ok(walkExtensionHeaders(packet6(60, cat(opts(44, "010400000000"), frag(58, 1448, false), hex("00000000")))));
    expect([later.protocol, later.offset, later.fragmentAt, later.fragmentFieldAt, later.fragmentOffset, later.moreFragments, later.protocolFieldAt])
      .to.deep.equal([58, 56, 48, 40, 1448, false, 48]);
    const atomic = ok(walkExtensionHeaders(packet6(44, cat(frag(6, 0, false), TCP20))));
    expect([atomic.protocol, atomic.offset, isAtomicFragment(atomic), isFragmented(atomic)]).to.deep.equal([6, 48, true, false]);
  });

  it("a first fragment must hold the whole header chain and the upper-layer header (RFC 7112 §5): code 3", () => {
    // The Destination Options header is cut by the end of the first fragment.
    const cut = cat(frag(60, 0, true), opts(17, "0104000000000000000000000000").subarray(0, 8));
    const e = problem(walkExtensionHeaders(packet6(44, cut)));
    expect([e.reason, e.code, e.pointer]).to.deep.equal(["incomplete header chain", ParamProblemCode.IncompleteHeaderChain, 0]);
    // Only 8 bytes of a TCP header, or none of a UDP header.
    expect(problem(walkExtensionHeaders(packet6(44, cat(frag(6, 0, true), new Uint8Array(8))))).code).to.equal(3);
    expect(problem(walkExtensionHeaders(packet6(44, cat(frag(17, 0, true), new Uint8Array(0))))).code).to.equal(3);
    expect(ok(walkExtensionHeaders(packet6(44, cat(frag(6, 0, true), TCP20)))).offset).to.equal(48);
    // The same cut headers without a Fragment header are plainly truncated.
    expect(reasonOf(walkExtensionHeaders(packet6(60, hex("1102 0104000000"))), "ipv6")).to.equal("truncated");
    // A second Fragment header behind a first fragment's.
    expect(problem(walkExtensionHeaders(packet6(44, cat(frag(44, 0, true), frag(17, 0, false), UDP8)))).reason).to.equal("nested fragment");
  });

  it("the Fragment header codec matches Linux's fragment (fixtures/pcaps/ipv6/frag-ping.pcap frame 3)", () => {
    const wire = hex("3a00 0b50 fa0bcb1a");
    const r = ok(parseFragmentHeader(wire));
    expect(r).to.deep.equal({ nextHeader: 58, fragmentOffset: 2896, moreFragments: false, id: 0xfa0bcb1a });
    const b = new Uint8Array(FRAGMENT_HEADER_LEN);
    emitFragmentHeader(r, b);
    expect(toHex(b)).to.equal(toHex(wire));
    // Reserved bits are ignored on receipt (§4.5).
    expect(ok(parseFragmentHeader(hex("3aff 0b56 fa0bcb1a")))).to.deep.equal(r);
    expect(reasonOf(parseFragmentHeader(wire.subarray(0, 7)), "ipv6")).to.equal("truncated");
    expect(() => emitFragmentHeader({ ...r, fragmentOffset: 12 }, b)).to.throw(RangeError);
    expect(() => emitFragmentHeader({ ...r, fragmentOffset: 65536 }, b)).to.throw(RangeError);
    fc.assert(
      fc.property(fc.nat(0x1fff), fc.boolean(), fc.integer({ min: 0, max: 0xffff_ffff }), fc.nat(255), (units, more, id, nh) => {
        const repr = { nextHeader: nh, fragmentOffset: units * 8, moreFragments: more, id };
        const buf = new Uint8Array(8);
        emitFragmentHeader(repr, buf);
        expect(parseFragmentHeader(buf)).to.deep.equal(repr);
      }),
    );
  });

  it("emitted options headers are padded to 8 and walk back to their options", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 5 }), (datas) => {
        const options = datas.map((data) => ({ type: 0x1e, data }));
        const len = optionsHeaderLen(options);
        const buf = new Uint8Array(len);
        expect(emitOptionsHeader(17, options, buf)).to.equal(len);
        expect(len % 8).to.equal(0);
        const c = walkExtensionHeaders(packet6(60, cat(buf, UDP8)));
        expect(c).to.not.be.instanceOf(WireError);
        expect((c as ExtChain).offset).to.equal(40 + len);
      }),
    );
  });

  it("truncation is reported, never thrown", () => {
    expect(reasonOf(walkExtensionHeaders(new Uint8Array(39)), "ipv6")).to.equal("truncated");
    const p = packet6(60, cat(opts(17, "010400000000"), UDP8));
    expect(reasonOf(walkExtensionHeaders(p.subarray(0, 50)), "ipv6")).to.equal("truncated"); // Payload Length past the bytes
    const short = Uint8Array.from(p);
    short[5] = 4; // Payload Length 4: the options header runs past it
    expect(reasonOf(walkExtensionHeaders(short), "ipv6")).to.equal("truncated");
  });

  it("walks a quoted packet cut short (an ICMPv6 error's quote) as far as its bytes go, on request", () => {
    const whole = packet6(60, cat(opts(6, "010400000000"), TCP20, new Uint8Array(1500)));
    const quote = whole.subarray(0, 1232);
    expect(reasonOf(walkExtensionHeaders(quote), "ipv6")).to.equal("truncated");
    const c = ok(walkExtensionHeaders(quote, DEFAULT_EXT_LIMITS, { allowTruncated: true }));
    expect([c.protocol, c.offset, c.end]).to.deep.equal([6, 48, 1232]);
    // Headers cut by the end of the quote are still reported as truncated.
    expect(reasonOf(walkExtensionHeaders(whole.subarray(0, 44), DEFAULT_EXT_LIMITS, { allowTruncated: true }), "ipv6")).to.equal("truncated");
  });
});
