import { expect } from "chai";
import fc from "fast-check";
import {
  EtherType,
  emitEthernet,
  ethernetHeaderLen,
  parseEthernet,
  type EthernetRepr,
} from "../../src/ethernet/ethernet.js";
import { WireError } from "../../src/common/wire-error.js";
import { damaged, mac, u16 } from "../support/arbitraries.js";

const reprArb: fc.Arbitrary<EthernetRepr> = fc.record(
  {
    dst: mac(),
    src: mac(),
    ethertype: u16().filter((t) => t !== EtherType.VLAN),
    vlan: fc.record({ pcp: fc.nat(7), dei: fc.boolean(), id: fc.nat(4095) }),
  },
  { requiredKeys: ["dst", "src", "ethertype"] },
);

describe("ethernet/ethernet codec", () => {
  it("parse(emit(r)) equals r (with and without an 802.1Q tag)", () => {
    fc.assert(
      fc.property(reprArb, (r) => {
        const buf = new Uint8Array(ethernetHeaderLen(r));
        expect(emitEthernet(r, buf)).to.equal(buf.length);
        expect(parseEthernet(buf)).to.deep.equal(r);
      }),
    );
  });

  it("decodes a known frame header", () => {
    const hdr = Uint8Array.from([
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
    ]);
    expect(parseEthernet(hdr)).to.deep.equal({ dst: 0xffffffffffff, src: 0x525400123456, ethertype: EtherType.ARP });
  });

  it("recognises an 802.1Q tag and reports the inner EtherType", () => {
    const hdr = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00, 0xa0, 0x64, 0x08, 0x00]);
    expect(parseEthernet(hdr)).to.deep.equal({
      dst: 0x010203040506,
      src: 0x0708090a0b0c,
      ethertype: EtherType.IPv4,
      vlan: { pcp: 5, dei: false, id: 100 },
    });
  });

  it("returns a WireError for truncated frames, including a cut 802.1Q tag", () => {
    expect(parseEthernet(new Uint8Array(13))).to.be.instanceOf(WireError);
    const tagged = new Uint8Array(16);
    tagged[12] = 0x81;
    expect(parseEthernet(tagged)).to.be.instanceOf(WireError);
  });

  it("never throws on random or damaged bytes", () => {
    fc.assert(
      fc.property(reprArb, fc.nat(), fc.uint8Array({ maxLength: 40 }), (r, seed, junk) => {
        const buf = new Uint8Array(ethernetHeaderLen(r));
        emitEthernet(r, buf);
        const a = parseEthernet(damaged(buf, seed));
        const b = parseEthernet(junk);
        expect(a instanceof WireError || typeof a.ethertype === "number").to.equal(true);
        expect(b instanceof WireError || typeof b.ethertype === "number").to.equal(true);
      }),
    );
  });
});
